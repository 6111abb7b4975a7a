//! Supply chain: `cargo deny check licenses bans sources` passes against `deny.toml` (every
//! license on the allow-list, only crates.io as a source, duplicate versions reported), and
//! `cargo deny check advisories` is attempted against the RustSec database.
//!
//! Needs cargo-deny (`cargo install --locked cargo-deny`). With `CI` set a missing cargo-deny
//! fails the test; otherwise the test is skipped with a printed reason. The advisory database
//! is cloned from GitHub: when that fails, the test says so on the terminal (not captured:
//! `ADVISORIES NOT CHECKED ...`) and passes, unless `NETSVR_REQUIRE_ADVISORIES=1` is set,
//! which CI runners that reach GitHub should set. Advisories found always fail the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Longest a cargo-deny run may take (the advisory database clone included).
const LIMIT: Duration = Duration::from_secs(300);
/// What cargo-deny logs when it cannot clone or fetch the advisory database.
const FETCH_FAILED: &str = "failed to fetch advisory database";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cargo_deny_available() -> bool {
    Command::new("cargo")
        .args(["deny", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `cargo deny check CHECKS...` at the workspace root, killed after [`LIMIT`]; `None`
/// when it had to be killed.
fn cargo_deny(checks: &[&str]) -> Option<Output> {
    let mut child = Command::new("cargo")
        .args(["deny", "--color", "never", "check"])
        .args(checks)
        .current_dir(workspace_root())
        // The nested cargo must not inherit this test's build settings.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cargo deny");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > LIMIT {
            child.kill().unwrap();
            child.wait().unwrap();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(child.wait_with_output().unwrap())
}

/// A run's diagnostics (stderr) and summary line (stdout) together.
fn both(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

/// A line on the terminal even when libtest captures the test's output.
fn tell(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn skip_without_cargo_deny(test: &str) -> bool {
    if cargo_deny_available() {
        return false;
    }
    let reason = "cargo-deny is not installed (cargo install --locked cargo-deny)";
    assert!(std::env::var_os("CI").is_none(), "CI is set and {reason}");
    println!("SKIPPED {test}: {reason}");
    true
}

#[test]
fn licenses_bans_and_sources_pass_deny_toml() {
    if skip_without_cargo_deny("licenses_bans_and_sources_pass_deny_toml") {
        return;
    }
    let out = cargo_deny(&["licenses", "bans", "sources"]).expect("cargo deny timed out");
    let text = both(&out);
    assert!(
        out.status.success(),
        "cargo deny check licenses bans sources failed:\n{text}"
    );
    // Each check ran and passed (duplicate versions are warnings, listed in the output).
    for check in ["licenses ok", "bans ok", "sources ok"] {
        assert!(text.contains(check), "no `{check}` in:\n{text}");
    }
    let duplicates = text.matches("warning[duplicate]").count();
    println!(
        "cargo deny: licenses, bans and sources ok; {duplicates} crates in two or more versions"
    );
}

#[test]
fn advisories_are_checked_where_the_database_is_reachable() {
    if skip_without_cargo_deny("advisories_are_checked_where_the_database_is_reachable") {
        return;
    }
    let required = std::env::var_os("NETSVR_REQUIRE_ADVISORIES").is_some_and(|v| v == "1");
    let Some(out) = cargo_deny(&["advisories"]) else {
        assert!(!required, "cargo deny check advisories took over {LIMIT:?}");
        tell(&format!(
            "ADVISORIES NOT CHECKED: cargo deny check advisories took over {LIMIT:?} \
             (the RustSec database is cloned from GitHub)"
        ));
        return;
    };
    let stderr = both(&out);
    if !out.status.success() && stderr.contains(FETCH_FAILED) {
        let mut lines = stderr.lines();
        let why = lines
            .clone()
            .find(|l| l.contains("fatal:"))
            .or_else(|| lines.find(|l| l.contains(FETCH_FAILED)))
            .unwrap_or(FETCH_FAILED)
            .trim();
        assert!(
            !required,
            "NETSVR_REQUIRE_ADVISORIES=1 and the advisory database is unreachable:\n{stderr}"
        );
        tell(&format!(
            "ADVISORIES NOT CHECKED: RustSec advisory database unreachable ({why}); run \
             `cargo deny check advisories` where github.com is reachable"
        ));
        return;
    }
    assert!(
        out.status.success(),
        "cargo deny check advisories found problems:\n{stderr}"
    );
    assert!(stderr.contains("advisories ok"), "{stderr}");
}
