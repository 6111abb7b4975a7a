//! Every cargo-fuzz target in `fuzz/` builds and runs clean for a few seconds
//! (`fuzz/run.sh 5`), so a target that no longer compiles or crashes at once fails the suite.
//! Long runs are `fuzz/run.sh SECS` by hand.
//!
//! Needs cargo-fuzz (`cargo install cargo-fuzz`). With `CI` set a missing cargo-fuzz fails
//! the test; otherwise the test is skipped with a printed reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::process::{Command, Stdio};

/// Seconds each target runs.
const SECS: &str = "5";

fn cargo_fuzz_available() -> bool {
    Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn every_fuzz_target_builds_and_runs_clean() {
    if !cargo_fuzz_available() {
        let reason = "cargo-fuzz is not installed (cargo install cargo-fuzz)";
        assert!(std::env::var_os("CI").is_none(), "CI is set and {reason}");
        println!("SKIPPED every_fuzz_target_builds_and_runs_clean: {reason}");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/run.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(SECS)
        // The nested cargo must not inherit this test's build settings.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "fuzz/run.sh {SECS} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let clean = stdout.lines().filter(|l| l.ends_with(", clean")).count();
    assert!(
        clean >= 6,
        "expected every target (6) to run clean:\n{stdout}"
    );
}
