//! `[client_commands]` in the real binary: clients subscribe, are refused, publish, and use
//! the grants of the HTTP OnOpen answer; with the section off, a command-shaped message is
//! forwarded like any other (here to the OnMessage callback). Bad keys fail `--check-config`
//! naming the key (`[client_commands]` and `[gateway.deflate]`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::server::{BIN, ENV_VARS, Server, json_config};
use common::{Next, Ws, next, send, temp_file};
use netsvr_protocol::Message as _;
use netsvr_protocol::pb;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

/// A business HTTP endpoint: `/open` admits everyone, granting `vip.` for subscribing and
/// publishing when the query holds `vip=1`; `/message` reports each message's data.
struct Business {
    addr: SocketAddr,
    messages: mpsc::Receiver<Vec<u8>>,
}

impl Business {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, messages) = mpsc::channel(64);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, tx.clone()));
            }
        });
        Self { addr, messages }
    }

    fn http_section(&self) -> String {
        format!(
            "[http]\non_open_url = \"http://{0}/open\"\non_message_url = \"http://{0}/message\"\n",
            self.addr
        )
    }

    async fn next_message(&mut self) -> Vec<u8> {
        tokio::time::timeout(WAIT, self.messages.recv())
            .await
            .expect("no OnMessage call")
            .unwrap()
    }
}

/// Answers HTTP/1.1 requests on one keep-alive connection.
async fn serve(mut stream: TcpStream, messages: mpsc::Sender<Vec<u8>>) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
        let path = head.split(' ').nth(1).unwrap_or("").to_owned();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        while buf.len() < head_end + length {
            let mut chunk = [0; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..head_end + length).skip(head_end).collect();
        let answer = match path.as_str() {
            "/open" => {
                let open = pb::ConnOpen::decode(&body[..]).unwrap();
                let vip = open.raw_query.split('&').any(|p| p == "vip=1");
                let grant = |on: bool| if on { vec!["vip.".to_owned()] } else { vec![] };
                pb::ConnOpenResp {
                    allow: true,
                    subscribe_topics: grant(vip),
                    publish_topics: grant(vip),
                    ..Default::default()
                }
                .encode_to_vec()
            }
            _ => {
                let transfer = pb::Transfer::decode(&body[..]).unwrap();
                let _ = messages.send(transfer.data.to_vec()).await;
                Vec::new()
            }
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err()
            || stream.write_all(&answer).await.is_err()
        {
            return;
        }
    }
}

async fn connect(server: &Server, query: &str) -> Ws {
    let url = format!("ws://{}/netsvr{query}", server.ws);
    tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect timed out")
        .expect("connect failed")
        .0
}

async fn recv(ws: &mut Ws) -> Vec<u8> {
    match next(ws, WAIT).await {
        Next::Data(data) => data,
        other => panic!("expected data, got {other:?}"),
    }
}

async fn call(ws: &mut Ws, command: Value) -> Value {
    send(ws, &command.to_string()).await;
    serde_json::from_slice(&recv(ws).await).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_subscribe_publish_and_are_refused_by_prefix_and_grant() {
    let mut business = Business::start().await;
    let config = json_config(&format!(
        "{}[client_commands]\nenabled = true\nsubscribe_prefixes = [\"news.\", \"chat.\"]\n\
         publish_prefixes = [\"chat.\"]\n",
        business.http_section()
    ));
    let server = Server::start(&temp_file("commands.toml", &config)).await;
    let mut a = connect(&server, "").await;
    let mut b = connect(&server, "").await;
    let mut vip = connect(&server, "?vip=1").await;

    let reply = call(
        &mut a,
        json!({"cmd": "subscribe", "id": 1, "topics": ["chat.room"]}),
    )
    .await;
    assert_eq!(reply, json!({"id": 1, "ok": true, "topics": ["chat.room"]}));
    let reply = call(
        &mut a,
        json!({"cmd": "subscribe", "id": 2, "topics": ["secret"]}),
    )
    .await;
    assert_eq!(
        reply,
        json!({"id": 2, "ok": false, "error": {"code": 403, "message": "topic `secret` not allowed"}})
    );
    let reply = call(
        &mut b,
        json!({"cmd": "publish", "id": 3, "topic": "chat.room", "data": "hi a"}),
    )
    .await;
    assert_eq!(reply, json!({"id": 3, "ok": true}));
    assert_eq!(recv(&mut a).await, b"hi a");
    let reply = call(
        &mut b,
        json!({"cmd": "publish", "id": 4, "topic": "news.x", "data": "spoof"}),
    )
    .await;
    assert_eq!(reply["error"]["code"], json!(403));

    // The OnOpen answer granted `vip.` to this connection only.
    let reply = call(
        &mut vip,
        json!({"cmd": "subscribe", "id": 5, "topics": ["vip.lounge"]}),
    )
    .await;
    assert_eq!(reply["ok"], json!(true), "{reply}");
    let reply = call(
        &mut a,
        json!({"cmd": "subscribe", "id": 6, "topics": ["vip.lounge"]}),
    )
    .await;
    assert_eq!(reply["error"]["code"], json!(403), "{reply}");
    let command = json!({"cmd": "publish", "id": 7, "topic": "vip.lounge", "data": "members only"});
    send(&mut vip, &command.to_string()).await;
    // Subscribed itself: the data first, then the reply.
    assert_eq!(recv(&mut vip).await, b"members only");
    assert_eq!(
        serde_json::from_slice::<Value>(&recv(&mut vip).await).unwrap(),
        json!({"id": 7, "ok": true})
    );

    // Commands never reached OnMessage; other messages still do.
    send(&mut a, r#"{"type":"chat","text":"to the business"}"#).await;
    assert_eq!(
        business.next_message().await,
        br#"{"type":"chat","text":"to the business"}"#
    );
    assert!(
        tokio::time::timeout(QUIET, business.messages.recv())
            .await
            .is_err(),
        "a command reached OnMessage"
    );
    assert_eq!(next(&mut a, QUIET).await, Next::Quiet);
    assert_eq!(next(&mut b, QUIET).await, Next::Quiet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_by_default_a_command_is_forwarded_unchanged() {
    let mut business = Business::start().await;
    let server = Server::start(&temp_file(
        "off.toml",
        &json_config(&business.http_section()),
    ))
    .await;
    let mut client = connect(&server, "?vip=1").await;
    let command = r#"{"cmd":"subscribe","id":1,"topics":["vip.lounge"]}"#;
    send(&mut client, command).await;
    assert_eq!(business.next_message().await, command.as_bytes());
    assert_eq!(next(&mut client, QUIET).await, Next::Quiet);
}

/// `netsvr --check-config` on `text`: (exit code, stderr).
fn check_config(text: &str) -> (Option<i32>, String) {
    let file = temp_file("check.toml", text);
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("--check-config").arg(&file);
    for var in ENV_VARS {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_names_bad_keys() {
    for (text, expected) in [
        (
            "[client_commands]\nenabled = true\nmax_publish_size = 0\n",
            "client_commands.max_publish_size = 0: must be at least 1",
        ),
        (
            "[client_commands]\nenabled = true\npublish_prefix = []\n",
            "client_commands.publish_prefix",
        ),
        (
            "[gateway.deflate]\nlevel = 12\n",
            "gateway.deflate.level = 12: not between 1 and 9",
        ),
        (
            "[gateway.deflate]\nclient_max_window_bits = 16\n",
            "gateway.deflate.client_max_window_bits = 16: not between 8 and 15",
        ),
    ] {
        let (code, stderr) = check_config(text);
        assert_eq!(code, Some(2), "{text}: {stderr}");
        assert!(stderr.contains(expected), "{text}: {stderr}");
    }
    let (code, stderr) = check_config(
        "[client_commands]\nenabled = true\nsubscribe_prefixes = [\"a.\"]\n\
         [gateway.deflate]\nlevel = 9\nenabled = false\n",
    );
    assert_eq!(code, Some(0), "{stderr}");
}
