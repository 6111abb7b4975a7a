//! The Rust business client (`WorkerClient`, `TaskClient`) against real gateways serving their
//! worker and task ports, watched through real WebSocket clients: every event with its
//! fields, every command's effect, every query's exact answer, two nodes, command order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::node::Node;
use common::*;
use futures_util::SinkExt;

use netsvr_protocol::client::{
    ClientConfig, ClientError, Event, GatewayAddr, TaskClient, WorkerClient, WorkerEvent,
};
use netsvr_protocol::{ToGateway, pb};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A business process: a `WorkerClient` registered for every event and a `TaskClient`, both
/// given the same gateways.
struct Business {
    worker: WorkerClient,
    task: TaskClient,
}

impl Business {
    async fn connect(nodes: &[&Node]) -> Self {
        let gateways: Vec<GatewayAddr> = nodes.iter().map(|n| n.addr()).collect();
        let task = TaskClient::connect(gateways.clone(), ClientConfig::default())
            .await
            .unwrap();
        let mut worker = WorkerClient::connect(gateways, ClientConfig::default())
            .await
            .unwrap();
        // First, one `Registered` per gateway.
        let mut registered = Vec::new();
        for _ in nodes {
            let ev = tokio::time::timeout(WAIT, worker.recv())
                .await
                .expect("timed out waiting for Registered")
                .expect("worker closed");
            match ev.event {
                Event::Registered { conn_id } => {
                    assert!(!conn_id.is_empty());
                    registered.push(ev.gateway);
                }
                other => panic!("expected Registered, got {other:?}"),
            }
        }
        registered.sort_unstable();
        assert_eq!(registered, (0..nodes.len()).collect::<Vec<_>>());
        Self { worker, task }
    }

    /// The next event; a (re)registration or a lost connection fails the test.
    async fn event(&mut self) -> WorkerEvent {
        let ev = tokio::time::timeout(WAIT, self.worker.recv())
            .await
            .expect("timed out waiting for an event")
            .expect("worker closed");
        assert!(
            matches!(
                ev.event,
                Event::Open(_) | Event::Close(_) | Event::Message(_)
            ),
            "unexpected {ev:?}"
        );
        ev
    }

    async fn open(&mut self) -> (usize, pb::ConnOpen) {
        let ev = self.event().await;
        match ev.event {
            Event::Open(m) => (ev.gateway, m),
            other => panic!("expected ConnOpen, got {other:?}"),
        }
    }

    async fn message(&mut self) -> (usize, pb::Transfer) {
        let ev = self.event().await;
        match ev.event {
            Event::Message(m) => (ev.gateway, m),
            other => panic!("expected Transfer, got {other:?}"),
        }
    }

    async fn close(&mut self) -> (usize, pb::ConnClose) {
        let ev = self.event().await;
        match ev.event {
            Event::Close(m) => (ev.gateway, m),
            other => panic!("expected ConnClose, got {other:?}"),
        }
    }

    /// Asserts that no event arrives within [`QUIET`].
    async fn no_event(&mut self) {
        if let Ok(ev) = tokio::time::timeout(QUIET, self.worker.recv()).await {
            panic!("expected no event, got {ev:?}");
        }
    }

    /// Connects a WebSocket client to `node`, which is gateway `index` of this business,
    /// and returns it with its uniqId (from its ConnOpen).
    async fn client(&mut self, node: &Node, index: usize) -> (Client, String) {
        let (client, _) = tokio_tungstenite::connect_async(node.url(""))
            .await
            .unwrap();
        let (gateway, open) = self.open().await;
        assert_eq!(gateway, index, "{open:?}");
        assert!(
            open.uniq_id.starts_with(node.addr().node_prefix().unwrap()),
            "{open:?}"
        );
        (client, open.uniq_id)
    }

    async fn send(&self, cmd: ToGateway) {
        self.task.send(cmd).await.unwrap();
    }

    /// Binds a connection (no push) and waits for nothing: later commands of this business
    /// are applied after it.
    async fn bind(&self, uniq_id: &str, session: &str, customer: &str, topics: &[&str]) {
        self.send(ToGateway::ConnInfoUpdate(pb::ConnInfoUpdate {
            uniq_id: uniq_id.to_owned(),
            new_session: session.to_owned(),
            new_customer_id: customer.to_owned(),
            new_topics: s(topics),
            data: Default::default(),
        }))
        .await;
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort_unstable();
    v
}

fn single(uniq_id: &str, data: &str) -> ToGateway {
    ToGateway::SingleCast(pb::SingleCast {
        uniq_id: uniq_id.to_owned(),
        data: data.to_owned().into(),
    })
}

fn publish(topics: &[&str], data: &str) -> ToGateway {
    ToGateway::TopicPublish(pb::TopicPublish {
        topics: s(topics),
        data: data.to_owned().into(),
    })
}

fn to_customer(customer: &str, data: &str) -> ToGateway {
    ToGateway::SingleCastByCustomerId(pb::SingleCastByCustomerId {
        customer_id: customer.to_owned(),
        data: data.to_owned().into(),
    })
}

/// Asserts the next frames of `client` are these texts, in this order.
async fn expect_texts(client: &mut Client, texts: &[&str]) {
    for t in texts {
        expect_text(client, t).await;
    }
}

fn local_addr(client: &Client) -> String {
    match client.get_ref() {
        MaybeTlsStream::Plain(tcp) => tcp.local_addr().unwrap().to_string(),
        _ => panic!("not a plain TCP stream"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_every_field() {
    let node = Node::start().await;
    let mut biz = Business::connect(&[&node]).await;

    // ConnOpen: uniqId, rawQuery, X-Forwarded-For, X-Real-IP, remoteAddr.
    let mut request = node.url("?token=abc&x=1").into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("X-Forwarded-For", "10.0.0.1, 10.0.0.2".parse().unwrap());
    headers.insert("X-Real-IP", "10.0.0.9".parse().unwrap());
    let (mut client, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let (gateway, open) = biz.open().await;
    assert_eq!(gateway, 0);
    let id = open.uniq_id.clone();
    assert_eq!(id.len(), 28, "{id}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{id}"
    );
    // The first 12 hex characters name the task port, so the client routes to it.
    assert_eq!(&id[..12], node.addr().node_prefix().unwrap());
    assert_eq!(biz.task.owner_of(&id), Some(0));
    assert_eq!(
        open,
        pb::ConnOpen {
            uniq_id: id.clone(),
            raw_query: "token=abc&x=1".into(),
            x_forwarded_for: "10.0.0.1, 10.0.0.2".into(),
            x_real_ip: "10.0.0.9".into(),
            remote_addr: local_addr(&client),
        }
    );

    // A guest's events: empty headers, empty bindings.
    let (mut guest, _) = tokio_tungstenite::connect_async(node.url(""))
        .await
        .unwrap();
    let (_, guest_open) = biz.open().await;
    assert_eq!(
        guest_open,
        pb::ConnOpen {
            uniq_id: guest_open.uniq_id.clone(),
            raw_query: String::new(),
            x_forwarded_for: String::new(),
            x_real_ip: String::new(),
            remote_addr: local_addr(&guest),
        }
    );
    assert_ne!(guest_open.uniq_id, id);
    send_text(&mut guest, "guest says").await;
    let (_, t) = biz.message().await;
    assert_eq!(
        t,
        pb::Transfer {
            uniq_id: guest_open.uniq_id.clone(),
            customer_id: String::new(),
            session: String::new(),
            topics: vec![],
            data: "guest says".into(),
        }
    );

    // Transfer after binding through the TaskClient: every field.
    biz.send(ToGateway::ConnInfoUpdate(pb::ConnInfoUpdate {
        uniq_id: id.clone(),
        new_session: "sess-1".into(),
        new_customer_id: "cust-1".into(),
        new_topics: s(&["t1", "t2"]),
        data: "bound".into(),
    }))
    .await;
    expect_text(&mut client, "bound").await;
    send_text(&mut client, "hello").await;
    let (gateway, t) = biz.message().await;
    assert_eq!(gateway, 0);
    assert_eq!(
        t,
        pb::Transfer {
            uniq_id: id.clone(),
            customer_id: "cust-1".into(),
            session: "sess-1".into(),
            topics: s(&["t1", "t2"]),
            data: "hello".into(),
        }
    );
    client
        .send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    let (_, t) = biz.message().await;
    assert_eq!(&t.data[..], &[0, 1, 2, 255]);

    // ConnClose: the same bindings.
    client.close(None).await.unwrap();
    let (gateway, close) = biz.close().await;
    assert_eq!(gateway, 0);
    assert_eq!(
        close,
        pb::ConnClose {
            uniq_id: id.clone(),
            customer_id: "cust-1".into(),
            session: "sess-1".into(),
            topics: s(&["t1", "t2"]),
            reason: "client".into(),
        }
    );
    guest.close(None).await.unwrap();
    let (_, close) = biz.close().await;
    assert_eq!(
        close,
        pb::ConnClose {
            uniq_id: guest_open.uniq_id,
            reason: "client".into(),
            ..Default::default()
        }
    );
    biz.no_event().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn casts_reach_exactly_their_targets() {
    let node = Node::start().await;
    let mut biz = Business::connect(&[&node]).await;
    let (mut a, ida) = biz.client(&node, 0).await;
    let (mut b, idb) = biz.client(&node, 0).await;
    let (mut c, idc) = biz.client(&node, 0).await;

    biz.send(single(&ida, "one")).await;
    biz.send(ToGateway::Broadcast(pb::Broadcast { data: "all".into() }))
        .await;
    biz.send(ToGateway::Multicast(pb::Multicast {
        uniq_ids: vec![ida.clone(), idc.clone(), node.offline_id()],
        data: "multi".into(),
    }))
    .await;
    biz.bind(&ida, "", "c1", &[]).await;
    biz.bind(&idb, "", "c2", &[]).await;
    biz.bind(&idc, "", "c2", &[]).await;
    biz.send(to_customer("c2", "to-c2")).await;
    biz.send(ToGateway::MulticastByCustomerId(
        pb::MulticastByCustomerId {
            customer_ids: s(&["c1", "nobody"]),
            data: "to-c1".into(),
        },
    ))
    .await;
    biz.send(ToGateway::MulticastByCustomerId(
        pb::MulticastByCustomerId {
            customer_ids: s(&["c1", "c2"]),
            data: "to-both".into(),
        },
    ))
    .await;
    // SingleCastBulk 1 × N: all in order to the one.
    biz.send(ToGateway::SingleCastBulk(pb::SingleCastBulk {
        uniq_ids: vec![idb.clone()],
        data: vec!["b1".into(), "b2".into(), "b3".into()],
    }))
    .await;
    // SingleCastBulk N × N: paired by index.
    biz.send(ToGateway::SingleCastBulk(pb::SingleCastBulk {
        uniq_ids: vec![ida.clone(), idc.clone()],
        data: vec!["pa".into(), "pc".into()],
    }))
    .await;
    // Any other shape is refused by the client.
    let refused = biz
        .task
        .send(ToGateway::SingleCastBulk(pb::SingleCastBulk {
            uniq_ids: vec![ida.clone(), idb.clone()],
            data: vec!["x".into()],
        }))
        .await;
    assert!(
        matches!(refused, Err(ClientError::Invalid(_))),
        "{refused:?}"
    );
    // SingleCastBulkByCustomerId 1 × N, then N × N.
    biz.send(ToGateway::SingleCastBulkByCustomerId(
        pb::SingleCastBulkByCustomerId {
            customer_ids: s(&["c1"]),
            data: vec!["k1".into(), "k2".into()],
        },
    ))
    .await;
    biz.send(ToGateway::SingleCastBulkByCustomerId(
        pb::SingleCastBulkByCustomerId {
            customer_ids: s(&["c1", "c2"]),
            data: vec!["q1".into(), "q2".into()],
        },
    ))
    .await;
    // A shape the gateway rejects as a whole (2 customers, 3 payloads): nothing sent.
    biz.send(ToGateway::SingleCastBulkByCustomerId(
        pb::SingleCastBulkByCustomerId {
            customer_ids: s(&["c1", "c2"]),
            data: vec!["r1".into(), "r2".into(), "r3".into()],
        },
    ))
    .await;
    biz.send(ToGateway::Broadcast(pb::Broadcast { data: "end".into() }))
        .await;

    expect_texts(
        &mut a,
        &[
            "one", "all", "multi", "to-c1", "to-both", "pa", "k1", "k2", "q1", "end",
        ],
    )
    .await;
    expect_texts(
        &mut b,
        &["all", "to-c2", "to-both", "b1", "b2", "b3", "q2", "end"],
    )
    .await;
    expect_texts(
        &mut c,
        &["all", "multi", "to-c2", "to-both", "pc", "q2", "end"],
    )
    .await;
    assert_all_silent(vec![&mut a, &mut b, &mut c]).await;
    biz.no_event().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conn_info_update_and_delete() {
    let node = Node::start().await;
    let mut biz = Business::connect(&[&node]).await;
    let (mut x, id) = biz.client(&node, 0).await;
    let transfer = |session: &str, customer: &str, topics: &[&str], data: &str| pb::Transfer {
        uniq_id: id.clone(),
        customer_id: customer.into(),
        session: session.into(),
        topics: s(topics),
        data: data.to_owned().into(),
    };

    // Set all three, with a push.
    biz.send(ToGateway::ConnInfoUpdate(pb::ConnInfoUpdate {
        uniq_id: id.clone(),
        new_session: "s1".into(),
        new_customer_id: "u1".into(),
        new_topics: s(&["red", "blue"]),
        data: "set".into(),
    }))
    .await;
    expect_text(&mut x, "set").await;
    send_text(&mut x, "m1").await;
    assert_eq!(
        biz.message().await.1,
        transfer("s1", "u1", &["red", "blue"], "m1")
    );
    biz.send(publish(&["red"], "on red")).await;
    expect_text(&mut x, "on red").await;

    // Rebind the customer and replace the topic set; the empty session is left alone.
    biz.bind(&id, "", "u2", &["green"]).await;
    biz.send(to_customer("u1", "old customer")).await;
    biz.send(publish(&["red", "blue"], "old topics")).await;
    biz.send(to_customer("u2", "new customer")).await;
    biz.send(publish(&["green"], "green")).await;
    expect_texts(&mut x, &["new customer", "green"]).await;
    send_text(&mut x, "m2").await;
    assert_eq!(
        biz.message().await.1,
        transfer("s1", "u2", &["green"], "m2")
    );

    // Delete the topics only, with a push.
    biz.send(ToGateway::ConnInfoDelete(pb::ConnInfoDelete {
        uniq_id: id.clone(),
        del_topic: true,
        data: "untopic".into(),
        ..Default::default()
    }))
    .await;
    biz.send(publish(&["green"], "green again")).await;
    biz.send(to_customer("u2", "still u2")).await;
    expect_texts(&mut x, &["untopic", "still u2"]).await;
    send_text(&mut x, "m3").await;
    assert_eq!(biz.message().await.1, transfer("s1", "u2", &[], "m3"));

    // Delete the customer only, no push.
    biz.send(ToGateway::ConnInfoDelete(pb::ConnInfoDelete {
        uniq_id: id.clone(),
        del_customer_id: true,
        ..Default::default()
    }))
    .await;
    biz.send(to_customer("u2", "gone")).await;
    biz.send(single(&id, "sync")).await;
    expect_text(&mut x, "sync").await;
    send_text(&mut x, "m4").await;
    assert_eq!(biz.message().await.1, transfer("s1", "", &[], "m4"));

    // Delete the session, with a push.
    biz.send(ToGateway::ConnInfoDelete(pb::ConnInfoDelete {
        uniq_id: id.clone(),
        del_session: true,
        data: "clean".into(),
        ..Default::default()
    }))
    .await;
    expect_text(&mut x, "clean").await;
    send_text(&mut x, "m5").await;
    assert_eq!(biz.message().await.1, transfer("", "", &[], "m5"));
    assert_silent(&mut x, QUIET).await;
    assert!(biz.task.customer_id_list().await.unwrap().is_empty());
    assert!(biz.task.topic_list().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_commands() {
    let node = Node::start().await;
    let mut biz = Business::connect(&[&node]).await;
    let (mut a, ida) = biz.client(&node, 0).await;
    let (mut b, idb) = biz.client(&node, 0).await;
    let (mut c, idc) = biz.client(&node, 0).await;
    let subscribe = |id: &str, topics: &[&str], data: &str| {
        ToGateway::TopicSubscribe(pb::TopicSubscribe {
            uniq_id: id.to_owned(),
            topics: s(topics),
            data: data.to_owned().into(),
        })
    };

    biz.send(subscribe(&ida, &["news", "sport"], "sub-a")).await;
    biz.send(subscribe(&idb, &["news"], "")).await;
    biz.send(subscribe(&idc, &["sport"], "sub-c")).await;
    biz.send(publish(&["news"], "n1")).await;
    // A member of two topics gets it twice.
    biz.send(publish(&["news", "sport"], "both")).await;
    // TopicPublishBulk 1 × N, then N × N.
    biz.send(ToGateway::TopicPublishBulk(pb::TopicPublishBulk {
        topics: s(&["sport"]),
        data: vec!["s1".into(), "s2".into()],
    }))
    .await;
    biz.send(ToGateway::TopicPublishBulk(pb::TopicPublishBulk {
        topics: s(&["news", "sport"]),
        data: vec!["pn".into(), "ps".into()],
    }))
    .await;
    biz.send(ToGateway::TopicUnsubscribe(pb::TopicUnsubscribe {
        uniq_id: ida.clone(),
        topics: s(&["sport"]),
        data: "unsub-a".into(),
    }))
    .await;
    biz.send(publish(&["sport"], "s3")).await;
    assert_eq!(
        sorted(biz.task.topic_list().await.unwrap()),
        ["news", "sport"]
    );
    // TopicDelete: each affected connection gets the data once.
    biz.send(ToGateway::TopicDelete(pb::TopicDelete {
        topics: s(&["news", "nothing"]),
        data: "news gone".into(),
    }))
    .await;
    biz.send(publish(&["news"], "n2")).await;
    assert_eq!(biz.task.topic_list().await.unwrap(), ["sport"]);
    assert_eq!(
        biz.task.topic_uniq_id_list(&s(&["sport"])).await.unwrap(),
        BTreeMap::from([("sport".to_owned(), vec![idc.clone()])])
    );
    // Without data nobody hears of the delete.
    biz.send(ToGateway::TopicDelete(pb::TopicDelete {
        topics: s(&["sport"]),
        data: Default::default(),
    }))
    .await;
    biz.send(publish(&["sport"], "s4")).await;
    assert!(biz.task.topic_list().await.unwrap().is_empty());
    biz.send(ToGateway::Broadcast(pb::Broadcast { data: "end".into() }))
        .await;

    expect_texts(
        &mut a,
        &[
            "sub-a",
            "n1",
            "both",
            "both",
            "s1",
            "s2",
            "pn",
            "ps",
            "unsub-a",
            "news gone",
            "end",
        ],
    )
    .await;
    expect_texts(&mut b, &["n1", "both", "pn", "news gone", "end"]).await;
    expect_texts(&mut c, &["sub-c", "both", "s1", "s2", "ps", "s3", "end"]).await;
    assert_all_silent(vec![&mut a, &mut b, &mut c]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_offline_and_by_customer() {
    let node = Node::start().await;
    let mut biz = Business::connect(&[&node]).await;
    let (mut a, ida) = biz.client(&node, 0).await;
    let (mut b, idb) = biz.client(&node, 0).await;
    let (mut c, idc) = biz.client(&node, 0).await;
    let (mut d, idd) = biz.client(&node, 0).await;
    let (mut e, ide) = biz.client(&node, 0).await;
    biz.bind(&idb, "sb", "k", &["t"]).await;
    biz.bind(&idc, "", "k", &[]).await;

    biz.send(ToGateway::ForceOffline(pb::ForceOffline {
        uniq_ids: vec![ida.clone(), node.offline_id()],
        data: "bye a".into(),
    }))
    .await;
    expect_text(&mut a, "bye a").await;
    expect_close(&mut a, 1008).await;
    // Without data: straight to the close.
    biz.send(ToGateway::ForceOffline(pb::ForceOffline {
        uniq_ids: vec![idd.clone()],
        data: Default::default(),
    }))
    .await;
    expect_close(&mut d, 1008).await;
    biz.send(ToGateway::ForceOfflineByCustomerId(
        pb::ForceOfflineByCustomerId {
            customer_ids: s(&["k", "nobody"]),
            data: "bye k".into(),
        },
    ))
    .await;
    expect_text(&mut b, "bye k").await;
    expect_close(&mut b, 1008).await;
    expect_text(&mut c, "bye k").await;
    expect_close(&mut c, 1008).await;

    let mut closes = Vec::new();
    for _ in 0..4 {
        closes.push(biz.close().await.1);
    }
    closes.sort_by(|x, y| x.uniq_id.cmp(&y.uniq_id));
    let mut want = vec![
        pb::ConnClose {
            uniq_id: ida.clone(),
            reason: "kicked".into(),
            ..Default::default()
        },
        pb::ConnClose {
            uniq_id: idb.clone(),
            customer_id: "k".into(),
            session: "sb".into(),
            topics: s(&["t"]),
            reason: "kicked".into(),
        },
        pb::ConnClose {
            uniq_id: idc.clone(),
            customer_id: "k".into(),
            reason: "kicked".into(),
            ..Default::default()
        },
        pb::ConnClose {
            uniq_id: idd.clone(),
            reason: "kicked".into(),
            ..Default::default()
        },
    ];
    want.sort_by(|x, y| x.uniq_id.cmp(&y.uniq_id));
    assert_eq!(closes, want);
    assert_eq!(biz.task.uniq_id_list().await.unwrap(), [ide]);
    assert!(biz.task.customer_id_list().await.unwrap().is_empty());
    assert_silent(&mut e, QUIET).await;
    biz.no_event().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_offline_guest_after_its_delay() {
    let node = Node::start().await;
    let mut biz = Business::connect(&[&node]).await;
    let (mut guest, idg) = biz.client(&node, 0).await;
    let (mut bound, idb) = biz.client(&node, 0).await;
    let (mut late, idl) = biz.client(&node, 0).await;
    let (mut other, ido) = biz.client(&node, 0).await;
    biz.bind(&idb, "has-session", "", &[]).await;

    let sent = Instant::now();
    biz.send(ToGateway::ForceOfflineGuest(pb::ForceOfflineGuest {
        uniq_ids: vec![idg.clone(), idb.clone(), idl.clone()],
        delay: 1,
        data: "guest bye".into(),
    }))
    .await;
    // Bound during the delay: no longer a guest when it runs out.
    biz.bind(&idl, "", "late-customer", &[]).await;
    expect_text(&mut guest, "guest bye").await;
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}, before the 1 s delay"
    );
    expect_close(&mut guest, 1008).await;
    assert_eq!(
        biz.close().await.1,
        pb::ConnClose {
            uniq_id: idg.clone(),
            reason: "kicked".into(),
            ..Default::default()
        }
    );
    assert_all_silent(vec![&mut bound, &mut late, &mut other]).await;
    let ids = vec![idg, idb.clone(), idl.clone(), ido.clone()];
    assert_eq!(biz.task.check_online(&ids).await.unwrap(), [idb, idl, ido]);
    biz.no_event().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_answer_exactly() {
    let node = Node::start().await;
    let mut biz = Business::connect(&[&node]).await;
    let (_a, ida) = biz.client(&node, 0).await;
    let (_b, idb) = biz.client(&node, 0).await;
    let (_c, idc) = biz.client(&node, 0).await;
    let (mut d, idd) = biz.client(&node, 0).await;
    let (mut e, ide) = biz.client(&node, 0).await;
    e.close(None).await.unwrap();
    assert_eq!(biz.close().await.1.uniq_id, ide);
    send_text(&mut d, "hi").await;
    assert_eq!(biz.message().await.1.uniq_id, idd);
    biz.bind(&ida, "sa", "c1", &["news", "sport"]).await;
    biz.bind(&idb, "sb", "c1", &["news"]).await;
    biz.bind(&idc, "", "c2", &["sport"]).await;
    let task = &biz.task;

    let asked = vec![
        ida.clone(),
        ide.clone(),
        idd.clone(),
        node.offline_id(),
        "not-a-uniq-id".to_owned(),
    ];
    assert_eq!(
        task.check_online(&asked).await.unwrap(),
        [ida.clone(), idd.clone()]
    );
    let all = sorted(vec![ida.clone(), idb.clone(), idc.clone(), idd.clone()]);
    assert_eq!(sorted(task.uniq_id_list().await.unwrap()), all);
    assert_eq!(task.uniq_id_count().await.unwrap(), 4);
    assert_eq!(sorted(task.customer_id_list().await.unwrap()), ["c1", "c2"]);
    assert_eq!(task.customer_id_count().await.unwrap(), 2);
    assert_eq!(sorted(task.topic_list().await.unwrap()), ["news", "sport"]);
    assert_eq!(task.topic_count().await.unwrap(), 2);

    let mut members = task
        .topic_uniq_id_list(&s(&["news", "sport", "none"]))
        .await
        .unwrap();
    members.values_mut().for_each(|v| v.sort_unstable());
    assert_eq!(
        members,
        BTreeMap::from([
            ("news".to_owned(), sorted(vec![ida.clone(), idb.clone()])),
            ("sport".to_owned(), sorted(vec![ida.clone(), idc.clone()])),
        ])
    );
    let counts = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
    };
    assert_eq!(
        task.topic_uniq_id_count(&s(&["news"]), false)
            .await
            .unwrap(),
        counts(&[("news", 2)])
    );
    assert_eq!(
        task.topic_uniq_id_count(&[], true).await.unwrap(),
        counts(&[("news", 2), ("sport", 2)])
    );
    let mut customers = task
        .topic_customer_id_list(&s(&["news", "sport", "none"]))
        .await
        .unwrap();
    customers.values_mut().for_each(|v| v.sort_unstable());
    assert_eq!(
        customers,
        BTreeMap::from([
            ("news".to_owned(), s(&["c1"])),
            ("sport".to_owned(), s(&["c1", "c2"])),
        ])
    );
    // topic → customer → all that customer's uniqIds (b is c1's although not in sport).
    let mut nested = task
        .topic_customer_id_to_uniq_ids_list(&s(&["sport", "none"]))
        .await
        .unwrap();
    nested
        .values_mut()
        .flat_map(|m| m.values_mut())
        .for_each(|v| v.sort_unstable());
    assert_eq!(
        nested,
        BTreeMap::from([(
            "sport".to_owned(),
            BTreeMap::from([
                ("c1".to_owned(), sorted(vec![ida.clone(), idb.clone()])),
                ("c2".to_owned(), vec![idc.clone()]),
            ])
        )])
    );
    assert_eq!(
        task.topic_customer_id_count(&s(&["news", "sport"]), false)
            .await
            .unwrap(),
        counts(&[("news", 1), ("sport", 2)])
    );
    assert_eq!(
        task.topic_customer_id_count(&[], true).await.unwrap(),
        counts(&[("news", 1), ("sport", 2)])
    );

    // ConnInfo: only the online ones, only the fields asked for.
    let info = task
        .conn_info(&pb::ConnInfoReq {
            uniq_ids: vec![ida.clone(), idd.clone(), ide.clone()],
            req_session: true,
            req_customer_id: true,
            req_topic: true,
        })
        .await
        .unwrap();
    assert_eq!(
        info,
        BTreeMap::from([
            (
                ida.clone(),
                pb::ConnInfoRespItem {
                    session: "sa".into(),
                    customer_id: "c1".into(),
                    topics: s(&["news", "sport"]),
                }
            ),
            (idd.clone(), pb::ConnInfoRespItem::default()),
        ])
    );
    let info = task
        .conn_info(&pb::ConnInfoReq {
            uniq_ids: vec![ida.clone()],
            req_session: false,
            req_customer_id: true,
            req_topic: false,
        })
        .await
        .unwrap();
    assert_eq!(
        info,
        BTreeMap::from([(
            ida.clone(),
            pb::ConnInfoRespItem {
                customer_id: "c1".into(),
                ..Default::default()
            }
        )])
    );
    let mut by_customer = task
        .conn_info_by_customer_id(&pb::ConnInfoByCustomerIdReq {
            customer_ids: s(&["c1", "c2", "nobody"]),
            req_session: true,
            req_uniq_id: true,
            req_topic: true,
        })
        .await
        .unwrap();
    by_customer
        .values_mut()
        .for_each(|v| v.sort_by(|x, y| x.uniq_id.cmp(&y.uniq_id)));
    let item = |session: &str, uniq_id: &str, topics: &[&str]| pb::ConnInfoByCustomerIdRespItem {
        session: session.into(),
        uniq_id: uniq_id.into(),
        topics: s(topics),
    };
    let mut c1 = vec![
        item("sa", &ida, &["news", "sport"]),
        item("sb", &idb, &["news"]),
    ];
    c1.sort_by(|x, y| x.uniq_id.cmp(&y.uniq_id));
    assert_eq!(
        by_customer,
        BTreeMap::from([
            ("c1".to_owned(), c1),
            ("c2".to_owned(), vec![item("", &idc, &["sport"])]),
        ])
    );
    let by_customer = task
        .conn_info_by_customer_id(&pb::ConnInfoByCustomerIdReq {
            customer_ids: s(&["c2"]),
            req_session: false,
            req_uniq_id: true,
            req_topic: false,
        })
        .await
        .unwrap();
    assert_eq!(
        by_customer,
        BTreeMap::from([("c2".to_owned(), vec![item("", &idc, &[])])])
    );

    // Metrics: 5 opens, 1 close, 7 events forwarded (5 opens, 1 close, 1 message).
    let metrics = task.metrics().await.unwrap();
    assert_eq!(metrics.len(), 1);
    assert_eq!(metrics[0].0, node.addr());
    let items = &metrics[0].1.items;
    assert_eq!(
        items.keys().copied().collect::<Vec<_>>(),
        (1..=22).collect::<Vec<i32>>()
    );
    for (key, item) in items {
        assert_eq!(item.item, *key);
    }
    assert_eq!(items[&1].count, 5, "opens");
    assert_eq!(items[&2].count, 1, "closes");
    assert_eq!(items[&3].count, 0, "heartbeats");
    assert_eq!(items[&4].count, 7, "events forwarded");
    assert!(items[&5].count > 0, "forwarded bytes");
    for n in 8..=22 {
        assert_eq!(items[&n].count, 0, "item {n}");
    }

    // Limit: set where > 0, then read.
    let limit = |on_open, on_message| pb::LimitReq {
        on_open,
        on_message,
    };
    let resp = |on_open, on_message| {
        vec![(
            node.addr().clone(),
            pb::LimitResp {
                on_open,
                on_message,
            },
        )]
    };
    assert_eq!(task.limit(limit(0, 0)).await.unwrap(), resp(0, 0));
    assert_eq!(task.limit(limit(50, 0)).await.unwrap(), resp(50, 0));
    assert_eq!(task.limit(limit(0, 7)).await.unwrap(), resp(50, 7));
    assert_eq!(task.limit(limit(0, 0)).await.unwrap(), resp(50, 7));
    let limits = node.gateway.limiter().limits().unwrap();
    assert_eq!((limits.opens_per_sec, limits.messages_per_sec), (50, 7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_route_and_merge() {
    let na = Node::start().await;
    let nb = Node::start().await;
    assert_ne!(na.addr().node_prefix(), nb.addr().node_prefix());
    let mut biz = Business::connect(&[&na, &nb]).await;
    let (mut a1, ida1) = biz.client(&na, 0).await;
    let (mut b1, idb1) = biz.client(&nb, 1).await;
    let (mut b2, idb2) = biz.client(&nb, 1).await;
    assert_eq!(biz.task.owner_of(&ida1), Some(0));
    assert_eq!(biz.task.owner_of(&idb1), Some(1));

    // A uniqId of node B goes to B.
    biz.send(single(&idb1, "to b1")).await;
    expect_text(&mut b1, "to b1").await;
    // Broadcast reaches both nodes.
    biz.send(ToGateway::Broadcast(pb::Broadcast { data: "all".into() }))
        .await;
    // Multicast is split per owner.
    biz.send(ToGateway::Multicast(pb::Multicast {
        uniq_ids: vec![ida1.clone(), idb2.clone()],
        data: "multi".into(),
    }))
    .await;
    // SingleCastBulk N × N is split per owner with its pairs kept.
    biz.send(ToGateway::SingleCastBulk(pb::SingleCastBulk {
        uniq_ids: vec![idb2.clone(), ida1.clone(), idb1.clone()],
        data: vec!["p-b2".into(), "p-a1".into(), "p-b1".into()],
    }))
    .await;
    // A customer on both nodes.
    biz.bind(&ida1, "", "cx", &["t"]).await;
    biz.bind(&idb1, "", "cx", &["t"]).await;
    biz.send(to_customer("cx", "to cx")).await;
    biz.send(publish(&["t"], "on t")).await;
    expect_texts(&mut a1, &["all", "multi", "p-a1", "to cx", "on t"]).await;
    expect_texts(&mut b1, &["all", "p-b1", "to cx", "on t"]).await;
    expect_texts(&mut b2, &["all", "multi", "p-b2"]).await;
    assert_all_silent(vec![&mut a1, &mut b1, &mut b2]).await;

    // Events say which node they come from.
    send_text(&mut b2, "from b2").await;
    let (gateway, t) = biz.message().await;
    assert_eq!((gateway, t.uniq_id.as_str()), (1, idb2.as_str()));
    send_text(&mut a1, "from a1").await;
    let (gateway, t) = biz.message().await;
    assert_eq!((gateway, t.uniq_id.as_str()), (0, ida1.as_str()));

    // Queries merge both nodes.
    let task = &biz.task;
    assert_eq!(task.uniq_id_count().await.unwrap(), 3);
    assert_eq!(task.node(0).unwrap().uniq_id_count().await.unwrap(), 1);
    assert_eq!(task.node(1).unwrap().uniq_id_count().await.unwrap(), 2);
    assert_eq!(
        sorted(task.uniq_id_list().await.unwrap()),
        sorted(vec![ida1.clone(), idb1.clone(), idb2.clone()])
    );
    let asked = vec![
        nb.offline_id(),
        idb2.clone(),
        na.offline_id(),
        ida1.clone(),
        idb1.clone(),
    ];
    assert_eq!(
        task.check_online(&asked).await.unwrap(),
        [idb2.clone(), ida1.clone(), idb1.clone()]
    );
    assert_eq!(task.customer_id_list().await.unwrap(), ["cx"]);
    assert_eq!(task.customer_id_count().await.unwrap(), 1);
    assert_eq!(
        task.topic_customer_id_count(&s(&["t"]), false)
            .await
            .unwrap(),
        BTreeMap::from([("t".to_owned(), 1)])
    );
    let mut members = task.topic_uniq_id_list(&s(&["t"])).await.unwrap();
    members.values_mut().for_each(|v| v.sort_unstable());
    assert_eq!(
        members,
        BTreeMap::from([("t".to_owned(), sorted(vec![ida1.clone(), idb1.clone()]))])
    );
    let metrics = task.metrics().await.unwrap();
    let opens: Vec<_> = metrics
        .iter()
        .map(|(g, m)| (g.clone(), m.items[&1].count))
        .collect();
    assert_eq!(opens, [(na.addr().clone(), 1), (nb.addr().clone(), 2)]);

    // ForceOffline of uniqIds on both nodes.
    biz.send(ToGateway::ForceOffline(pb::ForceOffline {
        uniq_ids: vec![ida1.clone(), idb2.clone()],
        data: "bye".into(),
    }))
    .await;
    expect_text(&mut a1, "bye").await;
    expect_close(&mut a1, 1008).await;
    expect_text(&mut b2, "bye").await;
    expect_close(&mut b2, 1008).await;
    let mut closed = [biz.close().await, biz.close().await];
    closed.sort_by_key(|(g, _)| *g);
    assert_eq!(
        closed
            .iter()
            .map(|(g, c)| (*g, c.uniq_id.clone()))
            .collect::<Vec<_>>(),
        [(0, ida1.clone()), (1, idb2.clone())]
    );
    assert_eq!(biz.task.uniq_id_list().await.unwrap(), [idb1]);
    assert_eq!(biz.task.unrouted(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_from_one_task_client_apply_in_order() {
    let node = Node::start().await;
    let mut biz = Business::connect(&[&node]).await;
    let (mut a, ida) = biz.client(&node, 0).await;
    for n in 0..100 {
        biz.send(single(&ida, &n.to_string())).await;
    }
    for n in 0..100 {
        expect_text(&mut a, &n.to_string()).await;
    }
    // Each command relies on the one before it having been applied.
    biz.bind(&ida, "", "o", &[]).await;
    biz.send(to_customer("o", "by customer")).await;
    biz.send(ToGateway::TopicSubscribe(pb::TopicSubscribe {
        uniq_id: ida.clone(),
        topics: s(&["t"]),
        data: Default::default(),
    }))
    .await;
    biz.send(publish(&["t"], "by topic")).await;
    biz.send(ToGateway::ConnInfoDelete(pb::ConnInfoDelete {
        uniq_id: ida.clone(),
        del_customer_id: true,
        del_topic: true,
        ..Default::default()
    }))
    .await;
    biz.send(publish(&["t"], "dropped")).await;
    biz.send(to_customer("o", "dropped")).await;
    biz.send(single(&ida, "last")).await;
    expect_texts(&mut a, &["by customer", "by topic", "last"]).await;
    assert_silent(&mut a, QUIET).await;
}
