//! Slow consumers at scale: 1,000 receivers of a broadcast, 100 of which never read. The
//! readers get every message in order; the non-readers are dropped-and-counted or closed
//! with 1013, per policy; the gateway's memory stays bounded (a queued frame is the shared
//! broadcast, not a copy).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::raw::{self, RawConn};
use common::{TestGateway, WAIT, eventually, test_config};
use netsvr_core::{CloseReason, EventKind, SlowConsumerPolicy};

const READERS: usize = 900;
const STALLED: usize = 100;
/// Broadcasts, sent in rounds the readers catch up with.
const MESSAGES: usize = 320;
const ROUND: usize = 32;
const SIZE: usize = 4096;

/// A client whose receive buffer is small and that never reads, so the gateway's queue for
/// it fills after a few dozen frames.
async fn stalled_client(addr: SocketAddr) -> RawConn {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    raw::upgrade_with(RawConn::from_stream(stream), "/netsvr", "", &[]).await
}

/// Reads `MESSAGES` frames, checking their order; counts each in `got`. Gives the
/// connection back (still open).
async fn read_all(mut conn: RawConn, got: Arc<AtomicUsize>) -> RawConn {
    for i in 0..MESSAGES {
        let frame = conn
            .read_frame()
            .await
            .expect("a reader lost its connection");
        let seq = u32::from_be_bytes(frame.payload[..4].try_into().unwrap());
        assert_eq!(seq as usize, i, "a reader got a message out of order");
        got.fetch_add(1, Ordering::Relaxed);
    }
    conn
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Runs the scenario under `policy`; returns the gateway after every reader is done, and
/// every client (still connected).
async fn run(policy: SlowConsumerPolicy) -> (TestGateway, Vec<RawConn>) {
    let mut config = test_config();
    config.outbound_queue_capacity = 64;
    // Without it, loopback autotuning lets the kernel hold megabytes per stalled client.
    config.socket_send_buffer = 16 * 1024;
    config.slow_consumer = policy;
    config.close_timeout = Duration::from_millis(300);
    let mut gw = TestGateway::start(config).await;
    let addr = gw.gateway.local_addr();
    let mut stalled = Vec::with_capacity(STALLED);
    for _ in 0..STALLED {
        stalled.push(stalled_client(addr).await);
    }
    let got = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::with_capacity(READERS);
    for _ in 0..READERS {
        let conn = raw::upgrade(addr, "/netsvr").await;
        readers.push(tokio::spawn(read_all(conn, got.clone())));
    }
    for _ in 0..READERS + STALLED {
        let event = tokio::time::timeout(WAIT, gw.events.recv()).await.unwrap();
        assert!(matches!(event.map(|e| e.kind), Some(EventKind::Open)));
    }

    // The first round warms the readers' own buffers (this process holds them too), so
    // the RSS growth measured after it is the gateway's queues filling up.
    let mut rss_before = 0;
    let mut payload = vec![b'x'; SIZE];
    for round in 0..MESSAGES / ROUND {
        if round == 1 {
            rss_before = rss_kib();
        }
        for i in round * ROUND..(round + 1) * ROUND {
            payload[..4].copy_from_slice(&u32::try_from(i).unwrap().to_be_bytes());
            gw.gateway
                .broadcast_as(netsvr_core::MessageKind::Binary, &payload);
        }
        let want = READERS * (round + 1) * ROUND;
        eventually("the readers catch up", || {
            got.load(Ordering::Relaxed) >= want
        })
        .await;
    }
    let mut open = stalled;
    for reader in readers {
        open.push(tokio::time::timeout(WAIT, reader).await.unwrap().unwrap());
    }
    let grown_kib = rss_kib().saturating_sub(rss_before);
    // 100 full queues of shared frames cost ~100 × 64 slots × 32 B (0-4 MiB measured with
    // allocator noise); a copy per queued frame would add 100 × 64 × 4 KiB = 25 MiB.
    assert!(
        grown_kib < 12 * 1024,
        "RSS grew {grown_kib} KiB during the broadcasts"
    );
    (gw, open)
}

/// One scenario at a time: RSS is the whole test process's.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_get_everything_while_stalled_clients_are_dropped_for() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (gw, _clients) = run(SlowConsumerPolicy::Drop).await;
    let stats = gw.gateway.stats();
    // Each stalled client holds at most its queue plus what the kernel buffers.
    assert!(
        stats.drops_slow_consumer >= (STALLED * 100) as u64,
        "only {} drops for {STALLED} stalled clients",
        stats.drops_slow_consumer
    );
    assert!(stats.drops_slow_consumer <= (STALLED * MESSAGES) as u64);
    assert_eq!(gw.gateway.connection_count(), READERS + STALLED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_get_everything_while_stalled_clients_are_closed() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (mut gw, _clients) = run(SlowConsumerPolicy::Close).await;
    let mut closed = 0;
    while closed < STALLED {
        let event = tokio::time::timeout(WAIT, gw.events.recv()).await.unwrap();
        match event.map(|e| e.kind) {
            Some(EventKind::Close {
                reason: CloseReason::SlowConsumer,
            }) => closed += 1,
            other => panic!("expected a slow-consumer close, got {other:?}"),
        }
    }
    eventually("only the readers stay", || {
        gw.gateway.connection_count() == READERS
    })
    .await;
}
