//! The NATS broker's links without gateways: envelopes reach their node in order, racing
//! renewals list every node once, the claim of a dead node is won by exactly one of several
//! racing nodes and the dead node learns it, a link breaks when the server goes away, and a
//! dropped link closes its inbox.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use netsvr_core::cluster::{Broker, BrokerLink, NodeId, NodeRecord, Publication};
use netsvr_core::nats_broker::{NatsBroker, NatsBrokerConfig};
use tokio::sync::mpsc;

use super::fresh_prefix;
use super::server::{PrivateNats, SHARED_URL, delete_buckets, shared_nats_up};

const TTL: Duration = Duration::from_millis(400);

fn broker(url: &str, prefix: &str) -> NatsBroker {
    let mut config = NatsBrokerConfig::new(url);
    config.prefix = prefix.to_owned();
    NatsBroker::new(&config).unwrap()
}

fn record(incarnation: u64) -> NodeRecord {
    let id = NodeId::from_bytes(rand::random());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let mut record = NodeRecord::new(id, format!("127.0.0.1:{incarnation}"), 0, incarnation);
    record.heartbeat_ms = u64::try_from(now.as_millis()).unwrap();
    record
}

async fn join(
    broker: &NatsBroker,
    record: &NodeRecord,
) -> (Box<dyn BrokerLink>, mpsc::Receiver<Bytes>) {
    let (tx, rx) = mpsc::channel(64);
    let mut link = broker.connect(record.id, tx).await.unwrap();
    link.renew(record, TTL).await.unwrap();
    (link, rx)
}

async fn next(inbox: &mut mpsc::Receiver<Bytes>) -> Bytes {
    tokio::time::timeout(Duration::from_secs(5), inbox.recv())
        .await
        .expect("timed out waiting for an envelope")
        .expect("inbox closed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_reach_their_node_in_order_and_all_reaches_every_other_live_node() {
    if !shared_nats_up().await {
        return;
    }
    let prefix = fresh_prefix("links");
    let broker = broker(SHARED_URL, &prefix);
    let (a, b, c) = (record(1), record(2), record(3));
    let (mut la, mut ia) = join(&broker, &a).await;
    let (_lb, mut ib) = join(&broker, &b).await;
    let (_lc, mut ic) = join(&broker, &c).await;
    // A learns of B and C at its next renewal.
    let lease = la.renew(&a, TTL).await.unwrap();
    assert_eq!(lease.nodes.len(), 3);
    assert!(lease.existed && !lease.claimed);
    let mut batch = Vec::new();
    for i in 0..50 {
        batch.push(Publication::To(b.id, Bytes::from(format!("to-b{i}"))));
        batch.push(Publication::All(Bytes::from(format!("all{i}"))));
    }
    la.publish(&batch).await.unwrap();
    for i in 0..50 {
        assert_eq!(next(&mut ib).await, format!("to-b{i}"));
        assert_eq!(next(&mut ib).await, format!("all{i}"));
        assert_eq!(next(&mut ic).await, format!("all{i}"));
    }
    // Nothing comes back to the sender, nothing more to the others.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(ia.try_recv().is_err());
    assert!(ib.try_recv().is_err());
    assert!(ic.try_recv().is_err());
    // A dropped link closes its inbox.
    drop(la);
    assert!(
        tokio::time::timeout(Duration::from_secs(5), ia.recv())
            .await
            .unwrap()
            .is_none()
    );
    delete_buckets(SHARED_URL, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_racing_each_other_list_every_node_exactly_once() {
    if !shared_nats_up().await {
        return;
    }
    let prefix = fresh_prefix("race");
    let broker = broker(SHARED_URL, &prefix);
    let records: Vec<NodeRecord> = (0..5).map(record).collect();
    let all: Vec<NodeId> = records.iter().map(|r| r.id).collect();
    // Nodes join one by one while the ones already in renew in a loop: no list ever holds
    // a node twice or a node not yet joined, and once all are in, every list holds them all.
    let joined = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (n, me) in records.iter().cloned().enumerate() {
        let (mut link, inbox) = join(&broker, &me).await;
        joined.store(n + 1, Ordering::SeqCst);
        let (joined, all) = (joined.clone(), all.clone());
        tasks.push(tokio::spawn(async move {
            let _inbox = inbox;
            let mut complete = 0;
            while complete < 20 {
                let before = joined.load(Ordering::SeqCst);
                let lease = link.renew(&me, Duration::from_secs(5)).await.unwrap();
                let ids: Vec<NodeId> = lease.nodes.iter().map(|r| r.id).collect();
                let distinct: HashSet<NodeId> = ids.iter().copied().collect();
                assert_eq!(distinct.len(), ids.len(), "a node listed twice: {ids:?}");
                assert!(ids.iter().all(|id| all.contains(id)), "{ids:?}");
                assert!(
                    all[..before].iter().all(|id| distinct.contains(id)),
                    "a joined node is missing: {ids:?}"
                );
                if before == all.len() {
                    complete += 1;
                }
            }
        }));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    for task in tasks {
        task.await.unwrap();
    }
    delete_buckets(SHARED_URL, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_is_claimed_by_exactly_one_of_racing_nodes() {
    if !shared_nats_up().await {
        return;
    }
    let prefix = fresh_prefix("claim");
    let broker = broker(SHARED_URL, &prefix);
    let dead = record(7);
    let (mut ld, _id) = join(&broker, &dead).await;
    let copy = |i: u32| {
        (
            format!("{}{i:016x}", dead.id),
            Bytes::from(format!("copy{i}")),
        )
    };
    let mut batch: Vec<Publication> = (0..20)
        .map(|i| {
            let (key, value) = copy(i);
            Publication::Put(key, value)
        })
        .collect();
    batch.push(Publication::Remove(copy(3).0));
    batch.push(Publication::Put(
        copy(4).0,
        Bytes::from_static(b"copy4-updated"),
    ));
    ld.publish(&batch).await.unwrap();

    let mut survivors = Vec::new();
    for i in 0..5 {
        let me = record(100 + i);
        let (link, inbox) = join(&broker, &me).await;
        survivors.push((link, inbox, me));
    }
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    let now = {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        u64::try_from(d.as_millis()).unwrap()
    };
    let mut expired_seen = 0;
    for (link, _, me) in &mut survivors {
        let lease = link.renew(me, TTL).await.unwrap();
        if lease.expired.iter().any(|r| r.id == dead.id) {
            expired_seen += 1;
        }
    }
    assert_eq!(
        expired_seen, 5,
        "every survivor sees the dead node's lease run out"
    );
    let claims = futures_util::future::join_all(
        survivors
            .iter_mut()
            .map(|(link, _, _)| link.claim(&dead.id, now)),
    )
    .await;
    let won: Vec<_> = claims.into_iter().filter_map(Result::unwrap).collect();
    assert_eq!(won.len(), 1, "exactly one claim succeeds");
    let mut copies: Vec<Bytes> = won.into_iter().next().unwrap();
    copies.sort();
    let mut want: Vec<Bytes> = (0..20u32)
        .filter(|i| *i != 3)
        .map(|i| {
            if i == 4 {
                Bytes::from_static(b"copy4-updated")
            } else {
                copy(i).1
            }
        })
        .collect();
    want.sort();
    assert_eq!(copies, want);
    // A second claim finds nothing.
    assert_eq!(survivors[0].0.claim(&dead.id, now).await.unwrap(), None);

    // The dead node comes back: it learns it was claimed, once.
    let lease = ld.renew(&dead, TTL).await.unwrap();
    assert!(lease.claimed && !lease.existed, "{lease:?}");
    let lease = ld.renew(&dead, TTL).await.unwrap();
    assert!(!lease.claimed && lease.existed, "{lease:?}");
    // A live node's lease cannot be claimed.
    assert_eq!(survivors[1].0.claim(&dead.id, now).await.unwrap(), None);
    // Leaving removes the lease.
    ld.leave(&dead.id).await.unwrap();
    let (link, _, me) = &mut survivors[2];
    let lease = link.renew(me, TTL).await.unwrap();
    assert!(lease.nodes.iter().all(|r| r.id != dead.id));
    assert!(lease.expired.iter().all(|r| r.id != dead.id));
    delete_buckets(SHARED_URL, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_breaks_when_the_server_goes_away() {
    let Some(mut nats) = PrivateNats::start("link-broken").await else {
        return;
    };
    let broker = broker(&nats.url(), "netsvr_test_broken");
    let node = record(1);
    let (mut link, mut inbox) = join(&broker, &node).await;
    assert!(!link.is_broken());
    nats.kill();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !link.is_broken() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the link did not notice"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(link.publish(&[]).await.is_err());
    assert!(link.renew(&node, TTL).await.is_err());
    // The subscription ends by itself: the inbox closes even while the link is kept.
    assert!(
        tokio::time::timeout(Duration::from_secs(10), inbox.recv())
            .await
            .expect("the inbox closes")
            .is_none()
    );
    // A new link works once the server is back.
    nats.restart().await;
    let (mut again, _inbox) = join(&broker, &node).await;
    assert!(again.renew(&node, TTL).await.unwrap().existed);
}
