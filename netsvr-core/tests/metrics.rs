//! The gateway's metrics: every documented name is registered, and traffic moves them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use netsvr_core::metrics as names;
use netsvr_core::{ChannelSink, EventKind, Gateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// name{label=value,...} → value, for counters and gauges; histograms → sample count.
fn snapshot(snapshotter: &metrics_util::debugging::Snapshotter) -> HashMap<String, f64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let name = if labels.is_empty() {
                key.name().to_owned()
            } else {
                format!("{}{{{}}}", key.name(), labels.join(","))
            };
            let value = match value {
                DebugValue::Counter(c) => c as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(h) => h.len() as f64,
            };
            (name, value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_registered_and_count_traffic() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (gateway, serve, mut events) = metrics::with_local_recorder(&recorder, || {
        let (sink, events) = ChannelSink::named("test", 1024);
        let (gateway, serve) = Gateway::builder()
            .config(test_config())
            .sink(sink)
            .build()
            .unwrap();
        (gateway, serve, events)
    });
    tokio::spawn(serve);
    let before = snapshot(&snapshotter);
    for name in [
        names::CONNECTIONS,
        names::OPENS_TOTAL,
        names::MESSAGES_IN_TOTAL,
        names::BYTES_IN_TOTAL,
        names::HEARTBEATS_TOTAL,
        names::MESSAGES_OUT_TOTAL,
        names::BYTES_OUT_TOTAL,
        names::HANDSHAKE_SECONDS,
        names::FANOUT_SECONDS,
        "netsvr_closes_total{reason=client}",
        "netsvr_handshakes_refused_total{reason=path}",
        "netsvr_fanout_deliveries_total{kind=broadcast}",
        "netsvr_drops_total{reason=slow_consumer}",
        "netsvr_sink_delivered_total{sink=test}",
        "netsvr_sink_queue_depth{sink=test}",
    ] {
        assert!(
            before.contains_key(name),
            "{name} not registered: {before:?}"
        );
    }

    // A refused handshake (wrong path) is counted by reason.
    let mut raw = tokio::net::TcpStream::connect(gateway.local_addr())
        .await
        .unwrap();
    raw.write_all(b"GET /elsewhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    raw.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 404"));

    let url = format!("ws://{}/netsvr", gateway.local_addr());
    let (mut client, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let open = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(open.kind, EventKind::Open));
    send_text(&mut client, "hello").await;
    send_text(&mut client, "~6YOt5rW35piO~").await;
    let message = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(message.kind, EventKind::Message { .. }));
    assert_eq!(gateway.broadcast("to all"), 1);
    assert_eq!(recv_text(&mut client).await, "to all");
    client.close(None).await.unwrap();
    let close = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(close.kind, EventKind::Close { .. }));

    let after = snapshot(&snapshotter);
    let get = |name: &str| after.get(name).copied().unwrap_or(-1.0);
    assert_eq!(get(names::OPENS_TOTAL), 1.0);
    assert_eq!(get(names::CONNECTIONS), 0.0);
    assert_eq!(get("netsvr_closes_total{reason=client}"), 1.0);
    assert_eq!(get("netsvr_handshakes_refused_total{reason=path}"), 1.0);
    assert_eq!(get(names::MESSAGES_IN_TOTAL), 1.0);
    assert_eq!(get(names::BYTES_IN_TOTAL), 5.0);
    assert_eq!(get(names::HEARTBEATS_TOTAL), 1.0);
    assert_eq!(get("netsvr_fanout_deliveries_total{kind=broadcast}"), 1.0);
    assert_eq!(get(names::MESSAGES_OUT_TOTAL), 1.0);
    // "to all" as a text frame is 8 bytes; the close echo adds 4 more.
    assert!(get(names::BYTES_OUT_TOTAL) >= 8.0, "{after:?}");
    assert_eq!(get(names::HANDSHAKE_SECONDS), 1.0);
    assert_eq!(get(names::FANOUT_SECONDS), 1.0);
    assert_eq!(get("netsvr_sink_delivered_total{sink=test}"), 3.0);
}
