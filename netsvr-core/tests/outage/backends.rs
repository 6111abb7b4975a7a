//! The back-ends the outage tests break: a private `redis-server`, a cuttable TCP proxy to
//! RabbitMQ with a consumer, and an HTTP callback endpoint that can answer 503.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use lapin::options::{BasicConsumeOptions, ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub const RABBIT: &str = "127.0.0.1:5672";
const RABBIT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

/// Says a test cannot run: fails under CI, otherwise prints `SKIPPED` (the caller returns).
pub fn unavailable(why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{why} (required when CI is set)"
    );
    println!("SKIPPED: {why}");
}

/// True when something listens on `addr`.
pub async fn listening(addr: &str) -> bool {
    let up = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await;
    matches!(up, Ok(Ok(_)))
}

/// A name no other test (or test run) uses.
pub fn unique(what: &str) -> String {
    format!("netsvr-outage-{what}-{}", std::process::id())
}

// ---- Redis ----

/// A connection that answers PING, or `None`.
pub async fn redis_connect(url: &str) -> Option<redis::aio::MultiplexedConnection> {
    let attempt = async {
        let client = redis::Client::open(url).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let pong: String = redis::cmd("PING").query_async(&mut conn).await.ok()?;
        (pong == "PONG").then_some(conn)
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
}

/// A list's entries, oldest first (LPUSH puts the newest at the head).
pub async fn list_oldest_first(url: &str, key: &str) -> Vec<Vec<u8>> {
    let mut conn = redis_connect(url).await.expect("Redis is back");
    let mut entries: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    entries.reverse();
    entries
}

/// A `redis-server` of this test on an ephemeral port, with an append-only file so that a
/// SIGKILL keeps what it acknowledged. Killed on drop.
pub struct PrivateRedis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts one, or returns `None` (after [`unavailable`]) when `redis-server` is missing.
    pub async fn start() -> Option<Self> {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let dir = std::env::temp_dir().join(unique(&format!("redis-{port}")));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Self {
            port,
            dir,
            child: None,
        };
        if let Err(e) = redis.spawn() {
            unavailable(&format!("cannot run redis-server: {e}"));
            return None;
        }
        redis.ready().await;
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--daemonize", "no"])
            .args(["--appendonly", "yes", "--appendfsync", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    async fn ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while redis_connect(&self.url()).await.is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "private redis-server on port {} did not start",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data directory.
    pub async fn restart(&mut self) {
        self.spawn().unwrap();
        self.ready().await;
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---- RabbitMQ ----

/// A TCP proxy to RabbitMQ that can cut every link and refuse new ones until resumed.
pub struct Proxy {
    addr: SocketAddr,
    refusing: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
}

impl Proxy {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let refusing = Arc::new(AtomicBool::new(false));
        let (cuts, _) = watch::channel(0u64);
        let (refuse, cut) = (refusing.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cut_now = cut.subscribe();
                if refuse.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the link close at once
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(RABBIT).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_now.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            refusing,
            cuts,
        }
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    /// Closes every open link; new ones are refused until [`Proxy::resume`].
    pub fn cut(&self) {
        self.refusing.store(true, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    pub fn resume(&self) {
        self.refusing.store(false, Ordering::SeqCst);
    }
}

/// The test's own connection to RabbitMQ, straight (not through the proxy).
pub struct Rabbit {
    connection: Connection,
    channel: Channel,
}

impl Rabbit {
    pub async fn connect() -> Self {
        let props = ConnectionProperties::default();
        let connection = Connection::connect(RABBIT_URL, props).await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        Self {
            connection,
            channel,
        }
    }

    /// Consumes `queue` until it has been quiet for a second.
    pub async fn drain(&self, queue: &str) -> Vec<Vec<u8>> {
        let options = BasicConsumeOptions {
            no_ack: true,
            ..BasicConsumeOptions::default()
        };
        let args = FieldTable::default();
        let consume = self
            .channel
            .basic_consume(queue.into(), "drain".into(), options, args);
        let mut consumer = consume.await.unwrap();
        let mut got = Vec::new();
        while let Ok(Some(delivery)) =
            tokio::time::timeout(Duration::from_secs(1), consumer.next()).await
        {
            got.push(delivery.unwrap().data);
        }
        got
    }

    pub async fn cleanup(self, exchange: &str, queue: &str) {
        let options = QueueDeleteOptions::default();
        let _ = self.channel.queue_delete(queue.into(), options).await;
        let options = ExchangeDeleteOptions::default();
        let _ = self.channel.exchange_delete(exchange.into(), options).await;
        let _ = self.connection.close(200, "OK".into()).await;
    }
}

// ---- HTTP callbacks ----

/// A callback endpoint: records the bodies it answers 204, or answers 503 (recording
/// nothing) while failing.
#[derive(Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    failing: Arc<AtomicBool>,
    pub refused: Arc<AtomicU64>,
    /// (path, body) of every request answered 204, in arrival order.
    pub taken: Arc<Mutex<Vec<(String, Bytes)>>>,
}

impl Endpoint {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = Self {
            addr: listener.local_addr().unwrap(),
            failing: Arc::default(),
            refused: Arc::default(),
            taken: Arc::default(),
        };
        let state = endpoint.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                let service = service_fn(move |req| state.clone().answer(req));
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        endpoint
    }

    async fn answer(
        self,
        req: Request<hyper::body::Incoming>,
    ) -> Result<Response<Full<Bytes>>, hyper::Error> {
        let path = req.uri().path().to_owned();
        let body = req.into_body().collect().await?.to_bytes();
        let status = if self.failing.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            503
        } else {
            self.taken.lock().unwrap().push((path, body));
            204
        };
        Ok(Response::builder()
            .status(status)
            .body(Full::new(Bytes::new()))
            .unwrap())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}
