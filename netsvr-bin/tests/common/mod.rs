//! Helpers shared by the binary's tests: WebSocket clients, close codes, a bare HTTP GET for
//! the admin port, temporary files.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

pub mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects a WebSocket client to `ws://addr/netsvr`.
pub async fn connect(addr: SocketAddr) -> Ws {
    let url = format!("ws://{addr}/netsvr");
    let connect = tokio_tungstenite::connect_async(url);
    tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .expect("connect timed out")
        .expect("connect failed")
        .0
}

/// What the server did next: closed with a code, sent data, or nothing within `wait`.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Closed(u16),
    Data(Vec<u8>),
    Quiet,
    Ended,
}

/// Waits up to `wait` for the server's next frame (pings are skipped).
pub async fn next(ws: &mut Ws, wait: Duration) -> Next {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Next::Quiet,
            Ok(None | Some(Err(_))) => return Next::Ended,
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Next::Closed(frame.map_or(1005, |f| u16::from(f.code)));
            }
            Ok(Some(Ok(Message::Text(t)))) => return Next::Data(t.as_bytes().to_vec()),
            Ok(Some(Ok(Message::Binary(b)))) => return Next::Data(b.to_vec()),
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Sends a text message.
pub async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.expect("send failed");
}

/// `GET path` on `addr` with an optional bearer token; returns (status, body).
pub async fn http_get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("admin connect");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
        .await
        .expect("admin answer timed out")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    (status, body)
}

/// `/api/v1/status` as JSON.
pub async fn status(admin: SocketAddr, token: Option<&str>) -> serde_json::Value {
    let (code, body) = http_get(admin, "/api/v1/status", token).await;
    assert_eq!(code, 200, "status answered {code}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("bad status JSON ({e}): {body}"))
}

/// A fresh file under the temporary directory.
pub fn temp_file(name: &str, text: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("netsvr-bin-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A configuration on port 0 everywhere, followed by `extra` TOML.
pub fn port_zero_config(extra: &str) -> String {
    format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nshutdown_timeout = \"3s\"\n\
         [worker]\nworker_listen = \"127.0.0.1:0\"\ntask_listen = \"127.0.0.1:0\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n{extra}"
    )
}
