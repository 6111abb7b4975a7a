//! The business client against fake gateways: tokio listeners on 127.0.0.1:0 that speak the
//! codec, answer Register and queries with canned replies, and record what they receive.
#![cfg(feature = "client")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use netsvr_protocol::client::{
    ClientConfig, ClientError, Event, GatewayAddr, TaskClient, WorkerClient, WorkerEvent,
};
use netsvr_protocol::{Codec, Frame, ToBusiness, ToGateway, cmd, pb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep, timeout};

/// What a fake gateway answers.
#[derive(Default, Clone)]
struct Canned {
    online: Vec<String>,
    uniq_ids: Vec<String>,
    customers: Vec<String>,
    topics: Vec<String>,
    topic_counts: BTreeMap<String, i32>,
    topic_customers: BTreeMap<String, Vec<String>>,
    /// Queries it never answers (to trigger the reply timeout).
    silent: Vec<u32>,
}

#[derive(Default)]
struct State {
    register_code: i32,
    registers: usize,
    unregisters: Vec<String>,
    worker_heartbeats: usize,
    task_heartbeats: usize,
    task_cmds: Vec<ToGateway>,
    worker_conns: Vec<(mpsc::Sender<Bytes>, Option<oneshot::Sender<()>>)>,
    task_kills: Vec<Option<oneshot::Sender<()>>>,
    task_accepts: usize,
    /// Replies are held back until this many are ready, then written in one go.
    hold: usize,
}

struct Fake {
    addr: GatewayAddr,
    canned: Arc<Mutex<Canned>>,
    state: Arc<Mutex<State>>,
}

impl Fake {
    async fn start(canned: Canned) -> Fake {
        let worker = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let task = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = GatewayAddr::new(worker.local_addr().unwrap(), task.local_addr().unwrap());
        let canned = Arc::new(Mutex::new(canned));
        let state = Arc::new(Mutex::new(State {
            hold: 1,
            ..State::default()
        }));
        let st = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((s, _)) = worker.accept().await {
                tokio::spawn(serve_worker(s, Arc::clone(&st)));
            }
        });
        let (st, cn) = (Arc::clone(&state), Arc::clone(&canned));
        tokio::spawn(async move {
            while let Ok((s, _)) = task.accept().await {
                tokio::spawn(serve_task(s, Arc::clone(&st), Arc::clone(&cn)));
            }
        });
        Fake {
            addr,
            canned,
            state,
        }
    }

    fn prefix(&self) -> String {
        self.addr.node_prefix().unwrap().to_owned()
    }

    fn uniq(&self, n: u64) -> String {
        format!("{}{n:016x}", self.prefix())
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    fn task_cmds(&self) -> Vec<ToGateway> {
        self.with(|s| s.task_cmds.clone())
    }

    /// Pushes an event on the newest worker connection.
    async fn push(&self, event: ToBusiness) {
        let mut out = BytesMut::new();
        event.encode(&mut out);
        let tx = self.with(|s| s.worker_conns.last().unwrap().0.clone());
        tx.send(out.freeze()).await.unwrap();
    }

    fn drop_worker_conns(&self) {
        self.with(|s| {
            for (_, kill) in &mut s.worker_conns {
                if let Some(k) = kill.take() {
                    let _ = k.send(());
                }
            }
        });
    }

    fn drop_task_conns(&self) {
        self.with(|s| {
            for kill in &mut s.task_kills {
                if let Some(k) = kill.take() {
                    let _ = k.send(());
                }
            }
        });
    }
}

async fn serve_worker(stream: TcpStream, state: Arc<Mutex<State>>) {
    let (mut rd, mut wr) = stream.into_split();
    let (push_tx, mut push_rx) = mpsc::channel::<Bytes>(16);
    let (kill_tx, mut kill_rx) = oneshot::channel();
    let conn_no = {
        let mut s = state.lock().unwrap();
        s.worker_conns.push((push_tx, Some(kill_tx)));
        s.worker_conns.len()
    };
    let codec = Codec::default();
    let mut buf = BytesMut::new();
    loop {
        while let Ok(Some(frame)) = codec.decode(&mut buf) {
            let mut out = BytesMut::new();
            match frame {
                Frame::Heartbeat => state.lock().unwrap().worker_heartbeats += 1,
                Frame::Command {
                    cmd: cmd::REGISTER, ..
                } => {
                    let code = {
                        let mut s = state.lock().unwrap();
                        s.registers += 1;
                        s.register_code
                    };
                    let resp = pb::RegisterResp {
                        code,
                        message: if code == 0 { "" } else { "duplicate register" }.to_owned(),
                        conn_id: format!("conn-{conn_no}"),
                    };
                    ToBusiness::Register(resp).encode(&mut out);
                }
                Frame::Command { cmd, body } => {
                    if let Ok(ToGateway::Unregister(r)) = ToGateway::decode(cmd, body) {
                        state.lock().unwrap().unregisters.push(r.conn_id);
                        ToBusiness::Unregister(pb::UnRegisterResp {}).encode(&mut out);
                    }
                }
            }
            if !out.is_empty() && wr.write_all(&out).await.is_err() {
                return;
            }
        }
        tokio::select! {
            n = rd.read_buf(&mut buf) => if n.unwrap_or(0) == 0 { return },
            Some(frame) = push_rx.recv() => if wr.write_all(&frame).await.is_err() { return },
            _ = &mut kill_rx => return,
        }
    }
}

fn answer(c: &Canned, req: &ToGateway) -> Option<ToBusiness> {
    if c.silent.contains(&req.cmd()) {
        return None;
    }
    Some(match req {
        ToGateway::CheckOnline(r) => ToBusiness::CheckOnline(pb::CheckOnlineResp {
            uniq_ids: r
                .uniq_ids
                .iter()
                .filter(|id| c.online.contains(id))
                .cloned()
                .collect(),
        }),
        ToGateway::UniqIdList => ToBusiness::UniqIdList(pb::UniqIdListResp {
            uniq_ids: c.uniq_ids.clone(),
        }),
        ToGateway::UniqIdCount => ToBusiness::UniqIdCount(pb::UniqIdCountResp {
            count: i32::try_from(c.uniq_ids.len()).unwrap(),
        }),
        ToGateway::CustomerIdList => ToBusiness::CustomerIdList(pb::CustomerIdListResp {
            customer_ids: c.customers.clone(),
        }),
        ToGateway::TopicList => ToBusiness::TopicList(pb::TopicListResp {
            topics: c.topics.clone(),
        }),
        ToGateway::TopicUniqIdCount(_) => ToBusiness::TopicUniqIdCount(pb::TopicUniqIdCountResp {
            items: c.topic_counts.clone(),
        }),
        ToGateway::TopicCustomerIdList(r) => {
            let items = r
                .topics
                .iter()
                .filter_map(|t| c.topic_customers.get(t).map(|ids| (t.clone(), ids.clone())))
                .map(|(t, customer_ids)| (t, pb::TopicCustomerIdListRespItem { customer_ids }))
                .collect();
            ToBusiness::TopicCustomerIdList(pb::TopicCustomerIdListResp { items })
        }
        ToGateway::Metrics => ToBusiness::Metrics(pb::MetricsResp::default()),
        ToGateway::Limit(r) => ToBusiness::Limit(pb::LimitResp {
            on_open: r.on_open,
            on_message: r.on_message,
        }),
        _ => return None,
    })
}

async fn serve_task(stream: TcpStream, state: Arc<Mutex<State>>, canned: Arc<Mutex<Canned>>) {
    let (mut rd, mut wr) = stream.into_split();
    let (kill_tx, mut kill_rx) = oneshot::channel();
    {
        let mut s = state.lock().unwrap();
        s.task_kills.push(Some(kill_tx));
        s.task_accepts += 1;
    }
    let codec = Codec::default();
    let mut buf = BytesMut::new();
    let mut held = BytesMut::new();
    let mut held_n = 0;
    loop {
        while let Ok(Some(frame)) = codec.decode(&mut buf) {
            match frame {
                Frame::Heartbeat => state.lock().unwrap().task_heartbeats += 1,
                Frame::Command { cmd, body } => {
                    let req = ToGateway::decode(cmd, body).unwrap();
                    let hold = {
                        let mut s = state.lock().unwrap();
                        s.task_cmds.push(req.clone());
                        s.hold
                    };
                    if let Some(resp) = answer(&canned.lock().unwrap(), &req) {
                        resp.encode(&mut held);
                        held_n += 1;
                    }
                    if held_n >= hold {
                        if wr.write_all(&held).await.is_err() {
                            return;
                        }
                        held.clear();
                        held_n = 0;
                    }
                }
            }
        }
        tokio::select! {
            n = rd.read_buf(&mut buf) => if n.unwrap_or(0) == 0 { return },
            _ = &mut kill_rx => return,
        }
    }
}

fn config() -> ClientConfig {
    let mut c = ClientConfig::default();
    c.heartbeat_interval = Duration::from_millis(50);
    c.backoff_min = Duration::from_millis(10);
    c.backoff_max = Duration::from_millis(50);
    c.connect_timeout = Duration::from_secs(1);
    c.request_timeout = Duration::from_secs(2);
    c
}

async fn next_event(worker: &mut WorkerClient) -> WorkerEvent {
    timeout(Duration::from_secs(3), worker.recv())
        .await
        .expect("an event in time")
        .expect("the channel is open")
}

/// Polls until `f` holds (the fake records asynchronously).
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn node_prefix_of_the_default_task_port() {
    let g = GatewayAddr::new(
        "127.0.0.1:6061".parse().unwrap(),
        "127.0.0.1:6062".parse().unwrap(),
    );
    assert_eq!(g.node_prefix(), Some("7f00000117ae"));
    let v6: SocketAddr = "[::1]:6062".parse().unwrap();
    assert_eq!(netsvr_protocol::client::node_prefix(v6), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_delivers_events_and_sends_heartbeats() {
    let fake = Fake::start(Canned::default()).await;
    let mut worker = WorkerClient::connect(vec![fake.addr.clone()], config())
        .await
        .unwrap();
    let ev = next_event(&mut worker).await;
    assert_eq!(ev.gateway, 0);
    assert_eq!(
        ev.event,
        Event::Registered {
            conn_id: "conn-1".to_owned()
        }
    );
    assert_eq!(fake.with(|s| s.registers), 1);

    let uniq_id = fake.uniq(1);
    fake.push(ToBusiness::ConnOpen(pb::ConnOpen {
        uniq_id: uniq_id.clone(),
        raw_query: "a=1".to_owned(),
        ..Default::default()
    }))
    .await;
    fake.push(ToBusiness::Transfer(pb::Transfer {
        uniq_id: uniq_id.clone(),
        data: Bytes::from_static(b"hi"),
        ..Default::default()
    }))
    .await;
    fake.push(ToBusiness::ConnClose(pb::ConnClose {
        uniq_id: uniq_id.clone(),
        ..Default::default()
    }))
    .await;
    match next_event(&mut worker).await.event {
        Event::Open(o) => assert_eq!(
            (o.uniq_id.as_str(), o.raw_query.as_str()),
            (uniq_id.as_str(), "a=1")
        ),
        other => panic!("expected Open, got {other:?}"),
    }
    match next_event(&mut worker).await.event {
        Event::Message(m) => assert_eq!(&m.data[..], b"hi"),
        other => panic!("expected Message, got {other:?}"),
    }
    match next_event(&mut worker).await.event {
        Event::Close(c) => assert_eq!(c.uniq_id, uniq_id),
        other => panic!("expected Close, got {other:?}"),
    }

    // 50 ms heartbeat interval: a few within half a second.
    eventually("worker heartbeats", || {
        fake.with(|s| s.worker_heartbeats >= 3)
    })
    .await;

    worker.close().await;
    assert_eq!(fake.with(|s| s.unregisters.clone()), strings(&["conn-1"]));
    assert!(
        timeout(Duration::from_secs(1), worker.recv())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_and_reregisters_after_the_gateway_drops_it() {
    let fake = Fake::start(Canned::default()).await;
    let mut worker = WorkerClient::connect(vec![fake.addr.clone()], config())
        .await
        .unwrap();
    assert!(matches!(
        next_event(&mut worker).await.event,
        Event::Registered { .. }
    ));

    fake.drop_worker_conns();
    assert!(matches!(
        next_event(&mut worker).await.event,
        Event::Disconnected { .. }
    ));
    assert_eq!(
        next_event(&mut worker).await.event,
        Event::Registered {
            conn_id: "conn-2".to_owned()
        }
    );
    assert_eq!(fake.with(|s| s.registers), 2);

    fake.push(ToBusiness::Transfer(pb::Transfer {
        uniq_id: fake.uniq(7),
        data: Bytes::from_static(b"after"),
        ..Default::default()
    }))
    .await;
    match next_event(&mut worker).await.event {
        Event::Message(m) => assert_eq!(&m.data[..], b"after"),
        other => panic!("expected Message, got {other:?}"),
    }
    worker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_registration_is_an_error() {
    let fake = Fake::start(Canned::default()).await;
    fake.with(|s| s.register_code = 3);
    let err = WorkerClient::connect(vec![fake.addr.clone()], config())
        .await
        .unwrap_err();
    match err {
        ClientError::RegisterRefused { code, message } => {
            assert_eq!(code, 3);
            assert_eq!(message, "duplicate register");
        }
        other => panic!("expected RegisterRefused, got {other:?}"),
    }
}

/// Two fake gateways A and B with distinct canned answers, and a task client on both.
async fn two_gateways() -> (Fake, Fake, TaskClient) {
    let a = Fake::start(Canned::default()).await;
    let b = Fake::start(Canned::default()).await;
    let (a1, a2, b1, b2) = (a.uniq(1), a.uniq(2), b.uniq(1), b.uniq(2));
    *a.canned.lock().unwrap() = Canned {
        online: vec![a1.clone()],
        uniq_ids: vec![a1.clone(), a2.clone(), a.uniq(3)],
        customers: strings(&["c1", "c2"]),
        topics: strings(&["t1", "t2"]),
        topic_counts: BTreeMap::from([("t1".to_owned(), 2), ("t2".to_owned(), 1)]),
        topic_customers: BTreeMap::from([("t1".to_owned(), strings(&["c1", "c2"]))]),
        silent: Vec::new(),
    };
    *b.canned.lock().unwrap() = Canned {
        online: vec![b1.clone(), b2.clone()],
        uniq_ids: vec![b1, b2, b.uniq(3), b.uniq(4)],
        customers: strings(&["c2", "c3"]),
        topics: strings(&["t2", "t3"]),
        topic_counts: BTreeMap::from([("t2".to_owned(), 5), ("t3".to_owned(), 1)]),
        topic_customers: BTreeMap::from([
            ("t1".to_owned(), strings(&["c2", "c9"])),
            ("t3".to_owned(), strings(&["c3"])),
        ]),
        silent: Vec::new(),
    };
    let task = TaskClient::connect(vec![a.addr.clone(), b.addr.clone()], config())
        .await
        .unwrap();
    (a, b, task)
}

/// After a query on each node, each fake has read every command sent before it.
async fn barrier(task: &TaskClient) {
    for i in 0..task.gateways().len() {
        task.node(i).unwrap().uniq_id_count().await.unwrap();
    }
}

fn no_barrier(cmds: Vec<ToGateway>) -> Vec<ToGateway> {
    cmds.into_iter()
        .filter(|c| !matches!(c, ToGateway::UniqIdCount))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_routed_by_uniq_id_prefix() {
    let (a, b, task) = two_gateways().await;
    let (a1, a2, b1) = (a.uniq(1), a.uniq(2), b.uniq(1));
    assert_eq!(task.owner_of(&a1), Some(0));
    assert_eq!(task.owner_of(&b1), Some(1));
    let stranger = "0a0a0a0a0a0a0000000000000001".to_owned();
    assert_eq!(task.owner_of(&stranger), None);

    // A uniqId of A goes to A only.
    let single = pb::SingleCast {
        uniq_id: a1.clone(),
        data: Bytes::from_static(b"x"),
    };
    task.send(ToGateway::SingleCast(single.clone()))
        .await
        .unwrap();
    barrier(&task).await;
    assert_eq!(
        no_barrier(a.task_cmds()),
        vec![ToGateway::SingleCast(single)]
    );
    assert!(no_barrier(b.task_cmds()).is_empty());
    a.with(|s| s.task_cmds.clear());

    // A Multicast is split: each gateway gets only its ids; the stranger is dropped.
    let multicast = pb::Multicast {
        uniq_ids: vec![a1.clone(), b1.clone(), stranger.clone(), a2.clone()],
        data: Bytes::from_static(b"m"),
    };
    let unrouted = task
        .send_routed(ToGateway::Multicast(multicast))
        .await
        .unwrap();
    assert_eq!(unrouted, vec![stranger.clone()]);
    assert_eq!(task.unrouted(), 1);
    // Broadcast reaches both.
    let broadcast = pb::Broadcast {
        data: Bytes::from_static(b"all"),
    };
    task.send(ToGateway::Broadcast(broadcast.clone()))
        .await
        .unwrap();
    // N × N bulk pairs stay together.
    let bulk = pb::SingleCastBulk {
        uniq_ids: vec![b1.clone(), a1.clone(), b1.clone()],
        data: vec![
            Bytes::from_static(b"1"),
            Bytes::from_static(b"2"),
            Bytes::from_static(b"3"),
        ],
    };
    task.send(ToGateway::SingleCastBulk(bulk)).await.unwrap();
    barrier(&task).await;
    assert_eq!(
        no_barrier(a.task_cmds()),
        vec![
            ToGateway::Multicast(pb::Multicast {
                uniq_ids: vec![a1.clone(), a2.clone()],
                data: Bytes::from_static(b"m"),
            }),
            ToGateway::Broadcast(broadcast.clone()),
            ToGateway::SingleCastBulk(pb::SingleCastBulk {
                uniq_ids: vec![a1.clone()],
                data: vec![Bytes::from_static(b"2")],
            }),
        ]
    );
    assert_eq!(
        no_barrier(b.task_cmds()),
        vec![
            ToGateway::Multicast(pb::Multicast {
                uniq_ids: vec![b1.clone()],
                data: Bytes::from_static(b"m"),
            }),
            ToGateway::Broadcast(broadcast),
            ToGateway::SingleCastBulk(pb::SingleCastBulk {
                uniq_ids: vec![b1.clone(), b1.clone()],
                data: vec![Bytes::from_static(b"1"), Bytes::from_static(b"3")],
            }),
        ]
    );

    // Refused locally: a query through send, a bulk of a bad shape, an oversized frame.
    let err = task.send(ToGateway::UniqIdCount).await.unwrap_err();
    assert!(matches!(err, ClientError::Invalid(_)), "{err}");
    let bad = pb::SingleCastBulk {
        uniq_ids: vec![a1.clone(), b1.clone()],
        data: vec![Bytes::from_static(b"1")],
    };
    let err = task.send(ToGateway::SingleCastBulk(bad)).await.unwrap_err();
    assert!(matches!(err, ClientError::Invalid(_)), "{err}");
    let huge = pb::Broadcast {
        data: Bytes::from(vec![0u8; 3 * 1024 * 1024]),
    };
    let err = task.send(ToGateway::Broadcast(huge)).await.unwrap_err();
    assert!(matches!(err, ClientError::Codec(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_are_merged_across_gateways() {
    let (a, b, task) = two_gateways().await;
    let (a1, a2, b1, b2) = (a.uniq(1), a.uniq(2), b.uniq(1), b.uniq(2));
    let stranger = "0a0a0a0a0a0a0000000000000001".to_owned();

    // CheckOnline: each gateway is asked about its own ids only; subsets merged in order.
    let asked = vec![b2.clone(), a1.clone(), stranger, a2.clone(), b1.clone()];
    let online = task.check_online(&asked).await.unwrap();
    assert_eq!(online, vec![b2.clone(), a1.clone(), b1.clone()]);
    assert_eq!(
        a.task_cmds(),
        vec![ToGateway::CheckOnline(pb::CheckOnlineReq {
            uniq_ids: vec![a1, a2]
        })]
    );
    assert_eq!(
        b.task_cmds(),
        vec![ToGateway::CheckOnline(pb::CheckOnlineReq {
            uniq_ids: vec![b2, b1]
        })]
    );

    // Counts are summed, lists concatenated or deduplicated.
    assert_eq!(task.uniq_id_count().await.unwrap(), 7);
    assert_eq!(task.uniq_id_list().await.unwrap().len(), 7);
    assert_eq!(
        task.customer_id_list().await.unwrap(),
        strings(&["c1", "c2", "c3"])
    );
    assert_eq!(task.customer_id_count().await.unwrap(), 3);
    assert_eq!(
        task.topic_list().await.unwrap(),
        strings(&["t1", "t2", "t3"])
    );
    assert_eq!(task.topic_count().await.unwrap(), 3);
    let counts = task.topic_uniq_id_count(&[], true).await.unwrap();
    assert_eq!(
        counts,
        BTreeMap::from([
            ("t1".to_owned(), 2),
            ("t2".to_owned(), 6),
            ("t3".to_owned(), 1)
        ])
    );
    let topics = strings(&["t1", "t3"]);
    let customers = task.topic_customer_id_list(&topics).await.unwrap();
    assert_eq!(customers["t1"], strings(&["c1", "c2", "c9"]));
    assert_eq!(customers["t3"], strings(&["c3"]));
    // Distinct customers per topic, not the sum of per-node counts.
    let counts = task.topic_customer_id_count(&topics, false).await.unwrap();
    assert_eq!(
        counts,
        BTreeMap::from([("t1".to_owned(), 3), ("t3".to_owned(), 1)])
    );

    // Per-gateway answers.
    let metrics = task.metrics().await.unwrap();
    assert_eq!(metrics.len(), 2);
    assert_eq!(metrics[0].0, a.addr);
    assert_eq!(metrics[1].0, b.addr);
    let limits = task
        .limit(pb::LimitReq {
            on_open: 10,
            on_message: 20,
        })
        .await
        .unwrap();
    assert_eq!(limits.len(), 2);
    assert_eq!(limits[1].1.on_message, 20);

    // One node alone.
    let node_b = task.node(1).unwrap();
    assert_eq!(node_b.uniq_id_count().await.unwrap(), 4);
    assert_eq!(
        node_b.customer_id_list().await.unwrap(),
        strings(&["c2", "c3"])
    );
    assert!(task.node(2).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replies_match_requests_with_many_in_flight() {
    let fake = Fake::start(Canned::default()).await;
    let ids: Vec<String> = (0..8).map(|n| fake.uniq(n)).collect();
    fake.canned.lock().unwrap().online = ids.clone();
    fake.canned.lock().unwrap().uniq_ids = ids.clone();
    // The fake answers only once 8 queries are waiting, so all 8 are in flight together.
    fake.with(|s| s.hold = 8);
    let task = TaskClient::connect(vec![fake.addr.clone()], config())
        .await
        .unwrap();
    let mut handles = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let task = task.clone();
        let id = id.clone();
        handles.push(tokio::spawn(async move {
            if n % 4 == 3 {
                // A different command in the middle of the pipeline.
                assert_eq!(task.uniq_id_count().await.unwrap(), 8);
            } else {
                assert_eq!(
                    task.check_online(std::slice::from_ref(&id)).await.unwrap(),
                    vec![id]
                );
            }
        }));
    }
    for h in handles {
        timeout(Duration::from_secs(3), h).await.unwrap().unwrap();
    }
    assert_eq!(fake.task_cmds().len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_connection_recovers_and_times_out_silent_queries() {
    let fake = Fake::start(Canned::default()).await;
    fake.canned.lock().unwrap().silent = vec![cmd::METRICS];
    let mut cfg = config();
    cfg.request_timeout = Duration::from_millis(200);
    let task = TaskClient::connect(vec![fake.addr.clone()], cfg)
        .await
        .unwrap();
    let node = task.node(0).unwrap();
    assert_eq!(node.uniq_id_count().await.unwrap(), 0);

    // Idle task connections send heartbeats too.
    eventually("task heartbeats", || fake.with(|s| s.task_heartbeats >= 2)).await;

    // A query the gateway never answers times out and resets the connection.
    match node.metrics().await.unwrap_err() {
        ClientError::Io(e) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut),
        other => panic!("expected a timeout, got {other:?}"),
    }
    eventually("a second task connection", || {
        fake.with(|s| s.task_accepts == 2)
    })
    .await;

    // The gateway drops the connection: queries work again once it is back.
    fake.drop_task_conns();
    let mut ok = false;
    for _ in 0..100 {
        if task.uniq_id_count().await.is_ok() {
            ok = true;
            if fake.with(|s| s.task_accepts) == 3 {
                break;
            }
        }
        sleep(Duration::from_millis(10)).await;
    }
    assert!(ok);
    assert_eq!(fake.with(|s| s.task_accepts), 3);
}
