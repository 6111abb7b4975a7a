//! The Redis cluster broker: pub/sub carries commands between nodes (a channel per node for
//! uniqId-addressed commands and query replies, one shared channel for the rest); a sorted
//! set holds the leases, a hash per node the copies of its connections. Lease renewal and
//! the claim of a dead node are Lua scripts, so exactly one survivor claims a dead node.
//! Feature `redis`.
//!
//! Keys and channels, under the configured prefix `P`:
//!
//! | name | type | holds |
//! |---|---|---|
//! | `P:node:<id>` | channel | envelopes for node `<id>` |
//! | `P:all` | channel | envelopes for every node |
//! | `P:nodes` | sorted set | node id → lease expiry (unix ms) |
//! | `P:info` | hash | node id → [`NodeRecord::encode`] |
//! | `P:conns:<id>` | hash | uniqId → copy of the connection (for the node-lost report) |
//! | `P:claimed:<id>` | string | the incarnation that was claimed dead (expires in 1 h) |

mod config;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt as _;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use config::RedisBrokerConfig;

use crate::cluster::{Broker, BrokerError, BrokerLink, Lease, NodeId, NodeRecord, Publication};
use crate::config::ConfigError;

/// Renews a lease. KEYS: nodes, info, claimed marker of this node. ARGV: id, expiry, record,
/// now, incarnation. Returns {existed, claimed, live records, expired records, the record
/// before this renewal or false}.
const RENEW: &str = r"
local existed = redis.call('ZSCORE', KEYS[1], ARGV[1])
local previous = redis.call('HGET', KEYS[2], ARGV[1])
local claimed = 0
local marker = redis.call('GET', KEYS[3])
if marker and marker == ARGV[5] then
  redis.call('DEL', KEYS[3])
  claimed = 1
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
local live = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[4], '+inf')
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[4])
local l, e = {}, {}
if #live > 0 then l = redis.call('HMGET', KEYS[2], unpack(live)) end
if #expired > 0 then e = redis.call('HMGET', KEYS[2], unpack(expired)) end
local ex = 0
if existed then ex = 1 end
return {ex, claimed, l, e, previous}
";

/// Claims a node whose lease has ended. KEYS: nodes, info, the node's conns, its claimed
/// marker. ARGV: id, now, marker ttl ms. Returns the connection copies, or nil.
const CLAIM: &str = r"
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return false end
if tonumber(score) >= tonumber(ARGV[2]) then return false end
local rec = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
local conns = redis.call('HVALS', KEYS[3])
redis.call('DEL', KEYS[3])
if rec then
  local inc = string.match(rec, '^[^|]*|[^|]*|[^|]*|([^|]*)|')
  if inc then redis.call('SET', KEYS[4], inc, 'PX', ARGV[3]) end
end
return conns
";

/// How long the "claimed" marker waits for a paused node to come back and see it.
const CLAIMED_MARKER_MS: u64 = 3_600_000;

/// Key and channel names under one prefix.
#[derive(Debug, Clone)]
struct Names {
    prefix: String,
}

impl Names {
    fn node(&self, id: &NodeId) -> String {
        format!("{}:node:{id}", self.prefix)
    }
    fn all(&self) -> String {
        format!("{}:all", self.prefix)
    }
    fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
    fn info(&self) -> String {
        format!("{}:info", self.prefix)
    }
    fn conns(&self, id: &NodeId) -> String {
        format!("{}:conns:{id}", self.prefix)
    }
    fn claimed(&self, id: &NodeId) -> String {
        format!("{}:claimed:{id}", self.prefix)
    }
}

/// The Redis [`Broker`].
#[derive(Debug, Clone)]
pub struct RedisBroker {
    client: Client,
    names: Names,
    connect: AsyncConnectionConfig,
}

impl RedisBroker {
    /// A broker for `config` (validated; no I/O until a node connects).
    pub fn new(config: &RedisBrokerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let client = Client::open(config.url.as_str())
            .map_err(|e| ConfigError::new("cluster.redis.url", e.to_string()))?;
        Ok(Self {
            client,
            names: Names {
                prefix: config.prefix.clone(),
            },
            connect: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(5)))
                .set_response_timeout(Some(Duration::from_secs(5))),
        })
    }
}

fn connection(e: redis::RedisError) -> BrokerError {
    BrokerError::Connection(e.to_string())
}

#[async_trait]
impl Broker for RedisBroker {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn connect(
        &self,
        me: NodeId,
        inbox: mpsc::Sender<Bytes>,
    ) -> Result<Box<dyn BrokerLink>, BrokerError> {
        let mut pubsub = self.client.get_async_pubsub().await.map_err(connection)?;
        pubsub
            .subscribe(self.names.node(&me))
            .await
            .map_err(connection)?;
        pubsub
            .subscribe(self.names.all())
            .await
            .map_err(connection)?;
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&self.connect)
            .await
            .map_err(connection)?;
        let broken = Arc::new(AtomicBool::new(false));
        let flag = broken.clone();
        let reader = tokio::spawn(async move {
            let (_sink, mut stream) = pubsub.split();
            while let Some(message) = stream.next().await {
                let payload = Bytes::copy_from_slice(message.get_payload_bytes());
                // Waits for room: the inbox is bounded and nothing is dropped here.
                if inbox.send(payload).await.is_err() {
                    break;
                }
            }
            flag.store(true, Ordering::Release);
        });
        Ok(Box::new(RedisLink {
            conn,
            all: self.names.all(),
            conns: self.names.conns(&me),
            channels: HashMap::new(),
            names: self.names.clone(),
            broken,
            reader,
        }))
    }
}

/// One node's connections to Redis: the subscriber (a task feeding the inbox) and a
/// multiplexed connection for everything else.
struct RedisLink {
    conn: MultiplexedConnection,
    /// The shared channel's name.
    all: String,
    /// This node's connection-copies key.
    conns: String,
    /// Node channel names, made once per node rather than per message.
    channels: HashMap<NodeId, String>,
    names: Names,
    broken: Arc<AtomicBool>,
    reader: JoinHandle<()>,
}

impl Drop for RedisLink {
    fn drop(&mut self) {
        // Ends the subscription; the inbox closes once what it holds is applied.
        self.reader.abort();
    }
}

/// One stored lease record (a bulk string), if it is one.
fn record(value: &Value) -> Option<NodeRecord> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok().and_then(NodeRecord::decode),
        _ => None,
    }
}

fn records(value: &Value) -> Vec<NodeRecord> {
    match value {
        Value::Array(items) => items.iter().filter_map(record).collect(),
        _ => Vec::new(),
    }
}

fn flag(value: &Value) -> bool {
    matches!(value, Value::Int(1))
}

#[async_trait]
impl BrokerLink for RedisLink {
    async fn publish(&mut self, batch: &[Publication]) -> Result<(), BrokerError> {
        let mut pipe = redis::pipe();
        for publication in batch {
            match publication {
                Publication::To(node, bytes) => {
                    let names = &self.names;
                    let channel = self
                        .channels
                        .entry(*node)
                        .or_insert_with(|| names.node(node));
                    pipe.cmd("PUBLISH").arg(channel.as_str()).arg(&bytes[..]);
                }
                Publication::All(bytes) => {
                    pipe.cmd("PUBLISH").arg(&self.all).arg(&bytes[..]);
                }
                Publication::Put(key, value) => {
                    pipe.cmd("HSET").arg(&self.conns).arg(key).arg(&value[..]);
                }
                Publication::Remove(key) => {
                    pipe.cmd("HDEL").arg(&self.conns).arg(key);
                }
            }
            pipe.ignore();
        }
        pipe.query_async::<()>(&mut self.conn)
            .await
            .map_err(connection)
    }

    async fn renew(&mut self, me: &NodeRecord, ttl: Duration) -> Result<Lease, BrokerError> {
        let now = crate::cluster::unix_ms();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let reply: Value = redis::cmd("EVAL")
            .arg(RENEW)
            .arg(3)
            .arg(self.names.nodes())
            .arg(self.names.info())
            .arg(self.names.claimed(&me.id))
            .arg(me.id.to_string())
            .arg(now.saturating_add(ttl_ms))
            .arg(me.encode())
            .arg(now)
            .arg(me.incarnation.to_string())
            .query_async(&mut self.conn)
            .await
            .map_err(connection)?;
        let Value::Array(parts) = reply else {
            return Err(BrokerError::Protocol(format!("renew answered {reply:?}")));
        };
        let [existed, claimed, live, expired, rest @ ..] = parts.as_slice() else {
            return Err(BrokerError::Protocol("renew answered a short array".into()));
        };
        let previous = rest.first().and_then(record).map(|r| r.incarnation);
        Ok(Lease::new(
            records(live),
            records(expired),
            flag(existed),
            flag(claimed),
        )
        .with_previous_incarnation(previous))
    }

    async fn claim(
        &mut self,
        node: &NodeId,
        now_ms: u64,
    ) -> Result<Option<Vec<Bytes>>, BrokerError> {
        let reply: Value = redis::cmd("EVAL")
            .arg(CLAIM)
            .arg(4)
            .arg(self.names.nodes())
            .arg(self.names.info())
            .arg(self.names.conns(node))
            .arg(self.names.claimed(node))
            .arg(node.to_string())
            .arg(now_ms)
            .arg(CLAIMED_MARKER_MS)
            .query_async(&mut self.conn)
            .await
            .map_err(connection)?;
        match reply {
            Value::Nil => Ok(None),
            Value::Array(items) => Ok(Some(
                items
                    .into_iter()
                    .filter_map(|item| match item {
                        Value::BulkString(bytes) => Some(Bytes::from(bytes)),
                        _ => None,
                    })
                    .collect(),
            )),
            other => Err(BrokerError::Protocol(format!("claim answered {other:?}"))),
        }
    }

    async fn leave(&mut self, me: &NodeId) -> Result<(), BrokerError> {
        redis::pipe()
            .cmd("ZREM")
            .arg(self.names.nodes())
            .arg(me.to_string())
            .ignore()
            .cmd("HDEL")
            .arg(self.names.info())
            .arg(me.to_string())
            .ignore()
            .cmd("DEL")
            .arg(self.names.conns(me))
            .ignore()
            .query_async::<()>(&mut self.conn)
            .await
            .map_err(connection)
    }

    fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }
}
