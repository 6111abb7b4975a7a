//! The back-ends the outage tests break: a private `redis-server`, a cuttable TCP proxy to
//! RabbitMQ with a consumer, and an HTTP callback endpoint that can answer 503.

use std::net::SocketAddr;
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

pub use crate::common::services::{PrivateRedis, Proxy, RABBIT, try_connect, unavailable};
const RABBIT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

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

/// A list's entries, oldest first (LPUSH puts the newest at the head).
pub async fn list_oldest_first(url: &str, key: &str) -> Vec<Vec<u8>> {
    let mut conn = try_connect(url).await.expect("Redis is back");
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

// ---- RabbitMQ ----

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
