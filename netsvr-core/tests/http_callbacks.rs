//! HTTP callbacks against a real HTTP server: OnOpen admission, refusals and failures,
//! OnMessage / OnClose bodies, order, outages and drops.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{
    Client, TestGateway, assert_silent, eventually, expect_text, recv_message, test_config,
};
use futures_util::SinkExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use netsvr_core::callbacks::{CallbackConfig, Callbacks};
use netsvr_core::{Gateway, InfoUpdate, SinkStatus, UniqId};
use netsvr_protocol::pb;
use prost::Message as _;
use tokio::net::TcpListener;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

// ---- A fake business: a hyper 1 server that records every request ----

/// What the business answers: status, body, and how long it waits first.
struct Answer(u16, Bytes, Duration);

type Respond = dyn Fn(usize, &str) -> Answer + Send + Sync;

/// One request as the business saw it.
#[derive(Debug, Clone)]
struct Hit {
    method: String,
    path: String,
    content_type: String,
    body: Bytes,
    status: u16,
}

struct Business {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Business {
    /// Serves on an ephemeral port; `respond(n, path)` answers the n-th request (from 0).
    async fn start(respond: impl Fn(usize, &str) -> Answer + Send + Sync + 'static) -> Self {
        Self::start_at("127.0.0.1:0".parse().unwrap(), respond).await
    }

    async fn start_at(
        addr: SocketAddr,
        respond: impl Fn(usize, &str) -> Answer + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let respond: Arc<Respond> = Arc::new(respond);
        let count = Arc::new(AtomicUsize::new(0));
        let state = (hits.clone(), respond, count);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                let service = service_fn(move |req| handle(state.clone(), req));
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Self { addr, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Bodies answered 2xx on `path`, decoded.
    fn delivered<M: prost::Message + Default>(&self, path: &str) -> Vec<M> {
        self.hits()
            .iter()
            .filter(|h| h.path == path && (200..300).contains(&h.status))
            .map(|h| M::decode(h.body.clone()).unwrap())
            .collect()
    }
}

async fn handle(
    (hits, respond, count): (Arc<Mutex<Vec<Hit>>>, Arc<Respond>, Arc<AtomicUsize>),
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let content_type = req
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let Answer(status, answer, delay) = respond(count.fetch_add(1, Ordering::SeqCst), &path);
    hits.lock().unwrap().push(Hit {
        method,
        path,
        content_type,
        body,
        status,
    });
    tokio::time::sleep(delay).await;
    Ok(Response::builder()
        .status(status)
        .body(Full::new(answer))
        .unwrap())
}

fn reply(code: u16) -> Answer {
    Answer(code, Bytes::new(), Duration::ZERO)
}

fn open_answer(answer: &pb::ConnOpenResp) -> Answer {
    Answer(200, answer.encode_to_vec().into(), Duration::ZERO)
}

/// A loopback port nobody listens on (bound, then released).
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

// ---- The gateway side ----

fn config(edit: impl FnOnce(&mut CallbackConfig)) -> Callbacks {
    let mut config = CallbackConfig::default();
    config.timeout = Duration::from_secs(2);
    config.retry_min = Duration::from_millis(10);
    config.retry_max = Duration::from_millis(100);
    edit(&mut config);
    Callbacks::new(config).unwrap()
}

/// A gateway with the callbacks' authenticator and sink.
fn start(callbacks: &Callbacks) -> Gateway {
    let mut builder = Gateway::builder().config(test_config());
    if let Some(auth) = callbacks.authenticator() {
        builder = builder.authenticator(auth);
    }
    if let Some(sink) = callbacks.sink() {
        builder = builder.sink(sink);
    }
    let (gateway, serve) = builder.build().unwrap();
    tokio::spawn(serve);
    gateway
}

async fn connect(gateway: &Gateway, query: &str, headers: &[(&'static str, &str)]) -> Client {
    let url = format!("ws://{}/netsvr{query}", gateway.local_addr());
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// The next frame must be a close with this code and reason.
async fn expect_close_reason(client: &mut Client, code: u16, reason: &str) {
    match recv_message(client).await {
        Message::Close(Some(frame)) => {
            assert_eq!(
                (u16::from(frame.code), frame.reason.as_str()),
                (code, reason)
            );
        }
        other => panic!("expected close {code}, got {other:?}"),
    }
}

fn http_status(gateway: &Gateway) -> SinkStatus {
    let all = gateway.sink_status();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].name, "http");
    all[0].clone()
}

/// Waits until the sink has counted `delivered` events and holds none, then returns its status
/// (the business records a request before the gateway reads the answer).
async fn settled(gateway: &Gateway, delivered: u64) -> SinkStatus {
    eventually("the sink to settle", || {
        let status = http_status(gateway);
        status.delivered == delivered && status.queued == 0
    })
    .await;
    http_status(gateway)
}

fn texts(transfers: &[pb::Transfer]) -> Vec<String> {
    transfers
        .iter()
        .map(|t| String::from_utf8(t.data.to_vec()).unwrap())
        .collect()
}

// ---- OnOpen ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_open_allow_posts_conn_open_and_applies_the_answer() {
    let business = Business::start(|_, _| {
        open_answer(&pb::ConnOpenResp {
            allow: true,
            new_session: "sess-1".into(),
            new_customer_id: "cust-1".into(),
            new_topics: vec!["t1".into(), "t2".into()],
            data: Bytes::from_static(b"welcome"),
            ..Default::default()
        })
    })
    .await;
    let callbacks = config(|c| c.on_open_url = business.url("/open"));
    let builder = Gateway::builder().config(test_config());
    let mut gw =
        TestGateway::start_with(builder.authenticator(callbacks.authenticator().unwrap())).await;
    let headers = [
        ("x-forwarded-for", "1.2.3.4, 10.0.0.1"),
        ("x-real-ip", "1.2.3.4"),
    ];
    let mut client = connect(&gw.gateway, "?token=abc&x=1", &headers).await;
    let uniq_id = gw.next_event().await.uniq_id();
    expect_text(&mut client, "welcome").await;

    let hits = business.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        (hits[0].method.as_str(), hits[0].path.as_str()),
        ("POST", "/open")
    );
    assert_eq!(hits[0].content_type, "application/x-protobuf");
    let MaybeTlsStream::Plain(tcp) = client.get_ref() else {
        panic!("not plain TCP")
    };
    let expected = pb::ConnOpen {
        uniq_id: uniq_id.to_string(),
        raw_query: "token=abc&x=1".into(),
        x_forwarded_for: "1.2.3.4, 10.0.0.1".into(),
        x_real_ip: "1.2.3.4".into(),
        remote_addr: tcp.local_addr().unwrap().to_string(),
    };
    assert_eq!(
        pb::ConnOpen::decode(hits[0].body.clone()).unwrap(),
        expected
    );

    let info = gw.gateway.conn_info(&uniq_id).unwrap().info;
    assert_eq!(info.customer_id.as_deref(), Some("cust-1"));
    assert_eq!(info.session, "sess-1");
    assert_eq!(info.topics, ["t1", "t2"]);
    assert_eq!(gw.gateway.customer_uniq_ids("cust-1"), [uniq_id]);
    assert_eq!(gw.gateway.topic_members("t2"), [uniq_id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_open_bare_allow_admits_a_guest_without_a_message() {
    let business = Business::start(|_, _| {
        open_answer(&pb::ConnOpenResp {
            allow: true,
            ..Default::default()
        })
    })
    .await;
    let gateway = start(&config(|c| c.on_open_url = business.url("/open")));
    let mut client = connect(&gateway, "", &[]).await;
    assert_silent(&mut client, Duration::from_millis(200)).await;
    let open = pb::ConnOpen::decode(business.hits()[0].body.clone()).unwrap();
    assert_eq!(
        (open.raw_query.as_str(), open.x_forwarded_for.as_str()),
        ("", "")
    );
    assert_eq!(open.x_real_ip, "");
    let details = gateway
        .conn_info(&open.uniq_id.parse::<UniqId>().unwrap())
        .unwrap();
    assert!(details.info.is_guest() && details.info.topics.is_empty());
    assert_eq!(gateway.stats().opened, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_open_deny_pushes_data_then_closes_1008() {
    let business = Business::start(|_, _| {
        open_answer(&pb::ConnOpenResp {
            allow: false,
            new_customer_id: "not-applied".into(),
            data: Bytes::from_static(b"go away"),
            ..Default::default()
        })
    })
    .await;
    let gateway = start(&config(|c| c.on_open_url = business.url("/open")));
    let mut client = connect(&gateway, "", &[]).await;
    expect_text(&mut client, "go away").await;
    expect_close_reason(&mut client, 1008, "refused").await;
    let stats = gateway.stats();
    assert_eq!((stats.opened, stats.refused, stats.customers), (0, 1, 0));
}

/// Connects through an OnOpen URL that fails; the client must get 1011 and nothing else.
async fn assert_open_fails(url: String) -> Duration {
    let gateway = start(&config(|c| {
        c.on_open_url = url;
        c.timeout = Duration::from_millis(300);
    }));
    let started = Instant::now();
    let mut client = connect(&gateway, "", &[]).await;
    expect_close_reason(&mut client, 1011, "callback failed").await;
    let elapsed = started.elapsed();
    let stats = gateway.stats();
    assert_eq!((stats.opened, stats.refused), (0, 1));
    elapsed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_open_http_500_closes_1011() {
    let business = Business::start(|_, _| {
        let allow = pb::ConnOpenResp {
            allow: true,
            data: Bytes::from_static(b"not with a 500"),
            ..Default::default()
        };
        Answer(500, allow.encode_to_vec().into(), Duration::ZERO)
    })
    .await;
    assert_open_fails(business.url("/open")).await;
    assert_eq!(business.hits().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_open_undecodable_body_closes_1011() {
    // Field 1 with wire type 7: no protobuf decoder accepts it.
    let business =
        Business::start(|_, _| Answer(200, Bytes::from_static(b"\x0fnope"), Duration::ZERO)).await;
    assert_open_fails(business.url("/open")).await;
    assert_eq!(business.hits().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_open_connection_refused_closes_1011() {
    assert_open_fails(format!("http://{}/open", closed_port())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_open_timeout_closes_1011() {
    // It would admit, but only after 1 s; the callback timeout is 300 ms.
    let business = Business::start(|_, _| {
        let mut answer = open_answer(&pb::ConnOpenResp {
            allow: true,
            data: Bytes::from_static(b"too late"),
            ..Default::default()
        });
        answer.2 = Duration::from_secs(1);
        answer
    })
    .await;
    let elapsed = assert_open_fails(business.url("/open")).await;
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(900), "{elapsed:?}");
}

// ---- OnMessage and OnClose ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_message_and_on_close_post_exact_bodies() {
    let business = Business::start(|_, path| match path {
        "/open" => open_answer(&pb::ConnOpenResp {
            allow: true,
            new_session: "sess-1".into(),
            new_customer_id: "cust-1".into(),
            new_topics: vec!["t1".into(), "t2".into()],
            data: Bytes::from_static(b"welcome"),
            ..Default::default()
        }),
        // A body on an ignored answer must not matter.
        "/close" => Answer(200, Bytes::from_static(b"ignored"), Duration::ZERO),
        _ => reply(204),
    })
    .await;
    let gateway = start(&config(|c| {
        c.on_open_url = business.url("/open");
        c.on_message_url = business.url("/message");
        c.on_close_url = business.url("/close");
    }));
    let mut client = connect(&gateway, "", &[]).await;
    expect_text(&mut client, "welcome").await;
    let uniq_id = pb::ConnOpen::decode(business.hits()[0].body.clone())
        .unwrap()
        .uniq_id;
    client.send(Message::text("hello")).await.unwrap();
    client
        .send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    eventually("two transfers", || business.hits().len() == 3).await;
    let update = InfoUpdate::new().session("sess-2").topics(["t3"]);
    assert!(gateway.update_info(&uniq_id.parse().unwrap(), update));
    client.close(None).await.unwrap();
    eventually("the close callback", || business.hits().len() == 4).await;

    let hits = business.hits();
    let paths: Vec<&str> = hits.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(paths, ["/open", "/message", "/message", "/close"]);
    assert!(
        hits.iter()
            .all(|h| h.method == "POST" && h.content_type == "application/x-protobuf")
    );
    let transfer = |data: &[u8]| pb::Transfer {
        uniq_id: uniq_id.clone(),
        customer_id: "cust-1".into(),
        session: "sess-1".into(),
        topics: vec!["t1".into(), "t2".into()],
        data: Bytes::copy_from_slice(data),
    };
    assert_eq!(
        business.delivered::<pb::Transfer>("/message"),
        [transfer(b"hello"), transfer(&[0, 1, 2, 255])]
    );
    let close = pb::ConnClose {
        uniq_id: uniq_id.clone(),
        customer_id: "cust-1".into(),
        session: "sess-2".into(),
        topics: vec!["t3".into()],
        reason: "client".into(),
    };
    assert_eq!(business.delivered::<pb::ConnClose>("/close"), [close]);
    let status = settled(&gateway, 3).await;
    assert_eq!((status.retried, status.dropped), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_message_keeps_each_clients_order_across_lanes() {
    const CLIENTS: usize = 4;
    const MESSAGES: usize = 200;
    // Every 7th answer is a little slow, so the lanes interleave.
    let business = Business::start(|n, _| {
        Answer(
            204,
            Bytes::new(),
            Duration::from_millis(u64::from(n % 7 == 0)),
        )
    })
    .await;
    let gateway = start(&config(|c| {
        c.on_message_url = business.url("/message");
        c.max_concurrency = 8;
    }));
    let mut senders = Vec::new();
    for c in 0..CLIENTS {
        let mut client = connect(&gateway, "", &[]).await;
        senders.push(tokio::spawn(async move {
            for n in 0..MESSAGES {
                client
                    .send(Message::text(format!("{c}:{n}")))
                    .await
                    .unwrap();
            }
            client
        }));
    }
    let _clients = futures_util::future::join_all(senders).await;
    eventually("every transfer", || {
        business.hits().len() == CLIENTS * MESSAGES
    })
    .await;
    let transfers = business.delivered::<pb::Transfer>("/message");
    for c in 0..CLIENTS {
        let mine: Vec<pb::Transfer> = transfers
            .iter()
            .filter(|t| t.data.starts_with(format!("{c}:").as_bytes()))
            .cloned()
            .collect();
        let expected: Vec<String> = (0..MESSAGES).map(|n| format!("{c}:{n}")).collect();
        assert_eq!(texts(&mine), expected, "client {c}");
        assert!(mine.iter().all(|t| t.uniq_id == mine[0].uniq_id));
    }
    let status = settled(&gateway, (CLIENTS * MESSAGES) as u64).await;
    assert_eq!((status.retried, status.dropped), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_message_outage_of_503s_loses_nothing() {
    const FAILURES: usize = 5;
    let business = Business::start(|n, _| reply(if n < FAILURES { 503 } else { 204 })).await;
    let gateway = start(&config(|c| {
        c.on_message_url = business.url("/message");
        c.max_concurrency = 8;
    }));
    let mut clients = Vec::new();
    for c in 0..2 {
        let mut client = connect(&gateway, "", &[]).await;
        for n in 0..50 {
            client
                .send(Message::text(format!("{c}:{n}")))
                .await
                .unwrap();
        }
        clients.push(client);
    }
    eventually("every transfer", || {
        business.delivered::<pb::Transfer>("/message").len() == 100
    })
    .await;
    // Each 503 is retried once more: exactly FAILURES extra requests, no duplicates.
    assert_eq!(business.hits().len(), 100 + FAILURES);
    let all = texts(&business.delivered::<pb::Transfer>("/message"));
    for c in 0..2 {
        let mine: Vec<&String> = all
            .iter()
            .filter(|t| t.starts_with(&format!("{c}:")))
            .collect();
        let expected: Vec<String> = (0..50).map(|n| format!("{c}:{n}")).collect();
        assert_eq!(mine, expected.iter().collect::<Vec<_>>(), "client {c}");
    }
    let status = settled(&gateway, 100).await;
    assert!(status.retried >= FAILURES as u64, "{status:?}");
    assert_eq!(status.dropped, 0);
    assert!(status.healthy);
    assert_eq!(gateway.stats().drops_sink, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_message_endpoint_down_then_started_loses_nothing() {
    let addr = closed_port();
    let gateway = start(&config(|c| {
        c.on_message_url = format!("http://{addr}/message")
    }));
    let mut client = connect(&gateway, "", &[]).await;
    for n in 0..30 {
        client.send(Message::text(n.to_string())).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = http_status(&gateway);
    assert!(!status.healthy && status.retried > 0, "{status:?}");
    assert_eq!(
        (status.delivered, status.queued, status.dropped),
        (0, 30, 0)
    );

    let business = Business::start_at(addr, |_, _| reply(204)).await;
    eventually("the backlog", || business.hits().len() == 30).await;
    let expected: Vec<String> = (0..30).map(|n| n.to_string()).collect();
    assert_eq!(texts(&business.delivered("/message")), expected);
    let status = settled(&gateway, 30).await;
    assert!(status.healthy, "{status:?}");
    assert_eq!(status.dropped, 0);
    assert_eq!(gateway.stats().drops_sink, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_message_tiny_buffer_counts_drops_exactly() {
    let addr = closed_port();
    let gateway = start(&config(|c| {
        c.on_message_url = format!("http://{addr}/message");
        c.max_concurrency = 1;
        c.buffer = 4;
    }));
    let mut client = connect(&gateway, "", &[]).await;
    // The first message is taken by the lane and retried; the buffer then holds 4 more.
    client.send(Message::text("0")).await.unwrap();
    eventually("a failed delivery", || http_status(&gateway).retried > 0).await;
    for n in 1..20 {
        client.send(Message::text(n.to_string())).await.unwrap();
    }
    // Every message is either held (in flight or buffered) or dropped; the gateway counts
    // a drop just after the sink refuses it.
    eventually("all 20 messages taken or dropped", || {
        let status = http_status(&gateway);
        status.queued + status.dropped as usize == 20
            && gateway.stats().drops_sink == status.dropped
    })
    .await;
    let status = http_status(&gateway);
    assert_eq!(
        (status.queued, status.dropped, status.delivered),
        (5, 15, 0)
    );
    assert_eq!(gateway.stats().drops_sink, 15);

    let business = Business::start_at(addr, |_, _| reply(200)).await;
    eventually("the kept five", || business.hits().len() == 5).await;
    assert_eq!(
        texts(&business.delivered("/message")),
        ["0", "1", "2", "3", "4"]
    );
    let status = settled(&gateway, 5).await;
    assert_eq!(status.dropped, 15);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(business.hits().len(), 5);
    assert_eq!(gateway.stats().drops_sink, 15);
}
