//! The real binary drained by SIGTERM while clients send flat out (a fast and a slow
//! business): every connection's messages and close reach both the Redis list and the
//! business, in order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::server::Server;
use futures_util::{SinkExt, StreamExt};
use netsvr_protocol::cmd::events::ALL;
use netsvr_protocol::{Codec, Frame, ToBusiness, ToGateway, pb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

const REDIS: &str = "redis://127.0.0.1:6379";
const CLIENTS: usize = 4;

/// One event of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Open,
    Msg(u64),
    Close,
}

type PerConn = BTreeMap<String, Vec<Ev>>;

/// A business process on the worker port: registers for every event, records them by
/// connection until the gateway goes away; a slow one reads at most 1 KiB a millisecond.
async fn business(worker: SocketAddr, slow: bool) -> (JoinHandle<PerConn>, Arc<AtomicU64>) {
    let mut stream = TcpStream::connect(worker).await.unwrap();
    let mut out = BytesMut::new();
    ToGateway::Register(pb::RegisterReq { events: ALL }).encode(&mut out);
    stream.write_all(&out).await.unwrap();
    let (codec, mut buf) = (Codec::default(), BytesMut::new());
    let mut seen = PerConn::new();
    loop {
        if let Some(frame) = codec.decode(&mut buf).unwrap() {
            match frame {
                Frame::Command { cmd, body } => match ToBusiness::decode(cmd, body).unwrap() {
                    ToBusiness::Register(r) if r.code == 0 => break,
                    other => panic!("expected a RegisterResp, got {other:?}"),
                },
                Frame::Heartbeat => panic!("the gateway never sends heartbeats"),
            }
        }
        assert!(stream.read_buf(&mut buf).await.unwrap() > 0, "closed");
    }
    let read = Arc::new(AtomicU64::new(0));
    let counter = read.clone();
    let task = tokio::spawn(async move {
        loop {
            while let Some(Frame::Command { cmd, body }) = codec.decode(&mut buf).unwrap() {
                let (id, ev) = event(ToBusiness::decode(cmd, body).unwrap());
                seen.entry(id).or_default().push(ev);
                counter.fetch_add(1, Ordering::Relaxed);
            }
            if slow {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let mut chunk = [0u8; 1024];
                match stream.read(&mut chunk).await.unwrap_or(0) {
                    0 => return seen,
                    n => buf.extend_from_slice(&chunk[..n]),
                }
            } else if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                return seen;
            }
        }
    });
    (task, read)
}

/// A netsvr event (worker-port frame or queue payload) as (uniqId, event).
fn event(message: ToBusiness) -> (String, Ev) {
    match message {
        ToBusiness::ConnOpen(o) => (o.uniq_id, Ev::Open),
        ToBusiness::Transfer(t) => {
            let n = std::str::from_utf8(&t.data).unwrap().parse().unwrap();
            (t.uniq_id, Ev::Msg(n))
        }
        ToBusiness::ConnClose(c) => (c.uniq_id, Ev::Close),
        other => panic!("unexpected {other:?}"),
    }
}

/// The list's entries (u32 BE cmd id + protobuf body), oldest first, by connection.
async fn redis_events(key: &str) -> PerConn {
    let client = redis::Client::open(REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut entries: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap();
    entries.reverse();
    let mut out = PerConn::new();
    for entry in entries {
        let (cmd, body) = entry.split_at(4);
        let cmd = u32::from_be_bytes(cmd.try_into().unwrap());
        let (id, ev) = event(ToBusiness::decode(cmd, Bytes::copy_from_slice(body)).unwrap());
        out.entry(id).or_default().push(ev);
    }
    out
}

/// A client sending `0`, `1`, … flat out until the gateway closes it; returns how many it
/// queued for writing and the close code it got.
async fn flat_out(ws: SocketAddr) -> JoinHandle<(u64, u16)> {
    let (tx, mut rx) = common::connect(ws).await.split();
    tokio::spawn(async move {
        let written = AtomicU64::new(0);
        let writer = async {
            let mut tx = tx;
            for n in 0u64.. {
                if tx.feed(Message::text(n.to_string())).await.is_err() {
                    break;
                }
                written.store(n + 1, Ordering::Relaxed);
                if n % 64 == 63 && tx.flush().await.is_err() {
                    break;
                }
            }
        };
        let reader = async {
            loop {
                match rx.next().await {
                    Some(Ok(Message::Close(frame))) => {
                        return frame.map_or(1005, |f| u16::from(f.code));
                    }
                    Some(Ok(_)) => {}
                    other => panic!("ended without a close frame: {other:?}"),
                }
            }
        };
        let code = tokio::select! {
            code = reader => code,
            () = writer => panic!("the writer stopped before any close"),
        };
        (written.load(Ordering::Relaxed), code)
    })
}

/// Each connection's events are its open, `0..n` once and in order, then its close;
/// returns `n` by connection.
fn sent_in_order(name: &str, got: &PerConn) -> BTreeMap<String, u64> {
    assert_eq!(got.len(), CLIENTS, "{name}: connections");
    let mut counts = BTreeMap::new();
    for (id, events) in got {
        let n = events.len().saturating_sub(2) as u64;
        let want: Vec<Ev> = [Ev::Open]
            .into_iter()
            .chain((0..n).map(Ev::Msg))
            .chain([Ev::Close])
            .collect();
        if *events != want {
            let at = events.iter().zip(&want).position(|(g, w)| g != w);
            panic!(
                "{name} {id}: {} events, first difference at {at:?}",
                events.len()
            );
        }
        counts.insert(id.clone(), n);
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_delivers_every_message_and_close_to_every_sink() {
    sigterm_under_load(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_waits_for_a_slow_business() {
    sigterm_under_load(true).await;
}

async fn sigterm_under_load(slow: bool) {
    if TcpStream::connect("127.0.0.1:6379").await.is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "Redis is not running on 127.0.0.1:6379 (required when CI is set)"
        );
        println!("SKIPPED: Redis is not running on 127.0.0.1:6379");
        return;
    }
    let key = format!("netsvr:bin-shutdown-{}-{slow}", std::process::id());
    let config = common::temp_file(
        "shutdown.toml",
        &format!(
            "[gateway]\nlisten = \"127.0.0.1:0\"\nshutdown_timeout = \"20s\"\n\
         [worker]\nworker_listen = \"127.0.0.1:0\"\ntask_listen = \"127.0.0.1:0\"\n\
         send_queue_capacity = 262144\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n\
         [redis]\nurl = \"{REDIS}\"\nbuffer = 262144\n\
         [redis.open]\nkey = \"{key}\"\n[redis.message]\nkey = \"{key}\"\n\
         [redis.close]\nkey = \"{key}\"\n"
        ),
    );
    let mut server = Server::start(&config).await;
    let (business, read) = business(server.worker.unwrap(), slow).await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(flat_out(server.ws).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(clients.iter().all(|c| !c.is_finished()), "sending");
    server.signal("TERM");
    let read_at_term = read.load(Ordering::Relaxed);

    let mut written = Vec::new();
    for c in clients {
        let (n, code) = tokio::time::timeout(Duration::from_secs(20), c)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(code, 1001, "closed as going away");
        written.push(n);
    }
    let (exit, log) = server.exited(Duration::from_secs(30)).await;
    assert!(exit.success(), "{exit:?}\n{log}");
    assert!(!log.contains("not flushed"), "{log}");
    let at_business = tokio::time::timeout(Duration::from_secs(60), business).await;
    let at_business = sent_in_order("business", &at_business.unwrap().unwrap());
    let in_redis = sent_in_order("redis", &redis_events(&key).await);
    // Both sinks got the same messages of every connection: all the gateway accepted.
    assert_eq!(at_business, in_redis);
    let total: u64 = in_redis.values().sum();
    let backlog = total + 2 * CLIENTS as u64 - read_at_term;
    if slow {
        // The drain waited for what the slow business had not read yet.
        assert!(backlog > 10_000, "only {backlog} events left at SIGTERM");
    }
    let most: u64 = written.iter().sum();
    assert!(
        total > 0 && total <= most,
        "{total} delivered, {most} written"
    );
    println!(
        "SIGTERM with {CLIENTS} clients sending flat out: {in_redis:?} messages per connection, all in Redis and at the business, each followed by its close; {backlog} events unread by the business at SIGTERM"
    );
}
