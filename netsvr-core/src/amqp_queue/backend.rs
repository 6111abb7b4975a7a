//! The AMQP back-end of the sink's lane: one [`Link`] (connection and confirm-mode channel),
//! opened lazily and dropped on any failure; each batch is published in order and its acked
//! prefix reported to the [`BufferedSink`](crate::sink::BufferedSink).

use amq_protocol::protocol::basic::AMQPProperties;
use amq_protocol::uri::AMQPUri;
use async_trait::async_trait;
use tokio::time::Instant;

use super::link::Link;
use super::{AmqpConfig, SINK_NAME, properties, routing_key};
use crate::event::Event;
use crate::pbevent::PbEvent;
use crate::sink::{Backend, BatchError};

/// The lane's back-end: the settings and the current link, if any.
pub(super) struct AmqpBackend {
    config: AmqpConfig,
    uri: AMQPUri,
    properties: AMQPProperties,
    link: Option<Link>,
}

impl AmqpBackend {
    /// A back-end that has not connected yet.
    pub(super) fn new(config: AmqpConfig, uri: AMQPUri) -> Self {
        Self {
            properties: properties(config.durable),
            config,
            uri,
            link: None,
        }
    }
}

/// The usable link in `slot`, connecting first (within `confirm_timeout`) when there is
/// none or it broke.
async fn connect<'l>(
    slot: &'l mut Option<Link>,
    config: &AmqpConfig,
    uri: &AMQPUri,
    properties: &AMQPProperties,
) -> Result<&'l mut Link, String> {
    if !slot.as_mut().is_some_and(Link::usable) {
        // Drop a dead link before opening a new one.
        *slot = None;
        let authority = &uri.authority;
        let deadline = Instant::now() + config.confirm_timeout;
        let link = Link::open(config, uri, properties, deadline)
            .await
            .map_err(|e| {
                format!(
                    "cannot connect to {}:{}: {e}",
                    authority.host, authority.port
                )
            })?;
        tracing::info!(
            sink = SINK_NAME,
            host = %authority.host,
            port = authority.port,
            exchange = %config.exchange,
            "connected to the AMQP broker"
        );
        *slot = Some(link);
    }
    slot.as_mut()
        .ok_or_else(|| "no connection to the broker".to_owned())
}

#[async_trait]
impl Backend for AmqpBackend {
    async fn deliver(&mut self, batch: &[Event]) -> Result<(), BatchError> {
        let Self {
            config,
            uri,
            properties,
            link,
        } = self;
        if batch
            .iter()
            .all(|event| routing_key(config, event).is_empty())
        {
            return Ok(());
        }
        let open = connect(link, config, uri, properties)
            .await
            .map_err(|error| BatchError {
                delivered: 0,
                error,
            })?;
        let deadline = Instant::now() + config.confirm_timeout;
        let messages = batch.iter().map(|event| {
            let key = routing_key(config, event);
            (!key.is_empty()).then(|| (key, PbEvent::from_event(event).unframed()))
        });
        let published = open.publish(&config.exchange, messages, deadline).await;
        match published.error {
            None => Ok(()),
            Some(error) => {
                // The next attempt reconnects; the unconfirmed rest is published again.
                *link = None;
                Err(BatchError {
                    delivered: published.delivered,
                    error,
                })
            }
        }
    }
}
