//! The worker and task ports against real sockets: registration, events with their
//! fields, commands and queries, framing limits, dispatch and order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::business::Business;
use common::node::Node;
use common::*;
use futures_util::SinkExt;
use netsvr_core::UniqId;
use netsvr_core::worker::{Dispatch, WorkerConfig, WorkerPorts};
use netsvr_protocol::cmd::events::{ALL, ON_CLOSE, ON_MESSAGE, ON_OPEN};
use netsvr_protocol::{ToBusiness, ToGateway, pb};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn open_event(worker: &mut Business) -> pb::ConnOpen {
    match worker.next().await {
        Some(ToBusiness::ConnOpen(open)) => open,
        other => panic!("expected ConnOpen, got {other:?}"),
    }
}

async fn transfer(worker: &mut Business) -> pb::Transfer {
    match worker.next().await {
        Some(ToBusiness::Transfer(t)) => t,
        other => panic!("expected Transfer, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_answers_each_code() {
    let node = Node::start_with(|_, _| {}).await;
    let mut b = Business::connect(node.worker).await;
    let conn_id = b.register(ALL).await;
    assert!(!conn_id.is_empty());
    for (events, code) in [(ALL, 3), (0, 2), (8, 2), (-1, 2)] {
        let mut other = Business::connect(node.worker).await;
        if code == 3 {
            other = b;
        }
        match other
            .ask(ToGateway::Register(pb::RegisterReq { events }))
            .await
        {
            ToBusiness::Register(resp) => assert_eq!(resp.code, code, "events {events}: {resp:?}"),
            r => panic!("{r:?}"),
        }
        b = Business::connect(node.worker).await;
    }
    // An undecodable RegisterReq body: UnmarshalError (1).
    let mut bad = Business::connect(node.worker).await;
    let mut frame = vec![0, 0, 0, 6];
    frame.extend_from_slice(&netsvr_protocol::cmd::REGISTER.to_be_bytes());
    frame.extend_from_slice(&[0x08, 0x80]); // field 1 varint, cut off
    bad.send_raw(&frame).await;
    match bad.next().await {
        Some(ToBusiness::Register(resp)) => assert_eq!(resp.code, 1, "{resp:?}"),
        r => panic!("{r:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_every_field() {
    let node = Node::start_with(|_, _| {}).await;
    let mut worker = Business::connect(node.worker).await;
    worker.register(ALL).await;
    let mut request = node.url("?token=abc&x=1").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("X-Forwarded-For", "10.0.0.1, 10.0.0.2".parse().unwrap());
    request
        .headers_mut()
        .insert("X-Real-IP", "10.0.0.9".parse().unwrap());
    let (mut client, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let open = open_event(&mut worker).await;
    assert_eq!(open.raw_query, "token=abc&x=1");
    assert_eq!(open.x_forwarded_for, "10.0.0.1, 10.0.0.2");
    assert_eq!(open.x_real_ip, "10.0.0.9");
    assert!(
        open.remote_addr.starts_with("127.0.0.1:"),
        "{}",
        open.remote_addr
    );
    assert_eq!(open.uniq_id.len(), 28);
    let id: UniqId = open.uniq_id.parse().unwrap();
    // The uniqId names the task port (PROTOCOL.md §6).
    assert_eq!(id.node_addr().to_string(), node.task.to_string());

    // Bind customer, session and topics through the task port, then a message.
    let mut task = Business::connect(node.task).await;
    task.send(ToGateway::ConnInfoUpdate(pb::ConnInfoUpdate {
        uniq_id: open.uniq_id.clone(),
        new_session: "sess".into(),
        new_customer_id: "cust".into(),
        new_topics: vec!["t1".into(), "t2".into()],
        data: "updated".into(),
    }))
    .await;
    assert_eq!(recv_text(&mut client).await, "updated");
    client.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let t = transfer(&mut worker).await;
    assert_eq!(t.uniq_id, open.uniq_id);
    assert_eq!(t.customer_id, "cust");
    assert_eq!(t.session, "sess");
    assert_eq!(t.topics, ["t1", "t2"]);
    assert_eq!(&t.data[..], &[1, 2, 3]);
    client.close(None).await.unwrap();
    match worker.next().await {
        Some(ToBusiness::ConnClose(c)) => {
            assert_eq!(c.uniq_id, open.uniq_id);
            assert_eq!(c.customer_id, "cust");
            assert_eq!(c.session, "sess");
            assert_eq!(c.topics, ["t1", "t2"]);
        }
        other => panic!("expected ConnClose, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_events_only_and_heartbeat_never_answered() {
    let node = Node::start_with(|_, _| {}).await;
    let mut worker = Business::connect(node.worker).await;
    worker.register(ON_MESSAGE).await;
    worker.send_raw(b"\0\0\0\x0e~6YOt5rW35piO~").await;
    let mut client = node.client().await;
    send_text(&mut client, "only this").await;
    // No ConnOpen and no heartbeat answer: the first frame is the Transfer.
    assert_eq!(&transfer(&mut worker).await.data[..], b"only this");
    client.close(None).await.unwrap();
    let _ = ON_OPEN | ON_CLOSE;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats = node.gateway.stats();
    assert_eq!(stats.closed, 1);
    // Nothing else was sent to the worker (a ConnClose would be the next frame).
    let next = tokio::time::timeout(Duration::from_millis(200), worker.next()).await;
    assert!(next.is_err(), "unexpected frame {next:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_on_the_task_port() {
    let node = Node::start_with(|_, _| {}).await;
    let mut task = Business::connect(node.task).await;
    let mut worker = Business::connect(node.worker).await;
    worker.register(ON_OPEN).await;
    let (mut a, mut b) = (node.client().await, node.client().await);
    let ida = open_event(&mut worker).await.uniq_id;
    let idb = open_event(&mut worker).await.uniq_id;
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();

    task.send(ToGateway::SingleCast(pb::SingleCast {
        uniq_id: ida.clone(),
        data: "single".into(),
    }))
    .await;
    assert_eq!(recv_text(&mut a).await, "single");
    task.send(ToGateway::Broadcast(pb::Broadcast { data: "all".into() }))
        .await;
    assert_eq!(recv_text(&mut a).await, "all");
    assert_eq!(recv_text(&mut b).await, "all");
    task.send(ToGateway::Multicast(pb::Multicast {
        uniq_ids: vec![idb.clone(), "bogus".into()],
        data: "multi".into(),
    }))
    .await;
    assert_eq!(recv_text(&mut b).await, "multi");
    task.send(ToGateway::ConnInfoUpdate(pb::ConnInfoUpdate {
        uniq_id: ida.clone(),
        new_customer_id: "c1".into(),
        new_topics: s(&["news"]),
        ..Default::default()
    }))
    .await;
    task.send(ToGateway::ConnInfoUpdate(pb::ConnInfoUpdate {
        uniq_id: idb.clone(),
        new_customer_id: "c2".into(),
        new_session: "sb".into(),
        ..Default::default()
    }))
    .await;
    task.send(ToGateway::SingleCastByCustomerId(
        pb::SingleCastByCustomerId {
            customer_id: "c1".into(),
            data: "to c1".into(),
        },
    ))
    .await;
    assert_eq!(recv_text(&mut a).await, "to c1");
    task.send(ToGateway::MulticastByCustomerId(
        pb::MulticastByCustomerId {
            customer_ids: s(&["c2"]),
            data: "to c2".into(),
        },
    ))
    .await;
    assert_eq!(recv_text(&mut b).await, "to c2");
    task.send(ToGateway::SingleCastBulk(pb::SingleCastBulk {
        uniq_ids: vec![ida.clone()],
        data: vec!["b1".into(), "b2".into()],
    }))
    .await;
    assert_eq!(recv_text(&mut a).await, "b1");
    assert_eq!(recv_text(&mut a).await, "b2");
    task.send(ToGateway::SingleCastBulkByCustomerId(
        pb::SingleCastBulkByCustomerId {
            customer_ids: s(&["c1", "c2"]),
            data: vec!["p1".into(), "p2".into()],
        },
    ))
    .await;
    assert_eq!(recv_text(&mut a).await, "p1");
    assert_eq!(recv_text(&mut b).await, "p2");
    task.send(ToGateway::TopicSubscribe(pb::TopicSubscribe {
        uniq_id: idb.clone(),
        topics: s(&["news", "sport"]),
        data: "subbed".into(),
    }))
    .await;
    assert_eq!(recv_text(&mut b).await, "subbed");
    task.send(ToGateway::TopicPublish(pb::TopicPublish {
        topics: s(&["news"]),
        data: "headline".into(),
    }))
    .await;
    assert_eq!(recv_text(&mut a).await, "headline");
    assert_eq!(recv_text(&mut b).await, "headline");
    task.send(ToGateway::TopicPublishBulk(pb::TopicPublishBulk {
        topics: s(&["sport"]),
        data: vec!["g1".into(), "g2".into()],
    }))
    .await;
    assert_eq!(recv_text(&mut b).await, "g1");
    assert_eq!(recv_text(&mut b).await, "g2");

    // Queries answer in order, with the same cmd id.
    match task
        .ask(ToGateway::CheckOnline(pb::CheckOnlineReq {
            uniq_ids: vec![ida.clone(), "7f0000011f90000000000000dead".into()],
        }))
        .await
    {
        ToBusiness::CheckOnline(r) => assert_eq!(r.uniq_ids, [ida.as_str()]),
        r => panic!("{r:?}"),
    }
    match task.ask(ToGateway::UniqIdCount).await {
        ToBusiness::UniqIdCount(r) => assert_eq!(r.count, 2),
        r => panic!("{r:?}"),
    }
    match task.ask(ToGateway::UniqIdList).await {
        ToBusiness::UniqIdList(mut r) => {
            r.uniq_ids.sort();
            let mut want = vec![ida.clone(), idb.clone()];
            want.sort();
            assert_eq!(r.uniq_ids, want);
        }
        r => panic!("{r:?}"),
    }
    match task.ask(ToGateway::CustomerIdList).await {
        ToBusiness::CustomerIdList(mut r) => {
            r.customer_ids.sort();
            assert_eq!(r.customer_ids, ["c1", "c2"]);
        }
        r => panic!("{r:?}"),
    }
    match task.ask(ToGateway::CustomerIdCount).await {
        ToBusiness::CustomerIdCount(r) => assert_eq!(r.count, 2),
        r => panic!("{r:?}"),
    }
    match task.ask(ToGateway::TopicCount).await {
        ToBusiness::TopicCount(r) => assert_eq!(r.count, 2),
        r => panic!("{r:?}"),
    }
    match task.ask(ToGateway::TopicList).await {
        ToBusiness::TopicList(mut r) => {
            r.topics.sort();
            assert_eq!(r.topics, ["news", "sport"]);
        }
        r => panic!("{r:?}"),
    }
    match task
        .ask(ToGateway::TopicUniqIdList(pb::TopicUniqIdListReq {
            topics: s(&["sport", "none"]),
        }))
        .await
    {
        ToBusiness::TopicUniqIdList(r) => {
            assert_eq!(r.items.len(), 1);
            assert_eq!(r.items["sport"].uniq_ids, [idb.as_str()]);
        }
        r => panic!("{r:?}"),
    }
    match task
        .ask(ToGateway::TopicUniqIdCount(pb::TopicUniqIdCountReq {
            topics: vec![],
            count_all: true,
        }))
        .await
    {
        ToBusiness::TopicUniqIdCount(r) => {
            assert_eq!(r.items["news"], 2);
            assert_eq!(r.items["sport"], 1);
        }
        r => panic!("{r:?}"),
    }
    match task
        .ask(ToGateway::TopicCustomerIdList(pb::TopicCustomerIdListReq {
            topics: s(&["news"]),
        }))
        .await
    {
        ToBusiness::TopicCustomerIdList(r) => {
            assert_eq!(r.items["news"].customer_ids, ["c1", "c2"])
        }
        r => panic!("{r:?}"),
    }
    match task
        .ask(ToGateway::TopicCustomerIdCount(
            pb::TopicCustomerIdCountReq {
                topics: s(&["news", "sport"]),
                count_all: false,
            },
        ))
        .await
    {
        ToBusiness::TopicCustomerIdCount(r) => {
            assert_eq!(r.items["news"], 2);
            assert_eq!(r.items["sport"], 1);
        }
        r => panic!("{r:?}"),
    }
    match task
        .ask(ToGateway::TopicCustomerIdToUniqIdsList(
            pb::TopicCustomerIdToUniqIdsListReq {
                topics: s(&["sport"]),
            },
        ))
        .await
    {
        ToBusiness::TopicCustomerIdToUniqIdsList(r) => {
            assert_eq!(r.items["sport"].items["c2"].uniq_ids, [idb.as_str()]);
        }
        r => panic!("{r:?}"),
    }
    match task
        .ask(ToGateway::ConnInfo(pb::ConnInfoReq {
            uniq_ids: vec![idb.clone()],
            req_session: true,
            req_customer_id: true,
            req_topic: false,
        }))
        .await
    {
        ToBusiness::ConnInfo(r) => {
            let item = &r.items[&idb];
            assert_eq!(
                (item.session.as_str(), item.customer_id.as_str()),
                ("sb", "c2")
            );
            assert!(item.topics.is_empty(), "topics not asked for");
        }
        r => panic!("{r:?}"),
    }
    match task
        .ask(ToGateway::ConnInfoByCustomerId(
            pb::ConnInfoByCustomerIdReq {
                customer_ids: s(&["c1"]),
                req_session: false,
                req_uniq_id: true,
                req_topic: true,
            },
        ))
        .await
    {
        ToBusiness::ConnInfoByCustomerId(r) => {
            let items = &r.items["c1"].items;
            assert_eq!(items.len(), 1);
            assert_eq!(items[0].uniq_id, ida);
            assert_eq!(items[0].topics, ["news"]);
        }
        r => panic!("{r:?}"),
    }

    // Topic delete: b held both topics, gets the notice once.
    task.send(ToGateway::TopicDelete(pb::TopicDelete {
        topics: s(&["news", "sport"]),
        data: "gone".into(),
    }))
    .await;
    assert_eq!(recv_text(&mut a).await, "gone");
    assert_eq!(recv_text(&mut b).await, "gone");
    task.send(ToGateway::TopicUnsubscribe(pb::TopicUnsubscribe {
        uniq_id: idb.clone(),
        topics: s(&["x"]),
        data: "unsub".into(),
    }))
    .await;
    assert_eq!(recv_text(&mut b).await, "unsub");
    task.send(ToGateway::ConnInfoDelete(pb::ConnInfoDelete {
        uniq_id: idb.clone(),
        del_session: true,
        del_customer_id: true,
        del_topic: true,
        data: "cleared".into(),
    }))
    .await;
    assert_eq!(recv_text(&mut b).await, "cleared");
    match task.ask(ToGateway::CustomerIdList).await {
        ToBusiness::CustomerIdList(r) => assert_eq!(r.customer_ids, ["c1"]),
        r => panic!("{r:?}"),
    }
    // Force offline: farewell, then 1008.
    task.send(ToGateway::ForceOffline(pb::ForceOffline {
        uniq_ids: vec![idb.clone()],
        data: "bye b".into(),
    }))
    .await;
    assert_eq!(recv_text(&mut b).await, "bye b");
    assert_eq!(recv_close(&mut b).await, 1008);
    task.send(ToGateway::ForceOfflineByCustomerId(
        pb::ForceOfflineByCustomerId {
            customer_ids: s(&["c1"]),
            data: "bye a".into(),
        },
    ))
    .await;
    assert_eq!(recv_text(&mut a).await, "bye a");
    assert_eq!(recv_close(&mut a).await, 1008);
    // Guests after a delay: a fresh unbound client is closed, with the data first.
    let mut guest = node.client().await;
    let idg = open_event(&mut worker).await.uniq_id;
    task.send(ToGateway::ForceOfflineGuest(pb::ForceOfflineGuest {
        uniq_ids: vec![idg],
        delay: 0,
        data: "guest".into(),
    }))
    .await;
    assert_eq!(recv_text(&mut guest).await, "guest");
    assert_eq!(recv_close(&mut guest).await, 1008);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_limit_queries() {
    let node = Node::start_with(|_, _| {}).await;
    let mut worker = Business::connect(node.worker).await;
    worker.register(ALL).await;
    let mut client = node.client().await;
    open_event(&mut worker).await;
    send_text(&mut client, "x").await;
    transfer(&mut worker).await;
    let mut task = Business::connect(node.task).await;
    match task.ask(ToGateway::Metrics).await {
        ToBusiness::Metrics(r) => {
            assert_eq!(r.items.len(), 22);
            assert_eq!(r.items[&1].count, 1, "opens");
            assert_eq!(r.items[&4].count, 2, "events forwarded (open + message)");
            assert!(r.items[&5].count > 0, "their bytes");
            assert_eq!(r.items[&1].item, 1);
            assert!(r.items[&1].mean_rate > 0.0);
        }
        r => panic!("{r:?}"),
    }
    match task
        .ask(ToGateway::Limit(pb::LimitReq {
            on_open: 50,
            on_message: 0,
        }))
        .await
    {
        ToBusiness::Limit(r) => assert_eq!((r.on_open, r.on_message), (50, 0)),
        r => panic!("{r:?}"),
    }
    match task
        .ask(ToGateway::Limit(pb::LimitReq {
            on_open: 0,
            on_message: 7,
        }))
        .await
    {
        ToBusiness::Limit(r) => assert_eq!((r.on_open, r.on_message), (50, 7)),
        r => panic!("{r:?}"),
    }
    assert_eq!(node.gateway.limiter().limits().unwrap().messages_per_sec, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_the_business_connection() {
    let node = Node::start_with(|w, _| w.max_frame_size = 1024).await;
    // Over the frame limit: closed as soon as the length is read.
    let mut big = Business::connect(node.task).await;
    big.send_raw(&[0, 0, 0x10, 0]).await;
    big.expect_closed(Duration::from_secs(2)).await;
    // Unknown command id.
    let mut unknown = Business::connect(node.task).await;
    unknown.send_raw(&[0, 0, 0, 4, 0, 0, 0, 7]).await;
    unknown.expect_closed(Duration::from_secs(2)).await;
    // Register belongs on the worker port.
    let mut misplaced = Business::connect(node.task).await;
    misplaced
        .send(ToGateway::Register(pb::RegisterReq { events: ALL }))
        .await;
    misplaced.expect_closed(Duration::from_secs(2)).await;
    // A frame shorter than a command id that is not the heartbeat.
    let mut short = Business::connect(node.worker).await;
    short.send_raw(&[0, 0, 0, 2, 1, 2]).await;
    short.expect_closed(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_business_connection_is_closed_after_the_read_timeout() {
    let node = Node::start_with(|w, _| w.read_timeout = Duration::from_secs(1)).await;
    let mut kept = Business::connect(node.task).await;
    let mut silent = Business::connect(node.task).await;
    for _ in 0..4 {
        kept.send_raw(b"\0\0\0\x0e~6YOt5rW35piO~").await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    silent.expect_closed(Duration::from_millis(100)).await;
    match kept.ask(ToGateway::UniqIdCount).await {
        ToBusiness::UniqIdCount(r) => assert_eq!(r.count, 0),
        r => panic!("{r:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_clients_events_stay_on_one_worker_in_order() {
    let node = Node::start_with(|_, _| {}).await;
    let mut w1 = Business::connect(node.worker).await;
    let mut w2 = Business::connect(node.worker).await;
    w1.register(ON_MESSAGE).await;
    w2.register(ON_MESSAGE).await;
    // 24 clients: the chance that a fair hash puts them all on one worker is 2^-23.
    let mut clients = Vec::new();
    for _ in 0..24 {
        clients.push(node.client().await);
    }
    for (i, client) in clients.iter_mut().enumerate() {
        for n in 0..25 {
            send_text(client, &format!("{i}:{n}")).await;
        }
    }
    let mut seen: std::collections::HashMap<String, (usize, Vec<u32>)> = Default::default();
    let (mut got1, mut got2) = (0, 0);
    while got1 + got2 < 24 * 25 {
        let (which, t) = tokio::select! {
            Some(ToBusiness::Transfer(t)) = w1.next() => { got1 += 1; (1, t) }
            Some(ToBusiness::Transfer(t)) = w2.next() => { got2 += 1; (2, t) }
        };
        let text = String::from_utf8(t.data.to_vec()).unwrap();
        let n: u32 = text.split(':').nth(1).unwrap().parse().unwrap();
        let entry = seen.entry(t.uniq_id).or_insert((which, Vec::new()));
        assert_eq!(entry.0, which, "a client's events moved between workers");
        entry.1.push(n);
    }
    assert_eq!(seen.len(), 24);
    for (_, (_, ns)) in seen {
        assert_eq!(ns, (0..25).collect::<Vec<_>>());
    }
    assert!(
        got1 > 0 && got2 > 0,
        "hash spread all 24 clients onto one worker: {got1}/{got2}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_alternates_and_unregistered_events_are_counted() {
    let node = Node::start_with(|w, _| w.dispatch = Dispatch::RoundRobin).await;
    let mut client = node.client().await;
    // No worker yet: the Open event has nowhere to go and is counted.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(node.gateway.stats().drops_sink, 1);
    let mut w1 = Business::connect(node.worker).await;
    let mut w2 = Business::connect(node.worker).await;
    w1.register(ON_MESSAGE).await;
    w2.register(ON_MESSAGE).await;
    for n in 0..4 {
        send_text(&mut client, &n.to_string()).await;
    }
    let a: Vec<_> = [transfer(&mut w1).await, transfer(&mut w1).await]
        .map(|t| t.data)
        .into();
    let b: Vec<_> = [transfer(&mut w2).await, transfer(&mut w2).await]
        .map(|t| t.data)
        .into();
    assert_eq!(a.len() + b.len(), 4);
    // Unregister: w1 gets nothing more.
    match w1
        .ask(ToGateway::Unregister(pb::UnRegisterReq {
            conn_id: String::new(),
        }))
        .await
    {
        ToBusiness::Unregister(_) => {}
        r => panic!("{r:?}"),
    }
    send_text(&mut client, "after").await;
    assert_eq!(&transfer(&mut w2).await.data[..], b"after");
}

#[test]
fn node_address_for_wildcard_and_advertised_listeners() {
    let mut config = WorkerConfig::default();
    config.worker_listen = "127.0.0.1:0".parse().unwrap();
    config.task_listen = "0.0.0.0:0".parse().unwrap();
    let ports = WorkerPorts::bind(config.clone()).unwrap();
    let node = ports.node_addr();
    assert_eq!(node.port(), ports.task_addr().unwrap().port());
    assert!(!node.ip().is_unspecified(), "{node}");
    drop(ports);
    config.advertise = Some("10.1.2.3:7000".parse().unwrap());
    let ports = WorkerPorts::bind(config).unwrap();
    assert_eq!(ports.node_addr().to_string(), "10.1.2.3:7000");
    let mut bad = WorkerConfig::default();
    bad.send_queue_capacity = 0;
    let err = WorkerPorts::bind(bad).unwrap_err().to_string();
    assert!(err.contains("worker.send_queue_capacity"), "{err}");
}

/// A raw frame with `payload` after its length prefix.
fn raw_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = u32::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(payload);
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_secret_admits_only_businesses_that_send_it_first() {
    use netsvr_protocol::client::{ClientConfig, TaskClient, WorkerClient};
    let secret = bytes::Bytes::from_static(b"s3cret-s3cret-s3cret");
    let node = Node::start_with(|w, _| w.secret = secret.clone()).await;
    let register = || ToGateway::Register(pb::RegisterReq { events: ALL });

    // No secret: the first frame (Register) closes the connection unanswered.
    let mut b = Business::connect(node.worker).await;
    b.send(register()).await;
    assert!(b.next().await.is_none(), "answered without the secret");
    // A wrong secret, on either port: closed.
    for port in [node.worker, node.task] {
        let mut b = Business::connect(port).await;
        b.send_raw(&raw_frame(b"s3cret-s3cret-s3creT")).await;
        b.send(register()).await;
        assert!(b.next().await.is_none(), "answered a wrong secret");
    }
    // The secret first: business as usual.
    let mut b = Business::connect(node.worker).await;
    b.send_raw(&raw_frame(&secret)).await;
    assert!(!b.register(ALL).await.is_empty());

    // The Rust client sends it when configured.
    let mut config = ClientConfig::default();
    config.secret = secret.clone();
    let _worker = WorkerClient::connect(vec![node.addr()], config.clone())
        .await
        .unwrap();
    let task = TaskClient::connect(vec![node.addr()], config)
        .await
        .unwrap();
    let mut c = node.client().await;
    c.send(Message::text("hello")).await.unwrap();
    eventually("the client is online", || {
        node.gateway.connection_count() == 1
    })
    .await;
    assert_eq!(task.uniq_id_count().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_outside_the_allow_list_are_closed_at_accept() {
    let node = Node::start_with(|w, _| {
        w.allowed_peers = vec!["127.0.0.2/32".parse().unwrap()];
    })
    .await;
    // From 127.0.0.1: closed before anything is read.
    let mut b = Business::connect(node.worker).await;
    b.send(ToGateway::Register(pb::RegisterReq { events: ALL }))
        .await;
    assert!(
        b.next().await.is_none(),
        "a peer outside the list was served"
    );
    // From 127.0.0.2: served.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, 2], 0)))
        .unwrap();
    let stream = socket.connect(node.worker).await.unwrap();
    let mut b = Business::from_stream(stream);
    assert!(!b.register(ALL).await.is_empty());
}
