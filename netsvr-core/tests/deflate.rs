//! permessage-deflate (RFC 7692) on the wire, with hand-built frames: negotiation, inbound
//! inflation within the size limit, and a fan-out whose compressed frame is shared.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use flate2::{Compress, Compression, FlushCompress};
use netsvr_core::deflate::{Deflater, Inflater};
use netsvr_core::wire::OpCode;
use netsvr_core::{DeflateConfig, EventKind, GatewayConfig, MessageKind, UniqId};

use common::raw::{RawConn, frame, raw_frame, upgrade_request};
use common::{TestGateway, test_config};

const OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;

fn config(deflate: DeflateConfig) -> GatewayConfig {
    let mut config = test_config();
    config.max_message_size = 64 * 1024;
    config.close_timeout = Duration::from_millis(500);
    config.deflate = deflate;
    config
}

/// Upgrades with `extra` headers; returns the client, the answered extension and its uniqId.
async fn connect(gw: &mut TestGateway, extra: &str) -> (RawConn, Option<String>, UniqId) {
    let mut conn = RawConn::connect(gw.gateway.local_addr()).await;
    let head = conn.request(&upgrade_request("/netsvr", extra)).await;
    assert_eq!(head.status, 101, "{}", head.text);
    let extension = head.header("sec-websocket-extensions").map(str::to_owned);
    conn.deflate = extension.is_some();
    let event = gw.next_event().await;
    assert!(matches!(event.kind, EventKind::Open), "{event:?}");
    let id = event.conn.meta.uniq_id;
    (conn, extension, id)
}

/// A compressible text of `n` bytes.
fn sample(n: usize) -> String {
    "netsvr says hello to every subscriber; "
        .chars()
        .cycle()
        .take(n)
        .collect()
}

fn deflate(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    assert!(Deflater::new(6, 15).compress_into(payload, &mut out, true));
    out
}

async fn next_message(gw: &mut TestGateway) -> (MessageKind, Vec<u8>) {
    match gw.next_event().await.kind {
        EventKind::Message { kind, payload } => (kind, payload.to_vec()),
        other => panic!("expected a Message, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiation_answers_offers_and_honours_the_off_switch() {
    let mut gw = TestGateway::start(config(DeflateConfig::default())).await;
    let (_a, answer, _) = connect(&mut gw, OFFER).await;
    assert_eq!(
        answer.as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
    let (_b, answer, _) = connect(&mut gw, "").await;
    assert_eq!(answer, None, "no offer, no extension");
    let bad = "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8, \
               permessage-deflate; server_max_window_bits=12\r\n";
    let (_c, answer, _) = connect(&mut gw, bad).await;
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.ends_with("server_max_window_bits=12")),
        "{answer:?}"
    );
    assert_eq!(gw.gateway.stats().deflate_connections, 2);

    let mut off = DeflateConfig::default();
    off.enabled = false;
    let mut gw = TestGateway::start(config(off)).await;
    let (mut d, answer, _) = connect(&mut gw, OFFER).await;
    assert_eq!(answer, None, "switched off");
    // Without the extension, RSV1 is a protocol error.
    d.send(&raw_frame(
        FIN | RSV1 | 0x1,
        &deflate(sample(300).as_bytes()),
    ))
    .await;
    assert_eq!(d.expect_close().await.close_code(), 1002);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_messages_are_inflated_whole_or_fragmented() {
    let mut gw = TestGateway::start(config(DeflateConfig::default())).await;
    let (mut c, _, _) = connect(&mut gw, OFFER).await;
    let text = sample(20_000);
    c.send(&raw_frame(FIN | RSV1 | 0x1, &deflate(text.as_bytes())))
        .await;
    assert_eq!(
        next_message(&mut gw).await,
        (MessageKind::Text, text.clone().into_bytes())
    );
    // Fragmented: RSV1 on the first frame only.
    let packed = deflate(&[7_u8; 9_000]);
    let (head, tail) = packed.split_at(packed.len() / 2);
    let mut bytes = raw_frame(RSV1 | 0x2, head).to_vec();
    bytes.extend_from_slice(&frame(OpCode::Continuation, true, tail));
    c.send(&bytes).await;
    assert_eq!(
        next_message(&mut gw).await,
        (MessageKind::Binary, vec![7_u8; 9_000])
    );
    // An uncompressed message between them is fine too (RSV1 is per message).
    c.send(&frame(OpCode::Text, true, b"plain")).await;
    assert_eq!(
        next_message(&mut gw).await,
        (MessageKind::Text, b"plain".to_vec())
    );
    // RSV1 on a continuation frame is a protocol error.
    let mut bytes = frame(OpCode::Text, false, b"a").to_vec();
    bytes.extend_from_slice(&raw_frame(FIN | RSV1, b"b"));
    c.send(&bytes).await;
    assert_eq!(c.expect_close().await.close_code(), 1002);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_compressed_input_closes_with_the_right_code() {
    let mut gw = TestGateway::start(config(DeflateConfig::default())).await;
    // A bomb: 16 MiB of zeros in a few KiB, against a 64 KiB limit.
    let bomb = deflate(&vec![0_u8; 16 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024);
    let (mut c, _, _) = connect(&mut gw, OFFER).await;
    c.send(&raw_frame(FIN | RSV1 | 0x2, &bomb)).await;
    let close = c.expect_close().await;
    assert_eq!(close.close_code(), 1009, "{}", close.close_reason());
    // Exactly at the limit inflates.
    let (mut c, _, _) = connect(&mut gw, OFFER).await;
    let exact = sample(64 * 1024);
    c.send(&raw_frame(FIN | RSV1 | 0x1, &deflate(exact.as_bytes())))
        .await;
    assert_eq!(next_message(&mut gw).await.1.len(), 64 * 1024);
    // Invalid UTF-8 once inflated.
    c.send(&raw_frame(FIN | RSV1 | 0x1, &deflate(&[0xff; 400])))
        .await;
    assert_eq!(c.expect_close().await.close_code(), 1007);
    // Not deflate data at all.
    let (mut c, _, _) = connect(&mut gw, OFFER).await;
    c.send(&raw_frame(
        FIN | RSV1 | 0x2,
        &[0xff, 0xff, 0xff, 0xff, 0x00],
    ))
    .await;
    assert_eq!(c.expect_close().await.close_code(), 1007);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_context_takeover_when_allowed() {
    let mut keep = DeflateConfig::default();
    keep.client_context_takeover = true;
    let mut gw = TestGateway::start(config(keep)).await;
    let (mut c, answer, _) = connect(&mut gw, OFFER).await;
    assert_eq!(
        answer.as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    // The client keeps one compressor: the second message refers back into the first.
    let mut compressor = Compress::new(Compression::new(6), false);
    let text = sample(3_000);
    for _ in 0..3 {
        let mut out = Vec::with_capacity(8_192);
        compressor
            .compress_vec(text.as_bytes(), &mut out, FlushCompress::Sync)
            .unwrap();
        out.truncate(out.len() - 4);
        c.send(&raw_frame(FIN | RSV1 | 0x1, &out)).await;
        assert_eq!(next_message(&mut gw).await.1, text.as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_shares_one_compressed_frame() {
    let mut gw = TestGateway::start(config(DeflateConfig::default())).await;
    let (mut a, _, id_a) = connect(&mut gw, OFFER).await;
    let (mut b, _, id_b) = connect(&mut gw, OFFER).await;
    let (mut plain, _, id_plain) = connect(&mut gw, "").await;
    let text = sample(4_000);
    assert_eq!(gw.gateway.broadcast(&text), 3);
    let fa = a.read_frame().await.unwrap();
    let fb = b.read_frame().await.unwrap();
    let fp = plain.read_frame().await.unwrap();
    assert!(fa.rsv1 && fb.rsv1 && !fp.rsv1);
    assert_eq!(fa.payload, fb.payload, "the same compressed bytes for both");
    assert!(fa.payload.len() < text.len() / 10, "{}", fa.payload.len());
    assert_eq!(fp.payload, text.as_bytes());
    let inflated = Inflater::new().inflate(&fa.payload, 1 << 20, true).unwrap();
    assert_eq!(inflated, text.as_bytes());
    // Small messages go plain to everyone (min_size 256).
    gw.gateway.broadcast("short");
    for conn in [&mut a, &mut b, &mut plain] {
        let f = conn.read_frame().await.unwrap();
        assert!(!f.rsv1);
        assert_eq!(f.payload, b"short");
    }
    // A single send and a topic publish are compressed for a deflate client too.
    assert!(
        gw.gateway
            .send_as(&id_a, MessageKind::Binary, vec![1_u8; 1_000])
    );
    let f = a.read_frame().await.unwrap();
    assert!(f.rsv1 && f.opcode == 0x2 && f.payload.len() < 100, "{f:?}");
    gw.gateway.subscribe(&id_b, &["news"], None);
    gw.gateway.subscribe(&id_plain, &["news"], None);
    assert_eq!(gw.gateway.publish(&["news"], &text), 2);
    assert_eq!(b.read_frame().await.unwrap().payload, fa.payload);
    assert_eq!(plain.read_frame().await.unwrap().payload, text.as_bytes());
    assert_eq!(gw.gateway.stats().deflate_connections, 2);
}

/// `n` bytes that deflate cannot shrink.
fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incompressible_messages_go_plain_unless_told_otherwise() {
    let mut gw = TestGateway::start(config(DeflateConfig::default())).await;
    let (mut c, _, _) = connect(&mut gw, OFFER).await;
    let data = noise(2_000);
    gw.gateway.broadcast(&data);
    let f = c.read_frame().await.unwrap();
    assert!(!f.rsv1, "sent plain: compression would not shrink it");
    assert_eq!(f.payload, data);

    let mut all = DeflateConfig::default();
    all.min_size = 0;
    all.skip_incompressible = false;
    let mut gw = TestGateway::start(config(all)).await;
    let (mut c, _, _) = connect(&mut gw, OFFER).await;
    for payload in [data, b"hi".to_vec()] {
        gw.gateway.broadcast(&payload);
        let f = c.read_frame().await.unwrap();
        assert!(f.rsv1, "every message compressed");
        let back = Inflater::new().inflate(&f.payload, 1 << 20, true).unwrap();
        assert_eq!(back, payload);
    }
}
