//! Cross-node delivery rate through a cluster broker: two gateway nodes in this process
//! share the machine's Redis (or NATS); clients on node A read, node C sends (through its
//! `Gateway` handle, as embedded code or the task port would). Reports commands carried
//! across nodes per second and client deliveries per second, for single sends and for
//! broadcasts.
//!
//! `cargo run --release -p netsvr-benches --bin cluster-rate -- [redis://HOST:PORT | nats://HOST:PORT]`
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use netsvr_core::cluster::{Broker, ClusterConfig};
use netsvr_core::nats_broker::{NatsBroker, NatsBrokerConfig};
use netsvr_core::redis_broker::{RedisBroker, RedisBrokerConfig};
use netsvr_core::{ChannelSink, EventKind, EventReceiver, Gateway, GatewayConfig, UniqId};

const SENDS: u64 = 200_000;
const SEND_CLIENTS: usize = 50;
const BROADCASTS: u64 = 2_000;
const BROADCAST_CLIENTS: usize = 200;

async fn node(url: &str, prefix: &str) -> (Gateway, EventReceiver) {
    let mut config = GatewayConfig::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.outbound_queue_capacity = 65_536;
    let broker: Arc<dyn Broker> = if url.starts_with("nats://") {
        let mut config = NatsBrokerConfig::new(url);
        config.prefix = prefix.replace(':', "_");
        Arc::new(NatsBroker::new(&config).unwrap())
    } else {
        let mut config = RedisBrokerConfig::new(url);
        config.prefix = prefix.to_owned();
        Arc::new(RedisBroker::new(&config).unwrap())
    };
    let (sink, events) = ChannelSink::new(100_000);
    let (gateway, serve) = Gateway::builder()
        .config(config)
        .sink(sink)
        .broker(broker, ClusterConfig::default())
        .build()
        .unwrap();
    tokio::spawn(serve);
    (gateway, events)
}

/// Connects `n` clients to `gateway`; each counts the frames it reads into `received`.
async fn clients(
    gateway: &Gateway,
    events: &mut EventReceiver,
    n: usize,
    received: &Arc<AtomicU64>,
) -> Vec<UniqId> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let url = format!("ws://{}/netsvr", gateway.local_addr());
        let (client, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        loop {
            let event = events.recv().await.unwrap();
            if matches!(event.kind, EventKind::Open) {
                ids.push(event.uniq_id());
                break;
            }
        }
        let received = received.clone();
        tokio::spawn(async move {
            let (_, mut read) = client.split();
            while let Some(Ok(_)) = read.next().await {
                received.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    ids
}

async fn wait_for(received: &AtomicU64, target: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while received.load(Ordering::Relaxed) < target {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}

/// Keeps the cross-node buffer below half full, as a paced sender would.
async fn pace(c: &Gateway) {
    let cluster = c.cluster().unwrap();
    while cluster.buffered() > 32_768 {
        tokio::task::yield_now().await;
    }
}

#[tokio::main]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let prefix = format!("netsvr-bench:{}", std::process::id());
    println!("broker: {url}");
    let (a, mut a_events) = node(&url, &prefix).await;
    let (c, _c_events) = node(&url, &prefix).await;
    while a.cluster().unwrap().nodes().len() < 2 || c.cluster().unwrap().nodes().len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let received = Arc::new(AtomicU64::new(0));
    let ids = clients(&a, &mut a_events, SEND_CLIENTS, &received).await;
    let payload = vec![b'x'; 64];
    let started = Instant::now();
    for i in 0..SENDS {
        if i % 1024 == 0 {
            pace(&c).await;
        }
        let target = ids[usize::try_from(i).unwrap() % ids.len()];
        c.send(&target, &payload);
    }
    let ok = wait_for(&received, SENDS).await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "single sends C→A: {} of {SENDS} delivered in {secs:.2} s = {:.0} cross-node commands/s (dropped {})",
        received.load(Ordering::Relaxed),
        received.load(Ordering::Relaxed) as f64 / secs,
        c.cluster().unwrap().dropped()
    );
    assert!(ok, "not all single sends arrived");

    let received = Arc::new(AtomicU64::new(0));
    let _more = clients(&a, &mut a_events, BROADCAST_CLIENTS, &received).await;
    // The first SEND_CLIENTS clients still count into the old counter; only the new ones
    // count here, plus every broadcast reaches the old ones too (not counted).
    let started = Instant::now();
    for i in 0..BROADCASTS {
        if i % 256 == 0 {
            pace(&c).await;
        }
        c.broadcast(&payload);
    }
    let target = BROADCASTS * BROADCAST_CLIENTS as u64;
    let ok = wait_for(&received, target).await;
    let secs = started.elapsed().as_secs_f64();
    let all = BROADCASTS * (BROADCAST_CLIENTS + SEND_CLIENTS) as u64;
    println!(
        "broadcasts C→A: {BROADCASTS} broker messages, {all} deliveries on A in {secs:.2} s = {:.0} deliveries/s ({:.0} broker messages/s)",
        all as f64 / secs,
        BROADCASTS as f64 / secs
    );
    assert!(ok, "not all broadcasts arrived");
    a.shutdown().await;
    c.shutdown().await;
}
