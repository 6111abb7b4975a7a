//! Broker-independent parts of the cluster tests: a node with its business ports and every
//! event it emits, and the scenarios each broker must pass (order and exactly-once across
//! nodes, merged queries, the lost-node report).
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

pub mod outage;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::business::Business;
use crate::common::{Client, recv_text, test_config};
use netsvr_core::cluster::{Broker, ClusterConfig};
use netsvr_core::worker::{WorkerConfig, WorkerPorts};
use netsvr_core::{
    ChannelSink, CloseReason, Event, EventKind, EventReceiver, FanoutSink, Gateway, InfoUpdate,
    UniqId,
};
use netsvr_protocol::{ToBusiness, ToGateway, pb};

/// A short lease so that loss is seen quickly.
pub fn fast_cluster() -> ClusterConfig {
    let mut config = ClusterConfig::default();
    config.lease_ttl = Duration::from_millis(1500);
    config.heartbeat = Duration::from_millis(300);
    config.retry_min = Duration::from_millis(50);
    config.retry_max = Duration::from_millis(200);
    config.query_timeout = Duration::from_secs(3);
    config
}

/// One node: gateway, worker and task ports, and every event it emits.
pub struct ClusterNode {
    pub gateway: Gateway,
    pub task: std::net::SocketAddr,
    pub events: EventReceiver,
    serve: tokio::task::JoinHandle<()>,
}

impl ClusterNode {
    pub async fn start(broker: Arc<dyn Broker>, cluster: ClusterConfig) -> Self {
        let mut wcfg = WorkerConfig::default();
        wcfg.worker_listen = "127.0.0.1:0".parse().unwrap();
        wcfg.task_listen = "127.0.0.1:0".parse().unwrap();
        let ports = WorkerPorts::bind(wcfg).unwrap();
        let task = ports.task_addr().unwrap();
        let (events_sink, events) = ChannelSink::new(100_000);
        let mut fanout = FanoutSink::default();
        fanout.push(Arc::new(ports.sink()));
        fanout.push(Arc::new(events_sink));
        let (gateway, serve) = Gateway::builder()
            .config(test_config())
            .node_addr(ports.node_addr())
            .sink(fanout)
            .broker(broker, cluster)
            .build()
            .unwrap();
        let serve = tokio::spawn(async move {
            let _ = serve.await;
        });
        tokio::spawn(ports.serve(gateway.clone()));
        Self {
            gateway,
            task,
            events,
            serve,
        }
    }

    /// Stops the node's serve future (its cluster task with it) without leaving the
    /// cluster: to the others it is a node that stopped renewing its lease.
    pub fn crash(&self) {
        self.serve.abort();
    }

    /// Connects a client and returns it with its uniqId (from the Open event).
    pub async fn client(&mut self) -> (Client, UniqId) {
        let url = format!("ws://{}/netsvr", self.gateway.local_addr());
        let (client, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        loop {
            let event = self.next_event().await;
            if matches!(event.kind, EventKind::Open) {
                return (client, event.uniq_id());
            }
        }
    }

    pub async fn next_event(&mut self) -> Event {
        tokio::time::timeout(crate::common::WAIT, self.events.recv())
            .await
            .expect("timed out waiting for an event")
            .expect("event channel closed")
    }

    pub fn live_nodes(&self) -> usize {
        self.gateway.cluster().unwrap().nodes().len()
    }
}

/// Starts `n` nodes and waits until each sees all of them.
pub async fn cluster_of(
    n: usize,
    broker: impl Fn() -> Arc<dyn Broker>,
    config: ClusterConfig,
) -> Vec<ClusterNode> {
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(ClusterNode::start(broker(), config.clone()).await);
    }
    crate::common::eventually("every node sees the whole cluster", || {
        nodes.iter().all(|node| node.live_nodes() == n)
    })
    .await;
    nodes
}

pub async fn collect(client: &mut Client, n: usize) -> Vec<String> {
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        got.push(recv_text(client).await);
    }
    got
}

/// Three nodes: 300 mixed commands from a business on node C's task port reach each client
/// on A, B and C exactly once, in the order sent (across the per-node and shared channels).
pub async fn commands_reach_every_node_once_in_order(nodes: &mut [ClusterNode]) {
    let (mut a1, ida) = nodes[0].client().await;
    let (mut b1, idb) = nodes[1].client().await;
    let (mut c1, idc) = nodes[2].client().await;
    // Bindings made through node C's handle travel to the owning nodes.
    let c = nodes[2].gateway.clone();
    assert!(c.update_info(&ida, InfoUpdate::new().customer("cust")));
    assert!(c.update_info(&idb, InfoUpdate::new().customer("cust")));
    assert!(c.subscribe(&idb, &["t"], None));
    assert!(c.subscribe(&idc, &["t"], None));
    crate::common::eventually("bindings applied on A and B", || {
        nodes[0].gateway.customer_ids() == ["cust"]
            && nodes[1].gateway.topics() == ["t"]
            && nodes[1].gateway.customer_ids() == ["cust"]
    })
    .await;

    // A business on node C's task port sends a mix of commands; the expected stream of
    // each client follows from the order they were sent in.
    let mut business = Business::connect(nodes[2].task).await;
    let mut want: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let started = Instant::now();
    const ROUNDS: usize = 300;
    for i in 0..ROUNDS {
        let text = |kind: &str| format!("{kind}{i}");
        match i % 4 {
            0 => {
                business
                    .send(ToGateway::SingleCast(pb::SingleCast {
                        uniq_id: ida.to_string(),
                        data: text("s").into(),
                    }))
                    .await;
                want.entry("a").or_default().push(text("s"));
            }
            1 => {
                business
                    .send(ToGateway::TopicPublish(pb::TopicPublish {
                        topics: vec!["t".into()],
                        data: text("p").into(),
                    }))
                    .await;
                want.entry("b").or_default().push(text("p"));
                want.entry("c").or_default().push(text("p"));
            }
            2 => {
                business
                    .send(ToGateway::MulticastByCustomerId(
                        pb::MulticastByCustomerId {
                            customer_ids: vec!["cust".into()],
                            data: text("m").into(),
                        },
                    ))
                    .await;
                want.entry("a").or_default().push(text("m"));
                want.entry("b").or_default().push(text("m"));
            }
            _ => {
                business
                    .send(ToGateway::Broadcast(pb::Broadcast {
                        data: text("b").into(),
                    }))
                    .await;
                for who in ["a", "b", "c"] {
                    want.entry(who).or_default().push(text("b"));
                }
            }
        }
    }
    let got_a = collect(&mut a1, want["a"].len()).await;
    let got_b = collect(&mut b1, want["b"].len()).await;
    let got_c = collect(&mut c1, want["c"].len()).await;
    let elapsed = started.elapsed();
    assert_eq!(got_a, want["a"], "client on A");
    assert_eq!(got_b, want["b"], "client on B");
    assert_eq!(got_c, want["c"], "client on C");
    // Nothing more (no duplicate) arrives.
    for client in [&mut a1, &mut b1, &mut c1] {
        crate::common::assert_silent(client, Duration::from_millis(300)).await;
    }
    let cross = want["a"].len() + want["b"].len();
    println!(
        "cross-node deliveries: {cross} in {elapsed:?} (debug build, sequential sends; not a benchmark)"
    );
}

/// Three nodes: cluster-wide queries on C's handle and B's task port merge every node's
/// answer.
pub async fn queries_merge(nodes: &mut [ClusterNode]) {
    let (_a1, ida) = nodes[0].client().await;
    let (_a2, ida2) = nodes[0].client().await;
    let (_b1, idb) = nodes[1].client().await;
    let (_c1, idc) = nodes[2].client().await;
    let c = nodes[2].gateway.clone();
    c.update_info(
        &ida,
        InfoUpdate::new()
            .customer("cust")
            .session("sa")
            .topics(["t", "u"]),
    );
    c.update_info(&idb, InfoUpdate::new().customer("cust").topics(["t"]));
    c.update_info(&idc, InfoUpdate::new().customer("other").topics(["t"]));
    crate::common::eventually("bindings applied", || {
        nodes[0].gateway.topics().len() == 2 && nodes[1].gateway.customer_ids() == ["cust"]
    })
    .await;

    let cluster = c.cluster().unwrap();
    let mut ids = cluster.uniq_ids().await.unwrap();
    ids.sort();
    let mut all = vec![ida, ida2, idb, idc];
    all.sort();
    assert_eq!(ids, all);
    assert_eq!(cluster.connection_count().await.unwrap(), 4);
    assert_eq!(cluster.customer_ids().await.unwrap(), ["cust", "other"]);
    assert_eq!(cluster.topics().await.unwrap(), ["t", "u"]);
    let mut members = cluster.topic_members("t").await.unwrap();
    members.sort();
    let mut want = vec![ida, idb, idc];
    want.sort();
    assert_eq!(members, want);
    let info = cluster.conn_info(&ida).await.unwrap().unwrap();
    assert_eq!(
        (info.customer_id.as_deref(), info.session.as_str()),
        (Some("cust"), "sa")
    );
    let offline: UniqId = format!("{}0000000000000009", ida.node_prefix())
        .parse()
        .unwrap();
    assert_eq!(
        cluster.check_online(&[idc, offline, ida]).await.unwrap(),
        [idc, ida]
    );
    // The per-node view: each node's own count, this node's first.
    let per_node = cluster.per_node(ToGateway::UniqIdCount).await.unwrap();
    assert_eq!(per_node.len(), 3);
    assert_eq!(per_node[0].node, cluster.node_id());
    let mut counts: Vec<i32> = per_node
        .iter()
        .map(|n| match &n.answer {
            Ok(ToBusiness::UniqIdCount(c)) => c.count,
            other => panic!("{other:?}"),
        })
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, [1, 1, 2]);

    // The same through node B's task port: counts of distinct customers and topics.
    let mut business = Business::connect(nodes[1].task).await;
    match business.ask(ToGateway::CustomerIdCount).await {
        ToBusiness::CustomerIdCount(r) => assert_eq!(r.count, 2),
        other => panic!("{other:?}"),
    }
    match business.ask(ToGateway::TopicCount).await {
        ToBusiness::TopicCount(r) => assert_eq!(r.count, 2),
        other => panic!("{other:?}"),
    }
    let count_all = pb::TopicCustomerIdCountReq {
        topics: Vec::new(),
        count_all: true,
    };
    match business
        .ask(ToGateway::TopicCustomerIdCount(count_all))
        .await
    {
        ToBusiness::TopicCustomerIdCount(r) => {
            assert_eq!((r.items["t"], r.items["u"]), (2, 1));
        }
        other => panic!("{other:?}"),
    }
    let by_customer = pb::ConnInfoByCustomerIdReq {
        customer_ids: vec!["cust".into()],
        req_session: true,
        req_uniq_id: true,
        req_topic: true,
    };
    match business
        .ask(ToGateway::ConnInfoByCustomerId(by_customer))
        .await
    {
        ToBusiness::ConnInfoByCustomerId(r) => assert_eq!(r.items["cust"].items.len(), 2),
        other => panic!("{other:?}"),
    }
}

/// Three nodes with [`fast_cluster`]'s lease: A holds 3 bound connections and stops
/// renewing; exactly one survivor reports each closed (`node_lost`) with its bindings,
/// within the lease and one heartbeat, and never twice.
pub async fn lost_node_reported_once(nodes: &mut [ClusterNode]) {
    let mut lost = Vec::new();
    for i in 0..3 {
        let (client, id) = nodes[0].client().await;
        let update = InfoUpdate::new()
            .customer(format!("cust{i}"))
            .session(format!("s{i}"))
            .topics([format!("t{i}")]);
        nodes[2].gateway.update_info(&id, update);
        lost.push((client, id));
    }
    crate::common::eventually("bindings applied on A", || {
        nodes[0].gateway.customer_ids().len() == 3
    })
    .await;
    // The copies reach the engine on A's next publish round; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    nodes[0].crash();
    let crashed = Instant::now();

    let mut reports: Vec<(usize, Event)> = Vec::new();
    let mut first_report = None;
    // Watch well past the lease to see that no second report comes.
    let deadline = Instant::now() + Duration::from_millis(1500 + 3000);
    while Instant::now() < deadline {
        for (which, node) in nodes.iter_mut().enumerate().skip(1) {
            while let Some(event) = node.events.try_recv() {
                if matches!(event.kind, EventKind::Close { .. }) {
                    first_report.get_or_insert_with(|| crashed.elapsed());
                    reports.push((which, event));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first_report = first_report.expect("the lost node's connections are reported");
    // Lease 1.5 s after the last renewal, plus up to one survivor heartbeat (0.3 s).
    assert!(
        first_report <= Duration::from_millis(1500 + 300 + 400),
        "reported after {first_report:?}"
    );
    assert_eq!(
        reports.len(),
        3,
        "one report per lost connection: {reports:?}"
    );
    let reporter = reports[0].0;
    assert!(
        reports.iter().all(|(w, _)| *w == reporter),
        "one survivor reports"
    );
    for (i, (_, id)) in lost.iter().enumerate() {
        let (_, event) = reports
            .iter()
            .find(|(_, e)| e.uniq_id() == *id)
            .expect("reported");
        assert!(matches!(
            event.kind,
            EventKind::Close {
                reason: CloseReason::NodeLost
            }
        ));
        assert_eq!(
            event.conn.info.customer_id.as_deref(),
            Some(format!("cust{i}").as_str())
        );
        assert_eq!(event.conn.info.session, format!("s{i}"));
        assert_eq!(event.conn.info.topics, [format!("t{i}")]);
    }
    println!("lost node reported {first_report:?} after it stopped");
    for node in &nodes[1..] {
        assert_eq!(node.live_nodes(), 2);
    }
}
