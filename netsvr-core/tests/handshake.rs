//! The HTTP upgrade: path, Origin and header checks, timeouts, the authenticator and limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::raw::{self, RawConn, text};
use common::*;
use netsvr_core::{
    Admission, AuthDecision, Authenticator, Bytes, EventKind, Gateway, GovernorLimiter,
    HandshakeRequest, Limits, Rejection, async_trait,
};

/// A request with the given method, target and header lines.
fn request(method: &str, target: &str, headers: &[&str]) -> String {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for header in headers {
        out.push_str(header);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out
}

const UPGRADE: &str = "Upgrade: websocket";
const CONNECTION: &str = "Connection: Upgrade";
const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
const VERSION: &str = "Sec-WebSocket-Version: 13";

/// The status of one request on a fresh connection.
async fn status(gw: &TestGateway, request: &str) -> u16 {
    raw::http(gw.gateway.local_addr(), request)
        .await
        .expect("connection closed without a response")
        .status
}

/// Asserts no event arrives for a short while.
async fn assert_no_event(gw: &mut TestGateway) {
    if let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(150), gw.events.recv()).await
    {
        panic!("unexpected event {event:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_get_on_the_path_is_200() {
    let gw = TestGateway::start(test_config()).await;
    assert_eq!(status(&gw, &request("GET", "/netsvr", &[])).await, 200);
    assert_eq!(
        status(&gw, &request("GET", "/netsvr?probe=1", &[])).await,
        200
    );
    assert_eq!(status(&gw, &request("HEAD", "/netsvr", &[])).await, 200);
    assert_eq!(gw.gateway.stats().opened, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_path_is_404() {
    let gw = TestGateway::start(test_config()).await;
    for target in [
        "/",
        "/other",
        "/netsvr/",
        "/netsvrx",
        "/NETSVR",
        "/x?/netsvr",
    ] {
        assert_eq!(
            status(&gw, &request("GET", target, &[])).await,
            404,
            "{target}"
        );
    }
    // An upgrade to a wrong path is refused too.
    let upgrade = request("GET", "/other", &[UPGRADE, CONNECTION, KEY, VERSION]);
    assert_eq!(status(&gw, &upgrade).await, 404);
}

/// Records what the authenticator was given and decides by the `mode` query parameter.
#[derive(Default, Clone)]
struct ModeAuth {
    seen: Arc<Mutex<Vec<(String, String, String)>>>,
}

#[async_trait]
impl Authenticator for ModeAuth {
    async fn authenticate(&self, request: &HandshakeRequest) -> AuthDecision {
        self.seen.lock().unwrap().push((
            request.path.clone(),
            request.query.clone(),
            request.header("x-test").to_owned(),
        ));
        match request.query_param("mode") {
            Some("allow") => AuthDecision::Allow(
                Admission::new()
                    .customer("c1")
                    .session("s1")
                    .topics(["t1", "t2"])
                    .message("welcome"),
            ),
            Some("status") => AuthDecision::Reject(Rejection::Status(401)),
            Some("close") => AuthDecision::Reject(Rejection::Close {
                code: 1008,
                reason: "denied".to_owned(),
                message: Some(Bytes::from_static(b"go away")),
            }),
            Some("slow") => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                AuthDecision::Allow(Admission::new())
            }
            _ => AuthDecision::Allow(Admission::new()),
        }
    }
}

async fn with_auth(config: netsvr_core::GatewayConfig) -> (TestGateway, ModeAuth) {
    let auth = ModeAuth::default();
    let builder = Gateway::builder()
        .config(config)
        .authenticator(auth.clone());
    (TestGateway::start_with(builder).await, auth)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_match_ignores_the_query_which_reaches_auth_and_open() {
    let (mut gw, auth) = with_auth(test_config()).await;
    let conn = RawConn::connect(gw.gateway.local_addr()).await;
    let mut conn = raw::upgrade_with(conn, "/netsvr?x=1&y=a%20b", "X-Test: hello\r\n", &[]).await;
    let event = gw.next_event().await;
    assert!(matches!(event.kind, EventKind::Open), "{event:?}");
    assert_eq!(event.conn.meta.raw_query, "x=1&y=a%20b");
    assert_eq!(
        auth.seen.lock().unwrap().as_slice(),
        [(
            "/netsvr".to_owned(),
            "x=1&y=a%20b".to_owned(),
            "hello".to_owned()
        )]
    );
    // The connection works.
    conn.send(&text(b"hi")).await;
    let event = gw.next_event().await;
    assert!(matches!(&event.kind, EventKind::Message { payload, .. } if payload == "hi"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_header_list_with_upgrade_is_accepted() {
    let mut gw = TestGateway::start(test_config()).await;
    let mut conn = RawConn::connect(gw.gateway.local_addr()).await;
    let head = conn
        .request(&request(
            "GET",
            "/netsvr",
            &[UPGRADE, "Connection: keep-alive, Upgrade", KEY, VERSION],
        ))
        .await;
    assert_eq!(head.status, 101, "{}", head.text);
    assert_eq!(head.header("sec-websocket-accept"), Some(raw::ACCEPT));
    assert!(matches!(gw.next_event().await.kind, EventKind::Open));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_must_match_exactly_when_a_list_is_set() {
    let mut config = test_config();
    config.allowed_origins = vec!["http://a.example".to_owned()];
    let mut gw = TestGateway::start(config).await;
    let with_origin = |origin: &str| {
        request(
            "GET",
            "/netsvr",
            &[UPGRADE, CONNECTION, KEY, VERSION, origin],
        )
    };
    for refused in [
        "Origin: http://a.example.evil",
        "Origin: http://evil.example",
        "Origin: https://a.example",
        "Origin: http://A.example",
        "Origin: http://a.example/",
        "X-No-Origin: 1",
    ] {
        assert_eq!(status(&gw, &with_origin(refused)).await, 403, "{refused}");
    }
    assert_no_event(&mut gw).await;
    assert_eq!(
        status(&gw, &with_origin("Origin: http://a.example")).await,
        101
    );
    assert!(matches!(gw.next_event().await.kind, EventKind::Open));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_origin_is_accepted_when_the_list_is_empty() {
    let mut gw = TestGateway::start(test_config()).await;
    let mut open = Vec::new();
    for origin in [
        "Origin: http://evil.example",
        "Origin: null",
        "X-No-Origin: 1",
    ] {
        let req = request(
            "GET",
            "/netsvr",
            &[UPGRADE, CONNECTION, KEY, VERSION, origin],
        );
        let mut conn = RawConn::connect(gw.gateway.local_addr()).await;
        assert_eq!(conn.request(&req).await.status, 101, "{origin}");
        assert!(matches!(gw.next_event().await.kind, EventKind::Open));
        open.push(conn);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_upgrade_requests_are_refused_with_the_right_status() {
    let mut gw = TestGateway::start(test_config()).await;
    let missing_key = request("GET", "/netsvr", &[UPGRADE, CONNECTION, VERSION]);
    assert_eq!(status(&gw, &missing_key).await, 400);
    for bad_key in [
        "Sec-WebSocket-Key: abc",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=!",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==",
    ] {
        let req = request("GET", "/netsvr", &[UPGRADE, CONNECTION, bad_key, VERSION]);
        assert_eq!(status(&gw, &req).await, 400, "{bad_key}");
    }

    let v8 = request(
        "GET",
        "/netsvr",
        &[UPGRADE, CONNECTION, KEY, "Sec-WebSocket-Version: 8"],
    );
    let head = raw::http(gw.gateway.local_addr(), &v8).await.unwrap();
    assert_eq!(head.status, 426, "{}", head.text);
    assert_eq!(
        head.header("sec-websocket-version"),
        Some("13"),
        "{}",
        head.text
    );
    let no_version = request("GET", "/netsvr", &[UPGRADE, CONNECTION, KEY]);
    assert_eq!(status(&gw, &no_version).await, 426);

    let post = request(
        "POST",
        "/netsvr",
        &[UPGRADE, CONNECTION, KEY, VERSION, "Content-Length: 0"],
    );
    assert_eq!(status(&gw, &post).await, 400);

    assert_no_event(&mut gw).await;
    assert_eq!(gw.gateway.stats().opened, 0);
    assert!(gw.gateway.stats().refused >= 8, "{:?}", gw.gateway.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_head_is_never_upgraded() {
    let mut config = test_config();
    config.max_header_size = 1024;
    let mut gw = TestGateway::start(config).await;
    // Over max_header_size but under hyper's 8 KiB buffer: the gateway's own check.
    let pad = format!("X-Pad: {}", "p".repeat(3000));
    let req = request("GET", "/netsvr", &[UPGRADE, CONNECTION, KEY, VERSION, &pad]);
    assert_eq!(status(&gw, &req).await, 431);
    // Far over any buffer: 431 or a closed connection, never a 101.
    let pad = format!("X-Pad: {}", "p".repeat(64 * 1024));
    let req = request("GET", "/netsvr", &[UPGRADE, CONNECTION, KEY, VERSION, &pad]);
    if let Some(head) = raw::http(gw.gateway.local_addr(), &req).await {
        assert_eq!(head.status, 431, "{}", head.text);
    }
    // Many headers that together are too large.
    let many: Vec<String> = (0..60)
        .map(|i| format!("X-H{i}: {}", "v".repeat(40)))
        .collect();
    let mut headers: Vec<&str> = vec![UPGRADE, CONNECTION, KEY, VERSION];
    headers.extend(many.iter().map(String::as_str));
    assert_eq!(status(&gw, &request("GET", "/netsvr", &headers)).await, 431);
    assert_no_event(&mut gw).await;
    // A head under the limit still upgrades.
    let req = request("GET", "/netsvr", &[UPGRADE, CONNECTION, KEY, VERSION]);
    assert_eq!(status(&gw, &req).await, 101);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshake_is_dropped_after_the_timeout() {
    let mut config = test_config();
    config.handshake_timeout = Duration::from_millis(300);
    let gw = TestGateway::start(config).await;
    let addr = gw.gateway.local_addr();

    // Half a request head, then nothing.
    let mut half = RawConn::connect(addr).await;
    half.send(b"GET /netsvr HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        .await;
    // Nothing at all.
    let mut silent = RawConn::connect(addr).await;
    let started = Instant::now();
    let (half_bytes, silent_bytes) = tokio::join!(half.read_to_end(), silent.read_to_end());
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(2),
        "closed after {elapsed:?}"
    );
    for bytes in [half_bytes, silent_bytes] {
        assert!(
            !bytes.starts_with(b"HTTP/1.1 101"),
            "{:?}",
            String::from_utf8_lossy(&bytes)
        );
    }
    assert_eq!(gw.gateway.stats().opened, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_allow_binds_customer_session_topics_and_sends_the_first_message() {
    let (mut gw, _auth) = with_auth(test_config()).await;
    let (mut client, _) = tokio_tungstenite::connect_async(gw.url("?mode=allow"))
        .await
        .unwrap();
    let event = gw.next_event().await;
    assert!(matches!(event.kind, EventKind::Open), "{event:?}");
    let id = event.uniq_id();
    let info = &event.conn.info;
    assert_eq!(info.customer_id.as_deref(), Some("c1"));
    assert_eq!(info.session, "s1");
    assert_eq!(info.topics, ["t1", "t2"]);
    // The first message is the first thing the client gets.
    assert!(gw.gateway.send(&id, "second"));
    assert_eq!(recv_text(&mut client).await, "welcome");
    assert_eq!(recv_text(&mut client).await, "second");
    // The tables know the bindings.
    assert_eq!(gw.gateway.customer_uniq_ids("c1"), [id]);
    assert_eq!(gw.gateway.topic_members("t1"), [id]);
    assert_eq!(gw.gateway.topic_members("t2"), [id]);
    assert_eq!(gw.gateway.send_to_customer("c1", "to-customer"), 1);
    assert_eq!(recv_text(&mut client).await, "to-customer");
    assert_eq!(gw.gateway.publish(&["t2"], "to-topic"), 1);
    assert_eq!(recv_text(&mut client).await, "to-topic");
    let details = gw.gateway.conn_info(&id).unwrap();
    assert_eq!(details.info.session, "s1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_status_rejection_is_that_http_status() {
    let (mut gw, auth) = with_auth(test_config()).await;
    let req = request(
        "GET",
        "/netsvr?mode=status",
        &[UPGRADE, CONNECTION, KEY, VERSION],
    );
    assert_eq!(status(&gw, &req).await, 401);
    assert_eq!(auth.seen.lock().unwrap().len(), 1);
    assert_no_event(&mut gw).await;
    assert_eq!(gw.gateway.stats().refused, 1);
    assert_eq!(gw.gateway.connection_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_close_rejection_sends_the_message_then_closes_1008() {
    let (mut gw, _auth) = with_auth(test_config()).await;
    let mut conn = raw::upgrade(gw.gateway.local_addr(), "/netsvr?mode=close").await;
    assert_eq!(conn.expect_data().await, b"go away");
    let closing = conn.expect_close().await;
    assert_eq!(closing.close_code(), 1008);
    assert_eq!(closing.close_reason(), "denied");
    conn.send(&raw::close(1008, b"")).await;
    conn.expect_eof().await;
    // A refused client is never opened.
    assert_no_event(&mut gw).await;
    assert_eq!(gw.gateway.stats().opened, 0);

    // The same through a real client.
    let (mut client, _) = tokio_tungstenite::connect_async(gw.url("?mode=close"))
        .await
        .unwrap();
    assert_eq!(recv_text(&mut client).await, "go away");
    assert_eq!(recv_close(&mut client).await, 1008);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_slower_than_the_handshake_timeout_is_503() {
    let mut config = test_config();
    config.handshake_timeout = Duration::from_secs(1);
    let (mut gw, _auth) = with_auth(config).await;
    let req = request(
        "GET",
        "/netsvr?mode=slow",
        &[UPGRADE, CONNECTION, KEY, VERSION],
    );
    let started = Instant::now();
    assert_eq!(status(&gw, &req).await, 503);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_no_event(&mut gw).await;
    assert_eq!(gw.gateway.connection_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_refuses_the_next_client_with_1013() {
    let mut config = test_config();
    config.max_connections = 2;
    let mut gw = TestGateway::start(config).await;
    let (mut first, _) = gw.connect().await;
    let (_second, _) = gw.connect().await;
    let mut third = raw::upgrade(gw.gateway.local_addr(), "/netsvr").await;
    let closing = third.expect_close().await;
    assert_eq!(closing.close_code(), 1013);
    assert_no_event(&mut gw).await;
    assert_eq!(gw.gateway.connection_count(), 2);

    // A freed place is taken again.
    first.close(None).await.unwrap();
    let event = gw.next_event().await;
    assert!(matches!(event.kind, EventKind::Close { .. }), "{event:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_again, _) = gw.connect().await;
    assert_eq!(gw.gateway.connection_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_rate_limit_refuses_a_burst_with_1013_and_can_be_swapped() {
    let mut gw = with_limits(Limits::unlimited().opens_per_sec(1)).await;
    let addr = gw.gateway.local_addr();
    let (_first, _) = gw.connect().await;
    let mut second = raw::upgrade(addr, "/netsvr").await;
    assert_eq!(second.expect_close().await.close_code(), 1013);
    assert_no_event(&mut gw).await;

    // Lifting the limit at runtime admits at once.
    assert!(gw.gateway.limiter().set_limits(Limits::unlimited()));
    assert_eq!(gw.gateway.limiter().limits(), Some(Limits::unlimited()));
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(gw.connect().await);
    }
    // Putting it back limits again.
    assert!(
        gw.gateway
            .limiter()
            .set_limits(Limits::unlimited().opens_per_sec(1))
    );
    open.push(gw.connect().await);
    let mut refused = raw::upgrade(addr, "/netsvr").await;
    assert_eq!(refused.expect_close().await.close_code(), 1013);
    assert_eq!(gw.gateway.connection_count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_connection_message_limit_drops_and_counts() {
    let mut gw = with_limits(Limits::unlimited().per_connection(3, Duration::from_secs(10))).await;
    let (mut client, _) = gw.connect().await;
    for i in 1..=4 {
        send_text(&mut client, &format!("m{i}")).await;
    }
    for i in 1..=3 {
        let event = gw.next_event().await;
        match &event.kind {
            EventKind::Message { payload, .. } => assert_eq!(payload, &format!("m{i}")),
            other => panic!("{other:?}"),
        }
    }
    let deadline = Instant::now() + WAIT;
    while gw.gateway.stats().drops_rate_limited == 0 {
        assert!(Instant::now() < deadline, "the 4th message was not counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = gw.gateway.stats();
    assert_eq!((stats.drops_rate_limited, stats.messages_in), (1, 3));
    assert!(
        gw.events.try_recv().is_none(),
        "the 4th message was delivered"
    );
    // The connection stays open; swapping the limits at runtime lets messages through.
    assert!(gw.gateway.limiter().set_limits(Limits::unlimited()));
    send_text(&mut client, "m5").await;
    let event = gw.next_event().await;
    assert!(matches!(&event.kind, EventKind::Message { payload, .. } if payload == "m5"));
    assert_eq!(gw.gateway.stats().drops_rate_limited, 1);
}

/// Upgrades a raw client whose socket is bound to the loopback address `source`.
async fn upgrade_from(addr: std::net::SocketAddr, source: [u8; 4]) -> RawConn {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::from((source, 0)))
        .unwrap();
    let stream = socket.connect(addr).await.unwrap();
    raw::upgrade_with(RawConn::from_stream(stream), "/netsvr", "", &[]).await
}

async fn expect_open(gw: &mut TestGateway, source: [u8; 4]) {
    let event = gw.next_event().await;
    assert!(matches!(event.kind, EventKind::Open), "{event:?}");
    assert_eq!(
        event.conn.meta.remote_addr.ip(),
        std::net::IpAddr::from(source),
        "{event:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_per_ip_refuses_that_address_only_with_1013() {
    let mut config = test_config();
    config.max_connections_per_ip = 2;
    let mut gw = TestGateway::start(config).await;
    let addr = gw.gateway.local_addr();
    let (a, b) = ([127, 0, 0, 2], [127, 0, 0, 3]);
    let first = upgrade_from(addr, a).await;
    expect_open(&mut gw, a).await;
    let _second = upgrade_from(addr, a).await;
    expect_open(&mut gw, a).await;
    let mut third = upgrade_from(addr, a).await;
    assert_eq!(third.expect_close().await.close_code(), 1013);
    assert_no_event(&mut gw).await;
    let _other = upgrade_from(addr, b).await;
    expect_open(&mut gw, b).await;
    assert_eq!(gw.gateway.connection_count(), 3);

    // A place freed by the address is taken again.
    drop(first);
    let event = gw.next_event().await;
    assert!(matches!(event.kind, EventKind::Close { .. }), "{event:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _again = upgrade_from(addr, a).await;
    expect_open(&mut gw, a).await;
    assert_eq!(gw.gateway.connection_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_open_rate_refuses_a_burst_from_one_address_with_1013() {
    let mut gw = with_limits(Limits::unlimited().opens_per_ip_per_sec(2)).await;
    let addr = gw.gateway.local_addr();
    let (a, b) = ([127, 0, 0, 4], [127, 0, 0, 5]);
    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(upgrade_from(addr, a).await);
        expect_open(&mut gw, a).await;
    }
    let mut refused = upgrade_from(addr, a).await;
    assert_eq!(refused.expect_close().await.close_code(), 1013);
    assert_no_event(&mut gw).await;
    open.push(upgrade_from(addr, b).await);
    expect_open(&mut gw, b).await;
    assert_eq!(gw.gateway.connection_count(), 3);
}

/// A gateway with the default limiter enforcing `limits`.
async fn with_limits(limits: Limits) -> TestGateway {
    let builder = Gateway::builder().config(test_config());
    TestGateway::start_with(builder.rate_limiter(GovernorLimiter::new(limits))).await
}
