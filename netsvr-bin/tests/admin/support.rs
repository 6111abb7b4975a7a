//! Support for `tests/admin.rs`: the process-wide Prometheus recorder, a serialized runtime
//! per test, a gateway with its admin port, a raw HTTP/1.1 client and WebSocket clients.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use netsvr_bin::admin::{self, AdminConfig, AdminState};
use netsvr_core::{
    ChannelSink, EventKind, EventReceiver, EventSink, Gateway, GatewayConfig, UniqId,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A WebSocket client of the gateway.
pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(5);

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();
static SERIAL: Mutex<()> = Mutex::new(());

/// The recorder, installed once for this test binary, before any gateway is built.
pub fn prometheus() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .install_recorder()
                .expect("install the Prometheus recorder");
            netsvr_core::metrics::describe();
            handle
        })
        .clone()
}

/// Runs one test alone on its own runtime. Metrics are process-wide, so tests take turns,
/// and each runtime (with every connection task of its gateway) is gone before the next
/// test starts: the metric values a test sees move only because of what it does.
pub fn run<F: Future<Output = ()>>(test: impl FnOnce() -> F) {
    let _turn = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    prometheus();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), test())
            .await
            .expect("test timed out");
    });
    rt.shutdown_timeout(Duration::from_secs(2));
}

/// A gateway config on an ephemeral loopback port with a short drain.
pub fn gateway_config() -> GatewayConfig {
    let mut config = GatewayConfig::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.shutdown_timeout = Duration::from_secs(3);
    config
}

/// A running gateway and its admin port.
pub struct Harness {
    pub gateway: Gateway,
    pub events: Option<EventReceiver>,
    pub admin: SocketAddr,
    pub token: Option<String>,
    pub serve: JoinHandle<()>,
}

impl Harness {
    /// A gateway with a `ChannelSink` named `events`, admin port without a token.
    pub async fn start() -> Self {
        Self::start_with(gateway_config(), None).await
    }

    /// Same, with a config and an admin token.
    pub async fn start_with(config: GatewayConfig, token: Option<&str>) -> Self {
        let (sink, events) = ChannelSink::named("events", 1024);
        let mut h = Self::start_sink(config, sink, token).await;
        h.events = Some(events);
        h
    }

    /// A gateway with any sink (no event receiver kept).
    pub async fn start_sink(
        config: GatewayConfig,
        sink: impl EventSink,
        token: Option<&str>,
    ) -> Self {
        let prometheus = prometheus();
        let (gateway, serve) = Gateway::builder()
            .config(config)
            .sink(sink)
            .build()
            .unwrap();
        tokio::spawn(serve);
        let admin_config = AdminConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            token: token.unwrap_or_default().to_owned(),
            ..AdminConfig::default()
        };
        admin_config.validate().unwrap();
        let listener = admin::bind(&admin_config).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = AdminState::new(gateway.clone(), prometheus, admin_config.token());
        let serve = tokio::spawn(admin::serve(listener, state));
        Self {
            gateway,
            events: None,
            admin: addr,
            token: token.map(str::to_owned),
            serve,
        }
    }

    /// Connects a WebSocket client (with `query`, e.g. `?a=1`) and returns its uniqId.
    pub async fn connect(&mut self, query: &str) -> (Client, UniqId) {
        let url = format!(
            "ws://{}{}{query}",
            self.gateway.local_addr(),
            self.gateway.config().path
        );
        let (client, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let events = self.events.as_mut().expect("this harness keeps its events");
        loop {
            let event = tokio::time::timeout(WAIT, events.recv())
                .await
                .expect("no Open event")
                .expect("event channel closed");
            if matches!(event.kind, EventKind::Open) {
                return (client, event.uniq_id());
            }
        }
    }

    fn auth(&self) -> Vec<(&'static str, String)> {
        self.token
            .iter()
            .map(|t| ("Authorization", format!("Bearer {t}")))
            .collect()
    }

    /// GET with the harness token (if any).
    pub async fn get(&self, path: &str) -> Reply {
        let headers = self.auth();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http(self.admin, "GET", path, &headers, b"").await
    }

    /// POST a JSON body with the harness token (if any).
    pub async fn post(&self, path: &str, body: &str) -> Reply {
        let mut headers = self.auth();
        headers.push(("Content-Type", "application/json".to_owned()));
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http(self.admin, "POST", path, &headers, body.as_bytes()).await
    }

    /// POST a JSON command that must succeed; returns its JSON result.
    pub async fn command(&self, path: &str, body: &str) -> Value {
        let reply = self.post(path, body).await;
        assert_eq!(reply.status, 200, "{path} {body}: {}", reply.text());
        reply.json()
    }

    /// GET a JSON document that must be there.
    pub async fn get_json(&self, path: &str) -> Value {
        let reply = self.get(path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        reply.json()
    }

    /// Waits until `check` holds for the gateway.
    pub async fn until(&self, what: &str, check: impl Fn(&Gateway) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !check(&self.gateway) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), read to the end.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    raw(addr, &[head.as_bytes(), body].concat()).await
}

/// Sends raw bytes (ignoring a write refused once the server has answered) and parses the
/// response.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(request).await;
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut buf))
        .await
        .expect("response timed out")
        .expect("reading the response");
    parse(&buf)
}

fn parse(buf: &[u8]) -> Reply {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(buf)));
    let head = std::str::from_utf8(&buf[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: buf[split + 4..].to_vec(),
    }
}

/// The next data message a client receives (text or binary payload bytes).
pub async fn recv(client: &mut Client) -> Vec<u8> {
    loop {
        let msg = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("no message")
            .expect("connection ended")
            .expect("WebSocket error");
        match msg {
            Message::Text(t) => return t.as_bytes().to_vec(),
            Message::Binary(b) => return b.to_vec(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected data, got {other:?}"),
        }
    }
}

/// The next data message, as text.
pub async fn recv_text(client: &mut Client) -> String {
    String::from_utf8(recv(client).await).unwrap()
}

/// Reads until the server's close frame and returns its code, then keeps reading so the
/// client's close reply goes out and the closing handshake completes.
pub async fn recv_close(client: &mut Client) -> u16 {
    let code = loop {
        let msg = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("no close");
        match msg {
            Some(Ok(Message::Close(Some(CloseFrame { code, .. })))) => break code.into(),
            Some(Ok(Message::Close(None))) => break 1005,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let _ = tokio::time::timeout(WAIT, async { while client.next().await.is_some() {} }).await;
    code
}

/// The value of one sample line (`name` or `name{labels}`) of a Prometheus text page.
pub fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}
