//! Redis killed, RabbitMQ cut and the callbacks answering 503, all for the same 30 s, while
//! clients keep sending: afterwards every event is in each back-end once (or replayed as the
//! sink documents), in order per connection, and nothing was dropped.

use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt;
use netsvr_core::amqp_queue::{AmqpConfig, AmqpSink, ExchangeKind};
use netsvr_core::callbacks::{CallbackConfig, Callbacks};
use netsvr_core::redis_queue::{KeyKind, RedisConfig, RedisSink, Target};
use netsvr_core::{EventSink, FanoutSink, Gateway, SinkStatus};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use crate::backends::{self, Endpoint, PrivateRedis, Proxy, Rabbit};
use crate::check::{self, PerConn};

/// How long every back-end is down.
const OUTAGE: Duration = Duration::from_secs(30);
/// Clients, each sending `RATE` numbered messages a second for `SENDING`.
const CLIENTS: usize = 3;
const RATE: u64 = 50;
const SENDING: Duration = Duration::from_secs(36);
/// When the outage starts, after the clients start.
const CUT_AT: Duration = Duration::from_secs(3);
/// Every sink's buffer: more than an outage's worth of events (30 s × 150 events/s = 4,500)
/// even if the three clients shared one HTTP lane (16,384 / 2 lanes = 8,192 per lane).
const BUFFER: usize = 16_384;
const HTTP_LANES: usize = 2;
/// Events per Redis transaction and per AMQP confirm round: the longest replay allowed.
const BATCH: usize = 64;
const KEY: &str = "netsvr:outage";

fn redis_config(url: String) -> RedisConfig {
    let mut config = RedisConfig::default();
    config.url = url;
    let target = Target::new(KEY, KeyKind::List);
    (config.open, config.message, config.close) = (target.clone(), target.clone(), target);
    (config.batch, config.buffer, config.lanes) = (BATCH, BUFFER, 1);
    config.timeout = Duration::from_secs(2);
    (config.retry_min, config.retry_max) = (Duration::from_millis(50), Duration::from_millis(500));
    config
}

fn amqp_config(url: String, exchange: &str, queue: &str) -> AmqpConfig {
    let mut config = AmqpConfig::default();
    (config.url, config.exchange) = (url, exchange.to_owned());
    (config.exchange_type, config.durable) = (ExchangeKind::Fanout, false);
    config.queue.name = queue.to_owned();
    (config.batch, config.buffer) = (BATCH, BUFFER);
    config.confirm_timeout = Duration::from_secs(2);
    (config.retry_min, config.retry_max) = (Duration::from_millis(50), Duration::from_millis(500));
    config
}

fn http_sink(endpoint: &Endpoint) -> Arc<dyn EventSink> {
    let mut config = CallbackConfig::default();
    config.on_message_url = endpoint.url("/message");
    config.on_close_url = endpoint.url("/close");
    (config.max_concurrency, config.buffer) = (HTTP_LANES, BUFFER);
    config.timeout = Duration::from_secs(2);
    (config.retry_min, config.retry_max) = (Duration::from_millis(50), Duration::from_millis(500));
    Arc::new(Callbacks::new(config).unwrap().sink().unwrap())
}

fn statuses(gateway: &Gateway) -> Vec<SinkStatus> {
    let all = gateway.sink_status();
    let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["redis", "amqp", "http"], "{all:?}");
    all
}

/// A client sending `0`, `1`, … at `RATE` a second for `SENDING`, then closing; returns how
/// many it sent.
async fn client(gateway: &Gateway) -> JoinHandle<u64> {
    let url = format!("ws://{}/netsvr", gateway.local_addr());
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1) / RATE as u32);
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let end = Instant::now() + SENDING;
        let mut n = 0;
        while Instant::now() < end {
            tick.tick().await;
            ws.send(Message::text(n.to_string())).await.unwrap();
            n += 1;
        }
        crate::common::close_client(ws).await;
        n
    })
}

/// Checks one back-end's events against what the clients sent; returns the repeats.
fn check_sink(name: &str, got: &PerConn, sent: &[u64], with_open: bool) -> usize {
    let mut counts = Vec::new();
    let mut repeats = 0;
    for (id, events) in got {
        let last = events.iter().filter_map(|e| match e {
            check::Ev::Msg(n) => Some(n + 1),
            _ => None,
        });
        let n = last.max().unwrap_or(0);
        counts.push(n);
        let want = check::want(n, with_open);
        repeats += check::at_least_once_in_order(&format!("{name} {id}"), events, &want, BATCH);
    }
    counts.sort_unstable();
    let mut sent = sent.to_vec();
    sent.sort_unstable();
    assert_eq!(counts, sent, "{name}: messages per connection");
    repeats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_seconds_down_loses_nothing_within_the_buffers() {
    if !backends::listening(backends::RABBIT).await {
        return backends::unavailable("RabbitMQ is not running on 127.0.0.1:5672");
    }
    let Some(mut redis) = PrivateRedis::start("outage30").await else {
        return;
    };
    let proxy = Proxy::start().await;
    let endpoint = Endpoint::start().await;
    let (exchange, queue) = (backends::unique("x"), backends::unique("q"));
    let redis_sink = RedisSink::start(redis_config(redis.url())).unwrap();
    let amqp_sink = AmqpSink::start(amqp_config(proxy.url(), &exchange, &queue)).unwrap();
    let sinks: Vec<Arc<dyn EventSink>> = vec![
        Arc::new(redis_sink),
        Arc::new(amqp_sink),
        http_sink(&endpoint),
    ];
    let (gateway, serve) = Gateway::builder()
        .config(crate::common::test_config())
        .sink(FanoutSink::new(sinks))
        .build()
        .unwrap();
    tokio::spawn(serve);
    let rabbit = Rabbit::connect().await;

    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(client(&gateway).await);
    }
    tokio::time::sleep_until(started + CUT_AT).await;
    let before: Vec<u64> = statuses(&gateway).iter().map(|s| s.delivered).collect();
    assert!(
        before.iter().all(|&d| d > 100),
        "delivering before the outage: {before:?}"
    );
    redis.kill();
    proxy.cut();
    endpoint.fail(true);
    tokio::time::sleep(OUTAGE - Duration::from_secs(2)).await;
    // Near the end of the outage: every sink is failing, retrying and holding the backlog.
    let during = statuses(&gateway);
    for s in &during {
        assert!(!s.healthy && s.retried > 0, "{s:?}");
        assert!(s.queued > 3_000 && s.dropped == 0, "{s:?}");
        assert_eq!(s.capacity, BUFFER, "{s:?}");
    }
    assert!(
        clients.iter().all(|c| !c.is_finished()),
        "clients send all along"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _back = redis.restart().await;
    proxy.resume();
    endpoint.fail(false);
    let up = Instant::now();

    let mut sent = Vec::new();
    for c in clients {
        sent.push(tokio::time::timeout(SENDING * 2, c).await.unwrap().unwrap());
    }
    let messages: u64 = sent.iter().sum();
    let events = messages + 2 * CLIENTS as u64;
    assert_eq!(
        gateway.stats().messages_in,
        messages,
        "every message accepted"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = statuses(&gateway);
        // The HTTP sink takes no Open events.
        let want = [events, events, events - CLIENTS as u64];
        if all
            .iter()
            .zip(want)
            .all(|(s, w)| s.queued == 0 && s.delivered >= w)
        {
            break;
        }
        assert!(Instant::now() < deadline, "backlog not delivered: {all:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered = up.elapsed();

    let in_redis = list_payloads(&redis.url()).await;
    let in_rabbit = rabbit.drain(&queue).await;
    let at_endpoint = endpoint.taken.lock().unwrap().clone();
    let repeats = [
        check_sink(
            "redis",
            &check::queue_payloads(in_redis.iter().map(Vec::as_slice)),
            &sent,
            true,
        ),
        check_sink(
            "amqp",
            &check::queue_payloads(in_rabbit.iter().map(Vec::as_slice)),
            &sent,
            true,
        ),
        check_sink("http", &check::callback_bodies(&at_endpoint), &sent, false),
    ];
    let after = statuses(&gateway);
    println!(
        "{messages} messages from {CLIENTS} clients ({events} events per queue sink), \
         {:.0} s down, backlog at the end of the outage {:?}, delivered {:.1} s after \
         recovery; repeats (redis, amqp, http) {repeats:?}; 503s {}; {after:?}",
        OUTAGE.as_secs_f64(),
        during.iter().map(|s| s.queued).collect::<Vec<_>>(),
        recovered.as_secs_f64(),
        endpoint.refused.load(std::sync::atomic::Ordering::Relaxed),
    );
    assert_eq!(repeats[2], 0, "a 503 is not taken, so HTTP repeats nothing");
    for s in &after {
        assert!(s.healthy && s.dropped == 0, "{s:?}");
    }
    assert_eq!(gateway.stats().drops_sink, 0);
    rabbit.cleanup(&exchange, &queue).await;
}

async fn list_payloads(url: &str) -> Vec<Vec<u8>> {
    backends::list_oldest_first(url, KEY).await
}
