//! Category 5, fragmentation: data messages in 1..N fragments (empty ones included) are
//! reassembled; control frames may interleave and are answered at once; fragmented control
//! frames, continuations with nothing to continue and new data frames mid-message fail the
//! connection with 1002.

use bytes::Bytes;
use netsvr_core::wire::OpCode;

use crate::support::{Expect, MIB, Split, Suite, fail, fragments, open, part, ping, pong};

const SPLITS: [(Split, &str); 3] = [
    (Split::Whole, "one write"),
    (Split::Frames, "frame-wise"),
    (Split::Chops(1), "byte by byte"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobahn_fragmentation_cases() {
    let cont = |fin, payload: &'static [u8]| part(OpCode::Continuation, fin, payload);
    let two = vec![
        part(OpCode::Text, false, b"fragment1"),
        cont(true, b"fragment2"),
    ];
    let with_ping = vec![
        part(OpCode::Text, false, b"fragment1"),
        ping(b"pongme!"),
        cont(true, b"fragment2"),
    ];
    // (first case number, frames, expected reaction); each is run whole, frame-wise and
    // byte by byte, as Autobahn's three consecutive cases do.
    let triples: [(u32, Vec<Bytes>, Expect); 4] = [
        (3, two, open().text(b"fragment1fragment2")),
        (
            6,
            with_ping,
            open().pong(b"pongme!").text(b"fragment1fragment2"),
        ),
        (9, vec![cont(true, b"fragment1")], fail(1002)),
        (12, vec![cont(false, b"fragment1")], fail(1002)),
    ];
    let mut suite = Suite::start(MIB).await;
    for (first, frames, expect) in triples {
        for (i, (split, how)) in SPLITS.into_iter().enumerate() {
            let name = format!("5.{} ({how})", first + i as u32);
            suite.case(&name, &frames, split, expect.clone()).await;
        }
    }

    let singles: Vec<(&str, Vec<Bytes>, Expect)> = vec![
        (
            "5.1 ping in 2 fragments",
            vec![part(OpCode::Ping, false, b"frag"), cont(true, b"ment")],
            fail(1002),
        ),
        (
            "5.2 pong in 2 fragments",
            vec![part(OpCode::Pong, false, b"frag"), cont(true, b"ment")],
            fail(1002),
        ),
        (
            "5.15 text in 2, continuation with nothing to continue, text",
            vec![
                part(OpCode::Text, false, b"fragment1"),
                cont(true, b"fragment2"),
                cont(false, b"fragment3"),
                part(OpCode::Text, true, b"fragment4"),
            ],
            fail(1002).text(b"fragment1fragment2"),
        ),
        (
            "5.16 continuation (FIN = 0) with nothing to continue, then text in 2",
            vec![
                cont(false, b"fragment1"),
                part(OpCode::Text, false, b"fragment2"),
                cont(true, b"fragment3"),
            ],
            fail(1002),
        ),
        (
            "5.17 continuation (FIN = 1) with nothing to continue, then text in 2",
            vec![
                cont(true, b"fragment1"),
                part(OpCode::Text, false, b"fragment2"),
                cont(true, b"fragment3"),
            ],
            fail(1002),
        ),
        (
            "5.18 text in 2 where the second is a new text frame",
            vec![
                part(OpCode::Text, false, b"fragment1"),
                part(OpCode::Text, true, b"fragment2"),
            ],
            fail(1002),
        ),
        (
            "5.x binary frame inside a fragmented text message",
            vec![
                part(OpCode::Text, false, b"a"),
                part(OpCode::Binary, true, b"b"),
            ],
            fail(1002),
        ),
        (
            "5.x close in 2 fragments",
            vec![part(OpCode::Close, false, [0x03]), cont(true, &[0xe8])],
            fail(1002),
        ),
        (
            "5.x fragmented ping inside a fragmented message",
            vec![
                part(OpCode::Text, false, b"a"),
                part(OpCode::Ping, false, b"p"),
            ],
            fail(1002),
        ),
    ];
    for (name, frames, expect) in singles {
        suite.case(name, &frames, Split::Whole, expect).await;
    }
}

/// 5.19/5.20: text in 5 fragments with a ping after the 2nd and the 4th.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_between_many_fragments() {
    let cont = |fin, payload: &'static [u8]| part(OpCode::Continuation, fin, payload);
    let frames = [
        part(OpCode::Text, false, b"fragment1"),
        cont(false, b"fragment2"),
        ping(b"pongme 1!"),
        cont(false, b"fragment3"),
        cont(false, b"fragment4"),
        ping(b"pongme 2!"),
        cont(true, b"fragment5"),
    ];
    let expect = open()
        .pong(b"pongme 1!")
        .pong(b"pongme 2!")
        .text(b"fragment1fragment2fragment3fragment4fragment5");
    let mut suite = Suite::start(MIB).await;
    for (name, split) in [("5.19", Split::Whole), ("5.20 (frame-wise)", Split::Frames)] {
        suite.case(name, &frames, split, expect.clone()).await;
    }
    let frames = [
        part(OpCode::Binary, false, b"frag"),
        pong(b"ignored"),
        ping(b"answered"),
        pong(b""),
        part(OpCode::Continuation, true, b"ment"),
    ];
    let expect = open().pong(b"answered").binary(b"fragment");
    suite
        .case(
            "5.x pongs and a ping between fragments",
            &frames,
            Split::Frames,
            expect,
        )
        .await;
}

/// The same message in 1..=12 fragments of every shape, text and binary, all delivered
/// identically; then empty fragments in every position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_in_one_to_n_fragments() {
    let payload: Vec<u8> = (0..240_u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut suite = Suite::start(MIB).await;
    for n in 1..=12_usize {
        let size = payload.len() / n;
        let sizes = vec![size; n - 1];
        for opcode in [OpCode::Text, OpCode::Binary] {
            let frames = fragments(opcode, &payload, &sizes);
            assert_eq!(frames.len(), n);
            let expect = match opcode {
                OpCode::Text => open().text(&payload),
                _ => open().binary(&payload),
            };
            let name = format!("5.x {opcode:?} in {n} fragments");
            suite.case(&name, &frames, Split::Frames, expect).await;
        }
    }
    // One message of 3 fragments of 130 bytes written byte by byte: the 16-bit length
    // headers are split too.
    let long: Vec<u8> = payload.iter().copied().cycle().take(390).collect();
    let frames = fragments(OpCode::Text, &long, &[130, 130]);
    let name = "5.x 3 fragments of 130 bytes, byte by byte";
    suite
        .case(name, &frames, Split::Chops(1), open().text(&long))
        .await;

    // (name, fragment sizes but the last, content): the message is the content.
    let empty_cases: [(&str, &[usize], &[u8]); 4] = [
        ("6.1.2 text in 3 empty fragments", &[0, 0], b""),
        ("6.1.3 empty first and last fragments", &[0, 6], b"middle"),
        ("5.x zero-length first fragment (FIN = 0)", &[0], b"abc"),
        ("5.x zero-length last fragment", &[3], b"abc"),
    ];
    for (name, sizes, content) in empty_cases {
        let frames = fragments(OpCode::Text, content, sizes);
        let expect = open().text(content);
        suite.case(name, &frames, Split::Frames, expect).await;
    }
}
