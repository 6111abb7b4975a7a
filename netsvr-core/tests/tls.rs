//! wss:// on the client port: a rustls client against a certificate made with rcgen —
//! messages both ways (small, larger than a TLS record, thousands queued), closes from either
//! side, non-TLS clients refused, and a certificate swapped while connections stay up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{WAIT, test_config};
use futures_util::{SinkExt, StreamExt};
use netsvr_core::tls::{self, TlsError, rustls};
use netsvr_core::{CloseReason, EventKind, Gateway, MessageKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type WssClient = WebSocketStream<TlsStream<TcpStream>>;

/// A self-signed certificate for `localhost` and 127.0.0.1.
struct Cert {
    cert: rustls::pki_types::CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

impl Cert {
    fn new() -> Self {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let made = rcgen::generate_simple_self_signed(names).unwrap();
        Self {
            cert: made.cert.der().clone(),
            cert_pem: made.cert.pem(),
            key_pem: made.signing_key.serialize_pem(),
        }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        tls::server_config_from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes()).unwrap()
    }

    /// A client that trusts only this certificate.
    fn connector(&self) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }
}

async fn start(cert: &Cert) -> common::TestGateway {
    let mut config = test_config();
    config.close_timeout = Duration::from_secs(2);
    config.outbound_queue_capacity = 4096;
    // A small socket buffer, so the TLS layer meets a full socket (`WouldBlock`) often.
    config.socket_send_buffer = 8 * 1024;
    common::TestGateway::start_with(Gateway::builder().config(config).tls(cert.server_config()))
        .await
}

/// A TLS handshake (verifying the server as `localhost`) then the WebSocket upgrade.
async fn connect(gw: &common::TestGateway, cert: &Cert) -> Result<WssClient, String> {
    let addr = gw.gateway.local_addr();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = cert
        .connector()
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let url = format!("wss://localhost:{}/netsvr", addr.port());
    let (client, _) = tokio_tungstenite::client_async(url, tls)
        .await
        .map_err(|e| e.to_string())?;
    Ok(client)
}

async fn open(gw: &mut common::TestGateway, cert: &Cert) -> (WssClient, netsvr_core::UniqId) {
    let client = connect(gw, cert).await.unwrap();
    let event = gw.next_event().await;
    assert!(matches!(event.kind, EventKind::Open), "{event:?}");
    (client, event.uniq_id())
}

async fn next(client: &mut WssClient) -> Message {
    tokio::time::timeout(WAIT, client.next())
        .await
        .expect("timed out waiting for a message")
        .expect("connection ended")
        .expect("websocket error")
}

async fn message(gw: &mut common::TestGateway) -> (MessageKind, Vec<u8>) {
    match gw.next_event().await.kind {
        EventKind::Message { kind, payload } => (kind, payload.to_vec()),
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test]
async fn messages_flow_both_ways_over_tls() {
    let cert = Cert::new();
    let mut gw = start(&cert).await;
    assert!(gw.gateway.is_tls());
    let (mut client, id) = open(&mut gw, &cert).await;

    client.send(Message::text("hello")).await.unwrap();
    assert_eq!(
        message(&mut gw).await,
        (MessageKind::Text, b"hello".to_vec())
    );
    // Larger than a TLS record (16 KiB) and than rustls' 64 KiB send buffer.
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    client.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(message(&mut gw).await, (MessageKind::Binary, big.clone()));

    assert!(gw.gateway.send(&id, "to you"));
    assert_eq!(next(&mut client).await, Message::text("to you"));
    assert!(gw.gateway.send_as(&id, MessageKind::Binary, &big));
    assert_eq!(next(&mut client).await, Message::binary(big));
}

#[tokio::test]
async fn thousands_of_queued_frames_arrive_in_order() {
    let cert = Cert::new();
    let mut gw = start(&cert).await;
    let (mut client, id) = open(&mut gw, &cert).await;
    // Queued faster than one record flush: exercises the socket-full path of the TLS layer.
    let payload = "x".repeat(1000);
    for i in 0..3000 {
        assert!(gw.gateway.send(&id, format!("{i} {payload}")));
    }
    for i in 0..3000 {
        let Message::Text(text) = next(&mut client).await else {
            panic!("expected text");
        };
        assert!(
            text.starts_with(&format!("{i} ")),
            "message {i}: {}",
            &text[..10]
        );
    }
}

#[tokio::test]
async fn client_close_is_echoed_and_reported() {
    let cert = Cert::new();
    let mut gw = start(&cert).await;
    let (mut client, _) = open(&mut gw, &cert).await;
    client
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .await
        .unwrap();
    match next(&mut client).await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected the echoed close, got {other:?}"),
    }
    let event = gw.next_event().await;
    assert!(
        matches!(
            event.kind,
            EventKind::Close {
                reason: CloseReason::Client(1000)
            }
        ),
        "{event:?}"
    );
}

#[tokio::test]
async fn kick_sends_the_farewell_then_a_close_and_ends_tls_cleanly() {
    let cert = Cert::new();
    let mut gw = start(&cert).await;
    let (mut client, id) = open(&mut gw, &cert).await;
    assert_eq!(gw.gateway.force_offline(&[id], Some(b"farewell")), 1);
    assert_eq!(next(&mut client).await, Message::text("farewell"));
    match next(&mut client).await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1008),
        other => panic!("expected a close, got {other:?}"),
    }
    // The client's close reply completes the handshake; the stream then ends.
    let end = tokio::time::timeout(WAIT, client.next()).await.unwrap();
    assert!(end.is_none() || matches!(end, Some(Err(_))), "{end:?}");
    let event = gw.next_event().await;
    assert!(
        matches!(
            event.kind,
            EventKind::Close {
                reason: CloseReason::Kicked
            }
        ),
        "{event:?}"
    );
}

#[tokio::test]
async fn plain_http_and_junk_on_the_tls_port_are_refused_and_counted() {
    let cert = Cert::new();
    let mut gw = start(&cert).await;
    let addr = gw.gateway.local_addr();
    let inputs: [&[u8]; 2] = [
        b"GET /netsvr HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        &[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5],
    ];
    for input in inputs {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(input).await.unwrap();
        let mut buf = Vec::new();
        // Whatever the server answers (a TLS alert at most), it is never an HTTP 101 and
        // the socket is closed.
        tokio::time::timeout(WAIT, tcp.read_to_end(&mut buf))
            .await
            .expect("the server kept a non-TLS client open")
            .ok();
        assert!(
            !buf.starts_with(b"HTTP/"),
            "{:?}",
            String::from_utf8_lossy(&buf)
        );
    }
    common::eventually("two refusals", || gw.gateway.stats().refused == 2).await;
    // A real client is still served.
    let (_client, _) = open(&mut gw, &cert).await;
}

#[tokio::test]
async fn reload_swaps_the_certificate_for_new_handshakes_only() {
    let (old, new) = (Cert::new(), Cert::new());
    let mut gw = start(&old).await;
    let (mut kept, id) = open(&mut gw, &old).await;

    gw.gateway.reload_tls(new.server_config()).unwrap();
    let refused = connect(&gw, &old).await.unwrap_err();
    assert!(refused.contains("certificate"), "{refused}");
    let (_fresh, _) = open(&mut gw, &new).await;
    // The connection made before the swap carries on with its session.
    assert!(gw.gateway.send(&id, "still here"));
    assert_eq!(next(&mut kept).await, Message::text("still here"));
}

#[tokio::test]
async fn reload_on_a_plain_gateway_says_tls_is_not_enabled() {
    let gw = common::TestGateway::start(test_config()).await;
    assert!(!gw.gateway.is_tls());
    let err = gw.gateway.reload_tls(Cert::new().server_config());
    assert!(matches!(err, Err(TlsError::NotEnabled)), "{err:?}");
}
