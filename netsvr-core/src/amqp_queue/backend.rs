//! The AMQP back-end of the sink's lane: one connection and one confirm-mode channel, opened
//! lazily and dropped on any failure; each batch is published in order and its acked prefix
//! reported to the [`BufferedSink`](crate::sink::BufferedSink).

use async_trait::async_trait;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, PublisherConfirm,
};
use tokio::time::{Instant, timeout, timeout_at};

use super::{AmqpConfig, SINK_NAME, lapin_kind, properties, routing_key};
use crate::event::Event;
use crate::pbevent::PbEvent;
use crate::sink::{Backend, BatchError};

/// An open connection and its channel in confirm mode, with the topology declared.
struct Link {
    connection: Connection,
    channel: Channel,
}

impl Link {
    fn usable(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

/// The lane's back-end: the settings and the current link, if any.
pub(super) struct AmqpBackend {
    config: AmqpConfig,
    uri: AMQPUri,
    properties: BasicProperties,
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

    /// The channel of a usable link, connecting first (within `confirm_timeout`) when there
    /// is none.
    async fn channel(&mut self) -> Result<Channel, String> {
        match &mut self.link {
            Some(link) if link.usable() => Ok(link.channel.clone()),
            slot => {
                // Drop a dead link before opening a new one.
                *slot = None;
                let authority = &self.uri.authority;
                let link = match timeout(self.config.confirm_timeout, open(&self.config, &self.uri))
                    .await
                {
                    Ok(Ok(link)) => link,
                    Ok(Err(e)) => {
                        return Err(format!(
                            "cannot connect to {}:{}: {e}",
                            authority.host, authority.port
                        ));
                    }
                    Err(_) => {
                        return Err(format!(
                            "connecting to {}:{} took longer than {:?}",
                            authority.host, authority.port, self.config.confirm_timeout
                        ));
                    }
                };
                tracing::info!(
                    sink = SINK_NAME,
                    host = %authority.host,
                    port = authority.port,
                    exchange = %self.config.exchange,
                    "connected to the AMQP broker"
                );
                Ok(slot.insert(link).channel.clone())
            }
        }
    }
}

/// Connects, opens a confirm-mode channel, declares the exchange and the optional queue
/// and binding.
async fn open(config: &AmqpConfig, uri: &AMQPUri) -> Result<Link, lapin::Error> {
    let properties = ConnectionProperties::default().with_connection_name("netsvr".into());
    let connection = Connection::connect_uri(uri.clone(), properties).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    channel
        .exchange_declare(
            config.exchange.as_str().into(),
            lapin_kind(config.exchange_type),
            ExchangeDeclareOptions {
                durable: config.durable,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let queue = &config.queue;
    if !queue.name.is_empty() {
        channel
            .queue_declare(
                queue.name.as_str().into(),
                QueueDeclareOptions {
                    durable: config.durable,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                queue.name.as_str().into(),
                config.exchange.as_str().into(),
                queue.binding_key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(Link {
        connection,
        channel,
    })
}

/// Publishes `batch` in order until the first failure. Returns one entry per event handled
/// (`None`: skipped, empty routing key) and the failure, if any.
async fn publish(
    channel: &Channel,
    config: &AmqpConfig,
    properties: &BasicProperties,
    batch: &[Event],
    deadline: Instant,
) -> (Vec<Option<PublisherConfirm>>, Option<String>) {
    let mut confirms = Vec::with_capacity(batch.len());
    for event in batch {
        let key = routing_key(config, event);
        if key.is_empty() {
            confirms.push(None);
            continue;
        }
        let body = PbEvent::from_event(event).unframed();
        let sent = channel.basic_publish(
            config.exchange.as_str().into(),
            key.into(),
            BasicPublishOptions::default(),
            &body,
            properties.clone(),
        );
        match timeout_at(deadline, sent).await {
            Ok(Ok(confirm)) => confirms.push(Some(confirm)),
            Ok(Err(e)) => return (confirms, Some(format!("publish failed: {e}"))),
            Err(_) => {
                let error = format!("publishing took longer than {:?}", config.confirm_timeout);
                return (confirms, Some(error));
            }
        }
    }
    (confirms, None)
}

/// Counts the leading run of acked (or skipped) messages. Waits for confirms until
/// `deadline`; after a publish failure (`failed`) only takes confirms already in.
async fn acked_prefix(
    confirms: Vec<Option<PublisherConfirm>>,
    deadline: Instant,
    failed: bool,
    confirm_timeout: std::time::Duration,
) -> (usize, Option<String>) {
    let mut delivered = 0;
    for confirm in confirms {
        let Some(confirm) = confirm else {
            delivered += 1;
            continue;
        };
        let until = if failed { Instant::now() } else { deadline };
        let error = match timeout_at(until, confirm).await {
            Ok(Ok(Confirmation::Ack(_))) => {
                delivered += 1;
                continue;
            }
            Ok(Ok(Confirmation::Nack(_))) => "the broker nacked a message".to_owned(),
            Ok(Ok(Confirmation::NotRequested)) => "the channel is not in confirm mode".to_owned(),
            Ok(Err(e)) => format!("no confirm: {e}"),
            Err(_) if failed => return (delivered, None),
            Err(_) => format!("no confirm within {confirm_timeout:?}"),
        };
        return (delivered, Some(error));
    }
    (delivered, None)
}

#[async_trait]
impl Backend for AmqpBackend {
    async fn deliver(&mut self, batch: &[Event]) -> Result<(), BatchError> {
        if batch
            .iter()
            .all(|event| routing_key(&self.config, event).is_empty())
        {
            return Ok(());
        }
        let channel = self.channel().await.map_err(|error| BatchError {
            delivered: 0,
            error,
        })?;
        let deadline = Instant::now() + self.config.confirm_timeout;
        let (confirms, publish_error) =
            publish(&channel, &self.config, &self.properties, batch, deadline).await;
        let (delivered, confirm_error) = acked_prefix(
            confirms,
            deadline,
            publish_error.is_some(),
            self.config.confirm_timeout,
        )
        .await;
        match publish_error.or(confirm_error) {
            None => Ok(()),
            Some(error) => {
                // The next attempt reconnects; the unconfirmed rest is published again.
                self.link = None;
                Err(BatchError { delivered, error })
            }
        }
    }
}
