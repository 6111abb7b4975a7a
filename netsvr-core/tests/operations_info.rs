//! Real-socket tests of the `Gateway` operations that change connections: topics, session and customer info, and forcing them offline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use netsvr_core::{Bytes, CloseReason, EventKind, InfoDelete, InfoUpdate, UniqId};

/// A well-formed uniqId no gateway in these tests ever hands out.
fn unknown_id() -> UniqId {
    UniqId::from_bytes([10, 9, 8, 7, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff])
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// The connection's current (customer, session, topics).
fn info_of(gw: &TestGateway, id: &UniqId) -> (Option<String>, String, Vec<String>) {
    let details = gw.gateway.conn_info(id).expect("connection is online");
    let info = &details.info;
    (
        info.customer_id.clone(),
        info.session.clone(),
        info.topics.clone(),
    )
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// Waits for the next event, which must be `id`'s Close; returns its reason.
async fn close_reason(gw: &mut TestGateway) -> (UniqId, CloseReason) {
    let event = gw.next_event().await;
    match event.kind {
        EventKind::Close { reason } => (event.uniq_id(), reason),
        other => panic!("expected Close, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_adds_topics_and_pushes_data() {
    let mut gw = TestGateway::start(test_config()).await;
    let (mut a, ida) = gw.connect().await;
    let (mut b, _) = gw.connect().await;
    assert!(gw.gateway.topics().is_empty());

    assert!(
        gw.gateway
            .subscribe(&ida, &["t1", "t2"], Some(b"welcome".as_slice()))
    );
    expect_text(&mut a, "welcome").await;
    assert_eq!(sorted(gw.gateway.topics()), strings(&["t1", "t2"]));
    assert_eq!(gw.gateway.topic_members("t1"), vec![ida]);
    assert_eq!(gw.gateway.topic_members("t2"), vec![ida]);
    assert_eq!(info_of(&gw, &ida).2, strings(&["t1", "t2"]));

    // Already held topics are kept once; no data means no push.
    assert!(gw.gateway.subscribe(&ida, &["t1", "t3"], None));
    assert_eq!(info_of(&gw, &ida).2, strings(&["t1", "t2", "t3"]));
    assert_eq!(gw.gateway.topic_count(), 3);
    assert_eq!(gw.gateway.topic_member_count("t1"), 1);

    assert_eq!(gw.gateway.publish(&["t3"], "on-t3"), 1);
    expect_text(&mut a, "on-t3").await;
    assert_all_silent(vec![&mut a, &mut b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_removes_topics_and_pushes_data() {
    let mut gw = TestGateway::start_query_auth().await;
    let (mut a, ida) = gw.connect_query("?topics=t1,t2,t3").await;
    let (mut b, idb) = gw.connect_query("?topics=t2").await;

    assert!(
        gw.gateway
            .unsubscribe(&ida, &["t1", "t2"], Some(b"left".as_slice()))
    );
    expect_text(&mut a, "left").await;
    assert_eq!(info_of(&gw, &ida).2, strings(&["t3"]));
    // t1 lost its only member; t2 still has b.
    assert_eq!(sorted(gw.gateway.topics()), strings(&["t2", "t3"]));
    assert_eq!(gw.gateway.topic_members("t2"), vec![idb]);
    assert_eq!(gw.gateway.topic_member_count("t1"), 0);

    assert_eq!(gw.gateway.publish(&["t1"], "t1"), 0);
    assert_eq!(gw.gateway.publish(&["t2"], "t2"), 1);
    expect_text(&mut b, "t2").await;

    // Unsubscribing what is not held changes nothing and, without data, pushes nothing.
    assert!(gw.gateway.unsubscribe(&ida, &["t9"], None));
    assert_eq!(info_of(&gw, &ida).2, strings(&["t3"]));
    assert_all_silent(vec![&mut a, &mut b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_topics_unsubscribes_every_member_and_pushes_once() {
    let mut gw = TestGateway::start_query_auth().await;
    let (mut x, idx) = gw.connect_query("?topics=t1,t2,t3").await;
    let (mut y, idy) = gw.connect_query("?topics=t2").await;
    let (mut z, idz) = gw.connect_query("?topics=t4").await;
    let (mut guest, _) = gw.connect().await;

    assert_eq!(
        gw.gateway
            .delete_topics(&["t1", "t2", "nope"], Some(b"gone".as_slice())),
        2
    );
    // x held two of the deleted topics: still exactly one push.
    expect_text(&mut x, "gone").await;
    expect_text(&mut y, "gone").await;

    assert_eq!(sorted(gw.gateway.topics()), strings(&["t3", "t4"]));
    assert_eq!(gw.gateway.topic_count(), 2);
    assert!(gw.gateway.topic_members("t1").is_empty());
    assert!(gw.gateway.topic_members("t2").is_empty());
    assert_eq!(info_of(&gw, &idx).2, strings(&["t3"]));
    assert!(info_of(&gw, &idy).2.is_empty());
    assert_eq!(info_of(&gw, &idz).2, strings(&["t4"]));
    assert_eq!(gw.gateway.publish(&["t1", "t2"], "late"), 0);

    // Without data nobody is told.
    assert_eq!(gw.gateway.delete_topics(&["t3"], None), 1);
    assert!(info_of(&gw, &idx).2.is_empty());
    assert_eq!(gw.gateway.topics(), strings(&["t4"]));

    assert_all_silent(vec![&mut x, &mut y, &mut z, &mut guest]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_info_sets_session_rebinds_customer_replaces_topics() {
    let mut gw = TestGateway::start_query_auth().await;
    let (mut a, ida) = gw.connect_query("?customer=c1&topics=t1,t2").await;
    let (mut b, idb) = gw.connect_query("?customer=c1").await;

    let update = InfoUpdate::new()
        .session("s-new")
        .customer("c2")
        .topics(["t2", "t3", "t3"])
        .data("updated");
    assert!(gw.gateway.update_info(&ida, update));
    expect_text(&mut a, "updated").await;

    assert_eq!(
        info_of(&gw, &ida),
        (
            Some("c2".to_owned()),
            "s-new".to_owned(),
            strings(&["t2", "t3"])
        )
    );
    // The connection moved from c1 to c2 in the customer tables.
    assert_eq!(gw.gateway.customer_uniq_ids("c1"), vec![idb]);
    assert_eq!(gw.gateway.customer_uniq_ids("c2"), vec![ida]);
    assert_eq!(sorted(gw.gateway.customer_ids()), strings(&["c1", "c2"]));
    // Topics replaced: t1 dropped, t3 added.
    assert_eq!(sorted(gw.gateway.topics()), strings(&["t2", "t3"]));
    assert_eq!(gw.gateway.topic_members("t3"), vec![ida]);

    assert_eq!(gw.gateway.send_to_customer("c2", "to-c2"), 1);
    expect_text(&mut a, "to-c2").await;
    assert_eq!(gw.gateway.send_to_customer("c1", "to-c1"), 1);
    expect_text(&mut b, "to-c1").await;

    // Moving b away empties c1.
    assert!(
        gw.gateway
            .update_info(&idb, InfoUpdate::new().customer("c2"))
    );
    assert_eq!(gw.gateway.customer_ids(), strings(&["c2"]));
    assert_eq!(
        sorted(gw.gateway.customer_uniq_ids("c2")),
        sorted(vec![ida, idb])
    );

    // A session-only update keeps the rest; without data nothing is pushed.
    assert!(
        gw.gateway
            .update_info(&ida, InfoUpdate::new().session("s-2"))
    );
    assert_eq!(
        info_of(&gw, &ida),
        (
            Some("c2".to_owned()),
            "s-2".to_owned(),
            strings(&["t2", "t3"])
        )
    );
    assert_all_silent(vec![&mut a, &mut b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_info_clears_each_part_separately() {
    let mut gw = TestGateway::start_query_auth().await;
    let (mut a, ida) = gw
        .connect_query("?customer=c1&session=s1&topics=t1,t2")
        .await;

    let mut only_session = InfoDelete::all();
    only_session.customer_id = false;
    only_session.topics = false;
    only_session.data = Some(Bytes::from_static(b"session-cleared"));
    assert!(gw.gateway.delete_info(&ida, only_session));
    expect_text(&mut a, "session-cleared").await;
    assert_eq!(
        info_of(&gw, &ida),
        (Some("c1".to_owned()), String::new(), strings(&["t1", "t2"]))
    );
    assert_eq!(gw.gateway.customer_ids(), strings(&["c1"]));

    let mut only_customer = InfoDelete::all();
    only_customer.session = false;
    only_customer.topics = false;
    assert!(gw.gateway.delete_info(&ida, only_customer));
    assert_eq!(
        info_of(&gw, &ida),
        (None, String::new(), strings(&["t1", "t2"]))
    );
    assert!(gw.gateway.customer_ids().is_empty());
    assert_eq!(gw.gateway.customer_count(), 0);
    assert_eq!(gw.gateway.send_to_customer("c1", "x"), 0);
    assert_eq!(gw.gateway.topic_count(), 2);

    let mut only_topics = InfoDelete::all();
    only_topics.session = false;
    only_topics.customer_id = false;
    only_topics.data = Some(Bytes::from_static(b"topics-cleared"));
    assert!(gw.gateway.delete_info(&ida, only_topics));
    expect_text(&mut a, "topics-cleared").await;
    assert_eq!(info_of(&gw, &ida), (None, String::new(), Vec::new()));
    assert!(gw.gateway.topics().is_empty());
    assert_eq!(gw.gateway.publish(&["t1", "t2"], "x"), 0);

    // Everything at once, on a fresh bound connection.
    let (mut b, idb) = gw.connect_query("?customer=c2&session=s2&topics=t3").await;
    assert!(gw.gateway.delete_info(&idb, InfoDelete::all()));
    assert_eq!(info_of(&gw, &idb), (None, String::new(), Vec::new()));
    assert_eq!(gw.gateway.customer_count(), 0);
    assert_eq!(gw.gateway.topic_count(), 0);

    assert_all_silent(vec![&mut a, &mut b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_offline_pushes_farewell_then_closes_1008() {
    let mut gw = TestGateway::start(test_config()).await;
    let (mut a, ida) = gw.connect().await;
    let (mut b, idb) = gw.connect().await;

    assert_eq!(
        gw.gateway
            .force_offline(&[ida, unknown_id()], Some(b"farewell".as_slice())),
        1
    );
    expect_text(&mut a, "farewell").await;
    expect_close(&mut a, 1008).await;
    assert_eq!(close_reason(&mut gw).await, (ida, CloseReason::Kicked));
    assert!(!gw.gateway.is_online(&ida));

    assert!(gw.gateway.is_online(&idb));
    assert_eq!(gw.gateway.connection_count(), 1);
    assert_silent(&mut b, QUIET).await;

    // Without data: straight to the close.
    assert_eq!(gw.gateway.force_offline(&[idb], None), 1);
    expect_close(&mut b, 1008).await;
    assert_eq!(close_reason(&mut gw).await, (idb, CloseReason::Kicked));
    assert_eq!(gw.gateway.connection_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_offline_customers_closes_every_connection_of_each_customer() {
    let mut gw = TestGateway::start_query_auth().await;
    let (mut c1a, id1a) = gw.connect_query("?customer=c1").await;
    let (mut c1b, id1b) = gw.connect_query("?customer=c1").await;
    let (mut c2, id2) = gw.connect_query("?customer=c2").await;
    let (mut guest, idg) = gw.connect().await;

    assert_eq!(
        gw.gateway
            .force_offline_customers(&["c1", "nobody"], Some(b"bye c1".as_slice())),
        2
    );
    for client in [&mut c1a, &mut c1b] {
        expect_text(client, "bye c1").await;
        expect_close(client, 1008).await;
    }
    let mut closed = HashSet::new();
    for _ in 0..2 {
        let (id, reason) = close_reason(&mut gw).await;
        assert_eq!(reason, CloseReason::Kicked);
        closed.insert(id);
    }
    assert_eq!(closed, HashSet::from([id1a, id1b]));

    assert_eq!(gw.gateway.customer_ids(), strings(&["c2"]));
    assert_eq!(sorted(gw.gateway.uniq_ids()), sorted(vec![id2, idg]));
    assert_all_silent(vec![&mut c2, &mut guest]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_offline_guests_closes_only_unbound_connections_after_the_delay() {
    let mut gw = TestGateway::start_query_auth().await;
    let (mut guest, id_guest) = gw.connect().await;
    let (mut late_bound, id_late) = gw.connect().await;
    let (mut with_session, id_session) = gw.connect_query("?session=s1").await;
    let (mut with_customer, id_customer) = gw.connect_query("?customer=c1").await;
    let (mut unlisted, id_unlisted) = gw.connect().await;

    let delay = Duration::from_millis(150);
    let started = Instant::now();
    gw.gateway.force_offline_guests(
        vec![id_guest, id_late, id_session, id_customer, unknown_id()],
        delay,
        Some(Bytes::from_static(b"guests out")),
    );
    // Nothing happens before the delay; a guest that binds meanwhile is spared.
    assert!(gw.gateway.is_online(&id_guest));
    assert!(
        gw.gateway
            .update_info(&id_late, InfoUpdate::new().session("now-bound"))
    );

    expect_text(&mut guest, "guests out").await;
    assert!(
        started.elapsed() >= delay,
        "kicked after {:?}",
        started.elapsed()
    );
    expect_close(&mut guest, 1008).await;
    assert_eq!(close_reason(&mut gw).await, (id_guest, CloseReason::Kicked));

    for id in [id_late, id_session, id_customer] {
        assert!(gw.gateway.is_online(&id));
    }
    assert_eq!(gw.gateway.connection_count(), 4);
    assert_all_silent(vec![
        &mut late_bound,
        &mut with_session,
        &mut with_customer,
        &mut unlisted,
    ])
    .await;

    // A zero delay acts at once, and a bound connection is still spared.
    gw.gateway
        .force_offline_guests(vec![id_unlisted, id_customer], Duration::ZERO, None);
    expect_close(&mut unlisted, 1008).await;
    assert_eq!(
        close_reason(&mut gw).await,
        (id_unlisted, CloseReason::Kicked)
    );
    assert!(gw.gateway.is_online(&id_customer));
    assert_silent(&mut with_customer, QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_unknown_or_closed_connections_fails() {
    let mut gw = TestGateway::start_query_auth().await;
    let (mut a, ida) = gw.connect_query("?topics=t1").await;
    let (mut gone, id_gone) = gw.connect_query("?customer=c9&topics=t1").await;
    gone.close(None).await.unwrap();
    assert_eq!(close_reason(&mut gw).await.0, id_gone);

    for id in [unknown_id(), id_gone] {
        assert!(!gw.gateway.subscribe(&id, &["t2"], Some(b"x".as_slice())));
        assert!(!gw.gateway.unsubscribe(&id, &["t1"], Some(b"x".as_slice())));
        assert!(
            !gw.gateway
                .update_info(&id, InfoUpdate::new().session("s").data("x"))
        );
        assert!(!gw.gateway.delete_info(&id, InfoDelete::all()));
        assert_eq!(gw.gateway.force_offline(&[id], Some(b"x".as_slice())), 0);
        assert!(gw.gateway.conn_info(&id).is_none());
    }
    // The closed connection left no trace in the tables.
    assert_eq!(gw.gateway.customer_count(), 0);
    assert_eq!(gw.gateway.topic_members("t1"), vec![ida]);
    assert_eq!(gw.gateway.topics(), strings(&["t1"]));
    assert_eq!(gw.gateway.force_offline_customers(&["c9"], None), 0);
    assert_eq!(gw.gateway.delete_topics(&["t2"], Some(b"x".as_slice())), 0);

    assert_all_silent(vec![&mut a]).await;
}
