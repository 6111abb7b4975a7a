//! The `netsvr` binary: runs the gateway. Until the config work lands it runs on built-in
//! defaults (client WebSocket `127.0.0.1:6060`, path `/netsvr`) and logs events.

use netsvr_core::{ChannelSink, EventKind, Gateway};
use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str = "usage: netsvr [--version]";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("--version" | "-V") => {
            tracing::info!("netsvr {}", env!("CARGO_PKG_VERSION"));
            eprintln!("netsvr {}", env!("CARGO_PKG_VERSION"));
            return std::process::ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("unknown argument `{other}`\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    }
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (sink, mut events) = ChannelSink::new(65_536);
    let (gateway, serve) = Gateway::builder().sink(sink).build()?;
    tracing::info!(addr = %gateway.local_addr(), path = %gateway.config().path, "netsvr listening");
    let serving = tokio::spawn(serve);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match &event.kind {
                EventKind::Open => tracing::debug!(uniq_id = %event.uniq_id(), "open"),
                EventKind::Message { payload, .. } => {
                    tracing::debug!(uniq_id = %event.uniq_id(), bytes = payload.len(), "message");
                }
                EventKind::Close { reason } => {
                    tracing::debug!(uniq_id = %event.uniq_id(), reason = reason.as_str(), "close");
                }
                _ => {}
            }
        }
    });
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("draining");
    gateway.shutdown().await;
    serving.await??;
    Ok(())
}
