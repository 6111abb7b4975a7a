//! End-to-end smoke test: connect, message event, send back, close event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use netsvr_core::EventKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_message_send_close() {
    let mut gw = TestGateway::start(test_config()).await;
    let (mut client, id) = gw.connect().await;
    send_text(&mut client, "hello").await;
    let event = gw.next_event().await;
    match &event.kind {
        EventKind::Message { payload, .. } => assert_eq!(&payload[..], b"hello"),
        other => panic!("{other:?}"),
    }
    assert_eq!(event.uniq_id(), id);
    assert!(gw.gateway.send(&id, "back"));
    assert_eq!(recv_text(&mut client).await, "back");
    client.close(None).await.unwrap();
    let event = gw.next_event().await;
    assert!(matches!(event.kind, EventKind::Close { .. }), "{event:?}");
    assert!(!gw.gateway.is_online(&id));
}
