//! Table operations under contention through the public API, on a gateway with 1,000 real
//! WebSocket clients (the tables themselves are crate-private).
//!
//! Each client is bound to its own customer and subscribed to one of 10 topics of 100
//! members. Measured, from 1 thread and from 2 threads (`std::thread::scope`, each thread on
//! its own half of the connections) calling the synchronous `Gateway` methods at once:
//! - `is_online`: a connection-table lookup under a shard read lock;
//! - `subscribe_unsubscribe`: subscribe to one shared topic, then unsubscribe (2 ops; every
//!   thread writes the same topic shard, the contended case);
//! - `update_info`: set the session and rebind the customer, alternating between two shared
//!   customers (connection lock, two customer-table writes);
//! - `topic_members`: the 100 ids of a topic.
//!
//! Throughput is in operations: criterion's elements/s is total ops/s across the threads.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use netsvr_core::{Gateway, GatewayConfig, InfoUpdate, NoopSink, UniqId};

const CLIENTS: usize = 1_000;
const TOPICS: usize = 10;
const PATH: &str = "/";

struct Rig {
    runtime: tokio::runtime::Runtime,
    gateway: Gateway,
    ids: Vec<UniqId>,
}

impl Rig {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut config = GatewayConfig::default();
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.path = PATH.to_owned();
        config.heartbeat_interval = Duration::from_secs(3600);
        config.shutdown_timeout = Duration::from_secs(2);
        let (gateway, serve) = Gateway::builder()
            .config(config)
            .sink(NoopSink)
            .build()
            .unwrap();
        runtime.spawn(serve);
        let addr = gateway.local_addr();
        let received = Arc::new(AtomicU64::new(0));
        runtime
            .block_on(support::connect_many(addr, PATH, CLIENTS, &received))
            .unwrap();
        let started = Instant::now();
        while gateway.connection_count() < CLIENTS {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "clients missing"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let ids = gateway.uniq_ids();
        for (i, id) in ids.iter().enumerate() {
            let update = InfoUpdate::new()
                .customer(format!("customer-{i}"))
                .topics([format!("room-{}", i % TOPICS)]);
            assert!(gateway.update_info(id, update));
        }
        Self {
            runtime,
            gateway,
            ids,
        }
    }

    /// Runs `op(gateway, id, i, round)` `iters` times on each of `threads` threads, each
    /// thread cycling over its own share of the connections (`round` counts the cycles);
    /// returns the wall time.
    fn run(
        &self,
        threads: usize,
        iters: u64,
        op: impl Fn(&Gateway, &UniqId, u64, u64) + Sync,
    ) -> Duration {
        let work = |t: usize| {
            let mine: Vec<UniqId> = self.ids.iter().skip(t).step_by(threads).copied().collect();
            let (mut at, mut round) = (0, 0);
            for i in 0..iters {
                op(&self.gateway, &mine[at], i, round);
                at += 1;
                if at == mine.len() {
                    at = 0;
                    round += 1;
                }
            }
        };
        let started = Instant::now();
        if threads == 1 {
            work(0);
        } else {
            std::thread::scope(|s| {
                for t in 0..threads {
                    s.spawn(move || work(t));
                }
            });
        }
        started.elapsed()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let gateway = self.gateway.clone();
        self.runtime.block_on(gateway.shutdown());
    }
}

fn bench_tables(c: &mut Criterion) {
    let rig = Rig::new();
    let mut group = c.benchmark_group("tables");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for threads in [1_usize, 2] {
        let id = |name: &str| BenchmarkId::new(name, format!("{threads}t"));
        let ops = threads as u64;

        group.throughput(Throughput::Elements(ops));
        group.bench_function(id("is_online"), |b| {
            b.iter_custom(|iters| {
                rig.run(threads, iters, |g, id, _, _| {
                    black_box(g.is_online(black_box(id)));
                })
            });
        });

        group.throughput(Throughput::Elements(2 * ops));
        group.bench_function(id("subscribe_unsubscribe"), |b| {
            b.iter_custom(|iters| {
                rig.run(threads, iters, |g, id, _, _| {
                    g.subscribe(id, &["hot"], None);
                    g.unsubscribe(id, &["hot"], None);
                })
            });
        });

        group.throughput(Throughput::Elements(ops));
        group.bench_function(id("update_info"), |b| {
            b.iter_custom(|iters| {
                rig.run(threads, iters, |g, id, _, round| {
                    // Alternate per round so every call changes something.
                    let (customer, session) = if round % 2 == 0 {
                        ("even", "s0")
                    } else {
                        ("odd", "s1")
                    };
                    g.update_info(id, InfoUpdate::new().customer(customer).session(session));
                })
            });
        });

        group.bench_function(id("topic_members"), |b| {
            b.iter_custom(|iters| {
                rig.run(threads, iters, |g, _, i, _| {
                    let topic =
                        ["room-0", "room-1", "room-2", "room-3", "room-4"][(i % 5) as usize];
                    black_box(g.topic_members(topic));
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_tables);
criterion_main!(benches);
