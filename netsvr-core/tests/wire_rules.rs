//! Raw-byte wire rules: hand-built client frames and the exact close code each violation earns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::raw::{self, RawConn, close, frame, raw_frame, text};
use common::*;
use netsvr_core::wire::OpCode;
use netsvr_core::{CloseReason, EventKind, MessageKind};

const LIMIT: usize = 1024;

/// A gateway with a 1 KiB message limit and one raw client past the upgrade (its Open
/// event consumed).
async fn setup() -> (TestGateway, RawConn) {
    let mut config = test_config();
    config.max_message_size = LIMIT;
    config.close_timeout = Duration::from_secs(1);
    let mut gw = TestGateway::start(config).await;
    let conn = raw::upgrade(gw.gateway.local_addr(), "/netsvr").await;
    let event = gw.next_event().await;
    assert!(matches!(event.kind, EventKind::Open), "{event:?}");
    (gw, conn)
}

/// The next event must be a Close; returns its reason.
async fn close_reason(gw: &mut TestGateway) -> CloseReason {
    let event = gw.next_event().await;
    match event.kind {
        EventKind::Close { reason } => reason,
        other => panic!("expected Close, got {other:?}"),
    }
}

/// The next event must be a message; returns it.
async fn message(gw: &mut TestGateway) -> (MessageKind, Bytes) {
    let event = gw.next_event().await;
    match event.kind {
        EventKind::Message { kind, payload } => (kind, payload),
        other => panic!("expected Message, got {other:?}"),
    }
}

/// Sends `frames` (as one write), then expects the server's close frame with nothing
/// before it, answers it, and expects the TCP connection to end. Returns the close code
/// and the Close event's reason; asserts no message was delivered.
async fn violation(frames: &[Bytes]) -> (u16, CloseReason) {
    let (mut gw, mut conn) = setup().await;
    conn.send_lossy(&frames.concat()).await;
    let code = conn.expect_close().await.close_code();
    conn.send_lossy(&close(1000, b"")).await;
    conn.expect_eof().await;
    let reason = close_reason(&mut gw).await;
    assert!(gw.events.try_recv().is_none(), "unexpected extra event");
    (code, reason)
}

async fn assert_violation(frames: &[Bytes], code: u16) {
    assert_eq!(
        violation(frames).await,
        (code, CloseReason::ProtocolError(code)),
        "frames {frames:02x?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_answers_with_the_rfc_accept_value() {
    let (mut gw, mut conn) = setup().await;
    conn.send(&text(b"hi")).await;
    assert_eq!(
        message(&mut gw).await,
        (MessageKind::Text, Bytes::from_static(b"hi"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmasked_frame_is_1002() {
    let unmasked = netsvr_core::wire::encode_client_frame_raw(0x81, b"hi", None);
    assert_violation(&[unmasked], 1002).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsv_bits_are_1002() {
    for rsv in [0x40, 0x20, 0x10] {
        assert_violation(&[raw_frame(0x80 | rsv | 0x1, b"hi")], 1002).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_opcodes_are_1002() {
    for opcode in [0x3, 0xB] {
        assert_violation(&[raw_frame(0x80 | opcode, b"x")], 1002).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_frames_over_125_bytes_are_1002() {
    let big = [b'p'; 126];
    assert_violation(&[frame(OpCode::Ping, true, &big)], 1002).await;
    assert_violation(&[frame(OpCode::Pong, true, &big)], 1002).await;
    let mut close_payload = 1000_u16.to_be_bytes().to_vec();
    close_payload.extend_from_slice(&[b'r'; 124]);
    assert_eq!(close_payload.len(), 126);
    assert_violation(&[frame(OpCode::Close, true, &close_payload)], 1002).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmented_ping_is_1002() {
    assert_violation(&[frame(OpCode::Ping, false, b"x")], 1002).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuation_without_start_is_1002() {
    assert_violation(&[frame(OpCode::Continuation, true, b"x")], 1002).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_data_frame_inside_a_fragmented_message_is_1002() {
    let start = frame(OpCode::Text, false, b"a");
    assert_violation(&[start.clone(), text(b"b")], 1002).await;
    assert_violation(&[start, frame(OpCode::Binary, true, b"b")], 1002).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn length_with_top_bit_set_is_1002() {
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(1_u64 << 63).to_be_bytes());
    header.extend_from_slice(&raw::MASK);
    assert_violation(&[Bytes::from(header)], 1002).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limit_counts_every_fragment() {
    let part = [b'a'; 500];
    assert_violation(
        &[
            frame(OpCode::Binary, false, &part),
            frame(OpCode::Continuation, false, &part),
            frame(OpCode::Continuation, true, &part),
        ],
        1009,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_of_exactly_the_limit_is_delivered() {
    let (mut gw, mut conn) = setup().await;
    let whole = vec![b'x'; LIMIT];
    conn.send(&text(&whole)).await;
    assert_eq!(
        message(&mut gw).await,
        (MessageKind::Text, Bytes::from(whole.clone()))
    );
    // The same size in two fragments.
    let (a, b) = whole.split_at(LIMIT / 2);
    conn.send(
        &[
            frame(OpCode::Binary, false, a),
            frame(OpCode::Continuation, true, b),
        ]
        .concat(),
    )
    .await;
    assert_eq!(
        message(&mut gw).await,
        (MessageKind::Binary, Bytes::from(whole))
    );
    conn.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_one_byte_over_the_limit_is_1009() {
    assert_violation(&[text(&[b'x'; LIMIT + 1])], 1009).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_declared_length_is_1009_before_the_payload() {
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(1_u64 << 40).to_be_bytes());
    header.extend_from_slice(&raw::MASK);
    // Nothing of the payload is ever sent: the close must come from the header alone.
    let started = tokio::time::Instant::now();
    assert_violation(&[Bytes::from(header)], 1009).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_text_is_1007() {
    for bad in [
        &[0xff, 0xfe][..],
        &[0xc0, 0xaf],
        &[0xed, 0xa0, 0x80],
        b"ok\x80",
    ] {
        assert_violation(&[text(bad)], 1007).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmented_text_ending_mid_codepoint_is_1007() {
    assert_violation(
        &[
            frame(OpCode::Text, false, b"ab"),
            frame(OpCode::Continuation, true, &[0xe2, 0x82]),
        ],
        1007,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf8_split_across_fragments_is_delivered_intact() {
    let (mut gw, mut conn) = setup().await;
    let euro = "€".as_bytes();
    conn.send(
        &[
            frame(OpCode::Text, false, &[b'a', euro[0]]),
            frame(OpCode::Continuation, false, &euro[1..2]),
            frame(OpCode::Continuation, true, &[euro[2], b'b']),
        ]
        .concat(),
    )
    .await;
    assert_eq!(
        message(&mut gw).await,
        (MessageKind::Text, Bytes::from("a€b"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_close_codes_are_1002() {
    for code in [
        0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        assert_violation(&[close(code, b"")], 1002).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_with_one_byte_payload_is_1002() {
    assert_violation(&[frame(OpCode::Close, true, &[0x03])], 1002).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_with_invalid_utf8_reason_is_1007() {
    assert_violation(&[close(1000, &[b'x', 0xff])], 1007).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_client_close_is_echoed_and_tcp_closed() {
    for (code, reason) in [
        (1000, &b"bye"[..]),
        (1001, b""),
        (3000, b"app"),
        (4999, b""),
    ] {
        let (mut gw, mut conn) = setup().await;
        conn.send(&close(code, reason)).await;
        let echo = conn.expect_close().await;
        assert_eq!(echo.close_code(), code);
        conn.expect_eof().await;
        assert_eq!(close_reason(&mut gw).await, CloseReason::Client(code));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_client_close_is_echoed_empty() {
    let (mut gw, mut conn) = setup().await;
    conn.send(&frame(OpCode::Close, true, b"")).await;
    let echo = conn.expect_close().await;
    assert!(echo.payload.is_empty(), "{echo:?}");
    conn.expect_eof().await;
    assert_eq!(close_reason(&mut gw).await, CloseReason::Client(1005));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_gets_a_pong_with_the_same_payload() {
    let (_gw, mut conn) = setup().await;
    for payload in [&b"ping-1"[..], b"", &[7_u8; 125]] {
        conn.send(&frame(OpCode::Ping, true, payload)).await;
        let pong = conn.read_frame().await.unwrap();
        assert_eq!((pong.fin, pong.opcode), (true, 0xA));
        assert_eq!(pong.payload, payload);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_between_fragments_is_answered_and_the_message_completes() {
    let (mut gw, mut conn) = setup().await;
    conn.send(
        &[
            frame(OpCode::Text, false, b"hel"),
            frame(OpCode::Ping, true, b"mid"),
            frame(OpCode::Continuation, true, b"lo"),
        ]
        .concat(),
    )
    .await;
    let pong = conn.read_frame().await.unwrap();
    assert_eq!((pong.opcode, pong.payload.as_slice()), (0xA, &b"mid"[..]));
    assert_eq!(
        message(&mut gw).await,
        (MessageKind::Text, Bytes::from("hello"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_pipelined_with_the_upgrade_request_are_processed() {
    let mut gw = TestGateway::start(test_config()).await;
    let pipelined = [
        text(b"early"),
        frame(OpCode::Ping, true, b"p"),
        frame(OpCode::Binary, true, b"second"),
    ]
    .concat();
    let conn = RawConn::connect(gw.gateway.local_addr()).await;
    let mut conn = raw::upgrade_with(conn, "/netsvr", "", &pipelined).await;
    assert!(matches!(gw.next_event().await.kind, EventKind::Open));
    assert_eq!(
        message(&mut gw).await,
        (MessageKind::Text, Bytes::from("early"))
    );
    assert_eq!(
        message(&mut gw).await,
        (MessageKind::Binary, Bytes::from("second"))
    );
    let pong = conn.read_frame().await.unwrap();
    assert_eq!((pong.opcode, pong.payload.as_slice()), (0xA, &b"p"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_written_one_byte_at_a_time_is_reassembled() {
    let (mut gw, mut conn) = setup().await;
    // 300 bytes: a 16-bit length, so the header itself is split too.
    let payload: Vec<u8> = (0..300_u32).map(|i| b'a' + (i % 26) as u8).collect();
    let bytes = [
        frame(OpCode::Text, false, &payload[..100]),
        frame(OpCode::Continuation, true, &payload[100..]),
    ]
    .concat();
    for byte in bytes.iter() {
        conn.send(std::slice::from_ref(byte)).await;
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    assert_eq!(
        message(&mut gw).await,
        (MessageKind::Text, Bytes::from(payload))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_error_after_valid_messages_keeps_their_events() {
    let (mut gw, mut conn) = setup().await;
    conn.send(&[text(b"one"), raw_frame(0x80 | 0x3, b""), text(b"never")].concat())
        .await;
    assert_eq!(
        message(&mut gw).await,
        (MessageKind::Text, Bytes::from("one"))
    );
    let closing = conn.expect_close().await;
    assert_eq!(closing.close_code(), 1002);
    assert!(!closing.close_reason().is_empty());
    conn.send_lossy(&close(1002, b"")).await;
    conn.expect_eof().await;
    assert_eq!(
        close_reason(&mut gw).await,
        CloseReason::ProtocolError(1002)
    );
}
