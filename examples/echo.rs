//! Echo: replies to each client message with the same payload and opcode.
//!
//! `cargo run --release --example echo -- --listen 127.0.0.1:9000` (WebSocket path `/`).

use netsvr_core::{EventKind, Gateway};
use netsvr_examples::{init_logging, parse_args, run};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let args = parse_args()?;
    run("echo", &args, Gateway::builder(), |gateway, event| {
        if let EventKind::Message { kind, payload } = event.kind {
            gateway.send_as(&event.conn.meta.uniq_id, kind, &payload);
        }
    })
    .await
}
