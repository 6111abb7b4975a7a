//! Fan-out enqueue cost through the public API: `Gateway::broadcast` and `Gateway::publish`
//! of a 100-byte payload to N = 1,000 and 10,000 real WebSocket clients.
//!
//! The gateway runs on a 2-worker tokio runtime inside this process. The clients live in a
//! child process (this same bench executable, re-run with `NETSVR_FANOUT_CLIENTS` set): one
//! process holding both ends of 10,000 connections would need more than the 20,000 file
//! descriptors allowed. Each client is a raw tokio `TcpStream` that did the upgrade by hand
//! and a task that reads and discards, counting bytes.
//!
//! What is timed is the calls alone (encode once, resolve recipients, push a shared frame to
//! each outbox); the connection tasks keep writing to their sockets on the runtime's workers
//! meanwhile, as they would in production. After each timed batch the bench waits, untimed,
//! until the clients have received every queued frame, so queues never build up from one
//! batch to the next. Throughput is `Elements(N)`: criterion's elements/s is recipients/s,
//! and its inverse the cost per recipient.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use netsvr_core::{DownstreamOpcode, Gateway, GatewayConfig, NoopSink};

/// Set in the child: `ADDR PATH N`.
const CLIENTS_ENV: &str = "NETSVR_FANOUT_CLIENTS";
const PATH: &str = "/";
const PAYLOAD: [u8; 100] = [0; 100];
/// A 100-byte binary frame from the server: 2 header bytes and the payload.
const FRAME_LEN: u64 = 2 + PAYLOAD.len() as u64;
const TOPIC: &str = "t";

/// The child side: connect, report `ready`, then answer each stdin line with the number of
/// bytes received so far. Exits when stdin closes (the bench is gone).
fn hold_clients(spec: &str) {
    let mut parts = spec.split(' ');
    let (Some(addr), Some(path), Some(n)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("{CLIENTS_ENV}={spec:?}: want `ADDR PATH N`");
    };
    let addr: SocketAddr = addr.parse().unwrap();
    let n: usize = n.parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let received = Arc::new(AtomicU64::new(0));
    runtime.block_on(async {
        if let Err(e) = support::connect_many(addr, path, n, &received).await {
            eprintln!("fanout clients: {e}");
            std::process::exit(1);
        }
    });
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready").unwrap();
        out.flush().unwrap();
    }
    let counter = received.clone();
    std::thread::spawn(move || {
        let mut out = std::io::stdout().lock();
        for line in std::io::stdin().lock().lines() {
            if line.is_err() {
                break;
            }
            let ok =
                writeln!(out, "{}", counter.load(Ordering::Relaxed)).and_then(|()| out.flush());
            if ok.is_err() {
                break;
            }
        }
        std::process::exit(0);
    });
    runtime.block_on(std::future::pending::<()>());
}

/// The clients' process, seen from the bench. Killed on drop.
struct Clients {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Clients {
    fn spawn(addr: SocketAddr, n: usize) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CLIENTS_ENV, format!("{addr} {PATH} {n}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut clients = Self {
            child,
            stdin,
            stdout,
        };
        let mut line = String::new();
        clients.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "client process failed to connect");
        clients
    }

    fn received(&mut self) -> u64 {
        writeln!(self.stdin, "?").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().parse().unwrap()
    }

    fn wait_for(&mut self, bytes: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.received() < bytes {
            assert!(Instant::now() < deadline, "clients stopped receiving");
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gateway with `n` clients connected, all subscribed to [`TOPIC`].
struct Rig {
    runtime: tokio::runtime::Runtime,
    gateway: Gateway,
    clients: Option<Clients>,
    n: usize,
    /// Bytes the clients must have received once every queued frame is delivered.
    expected: u64,
    /// Recipients a call did not queue to (full queue); should stay 0.
    missed: u64,
}

impl Rig {
    fn new(n: usize) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut config = GatewayConfig::default();
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.path = PATH.to_owned();
        config.downstream_opcode = DownstreamOpcode::Binary;
        config.outbound_queue_capacity = 16 * 1024;
        config.heartbeat_interval = Duration::from_secs(3600);
        config.shutdown_timeout = Duration::from_secs(2);
        let (gateway, serve) = Gateway::builder()
            .config(config)
            .sink(NoopSink)
            .build()
            .unwrap();
        runtime.spawn(serve);
        let started = Instant::now();
        let clients = Clients::spawn(gateway.local_addr(), n);
        while gateway.connection_count() < n {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "clients missing"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        for id in gateway.uniq_ids() {
            assert!(gateway.subscribe(&id, &[TOPIC], None));
        }
        eprintln!("fanout: {n} clients connected in {:?}", started.elapsed());
        Self {
            runtime,
            gateway,
            clients: Some(clients),
            n,
            expected: 0,
            missed: 0,
        }
    }

    /// Times `iters` calls of `send`, then waits (untimed) until all is delivered.
    fn run(&mut self, iters: u64, send: impl Fn(&Gateway) -> usize) -> Duration {
        let mut queued = 0_u64;
        let started = Instant::now();
        for _ in 0..iters {
            queued += send(&self.gateway) as u64;
        }
        let took = started.elapsed();
        self.missed += iters * self.n as u64 - queued;
        self.expected += queued * FRAME_LEN;
        if let Some(clients) = self.clients.as_mut() {
            clients.wait_for(self.expected);
        }
        took
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if self.missed > 0 {
            eprintln!(
                "fanout: {} of {} clients: {} deliveries not queued (full queue)",
                self.n, self.n, self.missed
            );
        }
        drop(self.clients.take());
        let gateway = self.gateway.clone();
        self.runtime.block_on(gateway.shutdown());
    }
}

fn bench_fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for n in [1_000_usize, 10_000] {
        let mut rig = Rig::new(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("broadcast_100b", n), |b| {
            b.iter_custom(|iters| rig.run(iters, |g| g.broadcast(black_box(&PAYLOAD))));
        });
        group.bench_function(BenchmarkId::new("publish_100b", n), |b| {
            b.iter_custom(|iters| rig.run(iters, |g| g.publish(&[TOPIC], black_box(&PAYLOAD))));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_fanout);

fn main() {
    if let Ok(spec) = std::env::var(CLIENTS_ENV) {
        hold_clients(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
