//! The `EventSink` seam: where open / message / close events go, plus ready sinks.

mod buffered;
mod channel;
mod fanout;
mod func;

use std::time::Duration;

use async_trait::async_trait;

use crate::event::Event;

pub use buffered::{Backend, BatchError, BufferedConfig, BufferedSink};
pub use channel::{ChannelSink, EventReceiver};
pub use fanout::FanoutSink;
pub use func::FnSink;

/// Why a sink did not take an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The sink's bounded queue is full; the event was dropped (and counted by the gateway).
    #[error("sink queue is full")]
    Full,
    /// The sink has stopped.
    #[error("sink is closed")]
    Closed,
}

/// A sink's state, for status pages and readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkStatus {
    /// The sink's name.
    pub name: String,
    /// False while its back-end is failing.
    pub healthy: bool,
    /// Events buffered or in flight.
    pub queued: usize,
    /// The buffer's bound.
    pub capacity: usize,
    /// Events delivered since start.
    pub delivered: u64,
    /// Event deliveries retried since start.
    pub retried: u64,
    /// Events dropped because the buffer was full.
    pub dropped: u64,
}

/// Receives every event of every connection.
///
/// `deliver` is called on the connection's task and must never block or await: enqueue the
/// event on the sink's own bounded queue and do the I/O on the sink's own task. Events of one
/// connection are delivered in order, from one task at a time.
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Takes one event, or says why not. Never blocks.
    fn deliver(&self, event: Event) -> Result<(), SinkError>;

    /// Waits until everything accepted so far is handed on, for at most `timeout`. Returns
    /// whether it is all out. Called during graceful shutdown.
    async fn flush(&self, timeout: Duration) -> bool {
        let _ = timeout;
        true
    }

    /// A short name, used in metrics and logs.
    fn name(&self) -> &str {
        "sink"
    }

    /// Appends this sink's status (a fan-out appends each inner sink's) to `out`.
    fn report(&self, out: &mut Vec<SinkStatus>) {
        let _ = out;
    }
}

/// A sink that discards every event (for a gateway driven only through its handle).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopSink;

#[async_trait]
impl EventSink for NoopSink {
    fn deliver(&self, _event: Event) -> Result<(), SinkError> {
        Ok(())
    }

    fn name(&self) -> &str {
        "noop"
    }
}
