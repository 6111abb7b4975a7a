//! Configuration of the AMQP queue sink (TOML section `[amqp]` of the binary).

use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;

/// The exchange type to declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ExchangeKind {
    /// Routed by exact routing key.
    #[default]
    Direct,
    /// To every bound queue.
    Fanout,
    /// Routed by routing-key pattern.
    Topic,
    /// Routed by headers.
    Headers,
}

/// A queue to declare and bind at start (optional).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct QueueBinding {
    /// Queue name; empty: declare none.
    pub name: String,
    /// Binding key (for direct/topic exchanges).
    pub binding_key: String,
}

/// The AMQP 0-9-1 sink. Each event is one message: body `u32` BE command id + protobuf
/// body, content type `application/octet-stream`, persistent when durable, published with
/// confirms (PROTOCOL.md §8).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AmqpConfig {
    /// `amqp://user:password@host:port/vhost`. Default `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub url: String,
    /// Exchange to publish to. Default `netsvr`.
    pub exchange: String,
    /// Exchange type. Default `direct`.
    pub exchange_type: ExchangeKind,
    /// Durable exchange (and queue), persistent messages. Default true.
    pub durable: bool,
    /// Routing key of ConnOpen events; empty: not sent. Default `netsvr.open`.
    pub open_routing_key: String,
    /// Routing key of Transfer events. Default `netsvr.message`.
    pub message_routing_key: String,
    /// Routing key of ConnClose events. Default `netsvr.close`.
    pub close_routing_key: String,
    /// Optional queue declared and bound at start.
    pub queue: QueueBinding,
    /// Most messages published before waiting for their confirms. Default 256.
    pub batch: usize,
    /// Events buffered while the broker is slow or down; past it events are dropped and
    /// counted. Default 65,536.
    pub buffer: usize,
    /// Time allowed for a batch's confirms. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub confirm_timeout: Duration,
    /// First retry (reconnect) delay. Default 100 ms.
    #[serde(with = "humantime_serde")]
    pub retry_min: Duration,
    /// Longest retry delay. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        Self {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            exchange: "netsvr".to_owned(),
            exchange_type: ExchangeKind::Direct,
            durable: true,
            open_routing_key: "netsvr.open".to_owned(),
            message_routing_key: "netsvr.message".to_owned(),
            close_routing_key: "netsvr.close".to_owned(),
            queue: QueueBinding::default(),
            batch: 256,
            buffer: 65_536,
            confirm_timeout: Duration::from_secs(5),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
        }
    }
}

impl AmqpConfig {
    /// Checks every field; the first bad one is reported with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.url.starts_with("amqp://") || self.url.starts_with("amqps://")) {
            return Err(ConfigError::new(
                "amqp.url",
                format!("`{}` must start with amqp://", self.url),
            ));
        }
        if self.exchange.is_empty() {
            return Err(ConfigError::new("amqp.exchange", "must not be empty"));
        }
        if self.batch == 0 {
            return Err(ConfigError::new("amqp.batch", "must be at least 1"));
        }
        if self.buffer == 0 {
            return Err(ConfigError::new("amqp.buffer", "must be at least 1"));
        }
        if self.confirm_timeout.is_zero() {
            return Err(ConfigError::new(
                "amqp.confirm_timeout",
                "must be above zero",
            ));
        }
        if self.retry_min.is_zero() || self.retry_max < self.retry_min {
            return Err(ConfigError::new(
                "amqp.retry_max",
                "retry_min must be above zero and retry_max at least retry_min",
            ));
        }
        Ok(())
    }
}
