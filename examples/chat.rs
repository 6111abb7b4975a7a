//! Chat: every message from any connection is broadcast to all connections (including the
//! sender), with the sender's opcode. The broadcast frame is encoded once.
//!
//! `cargo run --release --example chat -- --listen 127.0.0.1:9000` (WebSocket path `/`).

use netsvr_core::{EventKind, Gateway};
use netsvr_examples::{init_logging, parse_args, run};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let args = parse_args()?;
    run("chat", &args, Gateway::builder(), |gateway, event| {
        if let EventKind::Message { kind, payload } = event.kind {
            gateway.broadcast_as(kind, &payload);
        }
    })
    .await
}
