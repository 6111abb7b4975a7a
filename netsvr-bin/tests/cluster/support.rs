//! Helpers of the cluster tests: the machine's Redis (or a skip), a private key prefix per
//! test, nodes of the real binary sharing it, a business on a worker port, a raw task-port
//! connection, and the admin API's JSON.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    dead_code,
    unreachable_pub
)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use netsvr_protocol::cmd::events::ALL;
use netsvr_protocol::{Codec, Frame, ToBusiness, ToGateway, pb};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

use crate::common::server::{Server, json_config};
use crate::common::{Ws, connect, http_get, temp_file};

pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
/// The short lease of every test cluster.
pub const LEASE_TTL: Duration = Duration::from_millis(1500);
pub const HEARTBEAT: Duration = Duration::from_millis(500);

/// True when Redis answers PING; otherwise says why and returns false (a failure when `CI`
/// is set).
pub async fn redis_up() -> bool {
    let attempt = async {
        let client = redis::Client::open(REDIS_URL).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let pong: String = redis::cmd("PING").query_async(&mut conn).await.ok()?;
        (pong == "PONG").then_some(())
    };
    let up = tokio::time::timeout(Duration::from_secs(3), attempt)
        .await
        .ok()
        .flatten()
        .is_some();
    if !up {
        assert!(
            std::env::var_os("CI").is_none(),
            "Redis is not running on 127.0.0.1:6379 (required by the cluster tests when CI is set)"
        );
        println!("SKIPPED: Redis is not running on 127.0.0.1:6379");
    }
    up
}

/// A key prefix no other test (or run) uses; its keys are deleted when dropped.
pub struct Prefix(pub String);

impl Prefix {
    pub fn new(test: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        Self(format!("netsvr-bin-test:{test}:{pid}:{nanos:08x}{n}"))
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(REDIS_URL) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.0))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

/// A node's configuration: everything on port 0, JSON logs, a short lease, `extra` keys in
/// `[cluster]`.
pub fn node_config(prefix: &Prefix, extra: &str) -> String {
    json_config(&format!(
        "[cluster]\nlease_ttl = \"{}ms\"\nheartbeat = \"{}ms\"\nquery_timeout = \"1s\"\n{extra}\n\
         [cluster.redis]\nurl = \"{REDIS_URL}\"\nprefix = \"{}\"\n",
        LEASE_TTL.as_millis(),
        HEARTBEAT.as_millis(),
        prefix.0
    ))
}

/// Starts one node per entry of `extras` (its `[cluster]` keys) and waits until every node
/// sees all of them.
pub async fn start_nodes(prefix: &Prefix, extras: &[&str]) -> Vec<Server> {
    let mut nodes = Vec::new();
    for (i, extra) in extras.iter().enumerate() {
        let path = temp_file(&format!("node{i}.toml"), &node_config(prefix, extra));
        nodes.push(Server::start(&path).await);
    }
    for node in &nodes {
        wait_for_nodes(node, extras.len()).await;
    }
    nodes
}

/// Waits (up to 10 s) until `node` lists `n` live nodes; returns their ids.
pub async fn wait_for_nodes(node: &Server, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (code, body) = get_json(node.admin, "/api/v1/cluster/nodes").await;
        assert_eq!(code, 200, "{body}");
        let ids: Vec<String> = body["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_owned())
            .collect();
        if ids.len() == n {
            return ids;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} nodes expected: {body}\n{}",
            node.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET path` on the admin port: (status, JSON body).
pub async fn get_json(admin: SocketAddr, path: &str) -> (u16, Value) {
    let (code, body) = http_get(admin, path, None).await;
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (code, json)
}

/// `POST path` with a JSON body on the admin port: (status, JSON body).
pub async fn post_json(admin: SocketAddr, path: &str, body: &Value) -> (u16, Value) {
    let mut stream = TcpStream::connect(admin).await.unwrap();
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {admin}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
        .await
        .expect("admin answer timed out")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    let json = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (code, serde_json::from_str(json).unwrap())
}

/// This node's own connections (`scope=node`), sorted.
pub async fn local_ids(node: &Server) -> Vec<String> {
    let (code, body) = get_json(node.admin, "/api/v1/connections?scope=node&limit=1000").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["scope"], "node");
    let mut ids: Vec<String> = body["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["uniq_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort_unstable();
    ids
}

/// A WebSocket client on `node` and its uniqId (the one new connection the node lists).
pub async fn client(node: &Server) -> (Ws, String) {
    let before = local_ids(node).await;
    let ws = connect(node.ws).await;
    for _ in 0..100 {
        let new: Vec<String> = local_ids(node)
            .await
            .into_iter()
            .filter(|id| !before.contains(id))
            .collect();
        if let [id] = new.as_slice() {
            return (ws, id.clone());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the new connection is not listed on {}", node.admin);
}

/// Reads frames from `read` into `tx` until the connection ends.
fn pump(
    mut read: tokio::net::tcp::OwnedReadHalf,
    mut buf: BytesMut,
    tx: mpsc::UnboundedSender<ToBusiness>,
) {
    tokio::spawn(async move {
        let codec = Codec::default();
        loop {
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                if let Frame::Command { cmd, body } = frame {
                    let _ = tx.send(ToBusiness::decode(cmd, body).unwrap());
                }
            }
            if read.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                return;
            }
        }
    });
}

/// A business process on a worker or task port: what the gateway sends comes out of `rx`.
pub struct Business {
    write: OwnedWriteHalf,
    pub rx: mpsc::UnboundedReceiver<ToBusiness>,
}

impl Business {
    /// Connects to a task port (commands and queries, no events).
    pub async fn task(addr: SocketAddr) -> Self {
        let (read, write) = TcpStream::connect(addr).await.unwrap().into_split();
        let (tx, rx) = mpsc::unbounded_channel();
        pump(read, BytesMut::new(), tx);
        Self { write, rx }
    }

    /// Connects to a worker port and registers for every event.
    pub async fn worker(addr: SocketAddr) -> Self {
        let mut b = Self::task(addr).await;
        b.send(&ToGateway::Register(pb::RegisterReq { events: ALL }))
            .await;
        match b.next(Duration::from_secs(5)).await {
            Some(ToBusiness::Register(r)) if r.code == 0 => b,
            other => panic!("expected a RegisterResp, got {other:?}"),
        }
    }

    pub async fn send(&mut self, message: &ToGateway) {
        let mut out = BytesMut::new();
        message.encode(&mut out);
        self.write.write_all(&out).await.unwrap();
    }

    /// The next message within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<ToBusiness> {
        tokio::time::timeout(wait, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Sends a query and returns the answer.
    pub async fn ask(&mut self, query: ToGateway) -> ToBusiness {
        self.send(&query).await;
        self.next(Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("no answer to {query:?}"))
    }
}
