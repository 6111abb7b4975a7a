//! A sink that hands events to a bounded tokio channel, for embedding and tests.

use std::time::Duration;

use async_trait::async_trait;
use metrics::{Counter, Gauge, counter, gauge};
use tokio::sync::mpsc;

use super::{EventSink, SinkError};
use crate::event::Event;
use crate::metrics::{SINK_DELIVERED_TOTAL, SINK_QUEUE_DEPTH};

/// Puts events on a bounded channel; the embedding program reads them from the
/// [`EventReceiver`]. A full channel drops the event and reports [`SinkError::Full`].
#[derive(Debug)]
pub struct ChannelSink {
    tx: mpsc::Sender<Event>,
    name: String,
    delivered: Counter,
    depth: Gauge,
}

/// The reading end of a [`ChannelSink`].
#[derive(Debug)]
pub struct EventReceiver {
    rx: mpsc::Receiver<Event>,
}

impl ChannelSink {
    /// A sink holding at most `capacity` events (at least 1).
    pub fn new(capacity: usize) -> (Self, EventReceiver) {
        Self::named("channel", capacity)
    }

    /// Same, with a name for metrics (`sink` label) and logs.
    pub fn named(name: &str, capacity: usize) -> (Self, EventReceiver) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let label = name.to_owned();
        let sink = Self {
            tx,
            delivered: counter!(SINK_DELIVERED_TOTAL, "sink" => label.clone()),
            depth: gauge!(SINK_QUEUE_DEPTH, "sink" => label),
            name: name.to_owned(),
        };
        (sink, EventReceiver { rx })
    }

    fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

#[async_trait]
impl EventSink for ChannelSink {
    fn deliver(&self, event: Event) -> Result<(), SinkError> {
        match self.tx.try_reserve() {
            Ok(permit) => {
                // Count before the event becomes visible to the reader.
                self.delivered.increment(1);
                permit.send(event);
                self.depth.set(self.queued() as f64);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(())) => Err(SinkError::Full),
            Err(mpsc::error::TrySendError::Closed(())) => Err(SinkError::Closed),
        }
    }

    async fn flush(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.queued() == 0 || self.tx.is_closed() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn report(&self, out: &mut Vec<super::SinkStatus>) {
        out.push(super::SinkStatus {
            name: self.name.clone(),
            healthy: !self.tx.is_closed(),
            queued: self.queued(),
            capacity: self.tx.max_capacity(),
            delivered: 0,
            retried: 0,
            dropped: 0,
        });
    }
}

impl EventReceiver {
    /// The next event; `None` once the gateway and every sender are gone.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// Up to `limit` events at once into `buffer`; returns how many (0 when closed).
    pub async fn recv_many(&mut self, buffer: &mut Vec<Event>, limit: usize) -> usize {
        self.rx.recv_many(buffer, limit).await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}
