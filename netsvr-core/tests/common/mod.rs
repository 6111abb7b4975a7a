//! Test support: a gateway on an ephemeral loopback port, and WebSocket clients for it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

#[cfg(feature = "worker")]
pub mod business;
#[cfg(feature = "worker")]
pub mod node;
pub mod raw;
pub mod services;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use netsvr_core::{
    ChannelSink, Event, EventKind, EventReceiver, Gateway, GatewayBuilder, GatewayConfig,
    SinkStatus, UniqId,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(5);

/// A config on an ephemeral loopback port.
pub fn test_config() -> GatewayConfig {
    let mut config = GatewayConfig::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.path = "/netsvr".into();
    config
}

/// A running gateway and the events it emits.
pub struct TestGateway {
    pub gateway: Gateway,
    pub events: EventReceiver,
}

impl TestGateway {
    pub async fn start(config: GatewayConfig) -> Self {
        Self::start_with(Gateway::builder().config(config)).await
    }

    pub async fn start_with(builder: GatewayBuilder) -> Self {
        let (sink, events) = ChannelSink::new(100_000);
        let (gateway, serve) = builder.sink(sink).build().unwrap();
        tokio::spawn(serve);
        Self { gateway, events }
    }

    pub fn url(&self, query: &str) -> String {
        let path = &self.gateway.config().path;
        format!("ws://{}{path}{query}", self.gateway.local_addr())
    }

    /// Connects a client and returns it with its uniqId (from the Open event).
    pub async fn connect(&mut self) -> (Client, UniqId) {
        self.connect_query("").await
    }

    pub async fn connect_query(&mut self, query: &str) -> (Client, UniqId) {
        let (client, _) = tokio_tungstenite::connect_async(self.url(query))
            .await
            .unwrap();
        let event = self.next_event().await;
        assert!(
            matches!(event.kind, EventKind::Open),
            "expected Open, got {event:?}"
        );
        (client, event.uniq_id())
    }

    pub async fn next_event(&mut self) -> Event {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("timed out waiting for an event")
            .expect("event channel closed")
    }
}

/// The next data message a client receives, as text.
pub async fn recv_text(client: &mut Client) -> String {
    loop {
        let msg = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("timed out waiting for a message")
            .expect("connection ended")
            .expect("websocket error");
        match msg {
            Message::Text(t) => return t.to_string(),
            Message::Binary(b) => return String::from_utf8_lossy(&b).into_owned(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Asserts that nothing arrives within `within`.
pub async fn assert_silent(client: &mut Client, within: Duration) {
    if let Ok(Some(msg)) = tokio::time::timeout(within, client.next()).await {
        panic!("expected silence, got {msg:?}");
    }
}

/// Waits for the close frame and returns its code.
pub async fn recv_close(client: &mut Client) -> u16 {
    loop {
        let msg = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("timed out waiting for a close");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(Message::Close(None))) => return 1005,
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("websocket error before close: {e}"),
            None => panic!("connection ended without a close frame"),
        }
    }
}

pub async fn send_text(client: &mut Client, text: &str) {
    client.send(Message::text(text)).await.unwrap();
}

// ---- Helpers for the operations tests (operations_*.rs) ----

/// How long a test watches for "nothing arrives".
pub const QUIET: Duration = Duration::from_millis(200);

/// The next frame a client receives, data or close (pings and pongs skipped).
pub async fn recv_message(client: &mut Client) -> Message {
    loop {
        let msg = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("timed out waiting for a frame")
            .expect("connection ended")
            .expect("websocket error");
        if !matches!(msg, Message::Ping(_) | Message::Pong(_)) {
            return msg;
        }
    }
}

/// Asserts the next frame is a text frame holding exactly `expected`.
pub async fn expect_text(client: &mut Client, expected: &str) {
    assert_eq!(recv_message(client).await, Message::text(expected));
}

/// Asserts the next frame is a close frame with `code`, then reads to the end so the
/// client's close reply goes out.
pub async fn expect_close(client: &mut Client, code: u16) {
    match recv_message(client).await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), code, "{frame:?}"),
        other => panic!("expected close {code}, got {other:?}"),
    }
    while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, client.next()).await {}
}

/// Asserts that none of `clients` receives anything within [`QUIET`] (watched together).
pub async fn assert_all_silent(clients: Vec<&mut Client>) {
    futures_util::future::join_all(clients.into_iter().map(|c| assert_silent(c, QUIET))).await;
}

/// Polls `cond` until it holds, for at most [`WAIT`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Admits everyone, binding what the query string asks for: `customer=ID`,
/// `session=TEXT`, `topics=a,b` (not percent-decoded).
pub struct QueryAuth;

#[netsvr_core::async_trait]
impl netsvr_core::Authenticator for QueryAuth {
    async fn authenticate(
        &self,
        request: &netsvr_core::HandshakeRequest,
    ) -> netsvr_core::AuthDecision {
        let mut admission = netsvr_core::Admission::new();
        if let Some(customer) = request.query_param("customer") {
            admission = admission.customer(customer);
        }
        if let Some(session) = request.query_param("session") {
            admission = admission.session(session);
        }
        if let Some(topics) = request.query_param("topics") {
            admission = admission.topics(topics.split(',').filter(|t| !t.is_empty()));
        }
        netsvr_core::AuthDecision::Allow(admission)
    }
}

impl TestGateway {
    /// A gateway on [`test_config`] admitting through [`QueryAuth`].
    pub async fn start_query_auth() -> Self {
        Self::start_with(
            Gateway::builder()
                .config(test_config())
                .authenticator(QueryAuth),
        )
        .await
    }
}

/// Closes the client and reads until the server ends the connection.
pub async fn close_client(mut client: Client) {
    client.close(None).await.unwrap();
    while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, client.next()).await {}
}

/// The status of the gateway's only sink, which must be named `name`.
pub fn only_sink(gateway: &Gateway, name: &str) -> SinkStatus {
    let all = gateway.sink_status();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].name, name);
    all[0].clone()
}
