//! Redis queue sink (feature `redis`): events to a list (`LPUSH`) or a stream (`XADD`).
//!
//! Each entry is one event as netsvr's queue payload (PROTOCOL.md §8): the `u32` big-endian
//! command id (900001001 `ConnOpen`, 900001003 `Transfer`, 900001002 `ConnClose`) followed by
//! the protobuf body, with no length prefix. A list entry is that payload; a stream entry has
//! one field, `data`, holding it. Consumers of a list `BRPOP` it for FIFO order.
//!
//! ```no_run
//! use netsvr_core::Gateway;
//! use netsvr_core::redis_queue::{KeyKind, RedisConfig, RedisSink, Target};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = RedisConfig::default(); // redis://127.0.0.1:6379, lists netsvr:{open,message,close}
//! config.message = Target::new("chat:in", KeyKind::Stream);
//! config.maxlen = 100_000; // XADD chat:in MAXLEN ~ 100000 * data <payload>
//! config.open = Target::default(); // an empty key: open events are not sent
//! let sink = RedisSink::start(config)?; // never waits for Redis
//! let (gateway, serve) = Gateway::builder().sink(sink).build()?;
//! serve.await?;
//! # let _ = gateway;
//! # Ok(()) }
//! ```
//!
//! # Delivery
//!
//! The sink is a [`BufferedSink`] named `redis` (its `sink` metrics label and status name):
//! events wait in a bounded buffer of `buffer` events split over `lanes` ordered lanes (one
//! connection's events always share a lane, so they stay in order); past the bound new events
//! are dropped and counted. Each lane owns one Redis connection, opened on its first batch and
//! re-opened after any failure, and sends up to `batch` events as **one transaction**,
//! `MULTI`, one `LPUSH`/`XADD` per event, `EXEC`, written in a single pipelined round trip and
//! bounded by `timeout`. A failed batch is retried whole, in order, with back-off from
//! `retry_min` to `retry_max`, for as long as it takes.
//!
//! The guarantee is **at-least-once, in order per connection, and all-or-nothing per batch**:
//!
//! - A batch whose connection breaks, or that Redis refuses before `EXEC` (for example
//!   `OOM`, `READONLY`, `NOAUTH`: `EXECABORT`), left nothing behind, so its retry adds each
//!   entry once. A Redis restart or a network cut therefore neither loses nor duplicates
//!   entries on the sink's side (what a killed Redis keeps of the entries it had already
//!   stored is up to its own persistence), apart from the next point.
//! - The one way to get duplicates: Redis ran `EXEC` but its reply never arrived (the
//!   connection broke in that instant, or the reply took longer than `timeout`). The sink
//!   cannot tell this from "not run", so it retries and the whole batch is stored again,
//!   after its first copy and before any later event of the same lane. Entries carry no
//!   sequence number, so a consumer that must never see a duplicate needs its own
//!   idempotence; a longer `timeout` narrows the window.
//! - A command Redis ran and rejected inside an executed transaction (`WRONGTYPE`: the key
//!   exists with another type) cannot be fixed by retrying and the rest of the transaction
//!   is applied, so the batch counts as done: the rejected events are logged at error level
//!   and counted in `netsvr_sink_failed_total{sink="redis"}` (and in the status'
//!   `delivered`, as the buffer sees them handed on).
//!
//! A target whose key is empty is turned off: its events are skipped and count as delivered.
//! All keys of a batch go to one server in one transaction, so Redis Cluster is not supported
//! (use one server, a primary with replicas, or a proxy).

mod backend;
mod config;

pub use config::{KeyKind, RedisConfig, Target};

use crate::config::ConfigError;
use crate::sink::{BufferedConfig, BufferedSink};
use backend::RedisBackend;

/// The Redis queue sink's constructor. The running sink is a [`BufferedSink`]; see the
/// [module documentation](self) for what it stores and how it delivers.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RedisSink;

impl RedisSink {
    /// The sink's name: its `sink` label in metrics and its name in the status.
    pub const NAME: &'static str = "redis";

    /// Validates `config` and starts one delivery task per lane.
    ///
    /// Must be called inside a tokio runtime. It does no I/O: Redis may be down at start;
    /// each lane connects on its first batch and keeps retrying (events wait in the buffer
    /// meanwhile). Fails only on a bad configuration, including a URL that the client cannot
    /// use (`rediss://` needs TLS, which this build of the sink does not include).
    pub fn start(config: RedisConfig) -> Result<BufferedSink, ConfigError> {
        config.validate()?;
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| ConfigError::new("redis.url", format!("`{}`: {e}", config.url)))?;
        Ok(BufferedSink::start(buffered_config(&config), |lane| {
            RedisBackend::new(client.clone(), &config, lane, Self::NAME)
        }))
    }
}

/// The buffer, lanes, batch size and back-off of the sink.
fn buffered_config(config: &RedisConfig) -> BufferedConfig {
    let mut buffered = BufferedConfig::new(RedisSink::NAME);
    buffered.capacity = config.buffer;
    buffered.lanes = config.lanes;
    buffered.batch = config.batch;
    buffered.retry_min = config.retry_min;
    buffered.retry_max = config.retry_max;
    buffered
}

#[cfg(test)]
mod tests;
