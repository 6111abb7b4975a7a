//! Smoke test of the `naive-server` binary: in chat mode, a message from one client reaches
//! both connected clients.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The server process; killed when dropped, so every exit path (panics included) ends it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Connects, retrying while the server starts.
async fn connect(addr: SocketAddr) -> Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio_tungstenite::connect_async(format!("ws://{addr}/")).await {
            Ok((client, _)) => return client,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot connect to naive-server at {addr}: {e}"),
        }
    }
}

/// The next text or binary message, skipping control frames.
async fn next_data(client: &mut Client) -> Message {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let message = client
                .next()
                .await
                .expect("connection ended")
                .expect("read failed");
            if message.is_binary() || message.is_text() {
                return message;
            }
        }
    })
    .await
    .expect("no message within 5 s")
}

/// Sends a probe and waits for it to come back, which proves the server registered this
/// client (the chat broadcast includes the sender).
async fn registered(client: &mut Client, probe: &'static str) {
    client.send(Message::text(probe)).await.unwrap();
    while next_data(client).await != Message::text(probe) {}
}

#[tokio::test]
async fn chat_reaches_every_client() {
    let addr = free_port();
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_naive-server"))
            .args(["--mode", "chat", "--listen", &addr.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut a = connect(addr).await;
    let mut b = connect(addr).await;
    registered(&mut a, "probe-a").await;
    registered(&mut b, "probe-b").await;

    let hello = Message::binary(b"hello, everyone".to_vec());
    a.send(hello.clone()).await.unwrap();
    // `a` may still see `b`'s probe first.
    loop {
        let got = next_data(&mut a).await;
        if got != Message::text("probe-b") {
            assert_eq!(got, hello);
            break;
        }
    }
    assert_eq!(next_data(&mut b).await, hello);
}
