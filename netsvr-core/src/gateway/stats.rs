//! Gateway-wide counters behind `Gateway::stats()`, independent of any metrics recorder.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::Gateway;

/// Plain atomics bumped on the hot paths.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) opened: AtomicU64,
    pub(crate) closed: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) refused_rate_limit: AtomicU64,
    pub(crate) messages_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) heartbeats: AtomicU64,
    pub(crate) messages_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) drops_rate_global: AtomicU64,
    pub(crate) drops_rate_conn: AtomicU64,
    pub(crate) drops_slow_consumer: AtomicU64,
    pub(crate) drops_slow_consumer_bytes: AtomicU64,
    pub(crate) drops_sink: AtomicU64,
    /// Connections open now that negotiated permessage-deflate.
    pub(crate) deflate_connections: AtomicU64,
}

/// A moment's view of the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Connections open now.
    pub connections: usize,
    /// Distinct customers with at least one connection.
    pub customers: usize,
    /// Topics with at least one subscriber.
    pub topics: usize,
    /// Connections admitted since start.
    pub opened: u64,
    /// Connections closed since start.
    pub closed: u64,
    /// Handshakes refused since start.
    pub refused: u64,
    /// Of those, refused by the open-rate limit.
    pub refused_rate_limit: u64,
    /// Data messages received (heartbeats excluded).
    pub messages_in: u64,
    /// Payload bytes received.
    pub bytes_in: u64,
    /// Heartbeats received (literal or ping).
    pub heartbeats: u64,
    /// Frames queued to clients.
    pub messages_out: u64,
    /// Bytes written to client sockets.
    pub bytes_out: u64,
    /// Messages dropped by the rate limiter (both limits).
    pub drops_rate_limited: u64,
    /// Of those, over the gateway-wide message rate.
    pub drops_rate_global: u64,
    /// Of those, over a connection's own limit.
    pub drops_rate_conn: u64,
    /// Frames dropped because a client's queue was full.
    pub drops_slow_consumer: u64,
    /// Bytes of those frames.
    pub drops_slow_consumer_bytes: u64,
    /// Events the sink refused.
    pub drops_sink: u64,
    /// Connections open now that negotiated permessage-deflate.
    pub deflate_connections: u64,
    /// Time since the gateway was built.
    pub uptime: Duration,
}

impl Gateway {
    /// The state of every sink (a fan-out sink reports each inner sink).
    pub fn sink_status(&self) -> Vec<crate::sink::SinkStatus> {
        let mut out = Vec::new();
        self.shared.sink.report(&mut out);
        out
    }

    /// Counters and sizes right now.
    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        let c = &s.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            connections: self.connection_count(),
            customers: s.tables.customers.len(),
            topics: s.tables.topics.len(),
            opened: get(&c.opened),
            closed: get(&c.closed),
            refused: get(&c.refused),
            refused_rate_limit: get(&c.refused_rate_limit),
            messages_in: get(&c.messages_in),
            bytes_in: get(&c.bytes_in),
            heartbeats: get(&c.heartbeats),
            messages_out: get(&c.messages_out),
            bytes_out: get(&c.bytes_out),
            drops_rate_limited: get(&c.drops_rate_global) + get(&c.drops_rate_conn),
            drops_rate_global: get(&c.drops_rate_global),
            drops_rate_conn: get(&c.drops_rate_conn),
            drops_slow_consumer: get(&c.drops_slow_consumer),
            drops_slow_consumer_bytes: get(&c.drops_slow_consumer_bytes),
            drops_sink: get(&c.drops_sink),
            deflate_connections: get(&c.deflate_connections),
            uptime: s.epoch.elapsed(),
        }
    }
}
