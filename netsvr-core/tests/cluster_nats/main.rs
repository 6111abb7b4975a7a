//! Three gateway nodes on loopback sharing a real NATS (with JetStream) as their cluster
//! broker: commands given to one node reach every node's connections exactly once and in
//! order; queries merge; a lost node's connections are reported closed once; a NATS restart
//! loses nothing within the buffer, and the overflow past it is counted. The registry's
//! claim is won by exactly one of several racing nodes.
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
mod outage;
mod registry;
mod server;

use std::sync::Arc;
use std::time::Duration;

use cluster_support::{
    ClusterNode, cluster_of, commands_reach_every_node_once_in_order, fast_cluster,
    lost_node_reported_once, queries_merge,
};
use netsvr_core::cluster::Broker;
use netsvr_core::nats_broker::{NatsBroker, NatsBrokerConfig};
use server::{SHARED_URL, delete_buckets, shared_nats_up};

/// A prefix no other test (or earlier run) uses: letters, digits and `_` only.
pub fn fresh_prefix(test: &str) -> String {
    format!(
        "netsvr_test_{test}_{}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// A NATS broker for the cluster named `prefix`.
pub fn nats(url: &str, prefix: &str) -> Arc<dyn Broker> {
    let mut config = NatsBrokerConfig::new(url);
    config.prefix = prefix.to_owned();
    Arc::new(NatsBroker::new(&config).unwrap())
}

/// Stops the nodes, then removes their buckets from the shared NATS.
pub async fn finish(nodes: impl IntoIterator<Item = ClusterNode>, prefix: &str) {
    for node in nodes {
        node.crash();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    delete_buckets(SHARED_URL, prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_given_to_one_node_reach_every_node_once_and_in_order() {
    if !shared_nats_up().await {
        return;
    }
    let prefix = fresh_prefix("order");
    let mut nodes = cluster_of(3, || nats(SHARED_URL, &prefix), fast_cluster()).await;
    commands_reach_every_node_once_in_order(&mut nodes).await;
    finish(nodes, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_merge_across_nodes() {
    if !shared_nats_up().await {
        return;
    }
    let prefix = fresh_prefix("queries");
    let mut nodes = cluster_of(3, || nats(SHARED_URL, &prefix), fast_cluster()).await;
    queries_merge(&mut nodes).await;
    finish(nodes, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_node_is_reported_closed_once_by_one_survivor() {
    if !shared_nats_up().await {
        return;
    }
    let prefix = fresh_prefix("lost");
    let mut nodes = cluster_of(3, || nats(SHARED_URL, &prefix), fast_cluster()).await;
    lost_node_reported_once(&mut nodes).await;
    finish(nodes, &prefix).await;
}
