//! Category 4, opcodes: the reserved non-control opcodes 3-7 (4.1.x) and control opcodes
//! 0xB-0xF (4.2.x) fail the connection with 1002, alone, after a valid message (which is
//! still delivered), with or without FIN, and inside a fragmented message.

use bytes::Bytes;
use netsvr_core::wire::OpCode;

use crate::common::raw::raw_frame;
use crate::support::{MIB, Split, Suite, fail, part, ping, text};

const FIN: u8 = 0x80;

/// Autobahn's five cases for one group of reserved opcodes.
fn autobahn_cases(section: &str, opcodes: [u8; 5]) -> Vec<(String, Vec<Bytes>, bool)> {
    let [a, b, c, d, e] = opcodes;
    vec![
        (
            format!("{section}.1 opcode {a}, no payload"),
            vec![raw_frame(FIN | a, b"")],
            false,
        ),
        (
            format!("{section}.2 opcode {b} with a payload"),
            vec![raw_frame(FIN | b, b"reserved opcode")],
            false,
        ),
        (
            format!("{section}.3 text, opcode {c}, ping"),
            vec![text(b"Hello"), raw_frame(FIN | c, b""), ping(b"")],
            true,
        ),
        (
            format!("{section}.4 text, opcode {d} with a payload, ping"),
            vec![text(b"Hello"), raw_frame(FIN | d, b"reserved"), ping(b"")],
            true,
        ),
        (
            format!("{section}.5 text, opcode {e} with a payload, ping"),
            vec![text(b"Hello"), raw_frame(FIN | e, b"reserved"), ping(b"")],
            true,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobahn_reserved_opcode_cases() {
    let mut suite = Suite::start(MIB).await;
    let mut cases = autobahn_cases("4.1", [3, 4, 5, 6, 7]);
    cases.extend(autobahn_cases("4.2", [0xb, 0xc, 0xd, 0xe, 0xf]));
    for (name, frames, hello_first) in cases {
        for split in [Split::Whole, Split::Frames] {
            let expect = if hello_first {
                fail(1002).text(b"Hello")
            } else {
                fail(1002)
            };
            let name = format!("{name} ({split:?})");
            suite.case(&name, &frames, split, expect).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reserved_opcode_everywhere() {
    let mut suite = Suite::start(MIB).await;
    for opcode in (3..=7).chain(0xb..=0xf) {
        let name = format!("4.x opcode {opcode:#x} after a binary message");
        let frames = [
            part(OpCode::Binary, true, b"ok"),
            raw_frame(FIN | opcode, b"x"),
        ];
        let expect = fail(1002).binary(b"ok");
        suite.case(&name, &frames, Split::Whole, expect).await;

        let name = format!("4.x opcode {opcode:#x} without FIN");
        let frames = [raw_frame(opcode, b"x"), ping(b"unanswered")];
        suite.case(&name, &frames, Split::Whole, fail(1002)).await;

        let name = format!("4.x opcode {opcode:#x} inside a fragmented message");
        let frames = [
            part(OpCode::Text, false, b"frag"),
            raw_frame(FIN | opcode, b""),
            part(OpCode::Continuation, true, b"ment"),
        ];
        suite.case(&name, &frames, Split::Whole, fail(1002)).await;
    }
}
