//! Category 2, pings and pongs: every ping is answered by a pong with the same payload, in
//! order; a ping over 125 bytes is a protocol error; an unsolicited pong is ignored.

use bytes::Bytes;

use crate::support::{Expect, MIB, Split, Suite, fail, open, ping, pong, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_and_pongs() {
    let binary_payload = [0x00_u8, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff];
    let full = [0xfe_u8; 125];
    let over = [0xfe_u8; 126];
    let mut ten = Vec::new();
    let mut ten_pongs = open();
    for i in 0..10 {
        let payload = format!("payload-{i}");
        ten.push(ping(&payload));
        ten_pongs = ten_pongs.pong(payload);
    }
    let cases: Vec<(&str, Vec<Bytes>, Split, Expect)> = vec![
        (
            "2.1 ping, empty",
            vec![ping(b"")],
            Split::Whole,
            open().pong(b""),
        ),
        (
            "2.2 ping, small text payload",
            vec![ping(b"Hello, world!")],
            Split::Whole,
            open().pong(b"Hello, world!"),
        ),
        (
            "2.3 ping, binary payload",
            vec![ping(binary_payload)],
            Split::Whole,
            open().pong(binary_payload),
        ),
        (
            "2.4 ping, 125-byte payload",
            vec![ping(full)],
            Split::Whole,
            open().pong(full),
        ),
        (
            "2.5 ping, 126-byte payload",
            vec![ping(over)],
            Split::Whole,
            fail(1002),
        ),
        (
            "2.6 ping, 125-byte payload, byte by byte",
            vec![ping(full)],
            Split::Chops(1),
            open().pong(full),
        ),
        (
            "2.7 unsolicited pong, empty",
            vec![pong(b"")],
            Split::Whole,
            open(),
        ),
        (
            "2.8 unsolicited pong with a payload",
            vec![pong(b"unsolicited pong payload")],
            Split::Whole,
            open(),
        ),
        (
            "2.9 unsolicited pong, then ping",
            vec![pong(b"unsolicited"), ping(b"ping payload")],
            Split::Whole,
            open().pong(b"ping payload"),
        ),
        (
            "2.10 ten pings in one write",
            ten.clone(),
            Split::Whole,
            ten_pongs.clone(),
        ),
        ("2.11 ten pings, frame-wise", ten, Split::Frames, ten_pongs),
        (
            "2.x pong, 126-byte payload",
            vec![pong(over)],
            Split::Whole,
            fail(1002),
        ),
        (
            "2.x ping after a message",
            vec![text(b"first"), ping(b"then")],
            Split::Whole,
            open().text(b"first").pong(b"then"),
        ),
        (
            "2.x no pong for a ping after a 126-byte ping",
            vec![ping(over), ping(b"never")],
            Split::Whole,
            fail(1002),
        ),
    ];
    let mut suite = Suite::start(MIB).await;
    for (name, frames, split, expect) in cases {
        suite.case(name, &frames, split, expect).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_is_answered_in_order() {
    let mut suite = Suite::start(MIB).await;
    let mut frames = Vec::new();
    let mut expect = open();
    for i in 0..500_u32 {
        let payload = i.to_be_bytes();
        frames.push(ping(payload));
        expect = expect.pong(payload);
    }
    suite
        .case("2.x 500 pings in one write", &frames, Split::Whole, expect)
        .await;
}
