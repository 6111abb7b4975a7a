//! The connector sections: `[http]`, `[redis]` and `[amqp]`, mirroring netsvr-core's
//! [`CallbackConfig`], [`RedisConfig`] and [`AmqpConfig`] field by field (plus `enabled` for
//! the queues), with their defaults. Secrets in URLs are printed as `***`.

use std::time::Duration;

use netsvr_core::amqp_queue::{AmqpConfig, ExchangeKind, QueueBinding};
use netsvr_core::callbacks::CallbackConfig;
use netsvr_core::redis_queue::{KeyKind, RedisConfig, Target};
use serde::{Deserialize, Serialize, Serializer};

use super::redact_url;

fn serialize_url<S: Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url))
}

fn enabled() -> bool {
    true
}

/// `[http]`: netsvr's HTTP callbacks. An empty URL turns that callback off.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    /// OnOpen: decides admission (the authenticator). Empty: everyone is admitted.
    #[serde(serialize_with = "serialize_url")]
    pub on_open_url: String,
    /// OnMessage: each client message is POSTed here. Empty: off.
    #[serde(serialize_with = "serialize_url")]
    pub on_message_url: String,
    /// OnClose: each close is POSTed here. Empty: off.
    #[serde(serialize_with = "serialize_url")]
    pub on_close_url: String,
    /// Time allowed for one request.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Requests in flight at once for OnMessage / OnClose.
    pub max_concurrency: usize,
    /// Events buffered while the endpoint is slow or down.
    pub buffer: usize,
    /// Idle keep-alive connections kept per host.
    pub pool_max_idle: usize,
    /// How long an idle keep-alive connection is kept.
    #[serde(with = "humantime_serde")]
    pub pool_idle_timeout: Duration,
    /// First retry delay.
    #[serde(with = "humantime_serde")]
    pub retry_min: Duration,
    /// Longest retry delay.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
}

impl Default for HttpSection {
    fn default() -> Self {
        let c = CallbackConfig::default();
        Self {
            on_open_url: c.on_open_url,
            on_message_url: c.on_message_url,
            on_close_url: c.on_close_url,
            timeout: c.timeout,
            max_concurrency: c.max_concurrency,
            buffer: c.buffer,
            pool_max_idle: c.pool_max_idle,
            pool_idle_timeout: c.pool_idle_timeout,
            retry_min: c.retry_min,
            retry_max: c.retry_max,
        }
    }
}

impl HttpSection {
    /// The core config.
    pub fn to_core(&self) -> CallbackConfig {
        let mut c = CallbackConfig::default();
        c.on_open_url.clone_from(&self.on_open_url);
        c.on_message_url.clone_from(&self.on_message_url);
        c.on_close_url.clone_from(&self.on_close_url);
        c.timeout = self.timeout;
        c.max_concurrency = self.max_concurrency;
        c.buffer = self.buffer;
        c.pool_max_idle = self.pool_max_idle;
        c.pool_idle_timeout = self.pool_idle_timeout;
        c.retry_min = self.retry_min;
        c.retry_max = self.retry_max;
        c
    }
}

/// `[redis.open]`, `[redis.message]`, `[redis.close]`: a key and its type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TargetSection {
    /// The Redis key; empty: this event is not sent.
    pub key: String,
    /// `list` (LPUSH) or `stream` (XADD).
    #[serde(rename = "type")]
    pub kind: KeyType,
}

/// A target's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    /// A list.
    #[default]
    List,
    /// A stream.
    Stream,
}

impl TargetSection {
    fn from_core(t: &Target) -> Self {
        let kind = match t.kind {
            KeyKind::Stream => KeyType::Stream,
            _ => KeyType::List,
        };
        Self {
            key: t.key.clone(),
            kind,
        }
    }

    fn to_core(&self) -> Target {
        let kind = match self.kind {
            KeyType::List => KeyKind::List,
            KeyType::Stream => KeyKind::Stream,
        };
        Target::new(self.key.clone(), kind)
    }
}

/// `[redis]`: the Redis queue sink. Present and `enabled` (the default) turns it on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSection {
    /// Turn the sink on. Default true when the section is present.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// `redis://[user:password@]host:port[/db]`.
    #[serde(serialize_with = "serialize_url")]
    pub url: String,
    /// Streams only: `MAXLEN ~ n`; 0 does not trim.
    pub maxlen: usize,
    /// Most events per pipelined batch.
    pub batch: usize,
    /// Events buffered while Redis is slow or down.
    pub buffer: usize,
    /// Ordered lanes (connections) delivering in parallel.
    pub lanes: usize,
    /// Time allowed for one batch.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// First retry delay.
    #[serde(with = "humantime_serde")]
    pub retry_min: Duration,
    /// Longest retry delay.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// Where ConnOpen events go.
    pub open: TargetSection,
    /// Where Transfer (message) events go.
    pub message: TargetSection,
    /// Where ConnClose events go.
    pub close: TargetSection,
}

impl Default for RedisSection {
    fn default() -> Self {
        let c = RedisConfig::default();
        Self {
            enabled: true,
            url: c.url,
            maxlen: c.maxlen,
            batch: c.batch,
            buffer: c.buffer,
            lanes: c.lanes,
            timeout: c.timeout,
            retry_min: c.retry_min,
            retry_max: c.retry_max,
            open: TargetSection::from_core(&c.open),
            message: TargetSection::from_core(&c.message),
            close: TargetSection::from_core(&c.close),
        }
    }
}

impl RedisSection {
    /// The core config (whether or not `enabled`).
    pub fn to_core(&self) -> RedisConfig {
        let mut c = RedisConfig::default();
        c.url.clone_from(&self.url);
        c.open = self.open.to_core();
        c.message = self.message.to_core();
        c.close = self.close.to_core();
        c.maxlen = self.maxlen;
        c.batch = self.batch;
        c.buffer = self.buffer;
        c.lanes = self.lanes;
        c.timeout = self.timeout;
        c.retry_min = self.retry_min;
        c.retry_max = self.retry_max;
        c
    }
}

/// `[amqp.queue]`: a queue declared and bound at start.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSection {
    /// Queue name; empty: declare none.
    pub name: String,
    /// Binding key.
    pub binding_key: String,
}

/// `exchange_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ExchangeType {
    /// By exact routing key.
    #[default]
    Direct,
    /// To every bound queue.
    Fanout,
    /// By routing-key pattern.
    Topic,
    /// By headers.
    Headers,
}

/// `[amqp]`: the RabbitMQ sink. Present and `enabled` (the default) turns it on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpSection {
    /// Turn the sink on. Default true when the section is present.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// `amqp://user:password@host:port/vhost`.
    #[serde(serialize_with = "serialize_url")]
    pub url: String,
    /// Exchange to publish to.
    pub exchange: String,
    /// `direct`, `fanout`, `topic` or `headers`.
    pub exchange_type: ExchangeType,
    /// Durable exchange and queue, persistent messages.
    pub durable: bool,
    /// Routing key of ConnOpen events; empty: not sent.
    pub open_routing_key: String,
    /// Routing key of Transfer events.
    pub message_routing_key: String,
    /// Routing key of ConnClose events.
    pub close_routing_key: String,
    /// Most messages published before waiting for confirms.
    pub batch: usize,
    /// Events buffered while the broker is slow or down.
    pub buffer: usize,
    /// Time allowed for a batch's confirms.
    #[serde(with = "humantime_serde")]
    pub confirm_timeout: Duration,
    /// First retry delay.
    #[serde(with = "humantime_serde")]
    pub retry_min: Duration,
    /// Longest retry delay.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// Optional queue declared and bound at start.
    pub queue: QueueSection,
}

impl Default for AmqpSection {
    fn default() -> Self {
        let c = AmqpConfig::default();
        Self {
            enabled: true,
            url: c.url,
            exchange: c.exchange,
            exchange_type: match c.exchange_type {
                ExchangeKind::Fanout => ExchangeType::Fanout,
                ExchangeKind::Topic => ExchangeType::Topic,
                ExchangeKind::Headers => ExchangeType::Headers,
                _ => ExchangeType::Direct,
            },
            durable: c.durable,
            open_routing_key: c.open_routing_key,
            message_routing_key: c.message_routing_key,
            close_routing_key: c.close_routing_key,
            batch: c.batch,
            buffer: c.buffer,
            confirm_timeout: c.confirm_timeout,
            retry_min: c.retry_min,
            retry_max: c.retry_max,
            queue: QueueSection {
                name: c.queue.name,
                binding_key: c.queue.binding_key,
            },
        }
    }
}

impl AmqpSection {
    /// The core config (whether or not `enabled`).
    pub fn to_core(&self) -> AmqpConfig {
        let mut c = AmqpConfig::default();
        c.url.clone_from(&self.url);
        c.exchange.clone_from(&self.exchange);
        c.exchange_type = match self.exchange_type {
            ExchangeType::Direct => ExchangeKind::Direct,
            ExchangeType::Fanout => ExchangeKind::Fanout,
            ExchangeType::Topic => ExchangeKind::Topic,
            ExchangeType::Headers => ExchangeKind::Headers,
        };
        c.durable = self.durable;
        c.open_routing_key.clone_from(&self.open_routing_key);
        c.message_routing_key.clone_from(&self.message_routing_key);
        c.close_routing_key.clone_from(&self.close_routing_key);
        let mut queue = QueueBinding::default();
        queue.name.clone_from(&self.queue.name);
        queue.binding_key.clone_from(&self.queue.binding_key);
        c.queue = queue;
        c.batch = self.batch;
        c.buffer = self.buffer;
        c.confirm_timeout = self.confirm_timeout;
        c.retry_min = self.retry_min;
        c.retry_max = self.retry_max;
        c
    }
}
