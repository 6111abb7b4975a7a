//! Real-socket tests of the `Gateway` send operations: one connection, a customer, many, a topic, everyone, and the bulk forms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use netsvr_core::{DownstreamOpcode, EventKind, MessageKind, UniqId};
use tokio_tungstenite::tungstenite::Message;

/// A well-formed uniqId no gateway in these tests ever hands out.
fn unknown_id() -> UniqId {
    UniqId::from_bytes([10, 9, 8, 7, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_reaches_only_its_connection_in_order() {
    let mut gw = TestGateway::start(test_config()).await;
    let (mut a, ida) = gw.connect().await;
    let (mut b, _) = gw.connect().await;

    assert!(gw.gateway.send(&ida, "to-a"));
    expect_text(&mut a, "to-a").await;

    for i in 0..200 {
        assert!(gw.gateway.send(&ida, format!("m{i}")));
    }
    for i in 0..200 {
        expect_text(&mut a, &format!("m{i}")).await;
    }
    assert_all_silent(vec![&mut a, &mut b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_as_keeps_the_opcode() {
    let raw = vec![0u8, 159, 146, 150, 255];

    // Text downstream (the default): binary stays binary, plain send is text.
    let mut gw = TestGateway::start(test_config()).await;
    let (mut a, ida) = gw.connect().await;
    assert!(gw.gateway.send_as(&ida, MessageKind::Binary, &raw));
    assert_eq!(recv_message(&mut a).await, Message::binary(raw.clone()));
    assert!(gw.gateway.send_as(&ida, MessageKind::Text, "as-text"));
    expect_text(&mut a, "as-text").await;
    assert!(gw.gateway.send(&ida, "plain"));
    expect_text(&mut a, "plain").await;

    // Binary downstream: plain send is binary, send_as text stays text.
    let mut config = test_config();
    config.downstream_opcode = DownstreamOpcode::Binary;
    let mut gw = TestGateway::start(config).await;
    let (mut b, idb) = gw.connect().await;
    assert!(gw.gateway.send(&idb, "plain"));
    assert_eq!(
        recv_message(&mut b).await,
        Message::binary(b"plain".to_vec())
    );
    assert!(gw.gateway.send_as(&idb, MessageKind::Text, "as-text"));
    expect_text(&mut b, "as-text").await;
    assert!(gw.gateway.send_as(&idb, MessageKind::Binary, &raw));
    assert_eq!(recv_message(&mut b).await, Message::binary(raw.clone()));

    assert_all_silent(vec![&mut a, &mut b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_to_customer_reaches_all_its_connections_and_no_others() {
    let mut gw = TestGateway::start_query_auth().await;
    let (mut c1a, _) = gw.connect_query("?customer=c1").await;
    let (mut c1b, _) = gw.connect_query("?customer=c1").await;
    let (mut c2, _) = gw.connect_query("?customer=c2").await;
    let (mut guest, _) = gw.connect().await;

    assert_eq!(gw.gateway.send_to_customer("c1", "hi c1"), 2);
    expect_text(&mut c1a, "hi c1").await;
    expect_text(&mut c1b, "hi c1").await;
    assert_eq!(gw.gateway.send_to_customer("nobody", "lost"), 0);

    assert_all_silent(vec![&mut c1a, &mut c1b, &mut c2, &mut guest]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multicast_reaches_the_listed_connections() {
    let mut gw = TestGateway::start(test_config()).await;
    let (mut a, ida) = gw.connect().await;
    let (mut b, _) = gw.connect().await;
    let (mut c, idc) = gw.connect().await;

    assert_eq!(gw.gateway.multicast(&[ida, unknown_id(), idc], "many"), 2);
    expect_text(&mut a, "many").await;
    expect_text(&mut c, "many").await;
    assert_eq!(gw.gateway.multicast(&[], "none"), 0);

    assert_all_silent(vec![&mut a, &mut b, &mut c]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multicast_customers_reaches_every_connection_of_each_customer() {
    let mut gw = TestGateway::start_query_auth().await;
    let (mut c1a, _) = gw.connect_query("?customer=c1").await;
    let (mut c1b, _) = gw.connect_query("?customer=c1").await;
    let (mut c2, _) = gw.connect_query("?customer=c2").await;
    let (mut c3, _) = gw.connect_query("?customer=c3").await;
    let (mut guest, _) = gw.connect().await;

    assert_eq!(
        gw.gateway
            .multicast_customers(&["c1", "c2", "nobody"], "customers"),
        3
    );
    expect_text(&mut c1a, "customers").await;
    expect_text(&mut c1b, "customers").await;
    expect_text(&mut c2, "customers").await;

    assert_all_silent(vec![&mut c1a, &mut c1b, &mut c2, &mut c3, &mut guest]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_reaches_everyone() {
    let mut gw = TestGateway::start_query_auth().await;
    let (mut a, _) = gw.connect().await;
    let (mut b, _) = gw.connect_query("?customer=c1&topics=t1").await;
    let (mut c, _) = gw.connect_query("?session=s").await;

    assert_eq!(gw.gateway.broadcast("everyone"), 3);
    for client in [&mut a, &mut b, &mut c] {
        expect_text(client, "everyone").await;
    }
    let raw = vec![1u8, 2, 0, 254];
    assert_eq!(gw.gateway.broadcast_as(MessageKind::Binary, &raw), 3);
    for client in [&mut a, &mut b, &mut c] {
        assert_eq!(recv_message(client).await, Message::binary(raw.clone()));
    }
    assert_eq!(gw.gateway.broadcast_as(MessageKind::Text, "txt"), 3);
    for client in [&mut a, &mut b, &mut c] {
        expect_text(client, "txt").await;
    }

    assert_all_silent(vec![&mut a, &mut b, &mut c]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_reaches_topic_members_once_per_listed_topic() {
    let mut gw = TestGateway::start_query_auth().await;
    let (mut both, _) = gw.connect_query("?topics=t1,t2").await;
    let (mut one, _) = gw.connect_query("?topics=t1").await;
    let (mut other, _) = gw.connect_query("?topics=t3").await;
    let (mut none, _) = gw.connect().await;

    // `both` holds two of the listed topics: it gets the payload twice.
    assert_eq!(gw.gateway.publish(&["t1", "t2"], "news"), 3);
    expect_text(&mut both, "news").await;
    expect_text(&mut both, "news").await;
    expect_text(&mut one, "news").await;

    assert_eq!(gw.gateway.publish(&["t2"], "t2-only"), 1);
    expect_text(&mut both, "t2-only").await;
    assert_eq!(gw.gateway.publish(&["no-such-topic"], "lost"), 0);

    assert_all_silent(vec![&mut both, &mut one, &mut other, &mut none]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_bulk_one_target_gets_all_in_order() {
    let mut gw = TestGateway::start(test_config()).await;
    let (mut a, ida) = gw.connect().await;
    let (mut b, _) = gw.connect().await;

    let payloads: Vec<String> = (0..50).map(|i| format!("bulk{i}")).collect();
    assert_eq!(gw.gateway.send_bulk(&[ida], &payloads), Ok(50));
    for p in &payloads {
        expect_text(&mut a, p).await;
    }
    assert_eq!(gw.gateway.send_bulk(&[unknown_id()], &["x", "y"]), Ok(0));

    assert_all_silent(vec![&mut a, &mut b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_bulk_pairs_targets_and_payloads_by_index() {
    let mut gw = TestGateway::start(test_config()).await;
    let (mut a, ida) = gw.connect().await;
    let (mut b, idb) = gw.connect().await;
    let (mut c, idc) = gw.connect().await;
    let (mut d, _) = gw.connect().await;

    assert_eq!(
        gw.gateway
            .send_bulk(&[ida, idb, unknown_id(), idc], &["A", "B", "lost", "C"]),
        Ok(3)
    );
    expect_text(&mut a, "A").await;
    expect_text(&mut b, "B").await;
    expect_text(&mut c, "C").await;

    assert_all_silent(vec![&mut a, &mut b, &mut c, &mut d]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_bulk_to_customers_one_and_paired() {
    let mut gw = TestGateway::start_query_auth().await;
    let (mut c1a, _) = gw.connect_query("?customer=c1").await;
    let (mut c1b, _) = gw.connect_query("?customer=c1").await;
    let (mut c2, _) = gw.connect_query("?customer=c2").await;
    let (mut c3, _) = gw.connect_query("?customer=c3").await;

    // One customer × 3 payloads: each of its connections gets all three, in order.
    assert_eq!(
        gw.gateway.send_bulk_to_customers(&["c1"], &["1", "2", "3"]),
        Ok(6)
    );
    for client in [&mut c1a, &mut c1b] {
        for p in ["1", "2", "3"] {
            expect_text(client, p).await;
        }
    }

    // N × N: paired by index.
    assert_eq!(
        gw.gateway
            .send_bulk_to_customers(&["c1", "c2", "nobody"], &["for-c1", "for-c2", "lost"]),
        Ok(3)
    );
    expect_text(&mut c1a, "for-c1").await;
    expect_text(&mut c1b, "for-c1").await;
    expect_text(&mut c2, "for-c2").await;

    assert_all_silent(vec![&mut c1a, &mut c1b, &mut c2, &mut c3]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_bulk_one_and_paired() {
    let mut gw = TestGateway::start_query_auth().await;
    let (mut x, _) = gw.connect_query("?topics=t1,t2").await;
    let (mut y, _) = gw.connect_query("?topics=t1").await;
    let (mut z, _) = gw.connect_query("?topics=t2").await;
    let (mut w, _) = gw.connect_query("?topics=t3").await;

    // One topic × 4 payloads: each member gets all, in order.
    let payloads = ["p0", "p1", "p2", "p3"];
    assert_eq!(gw.gateway.publish_bulk(&["t1"], &payloads), Ok(8));
    for client in [&mut x, &mut y] {
        for p in payloads {
            expect_text(client, p).await;
        }
    }

    // N × N: paired by index.
    assert_eq!(
        gw.gateway.publish_bulk(&["t1", "t2"], &["to-t1", "to-t2"]),
        Ok(4)
    );
    expect_text(&mut x, "to-t1").await;
    expect_text(&mut x, "to-t2").await;
    expect_text(&mut y, "to-t1").await;
    expect_text(&mut z, "to-t2").await;

    assert_all_silent(vec![&mut x, &mut y, &mut z, &mut w]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_shape_mismatch_sends_nothing() {
    let mut gw = TestGateway::start_query_auth().await;
    let (mut a, ida) = gw.connect_query("?customer=c1&topics=t1").await;
    let (mut b, idb) = gw.connect_query("?customer=c2&topics=t2").await;
    let before = gw.gateway.stats().messages_out;

    let e = gw
        .gateway
        .send_bulk(&[ida, idb], &["1", "2", "3"])
        .unwrap_err();
    assert_eq!((e.targets, e.payloads), (2, 3));
    let e = gw.gateway.send_bulk(&[], &["1"]).unwrap_err();
    assert_eq!((e.targets, e.payloads), (0, 1));
    let e = gw
        .gateway
        .send_bulk(&[ida, idb, ida], &["1", "2"])
        .unwrap_err();
    assert_eq!((e.targets, e.payloads), (3, 2));

    let e = gw
        .gateway
        .send_bulk_to_customers(&["c1", "c2"], &["1", "2", "3"])
        .unwrap_err();
    assert_eq!((e.targets, e.payloads), (2, 3));
    let e = gw
        .gateway
        .send_bulk_to_customers::<&str, &str>(&[], &["1"])
        .unwrap_err();
    assert_eq!((e.targets, e.payloads), (0, 1));

    let e = gw
        .gateway
        .publish_bulk(&["t1", "t2"], &["1", "2", "3"])
        .unwrap_err();
    assert_eq!((e.targets, e.payloads), (2, 3));
    let e = gw
        .gateway
        .publish_bulk(&["t1", "t2", "t1"], &["1"; 2])
        .unwrap_err();
    assert_eq!((e.targets, e.payloads), (3, 2));

    assert_eq!(gw.gateway.stats().messages_out, before);
    assert_all_silent(vec![&mut a, &mut b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_to_unknown_or_closed_connections_reaches_nobody() {
    let mut gw = TestGateway::start(test_config()).await;
    let (mut a, ida) = gw.connect().await;
    let (mut gone, id_gone) = gw.connect().await;
    gone.close(None).await.unwrap();
    let event = gw.next_event().await;
    assert!(
        matches!(event.kind, EventKind::Close { .. }) && event.uniq_id() == id_gone,
        "{event:?}"
    );
    let before = gw.gateway.stats().messages_out;

    for id in [unknown_id(), id_gone] {
        assert!(!gw.gateway.send(&id, "x"));
        assert!(!gw.gateway.send_as(&id, MessageKind::Binary, "x"));
        assert_eq!(gw.gateway.multicast(&[id], "x"), 0);
        assert_eq!(gw.gateway.send_bulk(&[id], &["x", "y"]), Ok(0));
        assert_eq!(gw.gateway.send_bulk(&[id, id], &["x", "y"]), Ok(0));
    }
    assert_eq!(gw.gateway.stats().messages_out, before);

    // A closed connection in a list does not stop the others.
    assert_eq!(gw.gateway.multicast(&[id_gone, ida], "live"), 1);
    expect_text(&mut a, "live").await;
    assert_eq!(
        gw.gateway.send_bulk(&[id_gone, ida], &["dead", "alive"]),
        Ok(1)
    );
    expect_text(&mut a, "alive").await;
    assert_eq!(gw.gateway.stats().messages_out, before + 2);

    assert_all_silent(vec![&mut a]).await;
}
