//! Category 9, limits and performance: a message of exactly `max_message_size` is
//! delivered, whole or in fragments; one byte more is 1009, counted over all fragments and
//! decided from the frame header alone, before any payload arrives; big messages in many
//! fragment sizes and long runs of small messages are delivered intact and in order.

use std::time::Duration;

use bytes::Bytes;
use netsvr_core::wire::OpCode;

use crate::common::raw::MASK;
use crate::support::{MIB, Split, Suite, fail, fragments, open, part, ping, text, write};

/// The limit of the boundary cases.
const LIMIT: usize = 4096;

/// A header (no payload) of a masked frame with the 64-bit length `len`.
fn header_64(first_byte: u8, len: u64) -> Bytes {
    let mut header = vec![first_byte, 0x80 | 127];
    header.extend_from_slice(&len.to_be_bytes());
    header.extend_from_slice(&MASK);
    Bytes::from(header)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_size_limit() {
    let at = vec![b'x'; LIMIT];
    let over = vec![b'x'; LIMIT + 1];
    let half = LIMIT / 2;
    let mut suite = Suite::start(LIMIT).await;
    let cases = [
        (
            "9.x text of exactly the limit",
            vec![text(&at)],
            open().text(&at),
        ),
        (
            "9.x binary of exactly the limit",
            vec![part(OpCode::Binary, true, &at)],
            open().binary(&at),
        ),
        (
            "9.x exactly the limit in 2 fragments",
            fragments(OpCode::Binary, &at, &[half]),
            open().binary(&at),
        ),
        (
            "9.x exactly the limit in 4 fragments with a 125-byte ping between",
            {
                let mut frames = fragments(OpCode::Text, &at, &[1024, 1024, 1024]);
                frames.insert(2, ping([b'p'; 125]));
                frames
            },
            open().pong([b'p'; 125]).text(&at),
        ),
        ("9.x text one byte over", vec![text(&over)], fail(1009)),
        (
            "9.x binary one byte over",
            vec![part(OpCode::Binary, true, &over)],
            fail(1009),
        ),
        (
            "9.x fragments one byte over in all",
            fragments(OpCode::Text, &over, &[half, half]),
            fail(1009),
        ),
        (
            "9.x three fragments of 1500 (4500 in all)",
            fragments(OpCode::Binary, &[b'a'; 4500], &[1500, 1500]),
            fail(1009),
        ),
        (
            "9.x a message at the limit, then one over",
            vec![text(&at), text(&over)],
            fail(1009).text(&at),
        ),
    ];
    for (name, frames, expect) in cases {
        for split in [Split::Whole, Split::Chops(1000)] {
            let name = format!("{name} ({split:?})");
            suite.case(&name, &frames, split, expect.clone()).await;
        }
    }
}

/// The close comes from the header alone: the payload is never sent, and the gateway
/// neither waits for it nor allocates for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_lengths_over_the_limit_are_1009_before_the_payload() {
    let mut suite = Suite::start(LIMIT).await;
    let limit = LIMIT as u64;
    let over_16 = {
        let mut header = vec![0x81, 0x80 | 126];
        header.extend_from_slice(&u16::try_from(LIMIT + 1).unwrap().to_be_bytes());
        header.extend_from_slice(&MASK);
        Bytes::from(header)
    };
    let cases = [
        ("9.x declared 2^62 bytes", vec![header_64(0x82, 1 << 62)]),
        ("9.x declared 2^40 bytes", vec![header_64(0x82, 1 << 40)]),
        (
            "9.x declared limit + 1 (64-bit)",
            vec![header_64(0x81, limit + 1)],
        ),
        ("9.x declared limit + 1 (16-bit)", vec![over_16]),
        (
            "9.x continuation declared over what is left",
            vec![
                part(OpCode::Binary, false, [b'a'; 4000]),
                header_64(0x80, limit - 4000 + 1),
            ],
        ),
        (
            "9.x first fragment declared 2^62 bytes",
            vec![header_64(0x01, 1 << 62)],
        ),
    ];
    for (name, frames) in cases {
        let started = tokio::time::Instant::now();
        suite.case(name, &frames, Split::Frames, fail(1009)).await;
        // Generous: the close takes a few milliseconds; waiting for a payload that never
        // comes would take the harness's whole 5 s wait.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{name}: {:?}",
            started.elapsed()
        );
    }
}

/// 9.1.x-9.4.x (scaled to a 1 MiB limit): big text and binary messages, whole, chopped and
/// in many fragment sizes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_messages() {
    let mut suite = Suite::start(MIB).await;
    for (i, size) in [64 * 1024, 256 * 1024, MIB].into_iter().enumerate() {
        let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        let name = format!("9.1.{} text of {size} bytes", i + 1);
        suite
            .case(
                &name,
                &[text(&payload)],
                Split::Whole,
                open().text(&payload),
            )
            .await;
        let name = format!("9.2.{} binary of {size} bytes, 64 KiB chops", i + 1);
        let frames = [part(OpCode::Binary, true, &payload)];
        let expect = open().binary(&payload);
        suite
            .case(&name, &frames, Split::Chops(64 * 1024), expect)
            .await;
    }
    let payload: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    for (i, fragment) in [64, 256, 1024, 4096, 16 * 1024, 64 * 1024, 256 * 1024, MIB]
        .into_iter()
        .enumerate()
    {
        let name = format!("9.4.{} 1 MiB binary in {fragment}-byte fragments", i + 1);
        let sizes = vec![fragment; MIB / fragment - 1];
        let frames = fragments(OpCode::Binary, &payload, &sizes);
        let expect = open().binary(&payload);
        suite.case(&name, &frames, Split::Whole, expect).await;
    }
}

/// 9.7.x/9.8.x: runs of small messages, all delivered, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_small_messages() {
    let mut suite = Suite::start(MIB).await;
    for (name, size) in [
        ("9.7.x 1000 empty texts", 0),
        ("9.8.x 1000 binaries of 64 bytes", 64),
    ] {
        let (mut conn, id) = suite.connect().await;
        let mut expect = open();
        let mut frames = Vec::new();
        for i in 0..1000_u32 {
            let mut payload = vec![0_u8; size];
            if size > 0 {
                payload[..4].copy_from_slice(&i.to_be_bytes());
                frames.push(part(OpCode::Binary, true, &payload));
                expect = expect.binary(&payload);
            } else {
                frames.push(text(b""));
                expect = expect.text(b"");
            }
        }
        write(&mut conn, &frames, Split::Chops(4096)).await;
        suite.react(name, conn, id, expect).await;
    }
}
