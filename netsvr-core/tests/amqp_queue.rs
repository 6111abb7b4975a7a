//! The AMQP queue sink against a real RabbitMQ on 127.0.0.1:5672 (guest/guest): message
//! format and properties, routing by event kind, order, outages through a cuttable proxy,
//! counted drops. Skipped (or, with `CI` set, failed) when RabbitMQ is not running.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::services::{Proxy, RABBIT};
use common::{Client, WAIT, eventually, send_text};
use futures_util::{SinkExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use netsvr_core::amqp_queue::{AmqpConfig, AmqpSink, ExchangeKind};
use netsvr_core::{Gateway, SinkStatus};
use netsvr_protocol::pb;
use prost::Message as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const RABBIT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Returns from the test (or fails it under `CI`) when RabbitMQ is not running.
macro_rules! require_rabbitmq {
    () => {
        let up = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(RABBIT)).await;
        if !matches!(up, Ok(Ok(_))) {
            assert!(
                std::env::var_os("CI").is_none(),
                "RabbitMQ is not running on 127.0.0.1:5672"
            );
            println!("SKIPPED: RabbitMQ is not running on 127.0.0.1:5672");
            return;
        }
    };
}

/// A name no other test (or test run) uses.
fn unique(what: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("netsvr-test-{what}-{}-{n}", std::process::id())
}

/// The test's own connection to RabbitMQ: declares, counts, consumes and cleans up.
struct Broker {
    connection: Connection,
    channel: Channel,
    exchanges: Vec<String>,
    queues: Vec<String>,
}

impl Broker {
    async fn connect() -> Self {
        let connection = Connection::connect(RABBIT_URL, ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        Self {
            connection,
            channel,
            exchanges: Vec::new(),
            queues: Vec::new(),
        }
    }

    async fn exchange(&mut self, name: &str, kind: lapin::ExchangeKind, durable: bool) {
        let options = ExchangeDeclareOptions {
            durable,
            ..ExchangeDeclareOptions::default()
        };
        let args = FieldTable::default();
        self.channel
            .exchange_declare(name.into(), kind, options, args)
            .await
            .unwrap();
        self.exchanges.push(name.to_owned());
    }

    async fn queue(&mut self, name: &str, exchange: &str, keys: &[&str]) {
        let options = QueueDeclareOptions::default();
        let args = FieldTable::default();
        self.channel
            .queue_declare(name.into(), options, args)
            .await
            .unwrap();
        self.queues.push(name.to_owned());
        for key in keys {
            self.channel
                .queue_bind(
                    name.into(),
                    exchange.into(),
                    (*key).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
        }
    }

    /// Whether redeclaring `queue` with `durable` succeeds (RabbitMQ refuses a mismatch).
    async fn queue_is(&self, queue: &str, durable: bool) -> bool {
        let channel = self.connection.create_channel().await.unwrap();
        let options = QueueDeclareOptions {
            durable,
            ..QueueDeclareOptions::default()
        };
        let args = FieldTable::default();
        channel
            .queue_declare(queue.into(), options, args)
            .await
            .is_ok()
    }

    /// Messages ready in `queue`.
    async fn count(&self, queue: &str) -> u32 {
        let options = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let args = FieldTable::default();
        let q = self.channel.queue_declare(queue.into(), options, args);
        q.await.unwrap().message_count()
    }

    /// Consumes everything ready in `queue`.
    async fn drain(&self, queue: &str) -> Vec<Delivery> {
        let n = self.count(queue).await as usize;
        let tag = format!("consumer-{queue}");
        let options = BasicConsumeOptions {
            no_ack: true,
            ..BasicConsumeOptions::default()
        };
        let mut consumer = self
            .channel
            .basic_consume(
                queue.into(),
                tag.as_str().into(),
                options,
                FieldTable::default(),
            )
            .await
            .unwrap();
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            let next = tokio::time::timeout(WAIT, consumer.next()).await;
            got.push(next.expect("timed out consuming").unwrap().unwrap());
        }
        let cancel = BasicCancelOptions::default();
        self.channel
            .basic_cancel(tag.as_str().into(), cancel)
            .await
            .unwrap();
        got
    }

    async fn cleanup(self) {
        for queue in &self.queues {
            let options = QueueDeleteOptions::default();
            self.channel
                .queue_delete(queue.as_str().into(), options)
                .await
                .unwrap();
        }
        for exchange in &self.exchanges {
            let options = ExchangeDeleteOptions::default();
            let deleted = self
                .channel
                .exchange_delete(exchange.as_str().into(), options);
            deleted.await.unwrap();
        }
        self.connection.close(200, "OK".into()).await.unwrap();
    }
}

/// A sink config with fast retries.
fn sink_config(url: &str, exchange: &str, kind: ExchangeKind, durable: bool) -> AmqpConfig {
    let mut config = AmqpConfig::default();
    config.url = url.to_owned();
    config.exchange = exchange.to_owned();
    config.exchange_type = kind;
    config.durable = durable;
    config.batch = 64;
    config.confirm_timeout = Duration::from_secs(1);
    config.retry_min = Duration::from_millis(20);
    config.retry_max = Duration::from_millis(100);
    config
}

async fn gateway(config: AmqpConfig) -> Gateway {
    let sink = AmqpSink::start(config).unwrap();
    let builder = Gateway::builder().config(common::test_config());
    let (gateway, serve) = builder.sink(sink).build().unwrap();
    tokio::spawn(serve);
    gateway
}

async fn client(gateway: &Gateway, query: &str) -> Client {
    let path = &gateway.config().path;
    let url = format!("ws://{}{path}{query}", gateway.local_addr());
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

async fn close(client: Client) {
    common::close_client(client).await;
}

fn status(gateway: &Gateway) -> SinkStatus {
    common::only_sink(gateway, "amqp")
}

/// Waits until the sink has delivered `n` events and holds none.
async fn settled(gateway: &Gateway, n: u64) {
    eventually(&format!("{n} events delivered"), || {
        let s = status(gateway);
        s.delivered == n && s.queued == 0
    })
    .await;
}

/// A consumed message as its netsvr event (u32 BE cmd id + protobuf body).
#[derive(Debug)]
enum Pb {
    Open(pb::ConnOpen),
    Transfer(pb::Transfer),
    Close(pb::ConnClose),
}

fn decode(d: &Delivery) -> Pb {
    let (cmd, body) = d.data.split_at(4);
    match u32::from_be_bytes(cmd.try_into().unwrap()) {
        900_001_001 => Pb::Open(pb::ConnOpen::decode(body).unwrap()),
        900_001_003 => Pb::Transfer(pb::Transfer::decode(body).unwrap()),
        900_001_002 => Pb::Close(pb::ConnClose::decode(body).unwrap()),
        other => panic!("unexpected cmd id {other}"),
    }
}

fn text(d: &Delivery) -> String {
    match decode(d) {
        Pb::Transfer(t) => String::from_utf8(t.data.to_vec()).unwrap(),
        other => panic!("expected a Transfer, got {other:?}"),
    }
}

fn assert_properties(d: &Delivery, durable: bool) {
    let content_type = d.properties.content_type().as_ref().map(|c| c.as_str());
    assert_eq!(content_type, Some("application/octet-stream"));
    let mode = *d.properties.delivery_mode();
    assert_eq!(mode, durable.then_some(2), "delivery mode");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_messages_and_close_arrive_as_netsvr_events_in_the_declared_queue() {
    require_rabbitmq!();
    let mut broker = Broker::connect().await;
    let (exchange, queue, p) = (unique("x"), unique("q"), unique("k"));
    let mut config = sink_config(RABBIT_URL, &exchange, ExchangeKind::Topic, true);
    (
        config.open_routing_key,
        config.message_routing_key,
        config.close_routing_key,
    ) = (
        format!("{p}.open"),
        format!("{p}.message"),
        format!("{p}.close"),
    );
    config.queue.name = queue.clone();
    config.queue.binding_key = format!("{p}.#");
    let gateway = gateway(config).await;
    let mut c = client(&gateway, "?who=a").await;
    send_text(&mut c, "hello").await;
    c.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    close(c).await;
    settled(&gateway, 4).await;
    (broker.exchanges, broker.queues) = (vec![exchange.clone()], vec![queue.clone()]);
    assert!(
        broker.queue_is(&queue, true).await,
        "queue declared durable"
    );
    assert!(!broker.queue_is(&queue, false).await);
    assert_eq!(broker.count(&queue).await, 4, "each event exactly once");
    let got = broker.drain(&queue).await;
    let keys: Vec<&str> = got.iter().map(|d| d.routing_key.as_str()).collect();
    let (o, m, cl) = (
        format!("{p}.open"),
        format!("{p}.message"),
        format!("{p}.close"),
    );
    assert_eq!(keys, [o.as_str(), m.as_str(), m.as_str(), cl.as_str()]);
    for d in &got {
        assert_eq!(d.exchange.as_str(), exchange);
        assert_properties(d, true);
    }
    let Pb::Open(open) = decode(&got[0]) else {
        panic!("{:?}", decode(&got[0]))
    };
    assert_eq!(open.uniq_id.len(), 28);
    assert_eq!(open.raw_query, "who=a");
    assert!(open.remote_addr.starts_with("127.0.0.1:"), "{open:?}");
    let Pb::Transfer(t1) = decode(&got[1]) else {
        panic!("{:?}", decode(&got[1]))
    };
    let Pb::Transfer(t2) = decode(&got[2]) else {
        panic!("{:?}", decode(&got[2]))
    };
    assert_eq!(
        (&t1.data[..], &t2.data[..]),
        (&b"hello"[..], &[1u8, 2, 3][..])
    );
    let Pb::Close(end) = decode(&got[3]) else {
        panic!("{:?}", decode(&got[3]))
    };
    for uniq_id in [&t1.uniq_id, &t2.uniq_id, &end.uniq_id] {
        assert_eq!(uniq_id, &open.uniq_id);
    }
    let s = status(&gateway);
    assert!(s.healthy && s.retried == 0 && s.dropped == 0, "{s:?}");
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_exchange_routes_by_event_kind_and_transient_messages_are_not_persistent() {
    require_rabbitmq!();
    let mut broker = Broker::connect().await;
    let (exchange, messages, all) = (unique("x"), unique("q-msg"), unique("q-all"));
    let config = sink_config(RABBIT_URL, &exchange, ExchangeKind::Direct, false);
    let keys = [
        config.open_routing_key.as_str(),
        config.message_routing_key.as_str(),
        config.close_routing_key.as_str(),
    ];
    let direct = lapin::ExchangeKind::Direct;
    broker.exchange(&exchange, direct, false).await;
    broker.queue(&messages, &exchange, &keys[1..2]).await;
    broker.queue(&all, &exchange, &keys).await;
    let gateway = gateway(config.clone()).await;
    let mut c = client(&gateway, "").await;
    for t in ["a", "b", "c"] {
        send_text(&mut c, t).await;
    }
    close(c).await;
    settled(&gateway, 5).await;
    assert_eq!(broker.count(&messages).await, 3);
    assert_eq!(broker.count(&all).await, 5);
    let got = broker.drain(&messages).await;
    assert_eq!(got.iter().map(text).collect::<Vec<_>>(), ["a", "b", "c"]);
    for d in &got {
        assert_properties(d, false);
        assert_eq!(d.routing_key.as_str(), config.message_routing_key);
    }
    let kinds: Vec<&str> = broker
        .drain(&all)
        .await
        .iter()
        .map(|d| match decode(d) {
            Pb::Open(_) => "open",
            Pb::Transfer(_) => "message",
            Pb::Close(_) => "close",
        })
        .collect();
    assert_eq!(kinds, ["open", "message", "message", "message", "close"]);
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_messages_from_one_client_arrive_in_order() {
    require_rabbitmq!();
    let mut broker = Broker::connect().await;
    let (exchange, queue) = (unique("x"), unique("q"));
    let mut config = sink_config(RABBIT_URL, &exchange, ExchangeKind::Direct, true);
    config.open_routing_key.clear(); // not sent, yet counted as delivered
    config.queue.name = queue.clone();
    config.queue.binding_key = config.message_routing_key.clone();
    let gateway = gateway(config).await;
    let mut c = client(&gateway, "").await;
    for i in 0..1000 {
        c.feed(Message::text(format!("m{i}"))).await.unwrap();
    }
    c.flush().await.unwrap();
    settled(&gateway, 1001).await;
    (broker.exchanges, broker.queues) = (vec![exchange], vec![queue.clone()]);
    assert_eq!(broker.count(&queue).await, 1000);
    let got: Vec<String> = broker.drain(&queue).await.iter().map(text).collect();
    let want: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want);
    close(c).await;
    broker.cleanup().await;
}

/// The texts of `got` in order of first appearance.
fn first_appearances(got: &[Delivery]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    got.iter()
        .map(text)
        .filter(|t| seen.insert(t.clone()))
        .collect()
}

/// A sink through `proxy` that sends only Transfers to its own queue.
fn proxied(proxy: &Proxy, exchange: &str, queue: &str) -> AmqpConfig {
    let mut config = sink_config(&proxy.url(), exchange, ExchangeKind::Direct, true);
    config.open_routing_key.clear();
    config.close_routing_key.clear();
    config.batch = 16;
    config.queue.name = queue.to_owned();
    config.queue.binding_key = config.message_routing_key.clone();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_mid_stream_loses_nothing_and_is_retried() {
    require_rabbitmq!();
    let mut broker = Broker::connect().await;
    let proxy = Proxy::start().await;
    let (exchange, queue) = (unique("x"), unique("q"));
    let gateway = gateway(proxied(&proxy, &exchange, &queue)).await;
    (broker.exchanges, broker.queues) = (vec![exchange], vec![queue.clone()]);
    let mut c = client(&gateway, "").await;
    for i in 0..150 {
        send_text(&mut c, &format!("m{i}")).await;
    }
    eventually("some delivered", || status(&gateway).delivered > 16).await;
    proxy.cut();
    for i in 150..300 {
        send_text(&mut c, &format!("m{i}")).await;
    }
    eventually("all 301 events in the sink", || {
        let s = status(&gateway);
        s.delivered + s.queued as u64 == 301
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = status(&gateway);
    assert!(
        !s.healthy && s.retried > 0 && s.queued > 0,
        "while cut: {s:?}"
    );
    proxy.resume();
    settled(&gateway, 301).await;
    let got = broker.drain(&queue).await;
    assert!(got.len() >= 300, "{} messages", got.len());
    let want: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    assert_eq!(first_appearances(&got), want, "none missing, in order");
    let s = status(&gateway);
    assert!(s.healthy && s.retried > 0 && s.dropped == 0, "{s:?}");
    assert_eq!(gateway.stats().drops_sink, 0);
    close(c).await;
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_during_an_outage_counts_every_drop() {
    require_rabbitmq!();
    let mut broker = Broker::connect().await;
    let proxy = Proxy::start().await;
    proxy.cut();
    let (exchange, queue) = (unique("x"), unique("q"));
    let mut config = proxied(&proxy, &exchange, &queue);
    (config.buffer, config.batch) = (10, 4);
    let gateway = gateway(config).await;
    (broker.exchanges, broker.queues) = (vec![exchange], vec![queue.clone()]);
    let mut c = client(&gateway, "").await;
    for i in 0..50 {
        send_text(&mut c, &format!("m{i}")).await;
    }
    eventually("all 51 events seen by the sink", || {
        let s = status(&gateway);
        s.delivered + s.queued as u64 + s.dropped == 51
    })
    .await;
    let dropped = status(&gateway).dropped;
    assert!(dropped >= 50 - 10 - 4, "dropped {dropped}");
    proxy.resume();
    eventually("the accepted ones delivered", || {
        status(&gateway).queued == 0
    })
    .await;
    let got = broker.drain(&queue).await;
    let texts = first_appearances(&got);
    let accepted = texts.len() as u64;
    let want: Vec<String> = (0..accepted).map(|i| format!("m{i}")).collect();
    assert_eq!(
        texts, want,
        "the accepted ones are the first ones, in order"
    );
    let s = status(&gateway);
    assert_eq!(s.dropped, 50 - accepted, "{s:?}");
    assert_eq!(gateway.stats().drops_sink, 50 - accepted);
    assert!(s.retried > 0, "{s:?}");
    close(c).await;
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_declare_keeps_events_buffered_until_the_conflict_is_gone() {
    require_rabbitmq!();
    let mut broker = Broker::connect().await;
    let (exchange, queue) = (unique("x"), unique("q"));
    // The exchange exists with another type: the sink's declare is refused (406).
    broker
        .exchange(&exchange, lapin::ExchangeKind::Fanout, false)
        .await;
    let mut config = sink_config(RABBIT_URL, &exchange, ExchangeKind::Direct, false);
    config.open_routing_key.clear();
    config.close_routing_key.clear();
    config.queue.name = queue.clone();
    config.queue.binding_key = config.message_routing_key.clone();
    let gateway = gateway(config).await;
    let mut c = client(&gateway, "").await;
    for t in ["a", "b"] {
        send_text(&mut c, t).await;
    }
    eventually("the sink reports the refused declare", || {
        let s = status(&gateway);
        !s.healthy && s.retried > 0 && s.queued == 2 && s.delivered == 1
    })
    .await;
    // Remove the conflict: the sink declares its own exchange and delivers, in order.
    broker.exchanges.clear();
    let channel = broker.connection.create_channel().await.unwrap();
    channel
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
    settled(&gateway, 3).await;
    assert!(status(&gateway).healthy);
    (broker.exchanges, broker.queues) = (vec![exchange], vec![queue.clone()]);
    let got: Vec<String> = broker.drain(&queue).await.iter().map(text).collect();
    assert_eq!(got, ["a", "b"]);
    close(c).await;
    broker.cleanup().await;
}
