//! Category 7, close handling: a valid close is echoed with its code (an empty one empty)
//! and the server then ends the TCP connection itself; nothing after a close is delivered
//! or answered; bad close payloads fail the connection (1002, or 1007 for a reason that is
//! not UTF-8).

use bytes::Bytes;
use netsvr_core::wire::OpCode;

use crate::common::raw::close;
use crate::support::{Expect, MIB, Split, Suite, echo, fail, part, ping, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_sequences() {
    let big = vec![b'*'; 256 * 1024];
    let cases: Vec<(&str, Vec<Bytes>, Expect)> = vec![
        (
            "7.1.1 text, then close",
            vec![text(b"Hello World!"), close(1000, b"")],
            echo(1000).text(b"Hello World!"),
        ),
        (
            "7.1.2 close, then close again",
            vec![close(1000, b""), close(1000, b"")],
            echo(1000),
        ),
        (
            "7.1.3 close, then ping",
            vec![close(1000, b""), ping(b"Hello World!")],
            echo(1000),
        ),
        (
            "7.1.4 close, then text",
            vec![close(1000, b""), text(b"Hello World!")],
            echo(1000),
        ),
        (
            "7.1.5 text fragment, close, last fragment",
            vec![
                part(OpCode::Text, false, b"fragment1"),
                close(1000, b""),
                part(OpCode::Continuation, true, b"fragment2"),
            ],
            echo(1000),
        ),
        (
            "7.1.6 256 KiB text, ping, close",
            vec![text(&big), ping(b"Hello World!"), close(1000, b"")],
            echo(1000).text(&big).pong(b"Hello World!"),
        ),
        (
            "7.3.1 empty close",
            vec![part(OpCode::Close, true, b"")],
            echo(1005),
        ),
        (
            "7.3.2 close with a 1-byte payload",
            vec![part(OpCode::Close, true, [0x03])],
            fail(1002),
        ),
        (
            "7.3.3 close 1000, no reason",
            vec![close(1000, b"")],
            echo(1000),
        ),
        (
            "7.3.4 close 1000 with a reason",
            vec![close(1000, b"Hello World!")],
            echo(1000),
        ),
        (
            "7.3.5 close 1000 with a 123-byte reason (125 in all)",
            vec![close(1000, &[b'*'; 123])],
            echo(1000),
        ),
        (
            "7.3.6 close 1000 with a 124-byte reason (126 in all)",
            vec![close(1000, &[b'*'; 124])],
            fail(1002),
        ),
        (
            "7.5.1 close reason not UTF-8",
            vec![close(
                1000,
                &[
                    0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0,
                    0x80,
                ],
            )],
            fail(1007),
        ),
        (
            "7.5.x close reason ending mid-sequence",
            vec![close(1001, &[b'x', 0xe2, 0x82])],
            fail(1007),
        ),
        (
            "7.x close 1000 with a multi-byte UTF-8 reason",
            vec![close(1000, "κόσμε €".as_bytes())],
            echo(1000),
        ),
    ];
    let mut suite = Suite::start(MIB).await;
    for (name, frames, expect) in cases {
        for split in [Split::Whole, Split::Frames] {
            let name = format!("{name} ({split:?})");
            suite.case(&name, &frames, split, expect.clone()).await;
        }
    }
}

/// 7.7.x: every code a peer may send is echoed; 7.9.x and 7.13.x: the others are 1002.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_codes() {
    let mut suite = Suite::start(MIB).await;
    let valid = [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000,
        4999,
    ];
    for code in valid {
        let name = format!("7.7.x close code {code}");
        let frames = [close(code, b"")];
        suite.case(&name, &frames, Split::Whole, echo(code)).await;
    }
    let invalid = [
        0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ];
    for code in invalid {
        let name = format!("7.9.x close code {code}");
        let frames = [close(code, b""), ping(b"unanswered")];
        suite.case(&name, &frames, Split::Whole, fail(1002)).await;
    }
}
