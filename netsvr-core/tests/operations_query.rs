//! Real-socket tests of the `Gateway` queries, `stats()`, and the open / message / close events with the snapshots they carry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};

use common::*;
use futures_util::SinkExt;
use netsvr_core::{CloseReason, Event, EventKind, MessageKind, UniqId};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A well-formed uniqId no gateway in these tests ever hands out.
fn unknown_id() -> UniqId {
    UniqId::from_bytes([10, 9, 8, 7, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff])
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// The (customer, session, topics) an event's snapshot carries.
fn snapshot_of(event: &Event) -> (Option<String>, String, Vec<String>) {
    let info = &event.conn.info;
    (
        info.customer_id.clone(),
        info.session.clone(),
        info.topics.clone(),
    )
}

fn bound(
    customer: Option<&str>,
    session: &str,
    topics: &[&str],
) -> (Option<String>, String, Vec<String>) {
    (
        customer.map(str::to_owned),
        session.to_owned(),
        strings(topics),
    )
}

/// Waits for the next event, which must be a Message; returns it with its kind and payload.
async fn next_message(gw: &mut TestGateway) -> (Event, MessageKind, Vec<u8>) {
    let event = gw.next_event().await;
    match &event.kind {
        EventKind::Message { kind, payload } => {
            let (kind, payload) = (*kind, payload.to_vec());
            (event, kind, payload)
        }
        other => panic!("expected Message, got {other:?}"),
    }
}

/// Closes a client and waits for its Close event (the next event).
async fn close_and_wait(gw: &mut TestGateway, client: &mut Client, id: UniqId) {
    client.close(None).await.unwrap();
    let event = gw.next_event().await;
    assert!(
        matches!(event.kind, EventKind::Close { .. }) && event.uniq_id() == id,
        "{event:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_queries() {
    let mut gw = TestGateway::start(test_config()).await;
    assert_eq!(gw.gateway.connection_count(), 0);
    assert!(gw.gateway.uniq_ids().is_empty());
    let (_a, ida) = gw.connect().await;
    let (mut b, idb) = gw.connect().await;
    let (_c, idc) = gw.connect().await;
    assert_eq!(gw.gateway.connection_count(), 3);
    close_and_wait(&mut gw, &mut b, idb).await;

    assert!(gw.gateway.is_online(&ida));
    assert!(gw.gateway.is_online(&idc));
    assert!(!gw.gateway.is_online(&idb));
    assert!(!gw.gateway.is_online(&unknown_id()));
    // The online subset, in the order asked.
    assert_eq!(
        gw.gateway.check_online(&[idc, unknown_id(), idb, ida]),
        vec![idc, ida]
    );
    assert_eq!(gw.gateway.check_online(&[ida, idc]), vec![ida, idc]);
    assert!(gw.gateway.check_online(&[idb]).is_empty());
    assert_eq!(sorted(gw.gateway.uniq_ids()), sorted(vec![ida, idc]));
    assert_eq!(gw.gateway.connection_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_queries() {
    let mut gw = TestGateway::start_query_auth().await;
    let (_a, ida) = gw.connect_query("?customer=c1&session=sa").await;
    let (_b, idb) = gw.connect_query("?customer=c1&session=sb&topics=t1").await;
    let (mut c, idc) = gw.connect_query("?customer=c2").await;
    let (_d, _) = gw.connect().await;

    assert_eq!(sorted(gw.gateway.customer_ids()), strings(&["c1", "c2"]));
    assert_eq!(gw.gateway.customer_count(), 2);
    assert_eq!(
        sorted(gw.gateway.customer_uniq_ids("c1")),
        sorted(vec![ida, idb])
    );
    assert_eq!(gw.gateway.customer_uniq_ids("c2"), vec![idc]);
    assert!(gw.gateway.customer_uniq_ids("nobody").is_empty());

    let details: HashMap<UniqId, (Option<String>, String, Vec<String>)> = gw
        .gateway
        .conn_info_by_customer("c1")
        .into_iter()
        .map(|d| {
            let info = (
                d.info.customer_id.clone(),
                d.info.session.clone(),
                d.info.topics.clone(),
            );
            (d.meta.uniq_id, info)
        })
        .collect();
    assert_eq!(
        details,
        HashMap::from([
            (ida, bound(Some("c1"), "sa", &[])),
            (idb, bound(Some("c1"), "sb", &["t1"])),
        ])
    );
    assert!(gw.gateway.conn_info_by_customer("nobody").is_empty());

    // The last connection of c2 leaves: c2 is gone from the lists.
    close_and_wait(&mut gw, &mut c, idc).await;
    assert_eq!(gw.gateway.customer_ids(), strings(&["c1"]));
    assert_eq!(gw.gateway.customer_count(), 1);
    assert!(gw.gateway.conn_info_by_customer("c2").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_queries() {
    let mut gw = TestGateway::start_query_auth().await;
    let (_a, ida) = gw.connect_query("?customer=c1&topics=t").await;
    // b belongs to c1 but is not subscribed to t.
    let (_b, idb) = gw.connect_query("?customer=c1&topics=other").await;
    let (_c, idc) = gw.connect_query("?customer=c2&topics=t,other").await;
    let (_d, idd) = gw.connect_query("?topics=t").await;
    let (_e, _) = gw.connect_query("?customer=c3").await;

    assert_eq!(sorted(gw.gateway.topics()), strings(&["other", "t"]));
    assert_eq!(gw.gateway.topic_count(), 2);
    assert_eq!(
        sorted(gw.gateway.topic_members("t")),
        sorted(vec![ida, idc, idd])
    );
    assert_eq!(gw.gateway.topic_member_count("t"), 3);
    assert_eq!(
        sorted(gw.gateway.topic_members("other")),
        sorted(vec![idb, idc])
    );
    assert_eq!(gw.gateway.topic_member_count("other"), 2);

    // Distinct customers among t's members (the guest d has none).
    assert_eq!(
        sorted(gw.gateway.topic_customers("t")),
        strings(&["c1", "c2"])
    );
    assert_eq!(gw.gateway.topic_customer_count("t"), 2);
    assert_eq!(gw.gateway.topic_customers("other"), strings(&["c1", "c2"]));

    // topic → customer → ALL that customer's connections, b included.
    let map: HashMap<String, Vec<UniqId>> = gw
        .gateway
        .topic_customer_uniq_ids("t")
        .into_iter()
        .map(|(k, v)| (k, sorted(v)))
        .collect();
    assert_eq!(
        map,
        HashMap::from([
            ("c1".to_owned(), sorted(vec![ida, idb])),
            ("c2".to_owned(), vec![idc]),
        ])
    );

    for topic in ["no-such-topic", ""] {
        assert!(gw.gateway.topic_members(topic).is_empty());
        assert_eq!(gw.gateway.topic_member_count(topic), 0);
        assert!(gw.gateway.topic_customers(topic).is_empty());
        assert_eq!(gw.gateway.topic_customer_count(topic), 0);
        assert!(gw.gateway.topic_customer_uniq_ids(topic).is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conn_info_reports_meta_and_current_info() {
    let mut gw = TestGateway::start_query_auth().await;
    let (client, ida) = gw
        .connect_query("?customer=c1&session=s1&topics=t1,t2")
        .await;
    let local = client.get_ref().get_ref().local_addr().unwrap();

    let details = gw.gateway.conn_info(&ida).expect("online");
    assert_eq!(details.meta.uniq_id, ida);
    assert_eq!(details.meta.remote_addr, local);
    assert_eq!(
        details.meta.raw_query,
        "customer=c1&session=s1&topics=t1,t2"
    );
    assert_eq!(details.meta.x_forwarded_for, "");
    assert_eq!(details.meta.x_real_ip, "");
    assert_eq!(details.info.customer_id.as_deref(), Some("c1"));
    assert_eq!(details.info.session, "s1");
    assert_eq!(details.info.topics, strings(&["t1", "t2"]));

    assert!(gw.gateway.subscribe(&ida, &["t3"], None));
    assert_eq!(
        gw.gateway.conn_info(&ida).expect("online").info.topics,
        strings(&["t1", "t2", "t3"])
    );
    assert!(gw.gateway.conn_info(&unknown_id()).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_opens_closes_and_messages() {
    let mut gw = TestGateway::start_query_auth().await;
    let s = gw.gateway.stats();
    assert_eq!((s.connections, s.opened, s.closed), (0, 0, 0));
    assert_eq!(
        (s.messages_in, s.bytes_in, s.messages_out, s.bytes_out),
        (0, 0, 0, 0)
    );

    let (mut a, ida) = gw.connect_query("?customer=c1").await;
    let (mut b, idb) = gw.connect_query("?topics=t1").await;
    let s = gw.gateway.stats();
    assert_eq!((s.connections, s.customers, s.topics), (2, 1, 1));
    assert_eq!((s.opened, s.closed, s.refused), (2, 0, 0));

    // In: two data messages (5 + 3 bytes), a heartbeat (not a message), one more (1 byte).
    send_text(&mut a, "hello").await;
    a.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    send_text(&mut a, "~6YOt5rW35piO~").await;
    send_text(&mut a, "z").await;
    for expected in [b"hello".to_vec(), vec![1, 2, 3], b"z".to_vec()] {
        let event = gw.next_event().await;
        match &event.kind {
            EventKind::Message { payload, .. } => assert_eq!(payload.to_vec(), expected),
            other => panic!("expected Message, got {other:?}"),
        }
    }
    let s = gw.gateway.stats();
    assert_eq!((s.messages_in, s.bytes_in, s.heartbeats), (3, 9, 1));

    // Out: frames queued, not calls made: 1 + 2 (broadcast) + 0 + 0 + 2 (bulk).
    assert!(gw.gateway.send(&ida, "x"));
    assert_eq!(gw.gateway.broadcast("yy"), 2);
    assert_eq!(gw.gateway.publish(&["nobody-here"], "lost"), 0);
    assert!(!gw.gateway.send(&unknown_id(), "lost"));
    assert_eq!(gw.gateway.send_bulk(&[idb], &["p", "q"]), Ok(2));
    assert_eq!(gw.gateway.stats().messages_out, 5);
    expect_text(&mut a, "x").await;
    expect_text(&mut a, "yy").await;
    expect_text(&mut b, "yy").await;
    expect_text(&mut b, "p").await;
    expect_text(&mut b, "q").await;
    // Bytes written: each frame is a 2-byte header and the payload: 3 + 4 + 4 + 3 + 3.
    let gateway = gw.gateway.clone();
    eventually("bytes_out == 17", || gateway.stats().bytes_out == 17).await;

    close_and_wait(&mut gw, &mut b, idb).await;
    let s = gw.gateway.stats();
    assert_eq!((s.connections, s.customers, s.topics), (1, 1, 0));
    assert_eq!((s.opened, s.closed), (2, 1));
    assert_eq!(s.messages_out, 5);
    assert_eq!((s.messages_in, s.bytes_in), (3, 9));
    assert_eq!(
        (s.drops_rate_limited, s.drops_slow_consumer, s.drops_sink),
        (0, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_event_carries_query_headers_and_remote_address() {
    let mut gw = TestGateway::start_query_auth().await;
    let query = "customer=c1&session=s1&topics=t1,t2&extra=a%20b";
    let mut request = gw.url(&format!("?{query}")).into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert(
        "X-Forwarded-For",
        HeaderValue::from_static("203.0.113.7, 10.0.0.1"),
    );
    headers.insert("X-Real-IP", HeaderValue::from_static("203.0.113.7"));
    let (client, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let local = client.get_ref().get_ref().local_addr().unwrap();

    let event = gw.next_event().await;
    assert!(matches!(event.kind, EventKind::Open), "{event:?}");
    let meta = &event.conn.meta;
    assert_eq!(meta.raw_query, query);
    assert_eq!(meta.x_forwarded_for, "203.0.113.7, 10.0.0.1");
    assert_eq!(meta.x_real_ip, "203.0.113.7");
    assert_eq!(meta.remote_addr, local);
    assert!(gw.gateway.is_online(&meta.uniq_id));
    // The snapshot holds what the authenticator bound.
    assert_eq!(snapshot_of(&event), bound(Some("c1"), "s1", &["t1", "t2"]));

    // Without query or headers: empty strings, a guest snapshot.
    let (_plain, _) = tokio_tungstenite::connect_async(gw.url("")).await.unwrap();
    let event = gw.next_event().await;
    assert!(matches!(event.kind, EventKind::Open), "{event:?}");
    assert_eq!(event.conn.meta.raw_query, "");
    assert_eq!(event.conn.meta.x_forwarded_for, "");
    assert_eq!(event.conn.meta.x_real_ip, "");
    assert_eq!(snapshot_of(&event), bound(None, "", &[]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_the_snapshot_current_at_the_time() {
    let mut gw = TestGateway::start_query_auth().await;
    let (mut a, ida) = gw.connect_query("?customer=c1&session=s1&topics=t1").await;

    send_text(&mut a, "before").await;
    let (event, kind, payload) = next_message(&mut gw).await;
    assert_eq!(event.uniq_id(), ida);
    assert_eq!(
        (kind, payload.as_slice()),
        (MessageKind::Text, b"before".as_slice())
    );
    assert_eq!(snapshot_of(&event), bound(Some("c1"), "s1", &["t1"]));

    let update = netsvr_core::InfoUpdate::new()
        .session("s2")
        .customer("c2")
        .topics(["t2", "t3"]);
    assert!(gw.gateway.update_info(&ida, update));
    a.send(Message::binary(vec![9u8, 0, 9])).await.unwrap();
    let (event, kind, payload) = next_message(&mut gw).await;
    assert_eq!(
        (kind, payload.as_slice()),
        (MessageKind::Binary, [9u8, 0, 9].as_slice())
    );
    assert_eq!(snapshot_of(&event), bound(Some("c2"), "s2", &["t2", "t3"]));

    // The Close event shows the last state, after every change.
    assert!(gw.gateway.subscribe(&ida, &["t4"], None));
    a.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    }))
    .await
    .unwrap();
    let event = gw.next_event().await;
    assert_eq!(event.uniq_id(), ida);
    assert!(
        matches!(
            event.kind,
            EventKind::Close {
                reason: CloseReason::Client(1000)
            }
        ),
        "{event:?}"
    );
    assert_eq!(
        snapshot_of(&event),
        bound(Some("c2"), "s2", &["t2", "t3", "t4"])
    );
    assert!(!gw.gateway.is_online(&ida));
    assert_eq!(gw.gateway.customer_count(), 0);
    assert_eq!(gw.gateway.topic_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_events_keep_per_connection_order() {
    const N: usize = 200;
    let mut gw = TestGateway::start(test_config()).await;
    let (a, ida) = gw.connect().await;
    let (b, idb) = gw.connect().await;

    // Both clients send at once; each one's events must come in its own order.
    let send_all = |mut client: Client, tag: &'static str| {
        tokio::spawn(async move {
            for i in 0..N {
                client
                    .send(Message::text(format!("{tag}{i}")))
                    .await
                    .unwrap();
            }
            client
        })
    };
    let (ta, tb) = (send_all(a, "a"), send_all(b, "b"));

    let mut seen: HashMap<UniqId, Vec<String>> = HashMap::new();
    for _ in 0..2 * N {
        let (event, kind, payload) = next_message(&mut gw).await;
        assert_eq!(kind, MessageKind::Text);
        seen.entry(event.uniq_id())
            .or_default()
            .push(String::from_utf8(payload).unwrap());
    }
    let expect = |tag: &str| (0..N).map(|i| format!("{tag}{i}")).collect::<Vec<_>>();
    assert_eq!(
        seen.keys().copied().collect::<HashSet<_>>(),
        HashSet::from([ida, idb])
    );
    assert_eq!(seen[&ida], expect("a"));
    assert_eq!(seen[&idb], expect("b"));

    let (_a, _b) = (ta.await.unwrap(), tb.await.unwrap());
    assert!(gw.events.try_recv().is_none());
}
