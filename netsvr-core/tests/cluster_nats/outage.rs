//! The NATS engine goes away: a private nats-server (JetStream storage in a temporary
//! directory) is killed with SIGKILL and restarted on the same port.

use super::cluster_support::outage::{Engine, overflow_counted, restart_loses_nothing};
use super::server::PrivateNats;

impl Engine for PrivateNats {
    fn url(&self) -> String {
        PrivateNats::url(self)
    }
    fn kill(&mut self) {
        PrivateNats::kill(self);
    }
    async fn restart(&mut self) {
        PrivateNats::restart(self).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_loses_nothing_within_the_buffer() {
    let Some(mut nats) = PrivateNats::start("cluster-restart").await else {
        return;
    };
    restart_loses_nothing(&mut nats, |url| super::nats(url, "netsvr_test_restart")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_past_the_buffer_is_counted_and_the_rest_delivered() {
    let Some(mut nats) = PrivateNats::start("cluster-overflow").await else {
        return;
    };
    overflow_counted(&mut nats, |url| super::nats(url, "netsvr_test_overflow")).await;
}
