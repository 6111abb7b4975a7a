//! `/metrics`: values that follow the traffic, names documented = names exported, and
//! `promtool check metrics`.

use crate::support::*;

/// Every metric name documented in `netsvr_core::metrics` (and the admin port's own
/// runtime gauge), and whether a gateway with a `ChannelSink` registers it at build (the
/// rest belong to buffered sinks and the worker).
const DOCUMENTED: [(&str, bool); 19] = {
    use netsvr_core::metrics::*;
    [
        (CONNECTIONS, true),
        (OPENS_TOTAL, true),
        (CLOSES_TOTAL, true),
        (HANDSHAKES_REFUSED_TOTAL, true),
        (MESSAGES_IN_TOTAL, true),
        (BYTES_IN_TOTAL, true),
        (HEARTBEATS_TOTAL, true),
        (MESSAGES_OUT_TOTAL, true),
        (BYTES_OUT_TOTAL, true),
        (FANOUT_DELIVERIES_TOTAL, true),
        (DROPS_TOTAL, true),
        (HANDSHAKE_SECONDS, true),
        (FANOUT_SECONDS, true),
        (SINK_QUEUE_DEPTH, true),
        (SINK_DELIVERED_TOTAL, true),
        (SINK_RETRIED_TOTAL, false),
        (SINK_DELIVERY_SECONDS, false),
        (SINK_FAILED_TOTAL, false),
        (netsvr_bin::admin::TOKIO_ALIVE_TASKS, true),
    ]
};

#[test]
fn metrics_page_counts_and_names() {
    run(|| async {
        let mut h = Harness::start().await;
        let before = h.get("/metrics").await.text();
        let base = |series: &str| sample(&before, series).unwrap_or(0.0);
        let (conns0, opens0) = (base("netsvr_connections"), base("netsvr_opens_total"));
        let closes0 = base("netsvr_closes_total{reason=\"client\"}");
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(h.connect("").await.0);
        }
        assert_eq!(h.gateway.broadcast("tick"), 3);
        let r = h.get("/metrics").await;
        assert_eq!(r.status, 200);
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let page = r.text();
        assert_eq!(
            sample(&page, "netsvr_connections"),
            Some(conns0 + 3.0),
            "{page}"
        );
        assert_eq!(sample(&page, "netsvr_opens_total"), Some(opens0 + 3.0));
        // At least the three connections' tasks and the admin port's own are alive.
        let alive = sample(&page, "netsvr_tokio_alive_tasks").unwrap_or(0.0);
        assert!(alive >= 4.0, "netsvr_tokio_alive_tasks {alive}:\n{page}");
        let mut last = clients.pop().unwrap();
        last.close(None).await.unwrap();
        h.until("a client to close", |g| g.connection_count() == 2)
            .await;
        let page = h.get("/metrics").await.text();
        assert_eq!(sample(&page, "netsvr_connections"), Some(conns0 + 2.0));
        assert_eq!(sample(&page, "netsvr_opens_total"), Some(opens0 + 3.0));
        assert_eq!(
            sample(&page, "netsvr_closes_total{reason=\"client\"}"),
            Some(closes0 + 1.0)
        );

        // Names documented = names exported: every family on the page is documented (with
        // its help text), and every documented name a gateway registers at build is there.
        let families: Vec<&str> = page
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .filter(|n| n.starts_with("netsvr_"))
            .collect();
        for family in &families {
            assert!(
                DOCUMENTED.iter().any(|(n, _)| n == family),
                "{family} is not documented"
            );
            assert!(
                page.contains(&format!("# HELP {family} ")),
                "{family} has no help"
            );
        }
        for (name, registered) in DOCUMENTED {
            if registered {
                assert!(
                    families.contains(&name),
                    "{name} missing from /metrics:\n{page}"
                );
            }
        }
        promtool_check(&page).await;
    });
}

/// `promtool check metrics` on the page, when promtool is installed (required under CI).
async fn promtool_check(page: &str) {
    use tokio::io::AsyncWriteExt;
    let spawned = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool is required under CI (apt-get install prometheus)"
            );
            eprintln!("SKIPPED: promtool check metrics (promtool not installed)");
            return;
        }
        Err(e) => panic!("running promtool: {e}"),
    };
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(page.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
