//! A business process for a netsvr gateway: connects to its worker port (events) and its
//! task port (commands), registers for every event, logs opens and closes to stderr, and
//! echoes each client message back to its sender with a `SingleCast`.
//!
//! ```text
//! cargo run --release -p netsvr-bin              # the gateway: ws://127.0.0.1:6060/netsvr,
//!                                                # worker port 6061, task port 6062
//! cargo run --release --example worker_client    # this process, on those defaults
//! cargo run --release --example worker_client -- --worker 127.0.0.1:6061 --task 127.0.0.1:6062
//! ```
//!
//! Then connect any WebSocket client to `ws://127.0.0.1:6060/netsvr` and type: each message
//! comes back to the connection that sent it. Ctrl-C unregisters and stops.

use std::net::SocketAddr;

use netsvr_protocol::client::{ClientConfig, Event, GatewayAddr, TaskClient, WorkerClient};
use netsvr_protocol::{ToGateway, pb};

const USAGE: &str = "usage: worker_client [--worker ADDR] [--task ADDR]";

/// `--worker ADDR` (default 127.0.0.1:6061) and `--task ADDR` (default 127.0.0.1:6062).
fn parse_args() -> Result<GatewayAddr, String> {
    let parse = |flag: &str, value: &str| {
        value
            .parse::<SocketAddr>()
            .map_err(|e| format!("{flag} {value}: {e}\n{USAGE}"))
    };
    let mut worker = parse("--worker", "127.0.0.1:6061")?;
    let mut task = parse("--task", "127.0.0.1:6062")?;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--worker" => worker = parse(&flag, &value)?,
            "--task" => task = parse(&flag, &value)?,
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(GatewayAddr::new(worker, task))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    netsvr_examples::init_logging();
    let gateway = parse_args()?;
    let gateways = vec![gateway];
    // Both clients reconnect on their own and send heartbeats while idle.
    let task = TaskClient::connect(gateways.clone(), ClientConfig::default()).await?;
    let mut worker = WorkerClient::connect(gateways, ClientConfig::default()).await?;
    loop {
        let ev = tokio::select! {
            ev = worker.recv() => match ev {
                Some(ev) => ev,
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        };
        let from = worker
            .gateways()
            .get(ev.gateway)
            .map_or_else(|| "?".to_owned(), ToString::to_string);
        match ev.event {
            Event::Registered { conn_id } => eprintln!("registered on {from} (connId {conn_id})"),
            Event::Disconnected { reason } => {
                eprintln!("lost {from}: {reason}; reconnecting");
            }
            Event::Open(open) => eprintln!(
                "open {} from {} query {:?}",
                open.uniq_id, open.remote_addr, open.raw_query
            ),
            Event::Close(close) => eprintln!(
                "close {} customer {:?} session {:?}",
                close.uniq_id, close.customer_id, close.session
            ),
            Event::Message(msg) => {
                let echo = pb::SingleCast {
                    uniq_id: msg.uniq_id,
                    data: msg.data,
                };
                if let Err(e) = task.send(ToGateway::SingleCast(echo)).await {
                    eprintln!("echo failed: {e}");
                }
            }
            other => eprintln!("{other:?}"),
        }
    }
    worker.close().await;
    Ok(())
}
