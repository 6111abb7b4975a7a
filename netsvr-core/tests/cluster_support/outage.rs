//! The broker's engine goes away (a private server, killed with SIGKILL and restarted on the
//! same port) while a business streams commands to another node's client: the scenarios
//! every broker must pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{ClusterNode, cluster_of, fast_cluster};
use crate::common::business::Business;
use crate::common::{assert_silent, expect_text, recv_text};
use netsvr_core::cluster::Broker;
use netsvr_protocol::{ToGateway, pb};
use tokio::sync::oneshot;

/// A private engine server a test can kill and restart.
pub trait Engine {
    /// Where nodes connect.
    fn url(&self) -> String;
    /// SIGKILL.
    fn kill(&mut self);
    /// Starts it again on the same port, and waits until it answers.
    fn restart(&mut self) -> impl std::future::Future<Output = ()>;
}

/// The engine dies and comes back while C streams SingleCasts to A's client: everything
/// arrives, in order, once; local delivery goes on meanwhile; nothing is dropped.
pub async fn restart_loses_nothing(
    engine: &mut impl Engine,
    broker: impl Fn(&str) -> Arc<dyn Broker>,
) {
    // A comes back slowly (its reconnect back-off is long), C quickly: C must hold its
    // backlog until A has resubscribed, or A would miss what C publishes meanwhile.
    let mut quick = fast_cluster();
    quick.lease_ttl = Duration::from_secs(6);
    let mut slow = quick.clone();
    slow.retry_min = Duration::from_millis(1500);
    slow.retry_max = Duration::from_millis(1500);
    let url = engine.url();
    let mut nodes = [
        ClusterNode::start(broker(&url), slow).await,
        ClusterNode::start(broker(&url), quick).await,
    ];
    crate::common::eventually("both nodes see each other", || {
        nodes.iter().all(|n| n.live_nodes() == 2)
    })
    .await;
    let (mut a1, ida) = nodes[0].client().await;
    let (mut c1, idc) = nodes[1].client().await;
    let c = nodes[1].gateway.clone();
    let cluster = c.cluster().unwrap();

    const N: usize = 1200;
    // The kill falls between two commands, once A has everything sent before it: what the
    // server has accepted but not yet written to A's socket when it dies is lost (pub/sub in
    // Redis and core NATS is at most once, see the brokers' docs). What is sent while the engine is down or coming
    // back must all arrive.
    const KILL_AT: usize = 150;
    let (reached_tx, reached) = oneshot::channel();
    let (resume, resume_rx) = oneshot::channel::<()>();
    let task = nodes[1].task;
    let sender = tokio::spawn(async move {
        let mut business = Business::connect(task).await;
        let mut pause = Some((reached_tx, resume_rx));
        for i in 0..N {
            if i == KILL_AT
                && let Some((reached, resume)) = pause.take()
            {
                let _ = reached.send(());
                let _ = resume.await;
            }
            business
                .send(ToGateway::SingleCast(pb::SingleCast {
                    uniq_id: ida.to_string(),
                    data: format!("n{i}").into(),
                }))
                .await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let received = Arc::new(AtomicUsize::new(0));
    let count = received.clone();
    let reader = tokio::spawn(async move {
        let mut got = Vec::with_capacity(N);
        for _ in 0..N {
            got.push(recv_text(&mut a1).await);
            count.store(got.len(), Ordering::SeqCst);
        }
        (got, a1)
    });

    reached.await.unwrap();
    crate::common::eventually("A has what was sent before the kill", || {
        received.load(Ordering::SeqCst) == KILL_AT
    })
    .await;
    engine.kill();
    let down = Instant::now();
    resume.send(()).unwrap();
    // Local delivery goes on without the engine.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(c.send(&idc, "local while down"));
    expect_text(&mut c1, "local while down").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let held = cluster.buffered();
    assert!(
        held > 0,
        "commands for A wait in C's buffer while the engine is down"
    );
    engine.restart().await;
    println!(
        "engine down for {:?}; {held} cross-node messages held",
        down.elapsed()
    );

    sender.await.unwrap();
    let (got, mut a1) = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("every command arrives")
        .unwrap();
    let want: Vec<String> = (0..N).map(|i| format!("n{i}")).collect();
    assert_eq!(got, want, "all, in order, once");
    assert_silent(&mut a1, Duration::from_millis(300)).await;
    assert_eq!(cluster.dropped(), 0);
}

/// With the engine down and a 100-message buffer, 150 sends: the overflow is counted, the
/// rest delivered in order after the engine returns.
pub async fn overflow_counted(engine: &mut impl Engine, broker: impl Fn(&str) -> Arc<dyn Broker>) {
    let mut config = fast_cluster();
    config.buffer = 100;
    let url = engine.url();
    let mut nodes = cluster_of(2, || broker(&url), config).await;
    let (mut a1, ida) = nodes[0].client().await;
    let c = nodes[1].gateway.clone();
    let cluster = c.cluster().unwrap();

    engine.kill();
    // Wait until C notices (its link breaks) so that nothing is in flight.
    crate::common::eventually("C holds nothing in flight", || cluster.buffered() == 0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut taken = 0;
    for i in 0..150 {
        if c.send(&ida, format!("x{i}")) {
            taken += 1;
        }
    }
    // Some of the buffer may be used by other messages (connection copies, replies).
    let dropped = cluster.dropped();
    assert_eq!(taken + dropped as usize, 150);
    assert!(dropped >= 50, "{dropped} dropped");
    engine.restart().await;
    let want: Vec<String> = (0..taken).map(|i| format!("x{i}")).collect();
    let mut got = Vec::new();
    for _ in 0..taken {
        got.push(recv_text(&mut a1).await);
    }
    assert_eq!(got, want, "the buffered ones, in order");
    assert_silent(&mut a1, Duration::from_millis(300)).await;
}
