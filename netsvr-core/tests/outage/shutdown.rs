//! A graceful shutdown while clients send flat out: every message the gateway accepted
//! (`Stats::messages_in`), then each connection's close, reaches both the Redis list and the
//! registered business process, once and in order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use netsvr_core::redis_queue::{KeyKind, RedisConfig, RedisSink, Target};
use netsvr_core::worker::{WorkerConfig, WorkerPorts};
use netsvr_core::{EventSink, FanoutSink, Gateway};
use netsvr_protocol::cmd::events::ALL;
use netsvr_protocol::{Codec, Frame, ToBusiness, ToGateway, pb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::backends;
use crate::check::{self, Ev, PerConn};

const CLIENTS: usize = 4;
/// The sinks' bounds: far more than the clients send before the shutdown completes.
const BOUND: usize = 1 << 18;

/// A business process on the worker port recording every event, by connection.
async fn business(worker: std::net::SocketAddr) -> (Arc<Mutex<PerConn>>, JoinHandle<()>) {
    let mut stream = TcpStream::connect(worker).await.unwrap();
    let mut out = BytesMut::new();
    ToGateway::Register(pb::RegisterReq { events: ALL }).encode(&mut out);
    stream.write_all(&out).await.unwrap();
    let seen = Arc::new(Mutex::new(PerConn::new()));
    let log = seen.clone();
    let (registered_tx, registered) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut registered_tx = Some(registered_tx);
        let (codec, mut buf) = (Codec::default(), BytesMut::new());
        loop {
            while let Some(Frame::Command { cmd, body }) = codec.decode(&mut buf).unwrap() {
                let (id, ev) = match ToBusiness::decode(cmd, body).unwrap() {
                    ToBusiness::Register(_) => {
                        let _ = registered_tx.take().map(|tx| tx.send(()));
                        continue;
                    }
                    ToBusiness::ConnOpen(o) => (o.uniq_id, Ev::Open),
                    ToBusiness::Transfer(t) => {
                        let n = std::str::from_utf8(&t.data).unwrap().parse().unwrap();
                        (t.uniq_id, Ev::Msg(n))
                    }
                    ToBusiness::ConnClose(c) => (c.uniq_id, Ev::Close),
                    other => panic!("unexpected {other:?}"),
                };
                log.lock().unwrap().entry(id).or_default().push(ev);
            }
            if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                return;
            }
        }
    });
    registered.await.unwrap();
    (seen, task)
}

/// A client sending `0`, `1`, … flat out until the gateway closes it; returns how many it
/// wrote and the close code it got.
async fn flat_out(gateway: &Gateway) -> JoinHandle<(u64, u16)> {
    let url = format!("ws://{}/netsvr", gateway.local_addr());
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let (mut tx, mut rx) = ws.split();
    tokio::spawn(async move {
        let written = AtomicU64::new(0);
        let writer = async {
            for n in 0u64.. {
                if tx.feed(Message::text(n.to_string())).await.is_err() {
                    break;
                }
                written.store(n + 1, Ordering::Relaxed);
                if n % 64 == 63 && tx.flush().await.is_err() {
                    break;
                }
            }
            written.load(Ordering::Relaxed)
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
        tokio::pin!(writer);
        let code = tokio::select! {
            code = reader => code,
            n = &mut writer => panic!("the writer stopped after {n} before any close"),
        };
        (written.load(Ordering::Relaxed), code)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_delivers_every_accepted_message_and_close() {
    if backends::try_connect(backends::SHARED_REDIS)
        .await
        .is_none()
    {
        return backends::unavailable("Redis is not running on 127.0.0.1:6379");
    }
    let key = backends::unique("shutdown");
    let mut redis = RedisConfig::default();
    redis.url = backends::SHARED_REDIS.to_owned();
    let target = Target::new(key.as_str(), KeyKind::List);
    (redis.open, redis.message, redis.close) = (target.clone(), target.clone(), target);
    redis.buffer = BOUND;
    let mut ports = WorkerConfig::default();
    ports.worker_listen = "127.0.0.1:0".parse().unwrap();
    ports.task_listen = "127.0.0.1:0".parse().unwrap();
    ports.send_queue_capacity = BOUND;
    let ports = WorkerPorts::bind(ports).unwrap();
    let worker = ports.worker_addr().unwrap();
    let sinks: Vec<Arc<dyn EventSink>> = vec![
        Arc::new(RedisSink::start(redis).unwrap()),
        Arc::new(ports.sink()),
    ];
    let mut config = crate::common::test_config();
    config.shutdown_timeout = Duration::from_secs(20);
    let (gateway, serve) = Gateway::builder()
        .config(config)
        .node_addr(ports.node_addr())
        .sink(FanoutSink::new(sinks))
        .build()
        .unwrap();
    let serve = tokio::spawn(serve);
    tokio::spawn(ports.serve(gateway.clone()));
    let (business, _reader) = business(worker).await;

    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(flat_out(&gateway).await);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while gateway.stats().messages_in < 5_000 {
        assert!(Instant::now() < deadline, "clients are not sending");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(clients.iter().all(|c| !c.is_finished()));
    tokio::time::timeout(Duration::from_secs(30), gateway.shutdown())
        .await
        .expect("shutdown within its timeout");
    tokio::time::timeout(Duration::from_secs(5), serve)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let mut written = Vec::new();
    for c in clients {
        let (n, code) = tokio::time::timeout(Duration::from_secs(10), c)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(code, 1001, "closed as going away");
        written.push(n);
    }
    let stats = gateway.stats();
    let accepted = stats.messages_in;
    assert_eq!(stats.closed, CLIENTS as u64);

    // Redis: the shutdown flushed the sink, so the list is complete now.
    let in_redis = backends::list_oldest_first(backends::SHARED_REDIS, &key).await;
    let in_redis = check::queue_payloads(in_redis.iter().map(Vec::as_slice));
    // The business: written before the shutdown returned; read by now or shortly.
    let deadline = Instant::now() + Duration::from_secs(10);
    let events = accepted + 2 * CLIENTS as u64;
    let at_business = loop {
        let seen = business.lock().unwrap().clone();
        let n: usize = seen.values().map(Vec::len).sum();
        if n as u64 >= events || Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for (name, got) in [("redis", &in_redis), ("business", &at_business)] {
        assert_eq!(got.len(), CLIENTS, "{name}: connections");
        let mut total = 0;
        let mut per_conn = Vec::new();
        for (id, events) in got {
            let n = events.iter().filter(|e| matches!(e, Ev::Msg(_))).count() as u64;
            let want = check::want(n, true);
            check::at_least_once_in_order(&format!("{name} {id}"), events, &want, 0);
            total += n;
            per_conn.push(n);
        }
        assert_eq!(total, accepted, "{name}: every accepted message, no more");
        per_conn.sort_unstable();
        let mut most = written.clone();
        most.sort_unstable();
        assert!(
            per_conn.iter().zip(&most).all(|(g, w)| g <= w),
            "{per_conn:?} vs written {most:?}"
        );
    }
    let status = gateway.sink_status();
    assert!(
        status.iter().all(|s| s.dropped == 0 && s.queued == 0),
        "{status:?}"
    );
    assert_eq!(stats.drops_sink, 0);
    println!(
        "shutdown with {CLIENTS} clients sending flat out: {accepted} messages accepted, \
         {written:?} written, all {accepted} and {CLIENTS} closes in Redis and at the business"
    );
    let mut conn = backends::try_connect(backends::SHARED_REDIS).await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
}
