//! Three gateway nodes on loopback sharing a real Redis as their cluster broker: commands
//! given to one node reach every node's connections exactly once and in order; queries
//! merge; a lost node's connections are reported closed once; a Redis restart loses nothing
//! within the buffer, and the overflow past it is counted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

#[path = "../cluster_support/mod.rs"]
mod cluster_support;
#[path = "../common/mod.rs"]
mod common;
mod identity;
mod outage;

use std::sync::Arc;

use cluster_support::{
    cluster_of, commands_reach_every_node_once_in_order, fast_cluster, lost_node_reported_once,
    queries_merge,
};
use common::services::{try_connect, unavailable};
use netsvr_core::cluster::Broker;
use netsvr_core::redis_broker::{RedisBroker, RedisBrokerConfig};

const SHARED_URL: &str = "redis://127.0.0.1:6379";

/// A prefix no other test (or earlier run) uses.
fn fresh_prefix(test: &str) -> String {
    format!(
        "netsvr-test:{test}:{}:{}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// A Redis broker for the cluster named `prefix`.
fn redis(url: &str, prefix: &str) -> Arc<dyn Broker> {
    let mut config = RedisBrokerConfig::new(url);
    config.prefix = prefix.to_owned();
    Arc::new(RedisBroker::new(&config).unwrap())
}

/// Deletes every key under `prefix` (leases of nodes that never left, connection copies).
pub async fn clean(url: &str, prefix: &str) {
    let Some(mut conn) = try_connect(url).await else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
}

/// The machine's Redis is up, or the test must not run (after [`unavailable`]).
async fn shared_redis_up() -> bool {
    if try_connect(SHARED_URL).await.is_some() {
        return true;
    }
    unavailable("Redis is not reachable at 127.0.0.1:6379");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_given_to_one_node_reach_every_node_once_and_in_order() {
    if !shared_redis_up().await {
        return;
    }
    let prefix = fresh_prefix("order");
    let mut nodes = cluster_of(3, || redis(SHARED_URL, &prefix), fast_cluster()).await;
    commands_reach_every_node_once_in_order(&mut nodes).await;
    clean(SHARED_URL, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_merge_across_nodes() {
    if !shared_redis_up().await {
        return;
    }
    let prefix = fresh_prefix("queries");
    let mut nodes = cluster_of(3, || redis(SHARED_URL, &prefix), fast_cluster()).await;
    queries_merge(&mut nodes).await;
    clean(SHARED_URL, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_node_is_reported_closed_once_by_one_survivor() {
    if !shared_redis_up().await {
        return;
    }
    let prefix = fresh_prefix("lost");
    let mut nodes = cluster_of(3, || redis(SHARED_URL, &prefix), fast_cluster()).await;
    lost_node_reported_once(&mut nodes).await;
    clean(SHARED_URL, &prefix).await;
}
