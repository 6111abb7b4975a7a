//! Connection lifecycle: heartbeats and idle closes, slow consumers, graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::raw::{self, RawConn};
use common::*;
use futures_util::{SinkExt, StreamExt};
use netsvr_core::config::DEFAULT_HEARTBEAT;
use netsvr_core::{
    Admission, AuthDecision, Authenticator, ChannelSink, CloseReason, EventKind, Gateway,
    GatewayBuilder, GatewayConfig, HandshakeRequest, ServeError, SlowConsumerPolicy, UniqId,
    async_trait,
};
use tokio::net::TcpSocket;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

const HEARTBEAT: &str = "~6YOt5rW35piO~";

/// A gateway whose serve future can be awaited.
fn start_joined(builder: GatewayBuilder) -> (TestGateway, JoinHandle<Result<(), ServeError>>) {
    let (sink, events) = ChannelSink::new(100_000);
    let (gateway, serve) = builder.sink(sink).build().unwrap();
    let serve = tokio::spawn(serve);
    (TestGateway { gateway, events }, serve)
}

/// Waits for a spawned `shutdown()` and then `serve` to end, serve without error.
async fn joined(shutdown: JoinHandle<()>, serve: JoinHandle<Result<(), ServeError>>) {
    tokio::time::timeout(WAIT, shutdown).await.unwrap().unwrap();
    tokio::time::timeout(WAIT, serve)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// Reads until the server ends the connection (answering its close on the way).
async fn drain(client: &mut Client) {
    while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, client.next()).await {}
}

/// Waits for the Close event of `id`, skipping other events; returns its reason.
async fn close_of(gw: &mut TestGateway, id: UniqId) -> CloseReason {
    loop {
        let event = gw.next_event().await;
        if event.uniq_id() != id {
            continue;
        }
        match event.kind {
            EventKind::Close { reason } => return reason,
            other => panic!("expected Close of {id}, got {other:?}"),
        }
    }
}

fn heartbeat_config(interval_ms: u64) -> GatewayConfig {
    let mut config = test_config();
    config.heartbeat_interval = Duration::from_millis(interval_ms);
    config.close_timeout = Duration::from_millis(500);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_gets_pong_and_counts_as_a_heartbeat() {
    let mut gw = TestGateway::start(test_config()).await;
    let (mut client, _) = gw.connect().await;
    client.send(Message::Ping("hb-1".into())).await.unwrap();
    let reply = tokio::time::timeout(WAIT, client.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply, Message::Pong("hb-1".into()));
    assert_eq!(gw.gateway.stats().heartbeats, 1);
    assert!(gw.events.try_recv().is_none(), "a ping is not an event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_literal_is_counted_not_forwarded() {
    assert_eq!(HEARTBEAT.as_bytes(), DEFAULT_HEARTBEAT);
    let mut gw = TestGateway::start(test_config()).await;
    let (mut client, _) = gw.connect().await;
    send_text(&mut client, HEARTBEAT).await;
    send_text(&mut client, HEARTBEAT).await;
    // Near misses are ordinary messages.
    send_text(&mut client, &format!("{HEARTBEAT} ")).await;
    send_text(&mut client, "after").await;
    for expected in [format!("{HEARTBEAT} "), "after".to_owned()] {
        let event = gw.next_event().await;
        match &event.kind {
            EventKind::Message { payload, .. } => assert_eq!(payload, &expected),
            other => panic!("{other:?}"),
        }
    }
    let stats = gw.gateway.stats();
    assert_eq!((stats.heartbeats, stats.messages_in), (2, 2));
    // Nothing is sent back for a heartbeat.
    assert_silent(&mut client, Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_is_closed_with_1001() {
    let mut gw = TestGateway::start(heartbeat_config(300)).await;
    let (mut client, id) = gw.connect().await;
    let opened = Instant::now();
    assert_eq!(recv_close(&mut client).await, 1001);
    let elapsed = opened.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_millis(1500),
        "closed after {elapsed:?}"
    );
    drain(&mut client).await;
    assert_eq!(close_of(&mut gw, id).await, CloseReason::Idle);
    assert!(!gw.gateway.is_online(&id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_a_connection_open_past_the_interval() {
    let mut gw = TestGateway::start(heartbeat_config(300)).await;
    let (mut client, id) = gw.connect().await;
    let until = Instant::now() + Duration::from_millis(1000);
    let mut sent = 0;
    while Instant::now() < until {
        send_text(&mut client, HEARTBEAT).await;
        sent += 1;
        if let Ok(msg) = tokio::time::timeout(Duration::from_millis(100), client.next()).await {
            panic!("a heartbeating client got {msg:?}");
        }
    }
    assert!(gw.gateway.is_online(&id));
    assert_eq!(gw.gateway.stats().heartbeats, sent);
    assert!(
        gw.events.try_recv().is_none(),
        "a heartbeat became an event"
    );
    // Once it stops, the idle close comes.
    assert_eq!(recv_close(&mut client).await, 1001);
    drain(&mut client).await;
    assert_eq!(close_of(&mut gw, id).await, CloseReason::Idle);
}

/// A raw client with a 4 KiB receive buffer that never reads.
async fn stalled_client(gw: &mut TestGateway) -> (RawConn, UniqId) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(gw.gateway.local_addr()).await.unwrap();
    let conn = raw::upgrade_with(RawConn::from_stream(stream), "/netsvr", "", &[]).await;
    let event = gw.next_event().await;
    assert!(matches!(event.kind, EventKind::Open), "{event:?}");
    (conn, event.uniq_id())
}

/// Broadcasts 16 KiB payloads one at a time, each read by `reader` before the next, until
/// `done` holds (then ten more); returns how many were sent.
async fn broadcast_until(
    gw: &TestGateway,
    reader: &mut Client,
    done: impl Fn(&Gateway) -> bool,
) -> usize {
    let mut extra = None;
    for i in 0..4000_usize {
        let payload = format!("{i:08}{}", "x".repeat(16 * 1024 - 8));
        gw.gateway.broadcast(&payload);
        let got = recv_text(reader).await;
        assert!(got == payload, "reader got message {} for {i}", &got[..8]);
        if extra.is_none() && done(&gw.gateway) {
            extra = Some(i + 10);
        }
        if extra == Some(i) {
            return i + 1;
        }
    }
    panic!("the condition never held after 4000 broadcasts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_drop_policy_drops_for_it_alone() {
    let mut config = test_config();
    config.outbound_queue_capacity = 4;
    config.slow_consumer = SlowConsumerPolicy::Drop;
    let mut gw = TestGateway::start(config).await;
    let (_stalled, stalled_id) = stalled_client(&mut gw).await;
    let (mut reader, reader_id) = gw.connect().await;
    broadcast_until(&gw, &mut reader, |g| g.stats().drops_slow_consumer > 0).await;
    let drops = gw.gateway.stats().drops_slow_consumer;
    assert!(drops >= 10, "only {drops} drops after ten more broadcasts");
    assert!(
        gw.gateway.is_online(&stalled_id),
        "the drop policy closed the client"
    );
    assert!(gw.gateway.is_online(&reader_id));
    assert!(gw.events.try_recv().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_close_policy_closes_it_alone() {
    let mut config = test_config();
    config.outbound_queue_capacity = 4;
    config.slow_consumer = SlowConsumerPolicy::Close;
    config.close_timeout = Duration::from_millis(300);
    let mut gw = TestGateway::start(config).await;
    let (_stalled, stalled_id) = stalled_client(&mut gw).await;
    let (mut reader, reader_id) = gw.connect().await;
    broadcast_until(&gw, &mut reader, |g| g.stats().drops_slow_consumer > 0).await;
    assert_eq!(
        close_of(&mut gw, stalled_id).await,
        CloseReason::SlowConsumer
    );
    assert!(!gw.gateway.is_online(&stalled_id));
    // The reader goes on as before.
    assert!(gw.gateway.is_online(&reader_id));
    assert_eq!(gw.gateway.broadcast("still here"), 1);
    assert_eq!(recv_text(&mut reader).await, "still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_past_close_timeout_for_a_stalled_client() {
    let mut config = test_config();
    config.outbound_queue_capacity = 4;
    config.close_timeout = Duration::from_millis(300);
    config.shutdown_timeout = Duration::from_secs(4);
    let (mut gw, serve) = start_joined(Gateway::builder().config(config));
    let (_stalled, stalled_id) = stalled_client(&mut gw).await;
    let (mut reader, _) = gw.connect().await;
    broadcast_until(&gw, &mut reader, |g| g.stats().drops_slow_consumer > 0).await;
    let gateway = gw.gateway.clone();
    let started = Instant::now();
    let shutdown = tokio::spawn(async move { gateway.shutdown().await });
    assert_eq!(recv_close(&mut reader).await, 1001);
    drain(&mut reader).await;
    assert_eq!(close_of(&mut gw, stalled_id).await, CloseReason::Shutdown);
    joined(shutdown, serve).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(2),
        "shutdown took {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_client_with_1001_and_serve_returns() {
    let mut config = test_config();
    config.close_timeout = Duration::from_secs(1);
    let (mut gw, serve) = start_joined(Gateway::builder().config(config));
    let addr = gw.gateway.local_addr();
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(gw.connect().await);
    }
    // Queued frames go out before the close.
    for (_, id) in &clients {
        assert!(gw.gateway.send(id, "last words"));
    }
    let gateway = gw.gateway.clone();
    let started = Instant::now();
    let shutdown = tokio::spawn(async move { gateway.shutdown().await });
    for (client, _) in &mut clients {
        assert_eq!(recv_text(client).await, "last words");
        assert_eq!(recv_close(client).await, 1001);
        drain(client).await;
    }
    // The shutdown flushes the sink: it ends once the Close events are taken.
    let mut reasons = Vec::new();
    for _ in 0..3 {
        match gw.next_event().await.kind {
            EventKind::Close { reason } => reasons.push(reason),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(reasons, [CloseReason::Shutdown; 3]);
    joined(shutdown, serve).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(gw.gateway.is_shutting_down());
    assert_eq!(gw.gateway.connection_count(), 0);
    assert!(gw.events.try_recv().is_none());
    // The listener is gone.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    // A second shutdown returns at once.
    tokio::time::timeout(Duration::from_secs(1), gw.gateway.shutdown())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_during_the_drain_is_503() {
    let mut config = test_config();
    config.close_timeout = Duration::from_millis(1500);
    let (mut gw, serve) = start_joined(Gateway::builder().config(config));
    let addr = gw.gateway.local_addr();
    // This client never answers the close, so the drain lasts `close_timeout`.
    let mut holder = raw::upgrade(addr, "/netsvr").await;
    let holder_id = gw.next_event().await.uniq_id();
    let gateway = gw.gateway.clone();
    let shutdown = tokio::spawn(async move { gateway.shutdown().await });
    assert_eq!(holder.expect_close().await.close_code(), 1001);
    assert!(gw.gateway.is_shutting_down());
    let mut late = RawConn::connect(addr).await;
    let head = late.request(&raw::upgrade_request("/netsvr", "")).await;
    assert_eq!(head.status, 503, "{}", head.text);
    assert!(
        !shutdown.is_finished(),
        "the drain ended before the late handshake"
    );
    assert_eq!(close_of(&mut gw, holder_id).await, CloseReason::Shutdown);
    joined(shutdown, serve).await;
    assert!(gw.events.try_recv().is_none());
}

/// Holds every handshake in the authenticator until released.
#[derive(Default)]
struct Gate {
    entered: Notify,
    release: Notify,
}

struct GateAuth(Arc<Gate>);

#[async_trait]
impl Authenticator for GateAuth {
    async fn authenticate(&self, _request: &HandshakeRequest) -> AuthDecision {
        self.0.entered.notify_one();
        self.0.release.notified().await;
        AuthDecision::Allow(Admission::new())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_admitted_after_the_drain_began_is_closed_1012() {
    let auth = Arc::new(Gate::default());
    let (mut gw, serve) = start_joined(
        Gateway::builder()
            .config(test_config())
            .authenticator(GateAuth(auth.clone())),
    );
    let url = gw.url("");
    let connecting = tokio::spawn(async move { tokio_tungstenite::connect_async(url).await });
    tokio::time::timeout(WAIT, auth.entered.notified())
        .await
        .unwrap();
    let gateway = gw.gateway.clone();
    let shutdown = tokio::spawn(async move { gateway.shutdown().await });
    while !gw.gateway.is_shutting_down() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    auth.release.notify_one();
    let (mut client, response) = tokio::time::timeout(WAIT, connecting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(recv_close(&mut client).await, 1012);
    drain(&mut client).await;
    joined(shutdown, serve).await;
    assert!(
        gw.events.try_recv().is_none(),
        "a refused client produced an event"
    );
    assert_eq!(gw.gateway.stats().opened, 0);
}
