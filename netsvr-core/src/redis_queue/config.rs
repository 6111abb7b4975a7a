//! Configuration of the Redis queue sink (TOML section `[redis]` of the binary).

use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;

/// How an event is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum KeyKind {
    /// A list: `LPUSH key payload` (consumers `BRPOP` for FIFO).
    #[default]
    List,
    /// A stream: `XADD key [MAXLEN ~ n] * data payload`.
    Stream,
}

/// Where one kind of event goes. An empty key turns that event off.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Target {
    /// The Redis key.
    pub key: String,
    /// `list` or `stream`.
    #[serde(rename = "type")]
    pub kind: KeyKind,
}

impl Target {
    /// A target with this key and kind.
    pub fn new(key: impl Into<String>, kind: KeyKind) -> Self {
        Self {
            key: key.into(),
            kind,
        }
    }
}

/// The Redis sink. Payload of each entry: `u32` BE command id + protobuf body
/// (PROTOCOL.md §8).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`. Default `redis://127.0.0.1:6379`.
    pub url: String,
    /// Where ConnOpen events go (empty key: not sent).
    pub open: Target,
    /// Where Transfer events go.
    pub message: Target,
    /// Where ConnClose events go.
    pub close: Target,
    /// Streams only: trim with `MAXLEN ~ n`; 0 does not trim. Default 0.
    pub maxlen: usize,
    /// Most events per pipelined batch. Default 512.
    pub batch: usize,
    /// Events buffered while Redis is slow or down; past it events are dropped and counted.
    /// Default 65,536.
    pub buffer: usize,
    /// Ordered lanes (connections to Redis) delivering in parallel. Default 1.
    pub lanes: usize,
    /// Time allowed for one batch. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// First retry delay. Default 100 ms.
    #[serde(with = "humantime_serde")]
    pub retry_min: Duration,
    /// Longest retry delay. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".to_owned(),
            open: Target::new("netsvr:open", KeyKind::List),
            message: Target::new("netsvr:message", KeyKind::List),
            close: Target::new("netsvr:close", KeyKind::List),
            maxlen: 0,
            batch: 512,
            buffer: 65_536,
            lanes: 1,
            timeout: Duration::from_secs(5),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
        }
    }
}

impl RedisConfig {
    /// Checks every field; the first bad one is reported with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.url.starts_with("redis://") || self.url.starts_with("rediss://")) {
            return Err(ConfigError::new(
                "redis.url",
                format!("`{}` must start with redis://", self.url),
            ));
        }
        if self.batch == 0 {
            return Err(ConfigError::new("redis.batch", "must be at least 1"));
        }
        if self.lanes == 0 || self.lanes > 256 {
            return Err(ConfigError::new("redis.lanes", "must be 1 to 256"));
        }
        if self.buffer < self.lanes {
            return Err(ConfigError::new("redis.buffer", "must be at least lanes"));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::new("redis.timeout", "must be above zero"));
        }
        if self.retry_min.is_zero() || self.retry_max < self.retry_min {
            return Err(ConfigError::new(
                "redis.retry_max",
                "retry_min must be above zero and retry_max at least retry_min",
            ));
        }
        Ok(())
    }
}
