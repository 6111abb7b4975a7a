//! OnMessage and OnClose as one [`EventSink`]: a [`BufferedSink`] whose lanes POST each
//! `Transfer` / `ConnClose`, in order per connection, retrying until the endpoint takes it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hyper::Uri;

use super::CallbackConfig;
use super::client::HttpClient;
use crate::event::{Event, EventKind};
use crate::pbevent::PbEvent;
use crate::sink::{
    Backend, BatchError, BufferedConfig, BufferedSink, EventSink, SinkError, SinkStatus,
};

/// The sink's name: the `sink` label of its metrics, and its name in status reports.
pub const SINK_NAME: &str = "http";

/// Most events handed to one lane's back-end at a time (each is still one POST).
const BATCH: usize = 64;

/// netsvr's OnMessage and OnClose callbacks as an [`EventSink`]. Made by
/// [`Callbacks::sink`](super::Callbacks::sink).
///
/// A Message event is POSTed as a `Transfer` to the OnMessage URL, a Close event as a
/// `ConnClose` to the OnClose URL; Open events and events whose URL is empty are passed
/// over before they take buffer space. Any 2xx answer delivers the event (its body is
/// ignored); another status, a transport error or the timeout fails it, and it is retried
/// with capped exponential back-off, ahead of everything behind it in its lane. Delivery is
/// at least once: an endpoint that times out after acting on a request sees it again.
///
/// Events are spread over `max_concurrency` ordered lanes by uniqId (one request in flight
/// per lane, so one client's events arrive in order); `buffer` events are held in all. When
/// a lane's share is full, new events are dropped and counted (the gateway's
/// `Stats::drops_sink`, and `dropped` in [`EventSink::report`]).
#[derive(Debug, Clone)]
pub struct HttpSink {
    inner: BufferedSink,
    on_message: bool,
    on_close: bool,
}

impl HttpSink {
    /// Starts the lanes (needs a tokio runtime).
    pub(crate) fn start(
        config: &CallbackConfig,
        client: HttpClient,
        on_message: Option<Uri>,
        on_close: Option<Uri>,
    ) -> Self {
        let mut buffered = BufferedConfig::new(SINK_NAME);
        buffered.capacity = config.buffer;
        buffered.lanes = config.max_concurrency;
        buffered.batch = BATCH;
        buffered.retry_min = config.retry_min;
        buffered.retry_max = config.retry_max;
        let flags = (on_message.is_some(), on_close.is_some());
        let targets = Arc::new(Targets {
            on_message,
            on_close,
        });
        let inner = BufferedSink::start(buffered, |_lane| HttpBackend {
            client: client.clone(),
            targets: targets.clone(),
        });
        Self {
            inner,
            on_message: flags.0,
            on_close: flags.1,
        }
    }

    /// The buffered sink underneath (status, flush).
    pub fn buffered(&self) -> &BufferedSink {
        &self.inner
    }

    fn wants(&self, kind: &EventKind) -> bool {
        match kind {
            EventKind::Message { .. } => self.on_message,
            EventKind::Close { .. } => self.on_close,
            _ => false,
        }
    }
}

#[async_trait]
impl EventSink for HttpSink {
    fn deliver(&self, event: Event) -> Result<(), SinkError> {
        if self.wants(&event.kind) {
            self.inner.deliver(event)
        } else {
            Ok(())
        }
    }

    async fn flush(&self, timeout: Duration) -> bool {
        self.inner.flush(timeout).await
    }

    fn name(&self) -> &str {
        SINK_NAME
    }

    fn report(&self, out: &mut Vec<SinkStatus>) {
        self.inner.report(out);
    }
}

/// Where each kind of event goes.
#[derive(Debug)]
struct Targets {
    on_message: Option<Uri>,
    on_close: Option<Uri>,
}

impl Targets {
    fn url(&self, kind: &EventKind) -> Option<&Uri> {
        match kind {
            EventKind::Message { .. } => self.on_message.as_ref(),
            EventKind::Close { .. } => self.on_close.as_ref(),
            _ => None,
        }
    }
}

/// One lane's back-end: POSTs its batch one event after the other.
struct HttpBackend {
    client: HttpClient,
    targets: Arc<Targets>,
}

#[async_trait]
impl Backend for HttpBackend {
    async fn deliver(&mut self, batch: &[Event]) -> Result<(), BatchError> {
        for (delivered, event) in batch.iter().enumerate() {
            // Open events and switched-off callbacks count as delivered.
            let Some(url) = self.targets.url(&event.kind) else {
                continue;
            };
            let body = PbEvent::from_event(event).body();
            if let Err(error) = self.client.notify(url, body).await {
                return Err(BatchError {
                    delivered,
                    error: format!("POST {url} for {}: {error}", event.uniq_id()),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    use bytes::Bytes;

    use super::*;
    use crate::event::{CloseReason, MessageKind};

    fn event(kind: EventKind) -> Event {
        crate::event::test_event(1, kind)
    }

    fn message() -> Event {
        event(EventKind::Message {
            kind: MessageKind::Text,
            payload: Bytes::from_static(b"x"),
        })
    }

    fn close() -> Event {
        event(EventKind::Close {
            reason: CloseReason::Disconnected,
        })
    }

    #[tokio::test]
    async fn unwanted_events_take_no_buffer_space() {
        let config = CallbackConfig {
            max_concurrency: 1,
            buffer: 1,
            ..Default::default()
        };
        let client = HttpClient::new(&config);
        // Only OnClose, to a URL nobody listens on: the one close event stays buffered.
        let url: Uri = "http://127.0.0.1:9/close".parse().unwrap();
        let sink = HttpSink::start(&config, client, None, Some(url));
        for _ in 0..10 {
            assert_eq!(sink.deliver(event(EventKind::Open)), Ok(()));
            assert_eq!(sink.deliver(message()), Ok(()));
        }
        let mut status = Vec::new();
        sink.report(&mut status);
        assert_eq!((status[0].queued, status[0].dropped), (0, 0));
        assert_eq!(sink.deliver(close()), Ok(()));
        let mut status = Vec::new();
        sink.report(&mut status);
        assert_eq!(status[0].name, "http");
        assert_eq!(status[0].queued, 1);
    }
}
