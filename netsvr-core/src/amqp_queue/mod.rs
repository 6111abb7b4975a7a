//! AMQP 0-9-1 queue sink (feature `amqp`): events to a RabbitMQ exchange with publisher
//! confirms (PROTOCOL.md §8).
//!
//! Each event is one message: body `u32` BE command id + protobuf body (`ConnOpen`,
//! `Transfer` or `ConnClose`), content type `application/octet-stream`, delivery mode 2
//! (persistent) when [`AmqpConfig::durable`], published to [`AmqpConfig::exchange`] with the
//! routing key of its kind. An event kind whose routing key is empty is not sent.
//!
//! The sink is a [`BufferedSink`] named `amqp` with one lane, so events leave in the order the
//! gateway accepted them. The lane owns one connection and one channel in confirm mode,
//! opened lazily: [`AmqpSink::start`] neither blocks nor fails while the broker is down. On
//! every (re)connect the exchange is declared (type and durability from the config) and, if
//! [`QueueBinding::name`] is set, the queue is declared and bound with
//! [`QueueBinding::binding_key`].
//!
//! Delivery is **at least once**: a batch is published, then its confirms are awaited for
//! at most [`AmqpConfig::confirm_timeout`]. The leading run of acked messages counts as
//! delivered; a nack, a timeout or a connection error drops the connection, and the rest of
//! the batch is published again, in order, after a back-off (on a new connection). A message
//! the broker took but whose ack was lost is therefore published twice; consumers that care
//! de-duplicate. Events that arrive while the buffer ([`AmqpConfig::buffer`]) is full are
//! dropped and counted (sink status `dropped`, `netsvr_sink_failed_total{sink="amqp"}`).
//!
//! ```no_run
//! use netsvr_core::Gateway;
//! use netsvr_core::amqp_queue::{AmqpConfig, AmqpSink};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = AmqpConfig::default();
//! config.exchange = "netsvr".into();
//! config.queue.name = "netsvr.messages".into();
//! config.queue.binding_key = config.message_routing_key.clone();
//! let sink = AmqpSink::start(config)?; // inside a tokio runtime
//! let (gateway, serve) = Gateway::builder().sink(sink).build()?;
//! serve.await?;
//! # Ok(()) }
//! ```

mod backend;
mod config;
mod link;

use amq_protocol::protocol::basic::AMQPProperties;
use amq_protocol::uri::AMQPUri;

pub use config::{AmqpConfig, ExchangeKind, QueueBinding};

use crate::config::ConfigError;
use crate::event::{Event, EventKind};
use crate::sink::{BufferedConfig, BufferedSink};
use backend::AmqpBackend;

/// The sink's name: its `sink` metrics label and its name in the sink status.
pub const SINK_NAME: &str = "amqp";

/// The content type of every published message.
pub const CONTENT_TYPE: &str = "application/octet-stream";

/// Starts the AMQP sink. See the [module docs](self).
#[derive(Debug)]
#[non_exhaustive]
pub struct AmqpSink;

impl AmqpSink {
    /// Checks `config` and starts the sink's delivery task. Must be called inside a tokio
    /// runtime. Does not contact the broker: the connection is opened on the first event
    /// and re-opened after every failure, with back-off from `retry_min` to `retry_max`.
    ///
    /// Fails only on a bad configuration: a field out of range, a URL that does not parse,
    /// `amqps://` (this build has no TLS), a name or key longer than AMQP's 255 bytes, or
    /// no tokio runtime.
    pub fn start(config: AmqpConfig) -> Result<BufferedSink, ConfigError> {
        config.validate()?;
        let uri: AMQPUri = config
            .url
            .parse()
            .map_err(|e| ConfigError::new("amqp.url", format!("not a valid AMQP URL: {e}")))?;
        if config.url.starts_with("amqps://") {
            return Err(ConfigError::new(
                "amqp.url",
                "amqps:// needs TLS, which this build of the AMQP sink does not include",
            ));
        }
        check_short_strings(&config)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::new(
                "amqp",
                "AmqpSink::start must be called inside a tokio runtime",
            ));
        }
        let mut buffered = BufferedConfig::new(SINK_NAME);
        buffered.capacity = config.buffer;
        buffered.lanes = 1;
        buffered.batch = config.batch;
        buffered.retry_min = config.retry_min;
        buffered.retry_max = config.retry_max;
        Ok(BufferedSink::start(buffered, move |_lane| {
            AmqpBackend::new(config.clone(), uri.clone())
        }))
    }
}

/// Names and keys travel as AMQP short strings: at most 255 bytes.
fn check_short_strings(config: &AmqpConfig) -> Result<(), ConfigError> {
    let fields = [
        ("amqp.exchange", &config.exchange),
        ("amqp.open_routing_key", &config.open_routing_key),
        ("amqp.message_routing_key", &config.message_routing_key),
        ("amqp.close_routing_key", &config.close_routing_key),
        ("amqp.queue.name", &config.queue.name),
        ("amqp.queue.binding_key", &config.queue.binding_key),
    ];
    match fields.into_iter().find(|(_, value)| value.len() > 255) {
        Some((key, _)) => Err(ConfigError::new(key, "longer than 255 bytes")),
        None => Ok(()),
    }
}

/// The routing key of `event`'s kind; empty: the event is not sent.
fn routing_key<'a>(config: &'a AmqpConfig, event: &Event) -> &'a str {
    match event.kind {
        EventKind::Open => &config.open_routing_key,
        EventKind::Message { .. } => &config.message_routing_key,
        EventKind::Close { .. } => &config.close_routing_key,
    }
}

/// Properties of every message: the content type, and persistence when durable.
fn properties(durable: bool) -> AMQPProperties {
    let properties = AMQPProperties::default().with_content_type(CONTENT_TYPE.into());
    if durable {
        properties.with_delivery_mode(2)
    } else {
        properties
    }
}

#[cfg(test)]
mod tests;
