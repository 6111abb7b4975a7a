//! Chat: every message from any connection is broadcast to all connections (including the
//! sender), with the sender's opcode. The broadcast frame is encoded once.
//!
//! `cargo run --release --example chat -- --listen 127.0.0.1:9000` (WebSocket path `/`).

use netsvr_core::{ChannelSink, EventKind, Gateway};
use netsvr_examples::{config, init_logging, parse_args};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let args = parse_args()?;
    let (sink, mut events) = ChannelSink::new(65_536);
    let (gateway, serve) = Gateway::builder()
        .config(config(&args))
        .sink(sink)
        .build()?;
    eprintln!("chat listening on ws://{}/", gateway.local_addr());
    let server = tokio::spawn(serve);
    let chat = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(256);
        while events.recv_many(&mut batch, 256).await > 0 {
            for event in batch.drain(..) {
                if let EventKind::Message { kind, payload } = event.kind {
                    gateway.broadcast_as(kind, &payload);
                }
            }
        }
    });
    tokio::select! {
        result = server => result??,
        _ = chat => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
