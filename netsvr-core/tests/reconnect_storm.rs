//! Reconnect storm: thousands of clients drop at once and reconnect at once. Every reconnect
//! is upgraded (101, then an Open event), every old connection's Close arrives exactly once,
//! the connection count comes back to the number of clients, and no accept stalls: the
//! worst and p99 accept delay (connect() to the 101 head) are printed, and the worst is held
//! only to a loose bound because the machine running the test may be busy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{TestGateway, test_config};
use futures_util::StreamExt;
use netsvr_core::{EventKind, UniqId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Clients in the storm (fewer when the descriptor limit cannot hold them).
const CLIENTS: usize = 3000;
/// Descriptors each client costs at the peak: old and new socket, both ends.
const FDS_PER_CLIENT: u64 = 4;
/// Descriptors kept free for the runtime, the test harness and the like.
const FD_RESERVE: u64 = 512;
/// Fewest clients for which the storm still means something (a hard descriptor limit of
/// 1024 leaves 128; the test then runs scaled down and says so).
const MIN_CLIENTS: usize = 100;
/// Connection attempts in flight while filling the gateway before the storm.
const FILL_CONCURRENCY: usize = 64;
/// Longest any single upgrade may take before the test gives up on it.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(20);
/// Loose sanity bound on the worst accept delay (SYN retransmits start at 1 s; a loaded
/// 2-core machine can lose a couple).
const WORST_BOUND: Duration = Duration::from_secs(5);
/// How long every Open and Close of the storm may take to arrive.
const EVENTS_LIMIT: Duration = Duration::from_secs(60);
/// Quiet time after the expected events in which no further event may arrive.
const QUIET: Duration = Duration::from_millis(500);

/// The soft `RLIMIT_NOFILE`, raised to the hard limit first when `prlimit` can do it.
fn open_file_limit() -> u64 {
    let read = || -> Option<(u64, u64)> {
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        let mut nums = line.split_whitespace().filter_map(|w| {
            w.parse::<u64>()
                .ok()
                .or((w == "unlimited").then_some(1 << 20))
        });
        Some((nums.next()?, nums.next()?))
    };
    let Some((soft, hard)) = read() else {
        return 1024;
    };
    if soft < hard {
        let _ = std::process::Command::new("prlimit")
            .arg(format!("--pid={}", std::process::id()))
            .arg(format!("--nofile={hard}:{hard}"))
            .status();
    }
    read().map_or(soft, |(soft, _)| soft)
}

/// Opens a TCP connection, sends the upgrade request and reads the response head; returns
/// the stream and the time from connect() to the complete 101 head.
async fn upgrade(addr: SocketAddr) -> Result<(TcpStream, Duration), String> {
    let started = Instant::now();
    let attempt = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let request = "GET /netsvr HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Version: 13\r\n\r\n";
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut head = Vec::with_capacity(256);
        let mut buf = [0u8; 512];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream
                .read(&mut buf)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 || head.len() > 4096 {
                return Err(format!("no head: {:?}", String::from_utf8_lossy(&head)));
            }
            head.extend_from_slice(&buf[..n]);
        }
        if !head.starts_with(b"HTTP/1.1 101") {
            return Err(format!("not 101: {:?}", String::from_utf8_lossy(&head)));
        }
        Ok(stream)
    };
    match tokio::time::timeout(ATTEMPT_LIMIT, attempt).await {
        Ok(Ok(stream)) => Ok((stream, started.elapsed())),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("no 101 within {ATTEMPT_LIMIT:?}")),
    }
}

/// The `q` quantile of sorted durations.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_storm_accepts_everyone_and_closes_each_old_connection_once() {
    let limit = open_file_limit();
    let clients = CLIENTS.min((limit.saturating_sub(FD_RESERVE) / FDS_PER_CLIENT) as usize);
    assert!(
        clients >= MIN_CLIENTS,
        "RLIMIT_NOFILE {limit} holds only {clients} clients; raise `ulimit -n`"
    );
    if clients < CLIENTS {
        println!("reconnect storm scaled down to {clients} clients by RLIMIT_NOFILE {limit}");
    }
    let mut gw = TestGateway::start(test_config()).await;
    let addr = gw.gateway.local_addr();

    // Fill: `clients` held connections, each with its Open event.
    let filled: Vec<_> = futures_util::stream::iter(0..clients)
        .map(|_| upgrade(addr))
        .buffer_unordered(FILL_CONCURRENCY)
        .collect()
        .await;
    let old: Vec<TcpStream> = filled
        .into_iter()
        .map(|r| r.expect("fill connection").0)
        .collect();
    let mut old_ids = HashSet::new();
    while old_ids.len() < clients {
        let event = gw.next_event().await;
        assert!(matches!(event.kind, EventKind::Open), "{event:?}");
        assert!(old_ids.insert(event.uniq_id()), "Open twice: {event:?}");
    }
    assert_eq!(gw.gateway.connection_count(), clients);

    // Storm: every reconnect task waits for the signal, so all start at the same moment.
    let (go, ready) = watch::channel(false);
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let mut ready = ready.clone();
            tokio::spawn(async move {
                ready.wait_for(|g| *g).await.expect("signal");
                upgrade(addr).await
            })
        })
        .collect();
    drop(ready);
    tokio::task::yield_now().await;
    let storm = Instant::now();
    drop(old); // every old client goes away without a close frame
    go.send_replace(true);
    let mut delays = Vec::with_capacity(clients);
    let mut new_clients = Vec::with_capacity(clients);
    let mut failures = Vec::new();
    for task in tasks {
        match task.await.expect("reconnect task") {
            Ok((stream, delay)) => {
                delays.push(delay);
                new_clients.push(stream);
            }
            Err(e) => failures.push(e),
        }
    }
    let storm_secs = storm.elapsed().as_secs_f64();
    delays.sort_unstable();
    let (worst, p99, p50) = (
        quantile(&delays, 1.0),
        quantile(&delays, 0.99),
        quantile(&delays, 0.5),
    );
    println!(
        "reconnect storm: {clients} clients, {} reconnected in {storm_secs:.3} s; accept delay \
         (connect() to 101) worst {:.1} ms, p99 {:.1} ms, p50 {:.1} ms; {} failed",
        delays.len(),
        worst.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        p50.as_secs_f64() * 1e3,
        failures.len(),
    );
    assert!(
        failures.is_empty(),
        "{} failed, first: {}",
        failures.len(),
        failures[0]
    );

    // Every old connection closes exactly once; every new client gets exactly one Open.
    let mut closes: HashMap<UniqId, usize> = HashMap::new();
    let mut opens: HashMap<SocketAddr, UniqId> = HashMap::new();
    let deadline = tokio::time::Instant::now() + EVENTS_LIMIT;
    while closes.len() < clients || opens.len() < clients {
        let event = tokio::time::timeout_at(deadline, gw.events.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "after {EVENTS_LIMIT:?}: {} of {clients} Closes, {} Opens",
                    closes.len(),
                    opens.len()
                )
            })
            .expect("event channel closed");
        let id = event.uniq_id();
        match event.kind {
            EventKind::Close { .. } => {
                assert!(
                    old_ids.contains(&id),
                    "Close of a new connection: {event:?}"
                );
                *closes.entry(id).or_default() += 1;
            }
            EventKind::Open => {
                assert!(!old_ids.contains(&id), "old uniqId reused: {event:?}");
                let previous = opens.insert(event.conn.meta.remote_addr, id);
                assert!(previous.is_none(), "two Opens from one client: {event:?}");
            }
            _ => panic!("unexpected {event:?}"),
        }
        assert!(closes.values().all(|&n| n == 1), "Close twice: {event:?}");
    }
    if let Ok(Some(extra)) = tokio::time::timeout(QUIET, gw.events.recv()).await {
        panic!("an event after every Open and Close arrived: {extra:?}");
    }
    for client in &new_clients {
        let local = client.local_addr().unwrap();
        assert!(opens.contains_key(&local), "no Open for client {local}");
    }
    common::eventually("the count to settle", || {
        gw.gateway.connection_count() == clients
    })
    .await;
    assert!(old_ids.iter().all(|id| !gw.gateway.is_online(id)));
    assert!(opens.values().all(|id| gw.gateway.is_online(id)));
    assert!(
        worst < WORST_BOUND,
        "worst accept delay {worst:?} over the sanity bound {WORST_BOUND:?}"
    );
}
