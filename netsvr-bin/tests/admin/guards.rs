//! What guards and reports on the port: the bearer token, readiness (sinks and shutdown)
//! and the status page.

use std::sync::Arc;

use netsvr_core::{ChannelSink, EventSink, FanoutSink};
use serde_json::json;

use crate::support::*;

#[test]
fn token_guards_everything_but_the_probes() {
    run(|| async {
        let token = "s3cret-T0ken";
        let h = Harness::start_with(gateway_config(), Some(token)).await;
        let open = |path: &'static str| http(h.admin, "GET", path, &[], b"");
        let r = open("/healthz").await;
        assert_eq!((r.status, r.text()), (200, "ok".to_owned()));
        assert_eq!(open("/readyz").await.status, 200);
        for path in [
            "/",
            "/metrics",
            "/api/v1/status",
            "/api/v1/connections",
            "/api/v1/topics",
            "/nothing",
        ] {
            let r = open(path).await;
            assert_eq!(r.status, 401, "{path}");
            assert!(
                r.header("www-authenticate").unwrap().starts_with("Bearer"),
                "{path}"
            );
            for wrong in [
                "Bearer wrong",
                "Bearer s3cret-T0ke",
                "Bearer s3cret-T0kenX",
                "Basic s3cret-T0ken",
            ] {
                let r = http(h.admin, "GET", path, &[("Authorization", wrong)], b"").await;
                assert_eq!(r.status, 401, "{path} {wrong}");
            }
        }
        let r = http(
            h.admin,
            "POST",
            "/api/v1/broadcast",
            &[("Content-Type", "application/json")],
            br#"{"data":"x"}"#,
        )
        .await;
        assert_eq!(r.status, 401);
        assert_eq!(h.get("/api/v1/status").await.status, 200);
        assert_eq!(h.get("/metrics").await.status, 200);
        assert_eq!(h.get("/").await.status, 200);
        assert_eq!(h.get("/nothing").await.status, 404);
        assert_eq!(
            h.command("/api/v1/broadcast", r#"{"data": "x"}"#).await["delivered"],
            0
        );
        // The page alone takes the token as a query parameter.
        assert_eq!(open("/?token=s3cret-T0ken").await.status, 200);
        assert_eq!(open("/?token=wrong").await.status, 401);
        assert_eq!(open("/api/v1/status?token=s3cret-T0ken").await.status, 401);
    });
}

#[test]
fn readyz_follows_sinks_and_shutdown() {
    run(|| async {
        let (kept, _events) = ChannelSink::named("kept", 16);
        let (doomed, receiver) = ChannelSink::named("doomed", 16);
        drop(receiver); // a sink whose reader is gone reports itself unhealthy
        let sinks: Vec<Arc<dyn EventSink>> = vec![Arc::new(kept), Arc::new(doomed)];
        let h = Harness::start_sink(gateway_config(), FanoutSink::new(sinks), None).await;
        let r = h.get("/readyz").await;
        assert_eq!(r.status, 503);
        let body = r.json();
        assert_eq!(body["unhealthy_sinks"], json!(["doomed"]), "{body}");
        assert!(body["reason"].as_str().unwrap().contains("doomed"));
        let s = h.get_json("/api/v1/status").await;
        assert_eq!(s["sinks"][0]["healthy"], true);
        assert_eq!(s["sinks"][1]["healthy"], false);
        assert_eq!(
            h.get("/healthz").await.status,
            200,
            "alive though not ready"
        );

        let mut h = Harness::start().await;
        assert_eq!(h.get("/readyz").await.json(), json!({ "ready": true }));
        let (mut client, _) = h.connect("").await;
        let gateway = h.gateway.clone();
        let shutdown = tokio::spawn(async move { gateway.shutdown().await });
        h.until("the drain to start", |g| g.is_shutting_down())
            .await;
        let r = h.get("/readyz").await;
        assert_eq!(r.status, 503);
        assert_eq!(r.json()["reason"], "shutting down");
        assert_eq!(h.get_json("/api/v1/status").await["shutting_down"], true);
        assert!(
            !h.serve.is_finished(),
            "the port answers while the gateway drains"
        );
        // Read the sink so the drain's flush completes at once.
        let mut events = h.events.take().unwrap();
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        assert_eq!(recv_close(&mut client).await, 1001);
        drop(client);
        tokio::time::timeout(WAIT, shutdown).await.unwrap().unwrap();
        tokio::time::timeout(WAIT, &mut h.serve)
            .await
            .expect("admin serve ends after stop")
            .unwrap();
        assert!(
            tokio::net::TcpStream::connect(h.admin).await.is_err(),
            "listener closed"
        );
    });
}

#[test]
fn status_page_is_self_contained() {
    run(|| async {
        let h = Harness::start().await;
        let r = h.get("/").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(
            r.header("content-security-policy")
                .unwrap()
                .contains("default-src 'none'")
        );
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
        let page = r.text();
        for needle in [
            "<script>",
            "fetch(\"/api/v1/status\"",
            "setInterval(refresh, 2000)",
            "Authorization",
            "sinks",
        ] {
            assert!(page.contains(needle), "page lacks {needle}");
        }
        for external in ["src=\"http", "href=\"http", "@import", "url("] {
            assert!(!page.contains(external), "page loads {external}");
        }
        assert!(
            !page.contains("innerHTML"),
            "server data goes in as text only"
        );
    });
}
