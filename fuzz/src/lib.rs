//! What the fuzz targets share: splitting an input into read sizes and a byte stream, and
//! the round-trip checks of a business command body.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use netsvr_protocol::codec::{CMD_LEN, Codec, Frame};
use netsvr_protocol::{ToBusiness, ToGateway, cmd};

/// Splits a fuzz input: byte 0 says how many of the following bytes (0-15) are read sizes;
/// the rest is the stream as a socket would deliver it.
pub fn split_input(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&count, tail) = data.split_first()?;
    let count = usize::from(count % 16).min(tail.len());
    Some(tail.split_at(count))
}

/// `stream` cut into reads of the given sizes (cycled; 0 is read as 1).
pub fn reads<'a>(stream: &'a [u8], sizes: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = stream;
    let mut sizes = sizes.iter().cycle();
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = sizes.next().map_or(1, |&s| usize::from(s).max(1));
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        Some(chunk)
    })
}

/// Every command id netsvr defines, in both directions.
pub fn command_ids() -> Vec<u32> {
    let ranges = [
        900_001_001..=900_001_003,
        900_002_001..=900_002_017,
        900_003_001..=900_003_018,
    ];
    let ids: Vec<u32> = ranges.into_iter().flatten().collect();
    assert!(ids.iter().all(|&id| cmd::name(id).is_some()));
    ids
}

/// `a` and `b` are the same message. Values are compared first; when they differ the
/// canonical encodings must match instead (a NaN float is never equal to itself).
fn assert_same(a_equal_b: bool, a_body: &[u8], b_body: &[u8], what: &str) {
    assert!(
        a_equal_b || a_body == b_body,
        "{what}: re-encoding changed the message"
    );
}

/// Decodes `body` as command `cmd` in both directions; whatever decodes must survive
/// re-encoding (its encoding decodes to an equal value) and framing with `codec`.
pub fn check_command(codec: &Codec, max_frame: usize, cmd: u32, body: &Bytes) {
    if let Ok(message) = ToGateway::decode(cmd, body.clone()) {
        assert_eq!(message.cmd(), cmd);
        let encoded = message.encode_body();
        let again = ToGateway::decode(cmd, encoded.clone()).expect("re-encoded body decodes");
        assert_same(
            again == message,
            &again.encode_body(),
            &encoded,
            "ToGateway",
        );
        let mut framed = BytesMut::new();
        message.encode(&mut framed);
        check_framed(codec, max_frame, cmd, encoded, framed);
    }
    if let Ok(message) = ToBusiness::decode(cmd, body.clone()) {
        assert_eq!(message.cmd(), cmd);
        let encoded = message.encode_body();
        let again = ToBusiness::decode(cmd, encoded.clone()).expect("re-encoded body decodes");
        assert_same(
            again == message,
            &again.encode_body(),
            &encoded,
            "ToBusiness",
        );
        let mut framed = BytesMut::new();
        message.encode(&mut framed);
        check_framed(codec, max_frame, cmd, encoded, framed);
    }
}

/// The framed encoding decodes to the same command and body.
fn check_framed(codec: &Codec, max_frame: usize, cmd: u32, body: Bytes, mut framed: BytesMut) {
    let frame = codec.decode(&mut framed);
    if CMD_LEN + body.len() <= max_frame {
        assert_eq!(frame, Ok(Some(Frame::Command { cmd, body })));
        assert!(framed.is_empty());
    }
}
