//! Unit tests of the AMQP sink that need no broker: validation, routing keys, message
//! properties, and behaviour while the broker is unreachable.

use std::time::Duration;

use super::*;
use crate::event::{CloseReason, MessageKind};
use crate::sink::{EventSink, SinkStatus};

fn event(kind: EventKind) -> Event {
    crate::event::test_event(7, kind)
}

fn message() -> Event {
    event(EventKind::Message {
        kind: MessageKind::Text,
        payload: bytes::Bytes::from_static(b"hi"),
    })
}

/// A config whose broker is a closed loopback port, with fast retries.
fn unreachable() -> AmqpConfig {
    AmqpConfig {
        url: "amqp://guest:guest@127.0.0.1:1/%2f".into(),
        retry_min: Duration::from_millis(10),
        retry_max: Duration::from_millis(20),
        confirm_timeout: Duration::from_millis(500),
        ..AmqpConfig::default()
    }
}

fn status(sink: &BufferedSink) -> SinkStatus {
    let mut out = Vec::new();
    sink.report(&mut out);
    assert_eq!(out.len(), 1);
    out.remove(0)
}

#[test]
fn routing_key_follows_the_event_kind() {
    let config = AmqpConfig::default();
    assert_eq!(routing_key(&config, &event(EventKind::Open)), "netsvr.open");
    assert_eq!(routing_key(&config, &message()), "netsvr.message");
    let close = event(EventKind::Close {
        reason: CloseReason::Disconnected,
    });
    assert_eq!(routing_key(&config, &close), "netsvr.close");
}

#[test]
fn properties_are_octet_stream_and_persistent_only_when_durable() {
    let durable = properties(true);
    assert_eq!(
        durable.content_type().as_ref().map(|c| c.as_str()),
        Some(CONTENT_TYPE)
    );
    assert_eq!(*durable.delivery_mode(), Some(2));
    let transient = properties(false);
    assert_eq!(
        transient.content_type().as_ref().map(|c| c.as_str()),
        Some(CONTENT_TYPE)
    );
    assert_eq!(*transient.delivery_mode(), None);
}

#[test]
fn start_outside_a_runtime_is_a_config_error() {
    let error = AmqpSink::start(AmqpConfig::default()).unwrap_err();
    assert_eq!(error.key, "amqp");
}

#[tokio::test]
async fn start_rejects_bad_settings() {
    let start = |config| AmqpSink::start(config).unwrap_err().key;
    let batch = AmqpConfig {
        batch: 0,
        ..AmqpConfig::default()
    };
    assert_eq!(start(batch), "amqp.batch");
    let url = |url: &str| AmqpConfig {
        url: url.into(),
        ..AmqpConfig::default()
    };
    assert_eq!(start(url("amqp://[bad")), "amqp.url");
    let mut long = AmqpConfig::default();
    long.queue.name = "q".repeat(256);
    assert_eq!(start(long), "amqp.queue.name");
    assert_eq!(
        start(url("amqps://guest:guest@127.0.0.1:5671/%2f")),
        "amqp.url"
    );
}

#[tokio::test]
async fn a_down_broker_neither_blocks_nor_fails_start_and_retries_are_counted() {
    let sink = AmqpSink::start(unreachable()).unwrap();
    assert_eq!(sink.name(), SINK_NAME);
    sink.deliver(message()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = status(&sink);
    assert_eq!(s.name, "amqp");
    assert!(!s.healthy);
    assert!(s.retried > 0, "{s:?}");
    assert_eq!((s.delivered, s.queued, s.dropped), (0, 1, 0));
    assert!(!sink.flush(Duration::from_millis(20)).await);
}

#[tokio::test]
async fn events_without_a_routing_key_are_delivered_without_a_broker() {
    let mut config = unreachable();
    config.open_routing_key.clear();
    config.message_routing_key.clear();
    let sink = AmqpSink::start(config).unwrap();
    sink.deliver(event(EventKind::Open)).unwrap();
    sink.deliver(message()).unwrap();
    assert!(sink.flush(Duration::from_secs(2)).await);
    let s = status(&sink);
    assert_eq!((s.delivered, s.retried, s.dropped), (2, 0, 0));
    assert!(s.healthy);
}
