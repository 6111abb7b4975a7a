//! permessage-deflate against a client library that is not ours: Python's `websockets`
//! (tests/python/deflate_client.py) negotiates the extension with its default offer, sends
//! compressed messages and reads the gateway's compressed echoes.
//!
//! Needs python3 with `websockets` (`pip install websockets`). With `CI` set a missing one
//! fails the test; otherwise the test is skipped with a printed reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, OnceLock};

use netsvr_core::{EventKind, FnSink, Gateway, WeakGateway};

use common::test_config;

/// `Err(reason)` when python3 or its `websockets` package is missing.
fn python_ready() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import websockets.sync.client"])
        .output()
        .map_err(|e| format!("python3 could not be run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err("python3 has no `websockets` package (pip install websockets)".to_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_negotiates_and_round_trips_compressed_messages() {
    if let Err(reason) = python_ready() {
        assert!(std::env::var_os("CI").is_none(), "CI is set and {reason}");
        println!(
            "SKIPPED python_websockets_negotiates_and_round_trips_compressed_messages: {reason}"
        );
        return;
    }
    // An echo: every message goes back to its sender with its own opcode.
    let slot: Arc<OnceLock<WeakGateway>> = Arc::default();
    let sink = FnSink::new({
        let slot = slot.clone();
        move |event| {
            if let (Some(gateway), EventKind::Message { kind, payload }) =
                (slot.get().and_then(WeakGateway::upgrade), event.kind)
            {
                gateway.send_as(&event.conn.meta.uniq_id, kind, &payload);
            }
        }
    });
    let (gateway, serve) = Gateway::builder()
        .config(test_config())
        .sink(sink)
        .build()
        .unwrap();
    slot.set(gateway.downgrade()).unwrap();
    tokio::spawn(serve);
    let url = format!("ws://{}/netsvr", gateway.local_addr());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/deflate_client.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let extensions = found["extensions"].as_str().unwrap();
    assert!(
        extensions.starts_with("permessage-deflate; server_no_context_takeover"),
        "{extensions}"
    );
    assert_eq!(found["plain_extensions"], "", "no offer, no extension");
    // The echoes crossed the wire compressed: ~110 KB of text and 64 KiB of binary went
    // out twice (compressed client, plain client: the text only), in far fewer bytes.
    let text = found["text"].as_u64().unwrap();
    let stats = gateway.stats();
    assert_eq!(stats.messages_in, 4);
    assert!(
        stats.bytes_out < text + text / 10,
        "{} bytes written for {} bytes of echoes",
        stats.bytes_out,
        2 * text + found["binary"].as_u64().unwrap()
    );
}
