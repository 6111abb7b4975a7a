//! The Redis engine goes away: a private redis-server is killed with SIGKILL and restarted
//! on the same port.

use super::cluster_support::outage::{Engine, overflow_counted, restart_loses_nothing};
use super::common::services::PrivateRedis;

/// A wrapper: the trait is the tests' own, `PrivateRedis` lives in the shared test support.
struct Redis(PrivateRedis);

impl Engine for Redis {
    fn url(&self) -> String {
        self.0.url()
    }
    fn kill(&mut self) {
        self.0.kill();
    }
    async fn restart(&mut self) {
        self.0.restart().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_loses_nothing_within_the_buffer() {
    let Some(redis) = PrivateRedis::start("cluster-restart").await else {
        return;
    };
    restart_loses_nothing(&mut Redis(redis), |url| {
        super::redis(url, "netsvr-test:restart")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_past_the_buffer_is_counted_and_the_rest_delivered() {
    let Some(redis) = PrivateRedis::start("cluster-overflow").await else {
        return;
    };
    overflow_counted(&mut Redis(redis), |url| {
        super::redis(url, "netsvr-test:overflow")
    })
    .await;
}
