//! Unit tests of the Redis sink without a server: the exact commands, the transaction around
//! a batch, skipped targets, rejected commands, and a start that never waits for Redis.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::{Pipeline, Value};

use super::backend::{RedisBackend, Routes, command, rejections};
use super::*;
use crate::event::{CloseReason, ConnInfo, ConnMeta, ConnSnapshot, Event, EventKind, MessageKind};
use crate::id::UniqId;
use crate::pbevent::PbEvent;
use crate::sink::{Backend, EventSink};

fn event(kind: EventKind) -> Event {
    let mut meta = ConnMeta::new(
        UniqId::from_bytes([7; 14]),
        SocketAddr::from(([127, 0, 0, 1], 4242)),
    );
    meta.raw_query = "a=1".into();
    let info = ConnInfo::new(Some("c1".into()), "s".into(), vec!["t".into()]);
    Event::new(ConnSnapshot::new(meta, info), kind)
}

fn message(text: &'static str) -> Event {
    event(EventKind::Message {
        kind: MessageKind::Text,
        payload: Bytes::from_static(text.as_bytes()),
    })
}

/// RESP encoding of a command from its arguments.
fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[test]
fn list_target_is_one_lpush() {
    let target = Target::new("q:list", KeyKind::List);
    let packed = command(&target, 1000, b"\x00\x01pay").get_packed_command();
    assert_eq!(packed, resp(&[b"LPUSH", b"q:list", b"\x00\x01pay"]));
}

#[test]
fn stream_target_is_xadd_with_field_data_and_optional_trim() {
    let target = Target::new("q:stream", KeyKind::Stream);
    let untrimmed = command(&target, 0, b"p").get_packed_command();
    assert_eq!(
        untrimmed,
        resp(&[b"XADD", b"q:stream", b"*", b"data", b"p"])
    );
    let trimmed = command(&target, 500, b"p").get_packed_command();
    assert_eq!(
        trimmed,
        resp(&[
            b"XADD",
            b"q:stream",
            b"MAXLEN",
            b"~",
            b"500",
            b"*",
            b"data",
            b"p"
        ])
    );
}

#[test]
fn a_batch_is_one_transaction_and_empty_keys_are_skipped() {
    let config = RedisConfig {
        open: Target::default(),
        message: Target::new("m", KeyKind::List),
        close: Target::new("c", KeyKind::Stream),
        ..RedisConfig::default()
    };
    let routes = Routes::new(&config);
    let batch = [
        event(EventKind::Open),
        message("one"),
        message("two"),
        event(EventKind::Close {
            reason: CloseReason::Client(1000),
        }),
    ];
    let mut pipe = Pipeline::new();
    assert_eq!(routes.fill(&mut pipe, &batch), 3);
    let payload = |e: &Event| PbEvent::from_event(e).unframed();
    let mut expected = resp(&[b"MULTI"]);
    expected.extend(resp(&[b"LPUSH", b"m", &payload(&batch[1])]));
    expected.extend(resp(&[b"LPUSH", b"m", &payload(&batch[2])]));
    expected.extend(resp(&[b"XADD", b"c", b"*", b"data", &payload(&batch[3])]));
    expected.extend(resp(&[b"EXEC"]));
    assert_eq!(pipe.get_packed_pipeline(), expected);
    assert!(pipe.is_transaction());

    // The pipeline is reused: a second fill replaces the commands.
    assert_eq!(routes.fill(&mut pipe, &batch[..1]), 0);
    assert!(pipe.is_empty());
}

#[test]
fn payload_is_cmd_id_then_protobuf_body() {
    let e = message("hello");
    let payload = PbEvent::from_event(&e).unframed();
    assert_eq!(&payload[..4], &900_001_003u32.to_be_bytes());
    let body = PbEvent::from_event(&e).body();
    assert_eq!(&payload[4..], &body[..]);
}

#[test]
fn rejected_commands_are_counted_not_retried() {
    let ok = redis::parse_redis_value(b"*2\r\n:1\r\n:2\r\n").unwrap();
    assert_eq!(rejections(&ok).unwrap(), (0, None));
    let mixed = redis::parse_redis_value(
        b"*3\r\n:1\r\n-WRONGTYPE Operation against a key\r\n-WRONGTYPE again\r\n",
    )
    .unwrap();
    let (count, first) = rejections(&mixed).unwrap();
    assert_eq!(count, 2);
    assert!(first.unwrap().contains("WRONGTYPE"));
    // A nil EXEC (aborted transaction) is an error: the batch is retried.
    assert!(rejections(&Value::Nil).is_err());
}

#[test]
fn bad_configuration_is_refused() {
    let refused = |config: RedisConfig| RedisSink::start(config).unwrap_err().key;
    let url = |url: &str| RedisConfig {
        url: url.into(),
        ..RedisConfig::default()
    };
    assert_eq!(refused(url("http://127.0.0.1:6379")), "redis.url");
    assert_eq!(refused(url("redis://[not a host")), "redis.url");
    let no_batch = RedisConfig {
        batch: 0,
        ..RedisConfig::default()
    };
    assert_eq!(refused(no_batch), "redis.batch");
}

/// A loopback port with nothing listening.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn start_does_not_wait_for_redis_and_keeps_events() {
    let config = RedisConfig {
        url: format!("redis://127.0.0.1:{}", closed_port()),
        retry_min: Duration::from_millis(10),
        retry_max: Duration::from_millis(20),
        ..RedisConfig::default()
    };
    let started = Instant::now();
    let sink = RedisSink::start(config).unwrap();
    assert_eq!(sink.name(), "redis");
    for _ in 0..5 {
        sink.deliver(message("x")).unwrap();
    }
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(!sink.flush(Duration::from_millis(200)).await);
    let mut status = Vec::new();
    sink.report(&mut status);
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].name, "redis");
    assert_eq!(status[0].queued, 5);
    assert!(status[0].retried > 0, "{status:?}");
    assert!(!status[0].healthy);
}

#[tokio::test]
async fn a_lane_reports_nothing_delivered_while_redis_is_down() {
    let config = RedisConfig {
        url: format!("redis://127.0.0.1:{}", closed_port()),
        timeout: Duration::from_millis(300),
        ..RedisConfig::default()
    };
    let client = redis::Client::open(config.url.as_str()).unwrap();
    let mut backend = RedisBackend::new(client, &config, 0, "redis-test");
    let started = Instant::now();
    let e = backend
        .deliver(&[message("a"), message("b")])
        .await
        .unwrap_err();
    assert_eq!(e.delivered, 0);
    assert!(e.error.contains("lane 0"), "{}", e.error);
    assert!(started.elapsed() < Duration::from_millis(1000));
}
