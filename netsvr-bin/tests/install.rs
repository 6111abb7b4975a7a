//! `cargo install --path netsvr-bin` gives a working `netsvr`: installed (debug, locked) into a
//! temporary root, it prints its version, validates `netsvr.example.toml`, starts on
//! ephemeral ports, answers `/api/v1/status` on its admin port, and drains on SIGTERM.
//!
//! Ignored by default: the install compiles the whole dependency graph into its own target
//! directory (`target/install`, so it does not disturb the test build and this nested cargo
//! never waits for the outer one's lock): about 5 minutes cold on a busy 2-core machine,
//! 1–2 minutes after a change to the workspace's crates. Run it with
//! `cargo test -p netsvr-bin --test install -- --ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};

/// The workspace root.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The target directory this test's build uses (`CARGO_TARGET_DIR` when set).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                workspace().join(dir)
            }
        })
        .unwrap_or_else(|| workspace().join("target"))
}

/// Runs the installed binary with `args`; returns (success, stdout, stderr).
fn run(bin: &Path, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(bin);
    cmd.args(args).current_dir(workspace());
    for var in common::server::ENV_VARS {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[ignore = "compiles netsvr-bin and its dependencies into target/install: ~5 min cold on 2 cores"]
fn cargo_install_gives_a_working_netsvr() {
    let root = std::env::temp_dir().join(format!("netsvr-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    let out = Command::new(cargo)
        .current_dir(workspace())
        .args(["install", "--path", "netsvr-bin", "--debug", "--locked"])
        .arg("--root")
        .arg(&root)
        .arg("--target-dir")
        .arg(target_dir().join("install"))
        // The nested cargo must not inherit this test's build settings.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    println!("cargo install took {:.1?}", started.elapsed());
    assert!(
        out.status.success(),
        "cargo install --path netsvr-bin failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = root.join("bin/netsvr");
    assert!(bin.is_file(), "{} is missing", bin.display());

    let (ok, stdout, stderr) = run(&bin, &["--version"]);
    assert!(ok, "--version failed: {stderr}");
    assert_eq!(stdout, format!("netsvr {}\n", env!("CARGO_PKG_VERSION")));

    let (ok, stdout, stderr) = run(&bin, &["--check-config", "netsvr.example.toml"]);
    assert!(ok, "--check-config netsvr.example.toml failed: {stderr}");
    for section in ["[gateway]", "[worker]", "[admin]", "[log]"] {
        assert!(stdout.contains(section), "no {section} in:\n{stdout}");
    }
    let (ok, _, stderr) = run(&bin, &["--check-config", "no-such-file.toml"]);
    assert!(!ok, "a missing file was accepted");
    assert!(stderr.contains("no-such-file.toml"), "{stderr}");

    serve(&bin);
    let _ = std::fs::remove_dir_all(&root);
}

/// Starts `bin` on port 0 everywhere, reads `/api/v1/status` from its admin port, and stops
/// it with SIGTERM.
fn serve(bin: &Path) {
    let config = common::temp_file(
        "install.toml",
        &common::port_zero_config("[log]\nformat = \"json\"\n"),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg("--config").arg(&config);
        for var in common::server::ENV_VARS {
            cmd.env_remove(var);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let listening = tokio::time::timeout(Duration::from_secs(15), async {
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if json["fields"]["message"] == "netsvr listening" {
                    return Some(json["fields"].clone());
                }
            }
            None
        })
        .await;
        let fields = listening
            .ok()
            .flatten()
            .expect("the installed netsvr logged no `netsvr listening` line");
        let admin = fields["admin"].as_str().unwrap().parse().unwrap();
        let status = common::status(admin, None).await;
        assert_eq!(status["version"], env!("CARGO_PKG_VERSION"), "{status}");
        assert_eq!(status["shutting_down"], false, "{status}");
        let pid = child.id().unwrap().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        // Drain the log so the child never blocks on a full pipe while it stops.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("netsvr did not stop on SIGTERM")
            .unwrap();
        assert!(exit.success(), "netsvr exited with {exit}");
    });
}
