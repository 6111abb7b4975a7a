//! A reliable sink for I/O back-ends: a bounded buffer per lane, batches handed to the
//! back-end in order, retries with capped exponential back-off, and every drop counted.
//!
//! Events are spread over lanes by uniqId, so one connection's events stay in order while
//! lanes deliver in parallel. An event is dropped only when its lane's buffer is full; the
//! drop is counted (`netsvr_sink_failed_total{sink}`) and logged at most every 10 s.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::{EventSink, SinkError, SinkStatus};
use crate::event::Event;
use crate::metrics::{
    SINK_DELIVERED_TOTAL, SINK_DELIVERY_SECONDS, SINK_FAILED_TOTAL, SINK_QUEUE_DEPTH,
    SINK_RETRIED_TOTAL,
};

/// A batch the back-end could not finish: the first `delivered` events went out; the rest
/// will be retried, in order.
#[derive(Debug)]
pub struct BatchError {
    /// How many events at the front of the batch were delivered.
    pub delivered: usize,
    /// What went wrong (logged).
    pub error: String,
}

/// Where a [`BufferedSink`] lane delivers. Each lane owns its own back-end value.
#[async_trait]
pub trait Backend: Send + 'static {
    /// Delivers `batch` in order. On error, reports how many from the front went out.
    async fn deliver(&mut self, batch: &[Event]) -> Result<(), BatchError>;
}

/// Settings of a [`BufferedSink`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BufferedConfig {
    /// Name for metrics (`sink` label), logs and status.
    pub name: String,
    /// Events buffered in all (split evenly over lanes) before new ones are dropped.
    pub capacity: usize,
    /// Independent ordered lanes (events of one connection always share a lane).
    pub lanes: usize,
    /// Most events per back-end call.
    pub batch: usize,
    /// First retry delay.
    pub retry_min: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
}

impl BufferedConfig {
    /// Defaults: 65,536 events, 1 lane, batches of 256, retry 100 ms .. 5 s.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            capacity: 65_536,
            lanes: 1,
            batch: 256,
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
        }
    }
}

struct Lane {
    queue: Mutex<VecDeque<Event>>,
    ready: Notify,
}

struct Shared {
    config: BufferedConfig,
    lanes: Vec<Lane>,
    /// Buffered plus in flight.
    pending: AtomicUsize,
    healthy: AtomicBool,
    delivered_total: AtomicU64,
    retried_total: AtomicU64,
    dropped_total: AtomicU64,
    last_drop_log: Mutex<Option<Instant>>,
    hasher: ahash::RandomState,
    delivered: Counter,
    retried: Counter,
    failed: Counter,
    depth: Gauge,
    seconds: Histogram,
}

/// The sink. Cheap to clone; clones share the buffers.
#[derive(Clone)]
pub struct BufferedSink {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BufferedSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferedSink")
            .field("name", &self.shared.config.name)
            .finish_non_exhaustive()
    }
}

impl BufferedSink {
    /// Starts one task per lane (needs a tokio runtime); `backend(lane)` makes each lane's
    /// back-end.
    pub fn start<B: Backend>(config: BufferedConfig, mut backend: impl FnMut(usize) -> B) -> Self {
        let lanes = config.lanes.max(1);
        let label = config.name.clone();
        let shared = Arc::new(Shared {
            lanes: (0..lanes)
                .map(|_| Lane {
                    queue: Mutex::new(VecDeque::new()),
                    ready: Notify::new(),
                })
                .collect(),
            pending: AtomicUsize::new(0),
            healthy: AtomicBool::new(true),
            delivered_total: AtomicU64::new(0),
            retried_total: AtomicU64::new(0),
            dropped_total: AtomicU64::new(0),
            last_drop_log: Mutex::new(None),
            hasher: ahash::RandomState::new(),
            delivered: counter!(SINK_DELIVERED_TOTAL, "sink" => label.clone()),
            retried: counter!(SINK_RETRIED_TOTAL, "sink" => label.clone()),
            failed: counter!(SINK_FAILED_TOTAL, "sink" => label.clone()),
            depth: gauge!(SINK_QUEUE_DEPTH, "sink" => label.clone()),
            seconds: histogram!(SINK_DELIVERY_SECONDS, "sink" => label),
            config,
        });
        for lane in 0..lanes {
            tokio::spawn(run_lane(shared.clone(), lane, backend(lane)));
        }
        Self { shared }
    }

    fn lane_capacity(&self) -> usize {
        (self.shared.config.capacity / self.shared.lanes.len()).max(1)
    }

    fn drop_event(&self) -> Result<(), SinkError> {
        let s = &self.shared;
        s.failed.increment(1);
        let dropped = s.dropped_total.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = s.last_drop_log.lock();
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            *last = Some(Instant::now());
            tracing::warn!(sink = %s.config.name, dropped, "sink buffer full: dropping events");
        }
        Err(SinkError::Full)
    }
}

async fn run_lane<B: Backend>(shared: Arc<Shared>, index: usize, mut backend: B) {
    let lane = &shared.lanes[index];
    let mut batch: Vec<Event> = Vec::new();
    let mut attempt = 0u32;
    loop {
        if batch.is_empty() {
            loop {
                {
                    let mut queue = lane.queue.lock();
                    let n = queue.len().min(shared.config.batch.max(1));
                    batch.extend(queue.drain(..n));
                }
                if !batch.is_empty() {
                    break;
                }
                lane.ready.notified().await;
            }
        }
        let started = Instant::now();
        let result = backend.deliver(&batch).await;
        shared.seconds.record(started.elapsed().as_secs_f64());
        let done = match &result {
            Ok(()) => batch.len(),
            Err(e) => e.delivered.min(batch.len()),
        };
        batch.drain(..done);
        shared.pending.fetch_sub(done, Ordering::AcqRel);
        shared.delivered.increment(done as u64);
        shared
            .delivered_total
            .fetch_add(done as u64, Ordering::Relaxed);
        shared
            .depth
            .set(shared.pending.load(Ordering::Relaxed) as f64);
        match result {
            Ok(()) => {
                attempt = 0;
                shared.healthy.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                shared.healthy.store(false, Ordering::Relaxed);
                shared.retried.increment(batch.len() as u64);
                shared
                    .retried_total
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                let delay = backoff(&shared.config, attempt);
                attempt = attempt.saturating_add(1);
                tracing::warn!(sink = %shared.config.name, error = %e.error, retry_in = ?delay, "delivery failed");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

fn backoff(config: &BufferedConfig, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.min(16);
    config
        .retry_min
        .saturating_mul(factor)
        .min(config.retry_max)
}

#[async_trait]
impl EventSink for BufferedSink {
    fn deliver(&self, event: Event) -> Result<(), SinkError> {
        let s = &self.shared;
        let index = (s.hasher.hash_one(event.conn.meta.uniq_id) as usize) % s.lanes.len();
        let lane = &s.lanes[index];
        {
            let mut queue = lane.queue.lock();
            if queue.len() >= self.lane_capacity() {
                drop(queue);
                return self.drop_event();
            }
            // Counted before it can be taken, so `pending` never runs below zero.
            s.pending.fetch_add(1, Ordering::AcqRel);
            queue.push_back(event);
        }
        lane.ready.notify_one();
        Ok(())
    }

    async fn flush(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.shared.pending.load(Ordering::Acquire) > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    fn name(&self) -> &str {
        &self.shared.config.name
    }

    fn report(&self, out: &mut Vec<SinkStatus>) {
        let s = &self.shared;
        out.push(SinkStatus {
            name: s.config.name.clone(),
            healthy: s.healthy.load(Ordering::Relaxed),
            queued: s.pending.load(Ordering::Relaxed),
            capacity: s.config.capacity,
            delivered: s.delivered_total.load(Ordering::Relaxed),
            retried: s.retried_total.load(Ordering::Relaxed),
            dropped: s.dropped_total.load(Ordering::Relaxed),
        });
    }
}

#[cfg(test)]
mod tests;
