//! `FnSink` runs business logic inline on the connection task; `WeakGateway` lets it call
//! back into the gateway without keeping it alive.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, OnceLock};

use common::*;
use netsvr_core::{EventKind, FnSink, Gateway, WeakGateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_echo_through_a_weak_handle() {
    let slot: Arc<OnceLock<WeakGateway>> = Arc::default();
    let sink = FnSink::new({
        let slot = slot.clone();
        move |event| {
            let Some(gateway) = slot.get().and_then(WeakGateway::upgrade) else {
                return;
            };
            if let EventKind::Message { kind, payload } = event.kind {
                let mut reply = b"echo:".to_vec();
                reply.extend_from_slice(&payload);
                gateway.send_as(&event.conn.meta.uniq_id, kind, reply);
            }
        }
    });
    let (gateway, serve) = Gateway::builder()
        .config(test_config())
        .sink(sink)
        .build()
        .unwrap();
    slot.set(gateway.downgrade()).unwrap();
    tokio::spawn(serve);
    let url = format!("ws://{}/netsvr", gateway.local_addr());
    let (mut client, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    for n in 0..50 {
        send_text(&mut client, &n.to_string()).await;
    }
    for n in 0..50 {
        assert_eq!(recv_text(&mut client).await, format!("echo:{n}"));
    }
    assert_eq!(gateway.sink_status().len(), 0, "FnSink reports no status");
    let weak = gateway.downgrade();
    assert!(weak.upgrade().is_some());
}

#[test]
fn a_weak_handle_does_not_keep_the_gateway_alive() {
    let (gateway, serve) = Gateway::builder().config(test_config()).build().unwrap();
    let weak = gateway.downgrade();
    drop(serve);
    assert!(weak.upgrade().is_some());
    drop(gateway);
    assert!(weak.upgrade().is_none());
}
