//! Several real `netsvr` processes forming one cluster through the machine's Redis (each test
//! under its own key prefix, with a 1.5 s lease): commands given to one node reach a client
//! on another exactly once (through NATS too, with `broker = "nats"`), broadcasts reach every node once, the admin API answers for the
//! cluster or the node, a SIGKILLed node's connections are reported closed (`node_lost`)
//! exactly once by the survivors (and a drained node's not at all), and `--check-config`
//! names bad `[cluster]` keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
#[path = "cluster/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::server::{BIN, ENV_VARS, Server, json_config};
use common::{Next, Ws, next, temp_file};
use netsvr_protocol::{ToBusiness, ToGateway, pb};
use serde_json::json;
use support::*;

/// Every data frame `ws` receives until it has been quiet for `quiet`.
async fn drain(ws: &mut Ws, quiet: Duration) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        match next(ws, quiet).await {
            Next::Data(d) => got.push(String::from_utf8(d).unwrap()),
            Next::Quiet => return got,
            other => panic!("client: {other:?} after {got:?}"),
        }
    }
}

fn count(items: &[String]) -> BTreeMap<&str, usize> {
    let mut out = BTreeMap::new();
    for item in items {
        *out.entry(item.as_str()).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_from_any_node_reach_a_client_exactly_once() {
    if !redis_up().await {
        return;
    }
    let prefix = Prefix::new("commands");
    let nodes = start_nodes(&prefix, &["", "", ""]).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);

    // Every node lists the same three nodes, itself among them.
    let mut seen = Vec::new();
    for node in &nodes {
        let (code, body) = get_json(node.admin, "/api/v1/cluster/nodes").await;
        assert_eq!(code, 200);
        let list = body["nodes"].as_array().unwrap();
        assert_eq!(list.len(), 3, "{body}");
        let status = common::status(node.admin, None).await;
        assert_eq!(
            body["node"], status["node"],
            "the cluster id is the uniqId prefix"
        );
        assert_eq!(status["cluster"]["nodes"], 3, "{status}");
        assert_eq!(status["cluster"]["connected"], true, "{status}");
        let local: Vec<_> = list.iter().filter(|n| n["local"] == true).collect();
        assert_eq!(local.len(), 1, "{body}");
        assert_eq!(local[0]["id"], body["node"]);
        for n in list {
            assert!(n["addr"].is_string() && n["started_ms"].is_u64(), "{n}");
            assert!(
                n["heartbeat_ms"].as_u64() >= n["started_ms"].as_u64(),
                "{n}"
            );
        }
        seen.push(list.clone());
    }
    assert!(seen.windows(2).all(|w| {
        let ids =
            |l: &Vec<serde_json::Value>| l.iter().map(|n| n["id"].clone()).collect::<Vec<_>>();
        ids(&w[0]) == ids(&w[1])
    }));

    let (mut wa, a_id) = client(a).await;
    let (mut wb, _b_id) = client(b).await;
    let (mut wc, _c_id) = client(c).await;
    let mut business_b = Business::worker(b.worker.unwrap()).await;
    let mut task_c = Business::task(c.task.unwrap()).await;

    // To A's client: from C's task port, from B's business (worker connection), from C's
    // JSON API.
    let single = |data: &'static str| {
        ToGateway::SingleCast(pb::SingleCast {
            uniq_id: a_id.clone(),
            data: Bytes::from_static(data.as_bytes()),
        })
    };
    task_c.send(&single("via C's task port")).await;
    business_b.send(&single("via B's worker port")).await;
    let (code, body) = post_json(
        c.admin,
        "/api/v1/send",
        &json!({ "uniq_ids": [a_id], "data": "via C's JSON API" }),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let got = drain(&mut wa, Duration::from_millis(1500)).await;
    let expected = BTreeMap::from([
        ("via B's worker port", 1),
        ("via C's JSON API", 1),
        ("via C's task port", 1),
    ]);
    assert_eq!(count(&got), expected, "{got:?}");
    assert_eq!(
        drain(&mut wb, Duration::from_millis(200)).await,
        Vec::<String>::new()
    );
    assert_eq!(
        drain(&mut wc, Duration::from_millis(200)).await,
        Vec::<String>::new()
    );

    // A broadcast given to C's JSON API reaches every node's client once.
    let (code, body) = post_json(c.admin, "/api/v1/broadcast", &json!({ "data": "all" })).await;
    assert_eq!(code, 200, "{body}");
    for ws in [&mut wa, &mut wb, &mut wc] {
        assert_eq!(drain(ws, Duration::from_millis(1500)).await, ["all"]);
    }

    // Reads: cluster-wide by default, this node with scope=node.
    let (_, all) = get_json(c.admin, "/api/v1/connections").await;
    assert_eq!(
        (all["scope"].clone(), all["total"].clone()),
        (json!("cluster"), json!(3)),
        "{all}"
    );
    let (_, mine) = get_json(c.admin, "/api/v1/connections?scope=node").await;
    assert_eq!(mine["total"], 1, "{mine}");
    let (code, remote) = get_json(c.admin, &format!("/api/v1/connections/{a_id}")).await;
    assert_eq!(code, 200, "{remote}");
    assert_eq!(remote["node"], a_id[..12]);
    assert!(remote["remote_addr"].is_null(), "{remote}");
    let (code, _) = get_json(c.admin, &format!("/api/v1/connections/{a_id}?scope=node")).await;
    assert_eq!(code, 404);
    let (code, summary) = get_json(c.admin, "/api/v1/cluster/connections").await;
    assert_eq!(code, 200);
    assert_eq!(summary["connections"], 3, "{summary}");
    assert_eq!(summary["complete"], true, "{summary}");
    let per_node = summary["nodes"].as_array().unwrap();
    assert_eq!(per_node.len(), 3, "{summary}");
    assert!(per_node.iter().all(|n| n["connections"] == 1), "{summary}");
    // C's task port answers for the cluster too.
    match task_c.ask(ToGateway::UniqIdCount).await {
        ToBusiness::UniqIdCount(r) => assert_eq!(r.count, 3),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_nodes_connections_are_reported_closed_exactly_once() {
    if !redis_up().await {
        return;
    }
    let prefix = Prefix::new("killed");
    let mut nodes = start_nodes(&prefix, &["", "", ""]).await;
    let mut businesses = [
        Business::worker(nodes[1].worker.unwrap()).await,
        Business::worker(nodes[2].worker.unwrap()).await,
    ];
    let mut task_c = Business::task(nodes[2].task.unwrap()).await;
    let mut clients = Vec::new();
    let mut expected = BTreeMap::new();
    for i in 0..3 {
        let (ws, id) = client(&nodes[0]).await;
        let topics = vec![format!("t{i}"), "all".to_owned()];
        let update = pb::ConnInfoUpdate {
            uniq_id: id.clone(),
            new_session: format!("session {i}"),
            new_customer_id: format!("customer{i}"),
            new_topics: topics.clone(),
            data: Bytes::new(),
        };
        task_c.send(&ToGateway::ConnInfoUpdate(update)).await;
        expected.insert(id, (format!("customer{i}"), format!("session {i}"), topics));
        clients.push(ws);
    }
    // The updates went through C to A; wait until A reports them.
    for (id, (customer, _, _)) in &expected {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let (_, d) = get_json(nodes[2].admin, &format!("/api/v1/connections/{id}")).await;
            if d["customer_id"] == customer.as_str() {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "not updated: {d}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Let A's copies of its connections reach Redis.
    tokio::time::sleep(HEARTBEAT).await;

    nodes[0].signal("KILL");
    let killed = tokio::time::Instant::now();
    let _ = nodes[0].exited(Duration::from_secs(5)).await;

    let mut closes: Vec<pb::ConnClose> = Vec::new();
    let bound = LEASE_TTL + HEARTBEAT * 6;
    let mut reported = None;
    let mut deadline = killed + bound + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
        let [first, second] = &mut businesses;
        let got = tokio::select! {
            m = first.next(wait) => m,
            m = second.next(wait) => m,
        };
        match got {
            Some(ToBusiness::ConnClose(close)) => closes.push(close),
            Some(other) => panic!("unexpected {other:?}"),
            None => {}
        }
        if closes.len() >= 3 && reported.is_none() {
            reported = Some(killed.elapsed());
            // Any duplicate would come within the next heartbeats.
            deadline = tokio::time::Instant::now() + Duration::from_millis(2500);
        }
    }
    let reported = reported.unwrap_or_else(|| {
        panic!(
            "only {} close(s) within {bound:?}: {closes:?}\nB:\n{}\nC:\n{}",
            closes.len(),
            nodes[1].log_text(),
            nodes[2].log_text()
        )
    });
    println!("node_lost closes reported {reported:?} after SIGKILL");
    assert!(reported <= bound, "reported after {reported:?}");
    assert_eq!(closes.len(), 3, "duplicates: {closes:?}");
    for close in closes {
        let Some((customer, session, topics)) = expected.remove(&close.uniq_id) else {
            panic!("unexpected or repeated close {close:?}");
        };
        assert_eq!(close.reason, "node_lost", "{close:?}");
        assert_eq!(close.customer_id, customer);
        assert_eq!(close.session, session);
        let mut got = close.topics.clone();
        let mut want = topics;
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{close:?}");
    }
    // The survivors see two nodes and no connection left.
    wait_for_nodes(&nodes[1], 2).await;
    match task_c.ask(ToGateway::UniqIdCount).await {
        ToBusiness::UniqIdCount(r) => assert_eq!(r.count, 0),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drained_node_is_not_reported_lost() {
    if !redis_up().await {
        return;
    }
    let prefix = Prefix::new("drained");
    let mut nodes = start_nodes(&prefix, &["", ""]).await;
    let mut business_a = Business::worker(nodes[0].worker.unwrap()).await;
    let mut business_b = Business::worker(nodes[1].worker.unwrap()).await;
    let (_ws, a_id) = client(&nodes[0]).await;
    match business_a.next(Duration::from_secs(5)).await {
        Some(ToBusiness::ConnOpen(open)) => assert_eq!(open.uniq_id, a_id),
        other => panic!("{other:?}"),
    }
    tokio::time::sleep(HEARTBEAT).await;
    nodes[0].signal("TERM");
    let (status, log) = nodes[0].exited(Duration::from_secs(10)).await;
    assert!(status.success(), "{log}");
    // A reported its own close; B reports nothing, even after A's lease would have run out.
    match business_a.next(Duration::from_secs(1)).await {
        Some(ToBusiness::ConnClose(close)) => {
            assert_eq!(close.uniq_id, a_id);
            assert_ne!(close.reason, "node_lost", "{close:?}");
        }
        other => panic!("{other:?}"),
    }
    let quiet = business_b.next(LEASE_TTL + HEARTBEAT * 4).await;
    assert!(quiet.is_none(), "{quiet:?}");
    wait_for_nodes(&nodes[1], 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_scoped_task_port_acts_on_its_node_only() {
    if !redis_up().await {
        return;
    }
    let prefix = Prefix::new("node-scope");
    let nodes = start_nodes(&prefix, &["", "task_port = \"node\""]).await;
    let (mut wa, a_id) = client(&nodes[0]).await;
    let mut task_b = Business::task(nodes[1].task.unwrap()).await;
    task_b
        .send(&ToGateway::SingleCast(pb::SingleCast {
            uniq_id: a_id.clone(),
            data: Bytes::from_static(b"through B's task port"),
        }))
        .await;
    match task_b.ask(ToGateway::UniqIdCount).await {
        ToBusiness::UniqIdCount(r) => assert_eq!(r.count, 0, "B's own connections only"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        drain(&mut wa, Duration::from_millis(1000)).await,
        Vec::<String>::new()
    );
    // The JSON API stays cluster-wide.
    let body = json!({ "uniq_ids": [a_id], "data": "through B's JSON API" });
    let (code, answer) = post_json(nodes[1].admin, "/api/v1/send", &body).await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        drain(&mut wa, Duration::from_millis(1000)).await,
        ["through B's JSON API"]
    );
}

/// The same binary with `broker = "nats"`: two nodes meet through the machine's NATS (under
/// their own prefix), and a command given to B's task port reaches A's client exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nats_cluster_routes_a_command_to_another_nodes_client_exactly_once() {
    if !nats_up().await {
        return;
    }
    let mut prefix = NatsPrefix::new();
    // A's URL carries credentials (a NATS without auth ignores them): the log must hide them.
    let url_a = format!("nats://netsvr:natspw@{NATS_ADDR}");
    let url_b = format!("nats://{NATS_ADDR}");
    let configs = [
        nats_node_config(&prefix, &url_a, ""),
        nats_node_config(&prefix, &url_b, ""),
    ];
    let mut nodes = start_configs(&configs).await;

    for node in &nodes {
        let (code, body) = get_json(node.admin, "/api/v1/cluster/nodes").await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["nodes"].as_array().unwrap().len(), 2, "{body}");
    }
    let joined = |node: &common::server::Server| -> serde_json::Value {
        let log = node.log_text();
        log.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|j| j["fields"]["message"] == "joining the cluster")
            .unwrap_or_else(|| panic!("no `joining the cluster` line:\n{log}"))["fields"]
            .clone()
    };
    let (a_log, b_log) = (joined(&nodes[0]), joined(&nodes[1]));
    assert_eq!(a_log["broker"], "nats", "{a_log}");
    assert_eq!(
        a_log["url"],
        format!("nats://netsvr:***@{NATS_ADDR}"),
        "{a_log}"
    );
    assert_eq!(a_log["prefix"], prefix.name.as_str(), "{a_log}");
    assert_eq!(b_log["url"], url_b, "{b_log}");
    assert!(!nodes[0].log_text().contains("natspw"));

    let (mut wa, a_id) = client(&nodes[0]).await;
    let (mut wb, _b_id) = client(&nodes[1]).await;
    let mut task_b = Business::task(nodes[1].task.unwrap()).await;
    task_b
        .send(&ToGateway::SingleCast(pb::SingleCast {
            uniq_id: a_id.clone(),
            data: Bytes::from_static(b"via B's task port"),
        }))
        .await;
    assert_eq!(
        drain(&mut wa, Duration::from_millis(1500)).await,
        ["via B's task port"]
    );
    assert_eq!(
        drain(&mut wb, Duration::from_millis(200)).await,
        Vec::<String>::new()
    );

    // Stop both nodes (so that none recreates the buckets), then delete the KV streams.
    for node in &mut nodes {
        node.signal("TERM");
        let (status, log) = node.exited(Duration::from_secs(15)).await;
        assert!(status.success(), "{log}");
    }
    let replies = tokio::task::spawn_blocking(move || prefix.delete_streams())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("cannot delete the KV streams: {e}"));
    for reply in replies {
        assert!(reply.contains("\"success\":true"), "{reply}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cluster_the_cluster_endpoints_answer_404() {
    let path = temp_file("single.toml", &json_config(""));
    let node = Server::start(&path).await;
    let (code, body) = get_json(node.admin, "/api/v1/cluster/nodes").await;
    assert_eq!(code, 404);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("clustering is off"),
        "{body}"
    );
    let (code, _) = get_json(node.admin, "/api/v1/cluster/connections").await;
    assert_eq!(code, 404);
    let (code, body) = get_json(node.admin, "/api/v1/connections?scope=cluster").await;
    assert_eq!(
        (code, body["scope"].clone()),
        (200, json!("node")),
        "{body}"
    );
    let (code, _) = get_json(node.admin, "/api/v1/topics?scope=everywhere").await;
    assert_eq!(code, 400);
    assert!(common::status(node.admin, None).await["cluster"].is_null());
}

/// `netsvr --check-config` on `text`: (exit code, stdout, stderr).
fn check_config(text: &str) -> (Option<i32>, String, String) {
    let path = temp_file("check.toml", text);
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("--check-config").arg(&path);
    for var in ENV_VARS {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code(), text(out.stdout), text(out.stderr))
}

#[test]
fn check_config_names_the_bad_cluster_key() {
    for (text, key) in [
        (
            "[cluster]\nbroker = \"kafka\"\n",
            "cluster.broker = \"kafka\"",
        ),
        (
            "[cluster]\ntask_port = \"all\"\n",
            "cluster.task_port = \"all\"",
        ),
        (
            "[cluster]\nlease_ttl = \"1500ms\"\nheartbeat = \"1s\"\n",
            "cluster.heartbeat = \"1s\"",
        ),
        ("[cluster]\nbuffer = 0\n", "cluster.buffer = 0"),
        (
            "[cluster.redis]\nurl = \"http://h\"\n",
            "cluster.redis.url = \"http://h\"",
        ),
        (
            "[cluster]\nbroker = \"nats\"\n[cluster.nats]\nurl = \"redis://h\"\n",
            "cluster.nats.url = \"redis://h\"",
        ),
        (
            "[cluster]\nbroker = \"nats\"\n[cluster.nats]\nprefix = \"a.b\"\n",
            "cluster.nats.prefix = \"a.b\"",
        ),
    ] {
        let (code, stdout, stderr) = check_config(text);
        assert_eq!(code, Some(2), "{text}: {stdout}{stderr}");
        assert!(stderr.contains(key), "{text}: {stderr}");
    }
    let (code, stdout, stderr) =
        check_config("[cluster]\n[cluster.redis]\nurl = \"redis://:pw@127.0.0.1:6379\"\n");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("[cluster]") && stdout.contains("task_port = \"cluster\""));
    assert!(stdout.contains("redis://:***@127.0.0.1:6379"), "{stdout}");
    let (code, stdout, stderr) = check_config(
        "[cluster]\nbroker = \"nats\"\n[cluster.nats]\nurl = \"nats://u:pw@127.0.0.1:4222\"\n",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("broker = \"nats\""), "{stdout}");
    assert!(stdout.contains("nats://u:***@127.0.0.1:4222"), "{stdout}");
    assert!(!stdout.contains(":pw@"), "{stdout}");
}
