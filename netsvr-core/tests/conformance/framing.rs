//! Category 1, framing: text (1.1.x) and binary (1.2.x) messages of every length class
//! (7-bit, 16-bit and 64-bit length fields and their boundaries), written whole, chopped
//! and byte by byte; masking and length-field rules; frames pipelined with the upgrade.

use bytes::Bytes;
use netsvr_core::EventKind;
use netsvr_core::wire::{OpCode, encode_client_frame_raw};

use crate::common::raw::{self, RawConn};
use crate::support::{MIB, Split, Suite, binary, fail, open, ping, text, write};

/// The payload lengths of 1.1.1-1.1.7 (and 1.2.1-1.2.7): the edges of each length encoding.
const LENGTHS: [usize; 7] = [0, 125, 126, 127, 128, 65535, 65536];

/// Every length, whole; the 16/64-bit ones also in 997-byte chops (1.1.8); the short ones
/// also byte by byte, so the header itself arrives in pieces.
async fn lengths(opcode: OpCode) {
    let mut suite = Suite::start(MIB).await;
    let (section, fill) = match opcode {
        OpCode::Text => ("1.1", b'*'),
        _ => ("1.2", 0xfe),
    };
    for (i, len) in LENGTHS.iter().copied().enumerate() {
        let payload = vec![fill; len];
        let (frames, expect) = match opcode {
            OpCode::Text => (vec![text(&payload)], open().text(&payload)),
            _ => (vec![binary(&payload)], open().binary(&payload)),
        };
        let name = format!("{section}.{} ({len} bytes)", i + 1);
        suite
            .case(&name, &frames, Split::Whole, expect.clone())
            .await;
        if len > 125 {
            let chopped = format!("{name}, chopped in 997 bytes (as {section}.8)");
            suite
                .case(&chopped, &frames, Split::Chops(997), expect.clone())
                .await;
        }
        if len <= 128 {
            let bytewise = format!("{name}, byte by byte");
            suite
                .case(&bytewise, &frames, Split::Chops(1), expect)
                .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_messages_of_every_length_class() {
    lengths(OpCode::Text).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_messages_of_every_length_class() {
    lengths(OpCode::Binary).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_violations_fail_the_connection() {
    let mut suite = Suite::start(MIB).await;
    // RFC 6455 5.1: a server must fail a connection on an unmasked client frame.
    let unmasked = encode_client_frame_raw(0x81, b"hi", None);
    suite
        .case("1.x unmasked text", &[unmasked], Split::Whole, fail(1002))
        .await;
    let unmasked_ping = encode_client_frame_raw(0x89, b"", None);
    let cases = [text(b"before"), unmasked_ping];
    let expect = fail(1002).text(b"before");
    suite
        .case(
            "1.x unmasked ping after a message",
            &cases,
            Split::Frames,
            expect,
        )
        .await;
    // RFC 6455 5.2: the most significant bit of a 64-bit length must be 0.
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(1_u64 << 63).to_be_bytes());
    header.extend_from_slice(&raw::MASK);
    suite
        .case(
            "1.x 64-bit length with the top bit set",
            &[Bytes::from(header)],
            Split::Whole,
            fail(1002),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_back_to_back_in_one_write_are_each_delivered() {
    let mut suite = Suite::start(MIB).await;
    let big = vec![b'b'; 70_000];
    let frames = [
        text(b"one"),
        binary(&big),
        text(b""),
        ping(b"p"),
        text(b"two"),
    ];
    let expect = open()
        .text(b"one")
        .binary(&big)
        .text(b"")
        .pong(b"p")
        .text(b"two");
    suite
        .case(
            "1.x five frames in one write",
            &frames,
            Split::Whole,
            expect.clone(),
        )
        .await;
    suite
        .case(
            "1.x five frames in 1000-byte chops",
            &frames,
            Split::Chops(1000),
            expect,
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_pipelined_with_the_upgrade_request_are_processed() {
    let mut suite = Suite::start(MIB).await;
    let pipelined = [text(b"early"), ping(b"p"), binary(b"second")].concat();
    let conn = RawConn::connect(suite.gw.gateway.local_addr()).await;
    let conn = raw::upgrade_with(conn, "/netsvr", "", &pipelined).await;
    let event = suite.gw.next_event().await;
    assert!(matches!(event.kind, EventKind::Open), "{event:?}");
    let expect = open().text(b"early").binary(b"second").pong(b"p");
    suite
        .react(
            "1.x frames pipelined with the upgrade",
            conn,
            event.uniq_id(),
            expect,
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_carries_many_messages() {
    let mut suite = Suite::start(MIB).await;
    let (mut conn, id) = suite.connect().await;
    let mut expect = open();
    let mut frames = Vec::new();
    for i in 0..100_u32 {
        let payload = format!("message {i}");
        frames.push(text(&payload));
        expect = expect.text(payload);
    }
    write(&mut conn, &frames, Split::Frames).await;
    suite
        .react("1.x 100 messages in a row", conn, id, expect)
        .await;
}
