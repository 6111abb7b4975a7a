//! The worker sink: turns client events into netsvr frames and hands each to one registered
//! business connection's bounded queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use metrics::{Counter, counter};
use netsvr_protocol::cmd::events::{ON_CLOSE, ON_MESSAGE, ON_OPEN};
use tokio::sync::mpsc;

use super::config::Dispatch;
use crate::event::{Event, EventKind};
use crate::metrics::SINK_FAILED_TOTAL;
use crate::sink::{EventSink, SinkError};

/// One business connection as the dispatcher sees it.
#[derive(Debug)]
pub(crate) struct Business {
    pub(crate) id: u64,
    /// Registered event bits; 0 while not registered.
    pub(crate) events: AtomicI32,
    pub(crate) tx: mpsc::Sender<Outgoing>,
}

/// A frame queued to a business connection: an event (counted as delivered once written,
/// as dropped if the connection breaks first) or a response to one of its commands.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) frame: Bytes,
    pub(crate) event: bool,
}

/// Counters behind netsvr's metric items 4, 5 and 10.
#[derive(Debug, Default)]
pub(crate) struct WorkerCounters {
    pub(crate) forwarded: AtomicU64,
    pub(crate) forwarded_bytes: AtomicU64,
    pub(crate) failed: AtomicU64,
}

impl WorkerCounters {
    /// `events` events of `bytes` bytes were written to a business connection.
    pub(crate) fn written(&self, events: u64, bytes: u64) {
        self.forwarded.fetch_add(events, Ordering::Relaxed);
        self.forwarded_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// `events` events were dropped: refused by the sink, or lost with their business
    /// connection.
    pub(crate) fn lost(&self, events: u64) {
        self.failed.fetch_add(events, Ordering::Relaxed);
    }
}

/// The registered business connections.
#[derive(Debug)]
pub(crate) struct Registry {
    members: ArcSwap<Vec<Arc<Business>>>,
    next: AtomicUsize,
    hasher: ahash::RandomState,
    pub(crate) counters: WorkerCounters,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            members: ArcSwap::from_pointee(Vec::new()),
            next: AtomicUsize::new(0),
            hasher: ahash::RandomState::with_seeds(1, 2, 3, 4),
            counters: WorkerCounters::default(),
        }
    }
}

impl Registry {
    pub(crate) fn register(&self, business: &Arc<Business>) {
        self.members.rcu(|members| {
            let mut next: Vec<Arc<Business>> = members.iter().cloned().collect();
            if !next.iter().any(|b| b.id == business.id) {
                next.push(business.clone());
                next.sort_by_key(|b| b.id);
            }
            next
        });
    }

    pub(crate) fn unregister(&self, id: u64) {
        self.members.rcu(|members| {
            members
                .iter()
                .filter(|b| b.id != id)
                .cloned()
                .collect::<Vec<_>>()
        });
    }

    /// The business connection for an event with `bit`, keyed by `key`; `Err(())` when no
    /// business connection is registered at all, `Ok(None)` when none wants this event.
    fn pick(&self, bit: i32, key: &[u8], dispatch: Dispatch) -> Result<Option<Arc<Business>>, ()> {
        let members = self.members.load();
        if members.is_empty() {
            return Err(());
        }
        let wants = |b: &&Arc<Business>| b.events.load(Ordering::Relaxed) & bit != 0;
        let count = members.iter().filter(wants).count();
        if count == 0 {
            return Ok(None);
        }
        let n = match dispatch {
            Dispatch::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed),
            _ => self.hasher.hash_one(key) as usize,
        } % count;
        Ok(members.iter().filter(wants).nth(n).cloned())
    }

    /// Registered business connections.
    pub(crate) fn registered(&self) -> usize {
        self.members.load().len()
    }

    /// Sum of the registered connections' queue bounds.
    fn capacity(&self) -> usize {
        self.members
            .load()
            .iter()
            .map(|b| b.tx.max_capacity())
            .sum()
    }

    /// Frames waiting in every registered connection's queue.
    fn queued(&self) -> usize {
        self.members
            .load()
            .iter()
            .map(|b| b.tx.max_capacity() - b.tx.capacity())
            .sum()
    }
}

/// The `EventSink` of the worker port. Events with no registered business connection, or
/// whose chosen connection's queue is full, are dropped and counted; so are events still
/// queued (or in the batch being written) when their business connection breaks. An event
/// counts as delivered once written to the socket.
#[derive(Debug, Clone)]
pub struct WorkerSink {
    registry: Arc<Registry>,
    dispatch: Dispatch,
    failed: Counter,
}

impl WorkerSink {
    pub(crate) fn new(registry: Arc<Registry>, dispatch: Dispatch) -> Self {
        Self {
            registry,
            dispatch,
            failed: counter!(SINK_FAILED_TOTAL, "sink" => "worker"),
        }
    }

    fn fail(&self, error: SinkError) -> Result<(), SinkError> {
        self.failed.increment(1);
        self.registry.counters.lost(1);
        Err(error)
    }
}

fn bit_of(kind: &EventKind) -> i32 {
    match kind {
        EventKind::Open => ON_OPEN,
        EventKind::Message { .. } => ON_MESSAGE,
        EventKind::Close { .. } => ON_CLOSE,
    }
}

#[async_trait]
impl EventSink for WorkerSink {
    fn deliver(&self, event: Event) -> Result<(), SinkError> {
        let key = event.conn.meta.uniq_id;
        let business = match self
            .registry
            .pick(bit_of(&event.kind), key.as_bytes(), self.dispatch)
        {
            Ok(Some(b)) => b,
            // Registered business processes chose not to receive this kind of event.
            Ok(None) => return Ok(()),
            Err(()) => return self.fail(SinkError::Closed),
        };
        let frame = crate::pbevent::PbEvent::from_event(&event).framed();
        match business.tx.try_send(Outgoing { frame, event: true }) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => self.fail(SinkError::Full),
            Err(mpsc::error::TrySendError::Closed(_)) => self.fail(SinkError::Closed),
        }
    }

    async fn flush(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.registry.queued() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    fn name(&self) -> &str {
        "worker"
    }

    fn report(&self, out: &mut Vec<crate::sink::SinkStatus>) {
        let counters = &self.registry.counters;
        out.push(crate::sink::SinkStatus {
            name: "worker".to_owned(),
            healthy: self.registry.registered() > 0,
            queued: self.registry.queued(),
            capacity: self.registry.capacity(),
            delivered: counters.forwarded.load(Ordering::Relaxed),
            retried: 0,
            dropped: counters.failed.load(Ordering::Relaxed),
        });
    }
}
