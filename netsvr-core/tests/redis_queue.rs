//! The Redis queue sink against a real Redis: WebSocket clients of a gateway produce open,
//! message and close events; the test reads them back from lists and streams and decodes
//! them as netsvr messages. The outage tests run a private `redis-server`, kill it while
//! events flow, and check that nothing is lost, duplicated or reordered, and that drops past
//! the buffer are counted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::services::{PrivateRedis, try_connect, unavailable};
use common::{Client, QueryAuth, eventually, test_config};
use futures_util::SinkExt;
use netsvr_core::redis_queue::{KeyKind, RedisConfig, RedisSink, Target};
use netsvr_core::{Gateway, SinkStatus, UniqId};
use netsvr_protocol::pb;
use prost::Message as _;
use redis::aio::MultiplexedConnection;
use tokio_tungstenite::tungstenite::Message;

const SHARED_URL: &str = "redis://127.0.0.1:6379";

// ---- Redis access ----

/// The machine's Redis, or `None` (after [`unavailable`]) when it is not running.
async fn shared_redis() -> Option<MultiplexedConnection> {
    let conn = try_connect(SHARED_URL).await;
    if conn.is_none() {
        unavailable("Redis is not running on 127.0.0.1:6379");
    }
    conn
}

/// Key names unique to this process and test, deleted from the shared Redis on drop.
struct Keys(Vec<String>);

impl Keys {
    fn new(test: &str, n: usize) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let run = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        Self(
            (0..n)
                .map(|i| format!("netsvr-test:{pid}:{run}:{test}:{i}"))
                .collect(),
        )
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(SHARED_URL) else {
            return;
        };
        if let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(1)) {
            let _ = redis::cmd("DEL").arg(&self.0).exec(&mut conn);
        }
    }
}

async fn llen(conn: &mut MultiplexedConnection, key: &str) -> usize {
    redis::cmd("LLEN").arg(key).query_async(conn).await.unwrap()
}

async fn xlen(conn: &mut MultiplexedConnection, key: &str) -> usize {
    redis::cmd("XLEN").arg(key).query_async(conn).await.unwrap()
}

/// A list's entries, oldest first (LPUSH puts the newest at the head).
async fn list_oldest_first(conn: &mut MultiplexedConnection, key: &str) -> Vec<Vec<u8>> {
    let mut entries: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await
        .unwrap();
    entries.reverse();
    entries
}

/// A stream's entries in order; each must have exactly one field, `data`.
async fn stream_payloads(conn: &mut MultiplexedConnection, key: &str) -> Vec<Vec<u8>> {
    let entries: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .unwrap();
    entries
        .into_iter()
        .map(|(id, mut fields)| {
            assert_eq!(fields.len(), 2, "entry {id} must have one field");
            assert_eq!(fields[0], b"data", "entry {id}");
            fields.pop().unwrap()
        })
        .collect()
}

// ---- Payloads ----

/// A queue payload, decoded: cmd id (u32 BE) then the protobuf body.
#[derive(Debug, PartialEq)]
enum Entry {
    Open(pb::ConnOpen),
    Message(pb::Transfer),
    Close(pb::ConnClose),
}

impl Entry {
    fn decode(payload: &[u8]) -> Self {
        assert!(payload.len() >= 4, "payload too short: {payload:?}");
        let cmd = u32::from_be_bytes(payload[..4].try_into().unwrap());
        let body = &payload[4..];
        match cmd {
            900_001_001 => Self::Open(pb::ConnOpen::decode(body).unwrap()),
            900_001_003 => Self::Message(pb::Transfer::decode(body).unwrap()),
            900_001_002 => Self::Close(pb::ConnClose::decode(body).unwrap()),
            other => panic!("unknown cmd id {other}"),
        }
    }

    fn uniq_id(&self) -> &str {
        match self {
            Self::Open(m) => &m.uniq_id,
            Self::Message(m) => &m.uniq_id,
            Self::Close(m) => &m.uniq_id,
        }
    }

    /// `open`, the message's data as text, or `close`.
    fn label(&self) -> String {
        match self {
            Self::Open(_) => "open".into(),
            Self::Message(m) => String::from_utf8_lossy(&m.data).into_owned(),
            Self::Close(_) => "close".into(),
        }
    }
}

/// Decodes `payloads`, checks they all belong to `id`, and returns their labels.
fn labels(payloads: &[Vec<u8>], id: UniqId) -> Vec<String> {
    payloads
        .iter()
        .map(|p| {
            let entry = Entry::decode(p);
            assert_eq!(entry.uniq_id(), id.to_string());
            entry.label()
        })
        .collect()
}

/// Sends the numbered messages in one burst (fed, then flushed once).
async fn send_burst(client: &mut Client, range: std::ops::Range<usize>) {
    for text in numbered(range) {
        client.feed(Message::text(text)).await.unwrap();
    }
    client.flush().await.unwrap();
}

fn numbered(range: std::ops::Range<usize>) -> impl Iterator<Item = String> {
    range.map(|i| format!("m{i}"))
}

// ---- Gateway and clients ----

/// A gateway on an ephemeral port whose only sink is a Redis sink with `config`.
fn gateway(config: RedisConfig) -> Gateway {
    let sink = RedisSink::start(config).unwrap();
    let (gateway, serve) = Gateway::builder()
        .config(test_config())
        .authenticator(QueryAuth)
        .sink(sink)
        .build()
        .unwrap();
    tokio::spawn(serve);
    gateway
}

/// Connects a client and returns it with its uniqId (the gateway's only connection).
async fn connect(gateway: &Gateway, query: &str) -> (Client, UniqId) {
    let url = format!(
        "ws://{}{}{query}",
        gateway.local_addr(),
        gateway.config().path
    );
    let (client, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    eventually("the connection to register", || {
        gateway.connection_count() == 1
    })
    .await;
    (client, gateway.uniq_ids()[0])
}

async fn close(client: Client) {
    common::close_client(client).await;
}

fn status(gateway: &Gateway) -> SinkStatus {
    common::only_sink(gateway, "redis")
}

/// Waits until the sink has delivered `n` events and holds none.
async fn delivered(gateway: &Gateway, n: u64) {
    eventually(&format!("{n} events delivered"), || {
        let s = status(gateway);
        s.queued == 0 && s.delivered >= n
    })
    .await;
    assert_eq!(status(gateway).delivered, n, "more events than expected");
}

fn config_to(url: &str, open: Target, message: Target, close: Target) -> RedisConfig {
    let mut config = RedisConfig::default();
    config.url = url.into();
    config.open = open;
    config.message = message;
    config.close = close;
    config.retry_min = Duration::from_millis(20);
    config.retry_max = Duration::from_millis(100);
    config.timeout = Duration::from_secs(2);
    config
}

/// Every event to one list.
fn one_list(url: &str, key: &str) -> RedisConfig {
    let target = Target::new(key, KeyKind::List);
    config_to(url, target.clone(), target.clone(), target)
}

// ---- Against the machine's Redis ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_holds_open_messages_and_close_in_order() {
    let Some(mut redis) = shared_redis().await else {
        return;
    };
    let keys = Keys::new("list", 1);
    let key = &keys.0[0];
    let gateway = gateway(one_list(SHARED_URL, key));
    let (mut client, id) = connect(&gateway, "?customer=c7&session=s-1&topics=news,chat").await;
    let local = match client.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.local_addr().unwrap(),
        _ => unreachable!(),
    };
    client.send(Message::text("hello")).await.unwrap();
    client
        .send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    client.send(Message::text("bye")).await.unwrap();
    close(client).await;
    delivered(&gateway, 5).await;

    // BRPOP takes the oldest first: a FIFO consumer.
    let mut entries = Vec::new();
    for _ in 0..5 {
        let (_, payload): (String, Vec<u8>) = redis::cmd("BRPOP")
            .arg(key)
            .arg(1)
            .query_async(&mut redis)
            .await
            .unwrap();
        entries.push(Entry::decode(&payload));
    }
    assert_eq!(llen(&mut redis, key).await, 0, "exactly five entries");
    let topics = vec!["news".to_owned(), "chat".to_owned()];
    let transfer = |data: &[u8]| {
        Entry::Message(pb::Transfer {
            uniq_id: id.to_string(),
            customer_id: "c7".into(),
            session: "s-1".into(),
            topics: topics.clone(),
            data: data.to_vec().into(),
        })
    };
    let expected = vec![
        Entry::Open(pb::ConnOpen {
            uniq_id: id.to_string(),
            raw_query: "customer=c7&session=s-1&topics=news,chat".into(),
            x_forwarded_for: String::new(),
            x_real_ip: String::new(),
            remote_addr: local.to_string(),
        }),
        transfer(b"hello"),
        transfer(&[0, 1, 2, 255]),
        transfer(b"bye"),
        Entry::Close(pb::ConnClose {
            uniq_id: id.to_string(),
            customer_id: "c7".into(),
            session: "s-1".into(),
            topics,
            reason: "client".into(),
        }),
    ];
    assert_eq!(entries, expected);
    assert_eq!(netsvr_protocol::cmd::CONN_OPEN, 900_001_001);
    assert_eq!(netsvr_protocol::cmd::CONN_CLOSE, 900_001_002);
    assert_eq!(netsvr_protocol::cmd::TRANSFER, 900_001_003);
    assert_eq!(status(&gateway).dropped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_have_one_data_field_and_an_empty_key_turns_a_kind_off() {
    let Some(mut redis) = shared_redis().await else {
        return;
    };
    let keys = Keys::new("stream", 2);
    let config = config_to(
        SHARED_URL,
        Target::new(&keys.0[0], KeyKind::Stream),
        Target::new(&keys.0[1], KeyKind::Stream),
        Target::default(), // close events: not sent
    );
    let gateway = gateway(config);
    let (mut client, id) = connect(&gateway, "?session=abc").await;
    for text in numbered(0..20) {
        client.send(Message::text(text)).await.unwrap();
    }
    close(client).await;
    delivered(&gateway, 22).await; // the skipped close counts as delivered

    let opens = stream_payloads(&mut redis, &keys.0[0]).await;
    assert_eq!(labels(&opens, id), ["open"]);
    let messages = stream_payloads(&mut redis, &keys.0[1]).await;
    assert_eq!(labels(&messages, id), numbered(0..20).collect::<Vec<_>>());
    match Entry::decode(&messages[0]) {
        Entry::Message(m) => {
            assert_eq!(m.session, "abc");
            assert_eq!(m.customer_id, "");
            assert!(m.topics.is_empty());
        }
        other => panic!("expected a Transfer, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_maxlen_trims_approximately() {
    let Some(mut redis) = shared_redis().await else {
        return;
    };
    let keys = Keys::new("maxlen", 1);
    let mut config = config_to(
        SHARED_URL,
        Target::default(),
        Target::new(&keys.0[0], KeyKind::Stream),
        Target::default(),
    );
    config.maxlen = 100;
    let gateway = gateway(config);
    let (mut client, id) = connect(&gateway, "").await;
    send_burst(&mut client, 0..1000).await;
    delivered(&gateway, 1001).await;

    // `MAXLEN ~` trims whole stream nodes (100 entries each by default): near, not exact.
    let len = xlen(&mut redis, &keys.0[0]).await;
    assert!((100..=250).contains(&len), "XLEN {len}, expected near 100");
    let kept = stream_payloads(&mut redis, &keys.0[0]).await;
    assert_eq!(
        labels(&kept, id),
        numbered(1000 - len..1000).collect::<Vec<_>>(),
        "the newest entries, in order"
    );
    close(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_messages_from_one_client_arrive_in_order() {
    let Some(mut redis) = shared_redis().await else {
        return;
    };
    let keys = Keys::new("order", 1);
    let mut config = config_to(
        SHARED_URL,
        Target::default(),
        Target::new(&keys.0[0], KeyKind::List),
        Target::default(),
    );
    config.batch = 64;
    config.lanes = 4;
    let gateway = gateway(config);
    let (mut client, id) = connect(&gateway, "").await;
    send_burst(&mut client, 0..1000).await;
    delivered(&gateway, 1001).await;
    let entries = list_oldest_first(&mut redis, &keys.0[0]).await;
    assert_eq!(labels(&entries, id), numbered(0..1000).collect::<Vec<_>>());
    close(client).await;
}

/// `got` equals `want`, or, the one duplicate the sink allows (EXEC ran but its reply was
/// lost as the server died), `want` with one whole batch stored again right after itself.
fn assert_once_in_order(got: &[String], want: &[String], batch: usize) {
    if got == want {
        return;
    }
    let extra = got.len().saturating_sub(want.len());
    assert!(
        (1..=batch).contains(&extra),
        "lost or duplicated events: got {got:?}"
    );
    let at = got
        .iter()
        .zip(want)
        .position(|(g, w)| g != w)
        .unwrap_or(want.len());
    assert!(at >= extra, "got {got:?}");
    assert_eq!(
        got[at..at + extra],
        got[at - extra..at],
        "only a whole batch may repeat, right after itself"
    );
    let without: Vec<String> = [&got[..at], &got[at + extra..]].concat();
    assert_eq!(without, want);
    println!("NOTE: one batch of {extra} was stored twice (its EXEC reply was lost)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_nothing_and_keeps_order() {
    let Some(mut server) = PrivateRedis::start("outage").await else {
        return;
    };
    let key = "netsvr:outage";
    let mut config = one_list(&server.url(), key);
    config.batch = 16;
    config.buffer = 1000;
    let gateway = gateway(config);
    let (mut client, id) = connect(&gateway, "").await;
    // A steady stream, about one message a millisecond, with the server killed midway.
    let sender = tokio::spawn(async move {
        for text in numbered(0..300) {
            client.send(Message::text(text)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        client
    });
    eventually("a hundred events stored", || {
        status(&gateway).delivered >= 100
    })
    .await;
    server.kill();
    assert!(!sender.is_finished(), "the kill must come mid-stream");
    let client = sender.await.unwrap(); // the rest is sent while Redis is down
    eventually("failed deliveries while Redis is down", || {
        let s = status(&gateway);
        s.retried > 0 && !s.healthy
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // a few more failed attempts
    assert!(
        status(&gateway).queued > 100,
        "events wait while Redis is down"
    );

    let mut redis = server.restart().await;
    close(client).await;
    delivered(&gateway, 302).await;
    let got = labels(&list_oldest_first(&mut redis, key).await, id);
    let want: Vec<String> = std::iter::once("open".to_owned())
        .chain(numbered(0..300))
        .chain(std::iter::once("close".to_owned()))
        .collect();
    assert_once_in_order(&got, &want, 16);

    let s = status(&gateway);
    assert!(s.retried > 0, "{s:?}");
    assert!(s.healthy, "{s:?}");
    assert_eq!(s.dropped, 0);
    assert_eq!(gateway.stats().drops_sink, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_buffer_events_are_dropped_and_counted() {
    let Some(mut server) = PrivateRedis::start("drops").await else {
        return;
    };
    let key = "netsvr:drops";
    let mut config = one_list(&server.url(), key);
    config.buffer = 10;
    config.batch = 4;
    let gateway = gateway(config);
    let (mut client, id) = connect(&gateway, "").await;
    delivered(&gateway, 1).await; // the open event is stored before the outage
    server.kill();

    for text in numbered(0..50) {
        client.send(Message::text(text)).await.unwrap();
    }
    eventually("all 50 events accepted or dropped", || {
        let s = status(&gateway);
        s.queued as u64 + s.dropped == 50
    })
    .await;
    let s = status(&gateway);
    let accepted = s.queued;
    // Ten wait in the buffer, and up to one batch is held by the retrying lane.
    assert!((11..=14).contains(&accepted), "{s:?}");
    assert_eq!(s.dropped, 50 - accepted as u64);
    assert_eq!(gateway.stats().drops_sink, s.dropped);

    let mut redis = server.restart().await;
    delivered(&gateway, 1 + accepted as u64).await;
    let got = labels(&list_oldest_first(&mut redis, key).await, id);
    let want: Vec<String> = std::iter::once("open".to_owned())
        .chain(numbered(0..accepted))
        .collect();
    assert_once_in_order(&got, &want, 4);
    let s = status(&gateway);
    assert_eq!(s.dropped, 50 - accepted as u64);
    assert!(s.retried > 0, "{s:?}");
    close(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_transactions_are_retried_without_partial_batches() {
    let Some(server) = PrivateRedis::start("oom").await else {
        return;
    };
    let mut admin = server.ready().await;
    let key = "netsvr:oom";
    let mut config = one_list(&server.url(), key);
    config.batch = 8;
    let gateway = gateway(config);
    let (mut client, id) = connect(&gateway, "").await;
    delivered(&gateway, 1).await;

    // Out of memory: Redis refuses each LPUSH as it is queued, so EXEC aborts them all.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(1)
        .query_async(&mut admin)
        .await
        .unwrap();
    for text in numbered(0..40) {
        client.send(Message::text(text)).await.unwrap();
    }
    eventually("refused batches to be retried", || {
        status(&gateway).retried >= 8
    })
    .await;
    assert_eq!(llen(&mut admin, key).await, 1, "nothing of a refused batch");

    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(0)
        .query_async(&mut admin)
        .await
        .unwrap();
    delivered(&gateway, 41).await;
    let got = labels(&list_oldest_first(&mut admin, key).await, id);
    let want: Vec<String> = std::iter::once("open".to_owned())
        .chain(numbered(0..40))
        .collect();
    assert_eq!(got, want);
    close(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_another_type_rejects_its_events_without_blocking_the_lane() {
    let Some(mut redis) = shared_redis().await else {
        return;
    };
    let keys = Keys::new("wrongtype", 2);
    let _: () = redis::cmd("SET")
        .arg(&keys.0[1])
        .arg("not a list")
        .query_async(&mut redis)
        .await
        .unwrap();
    let list = Target::new(&keys.0[0], KeyKind::List);
    let config = config_to(
        SHARED_URL,
        list.clone(),
        Target::new(&keys.0[1], KeyKind::List), // WRONGTYPE for every message
        list,
    );
    let gateway = gateway(config);
    let (mut client, id) = connect(&gateway, "").await;
    for text in numbered(0..5) {
        client.send(Message::text(text)).await.unwrap();
    }
    close(client).await;
    delivered(&gateway, 7).await;
    let got = labels(&list_oldest_first(&mut redis, &keys.0[0]).await, id);
    assert_eq!(got, ["open", "close"]);
    let s = status(&gateway);
    assert_eq!(s.retried, 0, "a rejected command is not retried: {s:?}");
    let value: String = redis::cmd("GET")
        .arg(&keys.0[1])
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(value, "not a list");
}
