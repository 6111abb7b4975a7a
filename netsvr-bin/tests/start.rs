//! `run::start` in-process: every port bound on port 0, the sinks fanned out (worker and
//! Redis), a client message landing in the configured Redis list, Prometheus metrics on the
//! admin port, hot reload of limits, and the graceful drain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Next, connect, http_get, next, port_zero_config, send};
use netsvr_bin::config::Config;
use netsvr_bin::run::{Running, start};
use netsvr_protocol::Message as _;
use netsvr_protocol::pb;

const REDIS_URL: &str = "redis://127.0.0.1:6379";
const TRANSFER: u32 = 900_001_003;

fn config(text: &str) -> Config {
    Config::from_toml(Path::new("test.toml"), text).unwrap()
}

/// The machine's Redis, or `None` after saying why (a failure when `CI` is set).
async fn redis() -> Option<redis::aio::MultiplexedConnection> {
    let attempt = async {
        let client = redis::Client::open(REDIS_URL).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let pong: String = redis::cmd("PING").query_async(&mut conn).await.ok()?;
        (pong == "PONG").then_some(conn)
    };
    let conn = tokio::time::timeout(Duration::from_secs(3), attempt)
        .await
        .ok()
        .flatten();
    if conn.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "Redis is not running on 127.0.0.1:6379 (required when CI is set)"
        );
        println!("SKIPPED: Redis is not running on 127.0.0.1:6379");
    }
    conn
}

async fn shutdown(running: Running) {
    tokio::time::timeout(Duration::from_secs(10), running.shutdown())
        .await
        .expect("shutdown hung")
        .expect("shutdown failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_message_lands_in_the_redis_list() {
    let Some(mut conn) = redis().await else {
        return;
    };
    let key = format!("netsvr-bin-test:{}:message", std::process::id());
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let running = start(config(&port_zero_config(&format!(
        "[redis]\nurl = \"{REDIS_URL}\"\n[redis.open]\nkey = \"\"\n\
         [redis.message]\nkey = \"{key}\"\ntype = \"list\"\n[redis.close]\nkey = \"\"\n"
    ))))
    .await
    .unwrap();
    let sinks: Vec<String> = running
        .gateway
        .sink_status()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(sinks, ["worker", "redis"]);

    let mut client = connect(running.ws_addr).await;
    send(&mut client, "hello redis").await;
    let mut entries: Vec<Vec<u8>> = Vec::new();
    for _ in 0..100 {
        entries = redis::cmd("LRANGE")
            .arg(&key)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap();
        if !entries.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1, "entries in {key}: {entries:?}");
    let entry = &entries[0];
    assert_eq!(u32::from_be_bytes(entry[..4].try_into().unwrap()), TRANSFER);
    let transfer = pb::Transfer::decode(&entry[4..]).unwrap();
    assert_eq!(&transfer.data[..], b"hello redis");
    assert_eq!(transfer.uniq_id.len(), 28, "{transfer:?}");
    shutdown(running).await;
    assert_eq!(
        next(&mut client, Duration::from_secs(2)).await,
        Next::Closed(1001)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_port_serves_and_the_drain_closes_clients_with_1001() {
    let running = start(config(&port_zero_config(""))).await.unwrap();
    for addr in [
        Some(running.ws_addr),
        running.worker_addr,
        running.task_addr,
        Some(running.admin_addr),
    ] {
        let addr = addr.expect("a port is missing");
        assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    }
    // The worker ports are reachable and name the node in uniqIds.
    tokio::net::TcpStream::connect(running.worker_addr.unwrap())
        .await
        .unwrap();
    let task = running.task_addr.unwrap();
    let (code, body) = http_get(running.admin_addr, "/api/v1/status", None).await;
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["node_addr"], task.to_string(), "{status}");

    let mut client = connect(running.ws_addr).await;
    send(&mut client, "hi").await;
    let (code, metrics) = http_get(running.admin_addr, "/metrics", None).await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("# HELP netsvr_connections"),
        "recorder not installed or metrics not described:\n{metrics}"
    );
    // The recorder is process-wide (other tests' gateways count too): check it counts at all.
    let opens = metrics
        .lines()
        .find_map(|l| l.strip_prefix("netsvr_opens_total "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(opens.is_some_and(|n| n >= 1.0), "{metrics}");
    assert_eq!(http_get(running.admin_addr, "/healthz", None).await.0, 200);

    let admin = running.admin_addr;
    shutdown(running).await;
    assert_eq!(
        next(&mut client, Duration::from_secs(2)).await,
        Next::Closed(1001)
    );
    // Every part has stopped, the admin port with them.
    assert!(tokio::net::TcpStream::connect(admin).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_limits_and_reports_what_needs_a_restart() {
    let base = port_zero_config("[worker]\nenabled = false\n").replace(
        "[worker]\nworker_listen = \"127.0.0.1:0\"\ntask_listen = \"127.0.0.1:0\"\n",
        "",
    );
    let mut running = start(config(&base)).await.unwrap();
    assert_eq!(running.worker_addr, None);
    assert_eq!(running.task_addr, None);
    let limits = running.gateway.limiter().limits().unwrap();
    assert_eq!(limits.opens_per_sec, 0);

    let mut new = running.config().clone();
    new.limits.opens_per_sec = 5;
    new.limits.conn_messages = 3;
    new.limits.conn_window = Duration::from_secs(2);
    assert!(running.reload(&new, None).is_empty());
    let limits = running.gateway.limiter().limits().unwrap();
    assert_eq!(limits.opens_per_sec, 5);
    assert_eq!(limits.conn_messages, 3);
    assert_eq!(limits.conn_window, Duration::from_secs(2));
    assert_eq!(running.config().limits, new.limits);

    new.gateway.shards = 128;
    new.redis = Some(Default::default());
    assert_eq!(running.reload(&new, None), ["gateway", "redis"]);
    assert_eq!(running.gateway.config().shards, 64);
    shutdown(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_connector_or_busy_port_fails_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = config(&port_zero_config(""));
    c.admin.listen = taken.local_addr().unwrap();
    let err = start(c).await.unwrap_err().to_string();
    assert!(err.contains("admin") && err.contains(&taken.local_addr().unwrap().to_string()));

    let mut c = config(&port_zero_config(""));
    c.redis = Some(Default::default());
    c.redis.as_mut().unwrap().url = "rediss://127.0.0.1:6379".to_owned();
    let err = start(c).await.unwrap_err().to_string();
    assert!(err.starts_with("redis.url"), "{err}");
}
