//! Two live nodes that advertise the same address (so the same node id) are a
//! misconfiguration the lease renewal notices and counts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use netsvr_core::Gateway;
use netsvr_core::metrics::CLUSTER_DUPLICATE_ID_TOTAL;
use netsvr_core::redis_broker::{RedisBroker, RedisBrokerConfig};

use super::cluster_support::fast_cluster;
use super::common::test_config;
use super::{SHARED_URL, clean, fresh_prefix, shared_redis_up};

fn counters(snapshotter: &Snapshotter) -> HashMap<String, u64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(c) => Some((key.key().name().to_owned(), c)),
            _ => None,
        })
        .collect()
}

fn node(prefix: &str) -> Gateway {
    let mut broker = RedisBrokerConfig::new(SHARED_URL);
    broker.prefix = prefix.to_owned();
    let (gateway, serve) = Gateway::builder()
        .config(test_config())
        .node_addr("10.9.9.9:6062".parse().unwrap())
        .broker(Arc::new(RedisBroker::new(&broker).unwrap()), fast_cluster())
        .build()
        .unwrap();
    tokio::spawn(serve);
    gateway
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_live_nodes_with_one_id_are_noticed() {
    if !shared_redis_up().await {
        return;
    }
    let prefix = fresh_prefix("duplicate");
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let first = metrics::with_local_recorder(&recorder, || node(&prefix));
    // Alone, it renews without complaint.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(counters(&snapshotter)[CLUSTER_DUPLICATE_ID_TOTAL], 0);
    let second = node(&prefix);
    super::common::eventually("the duplicate id is noticed", || {
        counters(&snapshotter)[CLUSTER_DUPLICATE_ID_TOTAL] > 0
    })
    .await;
    assert_eq!(
        first.cluster().unwrap().node_id(),
        second.cluster().unwrap().node_id()
    );
    clean(SHARED_URL, &prefix).await;
}
