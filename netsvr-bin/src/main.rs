//! The `netsvr` binary: runs the gateway. Until the config work lands it runs on built-in
//! defaults: client WebSocket `127.0.0.1:6060` path `/netsvr`, worker port `127.0.0.1:6061`,
//! task port `127.0.0.1:6062`.

use netsvr_core::Gateway;
use netsvr_core::worker::{WorkerConfig, WorkerPorts};
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
    let ports = WorkerPorts::bind(WorkerConfig::default())?;
    let (gateway, serve) = Gateway::builder()
        .node_addr(ports.node_addr())
        .sink(ports.sink())
        .build()?;
    tracing::info!(
        websocket = %gateway.local_addr(),
        path = %gateway.config().path,
        worker = %ports.worker_addr()?,
        task = %ports.task_addr()?,
        "netsvr listening"
    );
    let serving = tokio::spawn(serve);
    let business = tokio::spawn(ports.serve(gateway.clone()));
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("draining");
    gateway.shutdown().await;
    serving.await??;
    business.await??;
    Ok(())
}
