//! netsvr's `Metrics` answer: items 1–22, each with its count, mean rate and 1/5/15-minute
//! exponentially weighted rates (ticked every 5 s, as go-metrics meters are).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use netsvr_protocol::pb;
use parking_lot::Mutex;

use super::dispatch::Registry;
use crate::gateway::Gateway;

/// How often the rates are updated.
pub(crate) const TICK: Duration = Duration::from_secs(5);
/// Number of netsvr metric items.
const ITEMS: usize = 22;

#[derive(Debug, Clone, Copy, Default)]
struct Ewma {
    last: u64,
    rates: [f64; 3],
    started: bool,
}

/// The gateway's counters seen as netsvr's metric items.
pub(crate) struct Meters {
    gateway: Gateway,
    registry: Arc<Registry>,
    started: Instant,
    state: Mutex<[Ewma; ITEMS]>,
}

impl std::fmt::Debug for Meters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meters").finish_non_exhaustive()
    }
}

impl Meters {
    pub(crate) fn new(gateway: Gateway, registry: Arc<Registry>) -> Self {
        Self {
            gateway,
            registry,
            started: Instant::now(),
            state: Mutex::new([Ewma::default(); ITEMS]),
        }
    }

    /// Counts of items 1..=22 (index 0 is item 1). Items 14–22 belong to the Redis, HTTP
    /// and AMQP sinks, which report zero when they are not configured.
    fn counts(&self) -> [u64; ITEMS] {
        let s = self.gateway.stats();
        let w = &self.registry.counters;
        let mut c = [0u64; ITEMS];
        c[0] = s.opened;
        c[1] = s.closed;
        c[2] = s.heartbeats;
        c[3] = w.forwarded.load(Ordering::Relaxed);
        c[4] = w.forwarded_bytes.load(Ordering::Relaxed);
        c[5] = s.messages_out;
        c[6] = s.bytes_out;
        c[7] = s.refused_rate_limit;
        c[8] = s.drops_rate_global;
        c[9] = w.failed.load(Ordering::Relaxed);
        c[10] = s.drops_slow_consumer;
        c[11] = s.drops_slow_consumer_bytes;
        c[12] = s.drops_rate_conn;
        // Items 14–22: Redis, HTTP and AMQP sinks — count and failures (bytes are not
        // tracked by the buffered sinks and stay 0).
        for status in self.gateway.sink_status() {
            let base = match status.name.as_str() {
                "redis" => 13,
                "http" => 16,
                "amqp" => 19,
                _ => continue,
            };
            c[base] = status.delivered;
            c[base + 2] = status.dropped;
        }
        c
    }

    /// Folds the last `TICK` into the moving rates.
    pub(crate) fn tick(&self) {
        let counts = self.counts();
        let secs = TICK.as_secs_f64();
        let alphas = [1.0, 5.0, 15.0].map(|minutes: f64| 1.0 - (-secs / 60.0 / minutes).exp());
        let mut state = self.state.lock();
        for (ewma, count) in state.iter_mut().zip(counts) {
            let instant = count.saturating_sub(ewma.last) as f64 / secs;
            ewma.last = count;
            for (rate, alpha) in ewma.rates.iter_mut().zip(alphas) {
                if ewma.started {
                    *rate += alpha * (instant - *rate);
                } else {
                    *rate = instant;
                }
            }
            ewma.started = true;
        }
    }

    /// The `MetricsResp` for now.
    pub(crate) fn response(&self) -> pb::MetricsResp {
        let counts = self.counts();
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-9);
        let state = *self.state.lock();
        let items: BTreeMap<i32, pb::MetricsRespItem> = (1i32..)
            .zip(counts.iter().zip(state.iter()))
            .map(|(item, (count, ewma))| {
                let [rate1, rate5, rate15] = ewma.rates.map(|r| r as f32);
                (
                    item,
                    pb::MetricsRespItem {
                        item,
                        count: i64::try_from(*count).unwrap_or(i64::MAX),
                        mean_rate: (*count as f64 / elapsed) as f32,
                        rate1,
                        rate5,
                        rate15,
                    },
                )
            })
            .collect();
        pb::MetricsResp { items }
    }
}
