//! Category 3, reserved bits: with no extension negotiated, a frame with any of RSV1-3 set
//! fails the connection with 1002, whatever its opcode; a message before it is delivered,
//! and nothing after it is answered.

use bytes::Bytes;
use netsvr_core::wire::OpCode;

use crate::common::raw::raw_frame;
use crate::support::{MIB, Split, Suite, fail, part, ping, text};

const FIN: u8 = 0x80;

/// RSV value 1-7 (RSV1 = 4, RSV2 = 2, RSV3 = 1, as Autobahn counts) as first-byte bits.
const fn rsv_bits(rsv: u8) -> u8 {
    rsv << 4
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobahn_reserved_bit_cases() {
    let close_payload = 1000_u16.to_be_bytes();
    let cases: [(&str, Vec<Bytes>, Split, bool); 7] = [
        (
            "3.1 text with RSV = 1",
            vec![raw_frame(FIN | rsv_bits(1) | 0x1, b"Hello")],
            Split::Whole,
            false,
        ),
        (
            "3.2 text, then text with RSV = 2, then ping",
            vec![
                text(b"Hello"),
                raw_frame(FIN | rsv_bits(2) | 0x1, b"Hello"),
                ping(b""),
            ],
            Split::Whole,
            true,
        ),
        (
            "3.3 as 3.2 with RSV = 3, frame-wise",
            vec![
                text(b"Hello"),
                raw_frame(FIN | rsv_bits(3) | 0x1, b"Hello"),
                ping(b""),
            ],
            Split::Frames,
            true,
        ),
        (
            "3.4 as 3.2 with RSV = 4, byte by byte",
            vec![
                text(b"Hello"),
                raw_frame(FIN | rsv_bits(4) | 0x1, b"Hello"),
                ping(b""),
            ],
            Split::Chops(1),
            true,
        ),
        (
            "3.5 binary with RSV = 5",
            vec![raw_frame(FIN | rsv_bits(5) | 0x2, &[0xff; 8])],
            Split::Whole,
            false,
        ),
        (
            "3.6 ping with RSV = 6",
            vec![raw_frame(FIN | rsv_bits(6) | 0x9, b"Hello")],
            Split::Whole,
            false,
        ),
        (
            "3.7 close with RSV = 7",
            vec![raw_frame(FIN | rsv_bits(7) | 0x8, &close_payload)],
            Split::Whole,
            false,
        ),
    ];
    let mut suite = Suite::start(MIB).await;
    for (name, frames, split, hello_first) in cases {
        let expect = if hello_first {
            fail(1002).text(b"Hello")
        } else {
            fail(1002)
        };
        suite.case(name, &frames, split, expect).await;
    }
}

/// Every combination of the three bits on text, binary, ping and close frames, each after
/// a valid message and followed by a ping that must go unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rsv_combination_on_every_frame_kind() {
    let close_payload = 1000_u16.to_be_bytes();
    let kinds: [(&str, u8, &[u8]); 4] = [
        ("text", 0x1, b"abc"),
        ("binary", 0x2, &[0x00, 0xff]),
        ("ping", 0x9, b"p"),
        ("close", 0x8, &close_payload),
    ];
    let mut suite = Suite::start(MIB).await;
    for rsv in 1..=7 {
        for (kind, opcode, payload) in kinds {
            let name = format!("3.x {kind} with RSV = {rsv} after a message");
            let frames = [
                text(b"valid"),
                raw_frame(FIN | rsv_bits(rsv) | opcode, payload),
                ping(b"unanswered"),
            ];
            let expect = fail(1002).text(b"valid");
            suite.case(&name, &frames, Split::Whole, expect).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsv_bits_on_fragments() {
    let mut suite = Suite::start(MIB).await;
    for rsv in [1, 2, 4] {
        let name = format!("3.x continuation with RSV = {rsv}");
        let frames = [
            part(OpCode::Text, false, b"frag"),
            raw_frame(FIN | rsv_bits(rsv), b"ment"),
        ];
        suite.case(&name, &frames, Split::Frames, fail(1002)).await;
        let name = format!("3.x first fragment with RSV = {rsv}");
        let frames = [
            raw_frame(rsv_bits(rsv) | 0x1, b"frag"),
            part(OpCode::Continuation, true, b"ment"),
        ];
        suite.case(&name, &frames, Split::Frames, fail(1002)).await;
    }
}
