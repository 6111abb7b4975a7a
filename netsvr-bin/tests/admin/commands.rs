//! The JSON command API: each command's effect as the WebSocket clients see it, and bad
//! input refused with 400 (or 405 / 413 / 415) without any effect.

use serde_json::json;

use crate::ids_json;
use crate::support::*;
use netsvr_core::InfoUpdate;

#[test]
fn commands_reach_the_clients() {
    run(|| async {
        let mut h = Harness::start().await;
        let (mut a, a_id) = h.connect("").await;
        let (mut b, b_id) = h.connect("").await;
        let (mut c, c_id) = h.connect("").await;
        assert!(
            h.gateway
                .update_info(&a_id, InfoUpdate::new().customer("c1").topics(["x"]))
        );
        assert!(
            h.gateway
                .update_info(&b_id, InfoUpdate::new().customer("c1"))
        );
        assert!(
            h.gateway
                .update_info(&c_id, InfoUpdate::new().customer("c2"))
        );

        let body = json!({ "uniq_ids": ids_json(&[a_id]), "data": "hello" }).to_string();
        assert_eq!(
            h.command("/api/v1/send", &body).await,
            json!({ "delivered": 1 })
        );
        assert_eq!(recv_text(&mut a).await, "hello");
        // "€😀" in base64: decoded before sending.
        let body = json!({ "uniq_ids": ids_json(&[b_id, c_id]), "data": "4oKs8J+YgA==", "encoding": "base64" });
        assert_eq!(
            h.command("/api/v1/send", &body.to_string()).await["delivered"],
            2
        );
        assert_eq!(recv_text(&mut b).await, "€😀");
        assert_eq!(recv_text(&mut c).await, "€😀");
        let body = r#"{"customer_ids": ["c2", "nobody"], "data": "to c2"}"#;
        assert_eq!(
            h.command("/api/v1/send_to_customers", body).await["delivered"],
            1
        );
        assert_eq!(recv_text(&mut c).await, "to c2");
        assert_eq!(
            h.command("/api/v1/broadcast", r#"{"data": "all"}"#).await["delivered"],
            3
        );
        for client in [&mut a, &mut b, &mut c] {
            assert_eq!(recv_text(client).await, "all");
        }
        let body = r#"{"topics": ["x"], "data": "bmV3cw==", "encoding": "base64"}"#;
        assert_eq!(h.command("/api/v1/publish", body).await["delivered"], 1);
        assert_eq!(recv_text(&mut a).await, "news");

        let body = json!({ "uniq_id": b_id.to_string(), "topics": ["x", "y"], "data": "welcome" });
        assert_eq!(
            h.command("/api/v1/subscribe", &body.to_string()).await,
            json!({ "found": true })
        );
        assert_eq!(recv_text(&mut b).await, "welcome");
        assert_eq!(h.gateway.conn_info(&b_id).unwrap().info.topics, ["x", "y"]);
        assert_eq!(
            h.command("/api/v1/publish", r#"{"topics": ["x"], "data": "two"}"#)
                .await["delivered"],
            2
        );
        assert_eq!(recv_text(&mut a).await, "two");
        assert_eq!(recv_text(&mut b).await, "two");
        let body = json!({ "uniq_id": b_id.to_string(), "topics": ["x"] });
        assert_eq!(
            h.command("/api/v1/unsubscribe", &body.to_string()).await["found"],
            true
        );
        assert_eq!(h.gateway.conn_info(&b_id).unwrap().info.topics, ["y"]);
        assert_eq!(
            h.command("/api/v1/publish", r#"{"topics": ["x"], "data": "one"}"#)
                .await["delivered"],
            1
        );
        assert_eq!(recv_text(&mut a).await, "one");
        let body = r#"{"uniq_id": "7f00000117ae65432100aabbccdd", "topics": ["x"]}"#;
        assert_eq!(h.command("/api/v1/subscribe", body).await["found"], false);

        let body = json!({ "uniq_ids": ids_json(&[a_id]), "data": "bye" }).to_string();
        assert_eq!(
            h.command("/api/v1/kick", &body).await,
            json!({ "kicked": 1 })
        );
        assert_eq!(recv_text(&mut a).await, "bye");
        assert_eq!(recv_close(&mut a).await, 1008);
        assert_eq!(
            h.command("/api/v1/kick", r#"{"customer_ids": ["c2"]}"#)
                .await["kicked"],
            1
        );
        assert_eq!(recv_close(&mut c).await, 1008);
        h.until("kicked clients to go", |g| g.connection_count() == 1)
            .await;
        // b saw nothing it should not have: the next thing it gets is this.
        assert_eq!(
            h.command("/api/v1/broadcast", r#"{"data": "last"}"#).await["delivered"],
            1
        );
        assert_eq!(recv_text(&mut b).await, "last");
    });
}

#[test]
fn bad_requests_are_refused_without_effect() {
    run(|| async {
        let mut h = Harness::start().await;
        let (mut a, a_id) = h.connect("").await;
        let a_text = a_id.to_string();
        let bad: [(&str, String, &str); 9] = [
            ("/api/v1/broadcast", "{\"data\": ".into(), "JSON"),
            (
                "/api/v1/broadcast",
                r#"{"data": "x", "colour": 1}"#.into(),
                "colour",
            ),
            (
                "/api/v1/broadcast",
                r#"{"data": "x", "encoding": "hex"}"#.into(),
                "hex",
            ),
            (
                "/api/v1/broadcast",
                r#"{"data": "@@@", "encoding": "base64"}"#.into(),
                "base64",
            ),
            ("/api/v1/publish", r#"{"data": "x"}"#.into(), "topics"),
            (
                "/api/v1/send",
                format!(r#"{{"uniq_ids": ["{a_text}", "zz"], "data": "x"}}"#),
                "zz",
            ),
            (
                "/api/v1/subscribe",
                r#"{"uniq_id": "short", "topics": ["t"]}"#.into(),
                "short",
            ),
            (
                "/api/v1/subscribe",
                format!(r#"{{"uniq_id": "{a_text}", "topics": [""]}}"#),
                "empty",
            ),
            (
                "/api/v1/kick",
                format!(r#"{{"uniq_ids": ["{a_text}", "x"]}}"#),
                "x",
            ),
        ];
        for (path, body, needle) in &bad {
            let r = h.post(path, body).await;
            assert_eq!(r.status, 400, "{path} {body}: {}", r.text());
            let msg = r.json()["error"].as_str().unwrap().to_owned();
            assert!(msg.contains(needle), "{path} {body}: {msg}");
        }
        let r = http(
            h.admin,
            "POST",
            "/api/v1/broadcast",
            &[("Content-Type", "text/plain")],
            br#"{"data":"x"}"#,
        )
        .await;
        assert_eq!(r.status, 415);
        let r = h.get("/api/v1/broadcast").await;
        assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
        let r = h.post("/api/v1/status", "{}").await;
        assert_eq!((r.status, r.header("allow")), (405, Some("GET")));
        assert_eq!(h.post("/metrics", "{}").await.status, 405);
        assert_eq!(h.post("/healthz", "{}").await.status, 405);
        let r = h.get("/api/v2/nothing").await;
        assert_eq!(r.status, 404);
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap()
                .contains("/api/v2/nothing")
        );
        // Declared too large: refused before reading.
        let head = "POST /api/v1/broadcast HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                    Content-Length: 5000000\r\nConnection: close\r\n\r\n{\"data\":";
        assert_eq!(raw(h.admin, head.as_bytes()).await.status, 413);
        // Streamed too large: cut at the limit.
        let mut req =
            b"POST /api/v1/broadcast HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                .to_vec();
        for _ in 0..5 {
            req.extend_from_slice(format!("{:x}\r\n", 1 << 20).as_bytes());
            req.extend(std::iter::repeat_n(b' ', 1 << 20));
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(raw(h.admin, &req).await.status, 413);

        assert_eq!(
            h.gateway.stats().messages_out,
            0,
            "no bad request sent anything"
        );
        assert_eq!(
            h.command("/api/v1/broadcast", r#"{"data": "marker"}"#)
                .await["delivered"],
            1
        );
        assert_eq!(recv_text(&mut a).await, "marker");
    });
}
