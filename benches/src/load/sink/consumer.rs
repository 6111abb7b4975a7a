//! The counting side of `sink` mode: a business process on the worker port
//! (`WorkerClient`), a drained Redis list, or a consumed RabbitMQ queue. Each feeds the
//! client messages it sees into a [`Tally`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use netsvr_protocol::client::{ClientConfig, Event, GatewayAddr, WorkerClient};
use redis::aio::MultiplexedConnection;
use tokio::sync::watch;

use super::super::Clock;
use super::super::args::{Args, SinkKind};
use super::super::meter::Meter;
use super::super::open::nanos_since;
use super::{OrderCheck, RECEIVED, own_stamp, transfer_data};

/// Events taken from Redis per round trip.
const REDIS_BATCH: i64 = 512;
/// Unacknowledged AMQP deliveries allowed.
const PREFETCH: u16 = 1024;
/// Deliveries acknowledged at once.
const ACK_EVERY: u64 = 128;

/// What the consumer saw.
#[derive(Debug)]
pub struct Tally {
    clock: Clock,
    meter: Arc<Meter>,
    latencies: Vec<u64>,
    /// Per-connection order.
    pub order: OrderCheck,
    /// Events of other runs or undecodable ones.
    pub foreign: u64,
    /// When the last event of this run arrived.
    pub last_at: Option<Instant>,
    /// The first consumer-side problem.
    pub first_error: Option<String>,
}

impl Tally {
    /// A tally of `conns` connections of the run of `clock`, counted into `meter`.
    pub fn new(conns: usize, clock: Clock, meter: Arc<Meter>) -> Self {
        Self {
            clock,
            meter,
            latencies: Vec::with_capacity(REDIS_BATCH as usize),
            order: OrderCheck::new(conns),
            foreign: 0,
            last_at: None,
            first_error: None,
        }
    }

    /// Takes one client message.
    fn observe(&mut self, data: &[u8]) {
        match own_stamp(data, &self.clock) {
            Some(s) if self.order.observe(s.conn, s.seq) => {
                let now = nanos_since(self.clock.epoch);
                self.latencies.push(now.saturating_sub(s.sent_ns));
            }
            _ => self.foreign += 1,
        }
    }

    /// Takes a queue sink payload.
    fn observe_raw(&mut self, raw: &[u8]) {
        match transfer_data(raw) {
            Ok(data) => self.observe(&data),
            Err(e) => {
                self.foreign += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    /// Publishes what was taken since the last flush.
    fn flush(&mut self) {
        if !self.latencies.is_empty() {
            let n = self.latencies.len() as u64;
            self.meter.add_with(RECEIVED, n, &self.latencies);
            self.latencies.clear();
            self.last_at = Some(Instant::now());
        }
    }
}

/// A connected consumer, ready before the clients send.
pub(super) enum Consumer {
    Worker(WorkerClient),
    Redis(MultiplexedConnection, String),
    /// The connection, channel and consumer, and whether the broker acks on delivery.
    Amqp(Box<(lapin::Connection, lapin::Channel, lapin::Consumer, bool)>),
}

impl Consumer {
    /// Connects (and registers, or declares) the consumer of `args.sink`.
    pub(super) async fn connect(args: &Args) -> Result<Self, String> {
        match args.sink {
            SinkKind::Worker => {
                let gateway = GatewayAddr::new(args.worker, args.worker);
                let mut config = ClientConfig::default();
                config.events = netsvr_protocol::cmd::events::ON_MESSAGE;
                config.event_buffer = 8192;
                let client = WorkerClient::connect(vec![gateway], config).await;
                let client = client.map_err(|e| format!("worker port {}: {e}", args.worker))?;
                Ok(Self::Worker(client))
            }
            SinkKind::Redis => {
                let err = |e: redis::RedisError| format!("redis {}: {e}", args.redis);
                let client =
                    redis::Client::open(format!("redis://{}/", args.redis)).map_err(err)?;
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(5)))
                    .set_response_timeout(Some(Duration::from_secs(5)));
                let mut conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map_err(err)?;
                let _: String = redis::cmd("PING")
                    .query_async(&mut conn)
                    .await
                    .map_err(err)?;
                Ok(Self::Redis(conn, args.key.clone()))
            }
            SinkKind::Amqp => amqp_connect(args).await,
        }
    }

    /// Counts until `stop` turns true.
    pub(super) async fn run(
        self,
        mut tally: Tally,
        mut stop: watch::Receiver<bool>,
    ) -> Result<Tally, String> {
        match self {
            Self::Worker(mut client) => {
                while !*stop.borrow() {
                    let ev = tokio::select! {
                        biased;
                        changed = stop.changed() => {
                            if changed.is_err() {
                                break;
                            }
                            continue;
                        }
                        ev = client.recv() => ev,
                    };
                    match ev.map(|e| e.event) {
                        None => break,
                        Some(Event::Message(t)) => tally.observe(&t.data),
                        Some(Event::Disconnected { reason }) => {
                            tally
                                .first_error
                                .get_or_insert(format!("worker lost: {reason}"));
                        }
                        Some(_) => {}
                    }
                    tally.flush();
                }
                client.close().await;
            }
            Self::Redis(mut conn, key) => {
                while !*stop.borrow() {
                    let (batch,): (Vec<Vec<u8>>,) = redis::pipe()
                        .atomic()
                        .cmd("LRANGE")
                        .arg(&key)
                        .arg(-REDIS_BATCH)
                        .arg(-1)
                        .cmd("LTRIM")
                        .arg(&key)
                        .arg(0)
                        .arg(-REDIS_BATCH - 1)
                        .ignore()
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| format!("redis drain: {e}"))?;
                    if batch.is_empty() {
                        let popped: Option<(String, Vec<u8>)> = redis::cmd("BRPOP")
                            .arg(&key)
                            .arg(0.1)
                            .query_async(&mut conn)
                            .await
                            .map_err(|e| format!("redis BRPOP: {e}"))?;
                        if let Some((_, raw)) = popped {
                            tally.observe_raw(&raw);
                        }
                    }
                    // LPUSH puts the newest first: the tail of the range is the oldest.
                    for raw in batch.iter().rev() {
                        tally.observe_raw(raw);
                    }
                    tally.flush();
                }
            }
            Self::Amqp(amqp) => {
                let (conn, channel, mut consumer, auto_ack) = *amqp;
                let mut unacked = None;
                let mut taken = 0u64;
                while !*stop.borrow() {
                    let next = tokio::select! {
                        biased;
                        changed = stop.changed() => {
                            if changed.is_err() {
                                break;
                            }
                            continue;
                        }
                        next = consumer.next() => next,
                    };
                    let delivery = match next {
                        None => break,
                        Some(Err(e)) => return Err(format!("amqp consume: {e}")),
                        Some(Ok(d)) => d,
                    };
                    tally.observe_raw(&delivery.data);
                    tally.flush();
                    taken += 1;
                    if auto_ack {
                        // The broker acknowledged on delivery.
                    } else if taken.is_multiple_of(ACK_EVERY) {
                        ack_upto(&delivery.acker).await?;
                        unacked = None;
                    } else {
                        unacked = Some(delivery.acker);
                    }
                }
                if let Some(acker) = unacked {
                    ack_upto(&acker).await?;
                }
                let tag = consumer.tag();
                let _ = channel
                    .basic_cancel(tag, BasicCancelOptions::default())
                    .await;
                let _ = conn.close(200, "done".into()).await;
            }
        }
        Ok(tally)
    }
}

async fn ack_upto(acker: &lapin::Acker) -> Result<(), String> {
    let multiple = BasicAckOptions { multiple: true };
    acker
        .ack(multiple)
        .await
        .map(|_| ())
        .map_err(|e| format!("amqp ack: {e}"))
}

/// Connects, makes sure `--exchange` exists (declaring it as the gateway's default would:
/// direct, durable) and `--queue` too (declared auto-deleted), binds the queue with
/// `--routing-key` (binding again is harmless), and starts consuming.
async fn amqp_connect(args: &Args) -> Result<Consumer, String> {
    let err = |what: &str, e: lapin::Error| format!("amqp {what}: {e}");
    let props = lapin::ConnectionProperties::default();
    let conn = lapin::Connection::connect(&args.amqp, props)
        .await
        .map_err(|e| err("connect", e))?;
    let (queue, exchange) = (args.queue.as_str(), args.exchange.as_str());
    // A failed passive declare closes its channel: each check gets its own.
    let check = conn.create_channel().await.map_err(|e| err("channel", e))?;
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };
    let kind = lapin::ExchangeKind::Direct;
    let args_none = FieldTable::default;
    if check
        .exchange_declare(exchange.into(), kind.clone(), passive, args_none())
        .await
        .is_err()
    {
        let channel = conn.create_channel().await.map_err(|e| err("channel", e))?;
        let options = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(exchange.into(), kind, options, args_none())
            .await
            .map_err(|e| err("declare exchange", e))?;
    }
    let check = conn.create_channel().await.map_err(|e| err("channel", e))?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let exists = check
        .queue_declare(queue.into(), passive, args_none())
        .await
        .is_ok();
    let channel = conn.create_channel().await.map_err(|e| err("channel", e))?;
    if !exists {
        let options = QueueDeclareOptions {
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(queue.into(), options, args_none())
            .await
            .map_err(|e| err("declare queue", e))?;
    }
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            args.routing_key.as_str().into(),
            QueueBindOptions::default(),
            args_none(),
        )
        .await
        .map_err(|e| err("bind queue", e))?;
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await
        .map_err(|e| err("qos", e))?;
    let consumer = channel
        .basic_consume(
            queue.into(),
            "netsvr-load".into(),
            BasicConsumeOptions {
                no_ack: args.auto_ack,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| err("consume", e))?;
    Ok(Consumer::Amqp(Box::new((
        conn,
        channel,
        consumer,
        args.auto_ack,
    ))))
}
