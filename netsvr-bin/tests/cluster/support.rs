//! Helpers of the cluster tests: the machine's Redis or NATS (or a skip), a private key
//! prefix per test (its Redis keys or NATS KV streams deleted afterwards), nodes of the real
//! binary sharing it, a business on a worker port, a raw task-port connection, and the admin
//! API's JSON.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    dead_code,
    unreachable_pub
)]

use std::io::{BufRead, BufReader, Read, Write};
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

pub const NATS_ADDR: &str = "127.0.0.1:4222";

/// True when NATS answers with JetStream enabled; otherwise says why and returns false (a
/// failure when `CI` is set).
pub async fn nats_up() -> bool {
    let probe = tokio::task::spawn_blocking(|| nats_requests(&["$JS.API.INFO".to_owned()]));
    let why = match probe.await.unwrap() {
        Ok((info, replies)) if !info.contains("\"jetstream\":true") => {
            format!("NATS on {NATS_ADDR} has no JetStream (nats-server -js): {info} {replies:?}")
        }
        Ok((_, replies)) if replies[0].contains("account_info_response") => return true,
        Ok((_, replies)) => format!("NATS on {NATS_ADDR} refused JetStream: {replies:?}"),
        Err(e) => format!("NATS with JetStream is not running on {NATS_ADDR}: {e}"),
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "{why} (required by the NATS cluster test when CI is set)"
    );
    println!("SKIPPED: {why}");
    false
}

/// Sends an empty request to each of `subjects` over a plain NATS connection (the text
/// protocol, no client library); returns the server's INFO line and the replies' payloads,
/// in the order of `subjects` (within 5 s).
pub fn nats_requests(subjects: &[String]) -> std::io::Result<(String, Vec<String>)> {
    use std::io::{Error, ErrorKind};

    let addr: SocketAddr = NATS_ADDR.parse().unwrap();
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let inbox = format!("_INBOX.netsvr_bin_test_{}_{nanos:08x}", std::process::id());
    let mut out = format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"name\":\"netsvr-bin-test\"}}\r\n\
         SUB {inbox}.* 1\r\n"
    );
    for (i, subject) in subjects.iter().enumerate() {
        out.push_str(&format!("PUB {subject} {inbox}.{i} 0\r\n\r\n"));
    }
    stream.write_all(out.as_bytes())?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut info = String::new();
    reader.read_line(&mut info)?;
    let mut replies: Vec<Option<String>> = vec![None; subjects.len()];
    while replies.iter().any(Option::is_none) {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(Error::new(
                ErrorKind::UnexpectedEof,
                "NATS closed the connection",
            ));
        }
        if line.starts_with("PING") {
            stream.write_all(b"PONG\r\n")?;
        } else if line.starts_with("-ERR") {
            return Err(Error::other(line.trim_end().to_owned()));
        } else if let Some(rest) = line.strip_prefix("MSG ") {
            // MSG <subject> <sid> [reply-to] <#bytes>
            let parts: Vec<&str> = rest.split_whitespace().collect();
            let bad = || Error::new(ErrorKind::InvalidData, line.clone());
            let len: usize = parts.last().and_then(|n| n.parse().ok()).ok_or_else(bad)?;
            let mut payload = vec![0; len + 2];
            reader.read_exact(&mut payload)?;
            payload.truncate(len);
            let index: usize = parts[0]
                .rsplit('.')
                .next()
                .and_then(|i| i.parse().ok())
                .ok_or_else(bad)?;
            if let Some(slot) = replies.get_mut(index) {
                *slot = Some(String::from_utf8_lossy(&payload).into_owned());
            }
        }
    }
    Ok((info, replies.into_iter().flatten().collect()))
}

/// A NATS prefix no other test (or run) uses: `netsvr_bin_test_<pid>_<nanos><n>` (letters,
/// digits and `_` only). Its JetStream KV streams are deleted when dropped, unless
/// [`NatsPrefix::delete_streams`] already did.
pub struct NatsPrefix {
    pub name: String,
    deleted: bool,
}

impl NatsPrefix {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        Self {
            name: format!("netsvr_bin_test_{pid}_{nanos:08x}{n}"),
            deleted: false,
        }
    }

    /// The streams of the broker's two KV buckets (`KV_<prefix>_nodes`, `KV_<prefix>_conns`).
    pub fn streams(&self) -> [String; 2] {
        [
            format!("KV_{}_nodes", self.name),
            format!("KV_{}_conns", self.name),
        ]
    }

    /// Deletes the KV streams (`$JS.API.STREAM.DELETE.<stream>`); the JetStream answers, in
    /// the order of [`NatsPrefix::streams`]. Stop the nodes first: a running node would
    /// recreate them when it reconnects.
    pub fn delete_streams(&mut self) -> std::io::Result<Vec<String>> {
        self.deleted = true;
        let subjects: Vec<String> = self
            .streams()
            .iter()
            .map(|s| format!("$JS.API.STREAM.DELETE.{s}"))
            .collect();
        nats_requests(&subjects).map(|(_, replies)| replies)
    }
}

impl Default for NatsPrefix {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NatsPrefix {
    fn drop(&mut self) {
        if !self.deleted {
            let _ = self.delete_streams();
        }
    }
}

/// A NATS node's configuration: as [`node_config`], with `broker = "nats"` and `url` in
/// `[cluster.nats]`.
pub fn nats_node_config(prefix: &NatsPrefix, url: &str, extra: &str) -> String {
    json_config(&format!(
        "[cluster]\nbroker = \"nats\"\nlease_ttl = \"{}ms\"\nheartbeat = \"{}ms\"\n\
         query_timeout = \"1s\"\n{extra}\n\
         [cluster.nats]\nurl = \"{url}\"\nprefix = \"{}\"\n",
        LEASE_TTL.as_millis(),
        HEARTBEAT.as_millis(),
        prefix.name
    ))
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
    let configs: Vec<String> = extras.iter().map(|e| node_config(prefix, e)).collect();
    start_configs(&configs).await
}

/// Starts one node per configuration and waits until every node sees all of them.
pub async fn start_configs(configs: &[String]) -> Vec<Server> {
    let mut nodes = Vec::new();
    for (i, config) in configs.iter().enumerate() {
        let path = temp_file(&format!("node{i}.toml"), config);
        nodes.push(Server::start(&path).await);
    }
    for node in &nodes {
        wait_for_nodes(node, configs.len()).await;
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
