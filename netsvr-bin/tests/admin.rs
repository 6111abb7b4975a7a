//! The admin HTTP port end to end: a gateway with WebSocket clients, its admin port on a
//! loopback port, and every endpoint checked against what the gateway and clients see.
//! The tests share one Prometheus recorder and take turns (see `admin/support.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "admin/commands.rs"]
mod commands;
#[path = "admin/guards.rs"]
mod guards;
#[path = "admin/metrics.rs"]
mod metrics;
#[path = "admin/support.rs"]
mod support;

use netsvr_core::{InfoUpdate, UniqId};
use serde_json::{Value, json};
use support::*;

pub(crate) fn ids_json(ids: &[UniqId]) -> Value {
    json!(ids.iter().map(ToString::to_string).collect::<Vec<_>>())
}

fn listed_ids(page: &Value) -> Vec<String> {
    let items = page["connections"].as_array().unwrap();
    items
        .iter()
        .map(|c| c["uniq_id"].as_str().unwrap().to_owned())
        .collect()
}

fn sorted_text(ids: &[UniqId]) -> Vec<String> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.iter().map(ToString::to_string).collect()
}

#[test]
fn status_matches_reality() {
    run(|| async {
        let mut h = Harness::start().await;
        let (_a, a) = h.connect("").await;
        let (_b, b) = h.connect("").await;
        let (mut c, c_id) = h.connect("").await;
        let gw = &h.gateway;
        assert!(gw.update_info(&a, InfoUpdate::new().customer("c1").topics(["x"])));
        assert!(gw.update_info(&b, InfoUpdate::new().customer("c1").topics(["x", "y"])));
        assert!(gw.update_info(&c_id, InfoUpdate::new().customer("c2")));

        let s = h.get_json("/api/v1/status").await;
        assert_eq!(s["connections"], 3, "{s}");
        assert_eq!(s["customers"], 2);
        assert_eq!(s["topics"], 2);
        assert_eq!(s["counters"]["opened"], 3);
        assert_eq!(s["counters"]["closed"], 0);
        assert_eq!(s["node"], a.node_prefix());
        assert_eq!(s["node"].as_str().unwrap().len(), 12);
        assert_eq!(s["node_addr"], a.node_addr().to_string());
        assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
        assert!(s["uptime_secs"].is_u64());
        assert_eq!(s["shutting_down"], false);
        assert_eq!(s["websocket"]["path"], "/netsvr");
        let sinks = s["sinks"].as_array().unwrap();
        assert_eq!(sinks.len(), 1);
        assert_eq!(sinks[0]["name"], "events");
        assert_eq!(sinks[0]["healthy"], true);
        assert_eq!(sinks[0]["capacity"], 1024);
        assert_eq!(sinks[0]["queued"], 0, "every Open was read");
        let limits = h.gateway.limiter().limits().unwrap();
        assert_eq!(s["limits"]["opens_per_sec"], limits.opens_per_sec);
        assert_eq!(s["limits"]["messages_per_sec"], limits.messages_per_sec);
        assert!(s["limits"]["conn_window_ms"].is_u64());

        // Counters move with traffic.
        assert_eq!(h.gateway.broadcast("hi"), 3);
        c.close(None).await.unwrap();
        h.until("c to close", |g| g.connection_count() == 2).await;
        let s = h.get_json("/api/v1/status").await;
        assert_eq!(s["connections"], 2, "{s}");
        assert_eq!(s["customers"], 1);
        assert_eq!(s["counters"]["closed"], 1);
        assert_eq!(s["counters"]["messages_out"], 3);
        assert_eq!(s["counters"]["opened"], h.gateway.stats().opened);
    });
}

#[test]
fn connections_filter_paginate_and_detail() {
    run(|| async {
        let mut h = Harness::start().await;
        let mut ids = Vec::new();
        let mut clients = Vec::new();
        for i in 0..5 {
            let (client, id) = h.connect(&format!("?n={i}&k=v")).await;
            clients.push(client);
            ids.push(id);
        }
        let gw = &h.gateway;
        for (i, id) in ids.iter().enumerate() {
            let mut update = InfoUpdate::new().session(format!("s{i}"));
            update = match i {
                0..=2 => update.customer("team/α"),
                3 => update.customer("c2"),
                _ => update,
            };
            if matches!(i, 0 | 3 | 4) {
                update = update.topics(["news/sport", "all"]);
            }
            assert!(gw.update_info(id, update));
        }

        let all = h.get_json("/api/v1/connections").await;
        assert_eq!(all["total"], 5);
        assert_eq!(
            (all["offset"].clone(), all["limit"].clone()),
            (json!(0), json!(100))
        );
        assert_eq!(listed_ids(&all), sorted_text(&ids), "ordered by uniqId");
        let sorted = sorted_text(&ids);
        let p = h.get_json("/api/v1/connections?limit=2").await;
        assert_eq!(
            (p["total"].clone(), listed_ids(&p)),
            (json!(5), sorted[..2].to_vec())
        );
        let p = h.get_json("/api/v1/connections?offset=2&limit=2").await;
        assert_eq!(listed_ids(&p), sorted[2..4].to_vec());
        let p = h.get_json("/api/v1/connections?offset=4").await;
        assert_eq!(listed_ids(&p), sorted[4..].to_vec());
        let p = h.get_json("/api/v1/connections?offset=10").await;
        assert_eq!((p["total"].clone(), listed_ids(&p).len()), (json!(5), 0));

        let p = h
            .get_json("/api/v1/connections?customer_id=team%2F%CE%B1")
            .await;
        assert_eq!(listed_ids(&p), sorted_text(&ids[..3]));
        assert_eq!(p["total"], 3);
        let p = h.get_json("/api/v1/connections?topic=news%2Fsport").await;
        assert_eq!(listed_ids(&p), sorted_text(&[ids[0], ids[3], ids[4]]));
        let p = h
            .get_json("/api/v1/connections?topic=all&customer_id=team/%CE%B1")
            .await;
        assert_eq!(listed_ids(&p), sorted_text(&ids[..1]));
        let p = h.get_json("/api/v1/connections?customer_id=nobody").await;
        assert_eq!((p["total"].clone(), listed_ids(&p).len()), (json!(0), 0));
        let p = h
            .get_json("/api/v1/connections?customer_id=c2&limit=0")
            .await;
        assert_eq!((p["total"].clone(), listed_ids(&p).len()), (json!(1), 0));
        for bad in [
            "limit=1001",
            "limit=-1",
            "offset=x",
            "colour=red",
            "topic=%zz",
        ] {
            let r = h.get(&format!("/api/v1/connections?{bad}")).await;
            assert_eq!(r.status, 400, "{bad}");
            assert!(r.json()["error"].is_string());
        }

        let d = h.get_json(&format!("/api/v1/connections/{}", ids[0])).await;
        assert_eq!(d["uniq_id"], ids[0].to_string());
        assert_eq!(d["customer_id"], "team/α");
        assert_eq!(d["session"], "s0");
        assert_eq!(d["topics"], json!(["news/sport", "all"]));
        assert_eq!(d["raw_query"], "n=0&k=v");
        assert!(
            d["remote_addr"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{d}"
        );
        let d = h.get_json(&format!("/api/v1/connections/{}", ids[4])).await;
        assert_eq!(d["customer_id"], Value::Null);
        let gone = "7f00000117ae65432100aabbccdd";
        let r = h.get(&format!("/api/v1/connections/{gone}")).await;
        assert_eq!(r.status, 404);
        assert!(r.json()["error"].as_str().unwrap().contains(gone));
        assert_eq!(h.get("/api/v1/connections/not-an-id").await.status, 400);

        let t = h.get_json("/api/v1/topics").await;
        assert_eq!(t["total"], 2);
        let expect =
            json!([{"topic": "all", "connections": 3}, {"topic": "news/sport", "connections": 3}]);
        assert_eq!(t["topics"], expect);
        assert!(gw.update_info(&ids[1], InfoUpdate::new().topics(["zed"])));
        let t = h.get_json("/api/v1/topics?offset=2&limit=5").await;
        assert_eq!(t["total"], 3);
        assert_eq!(t["topics"], json!([{"topic": "zed", "connections": 1}]));
        assert_eq!(h.get("/api/v1/topics?customer_id=x").await.status, 400);
        drop(clients);
    });
}
