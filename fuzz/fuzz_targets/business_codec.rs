//! Fuzzes `netsvr_protocol::Codec` and the typed messages: a byte stream decoded in
//! arbitrary chunks (a growing buffer, as a business connection reads it) must give the
//! same frames, then the same error if any, as decoding it whole; every command frame is
//! tried as `ToGateway` and as `ToBusiness`, and every message that decodes must survive
//! re-encoding: decoding its encoding gives an equal value.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use netsvr_protocol::codec::{CMD_LEN, Codec, CodecError, Frame};
use netsvr_protocol::{DEFAULT_HEARTBEAT, ToBusiness, ToGateway};

/// What decoding produced: the frames in order, then the error that ended the stream.
type Outcome = (Vec<Frame>, Option<CodecError>);

/// A small limit, so that over-limit lengths are reachable with short inputs.
const MAX_FRAME: usize = 4096;

fn codec() -> Codec {
    Codec::new(MAX_FRAME, Bytes::from_static(DEFAULT_HEARTBEAT))
}

/// `a` and `b` are the same message. Values are compared first; when they differ the
/// canonical encodings must match instead (a NaN float is never equal to itself).
fn assert_same(a_equal_b: bool, a_body: &[u8], b_body: &[u8], what: &str) {
    assert!(
        a_equal_b || a_body == b_body,
        "{what}: re-encoding changed the message"
    );
}

/// Checks one decoded command frame against both directions' messages.
fn check_command(cmd: u32, body: &Bytes) {
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
        // The framed encoding decodes to the same command and body.
        let mut framed = BytesMut::new();
        message.encode(&mut framed);
        let frame = codec().decode(&mut framed);
        if CMD_LEN + encoded.len() <= MAX_FRAME {
            assert_eq!(frame, Ok(Some(Frame::Command { cmd, body: encoded })));
            assert!(framed.is_empty());
        }
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
        let frame = codec().decode(&mut framed);
        if CMD_LEN + encoded.len() <= MAX_FRAME {
            assert_eq!(frame, Ok(Some(Frame::Command { cmd, body: encoded })));
            assert!(framed.is_empty());
        }
    }
}

/// Runs the codec over `buf` until it needs more bytes or fails. Returns false once an
/// error has been recorded.
fn drain(codec: &Codec, buf: &mut BytesMut, out: &mut Outcome) -> bool {
    loop {
        let before = buf.len();
        match codec.decode(buf) {
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) consumes nothing");
                return true;
            }
            Ok(Some(frame)) => {
                assert!(buf.len() < before, "a frame consumes bytes");
                if let Frame::Command { cmd, body } = &frame {
                    assert!(CMD_LEN + body.len() <= MAX_FRAME);
                    check_command(*cmd, body);
                }
                out.0.push(frame);
            }
            Err(err) => {
                match err {
                    CodecError::TooLarge { len, limit } => assert!(len > limit),
                    CodecError::TooShort { len } => assert!(len < CMD_LEN),
                    _ => {}
                }
                out.1 = Some(err);
                return false;
            }
        }
    }
}

/// Decodes `stream` fed in chunks of the given sizes (cycled; 0 is read as 1).
fn decode_in_chunks(stream: &[u8], chunk_sizes: &[u8]) -> Outcome {
    let codec = codec();
    let mut out = (Vec::new(), None);
    let mut buf = BytesMut::new();
    let mut rest = stream;
    let mut sizes = chunk_sizes.iter().cycle();
    while !rest.is_empty() {
        let size = sizes.next().map_or(1, |&s| usize::from(s).max(1));
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        buf.extend_from_slice(chunk);
        if !drain(&codec, &mut buf, &mut out) {
            break;
        }
    }
    out
}

fn decode_whole(stream: &[u8]) -> Outcome {
    let codec = codec();
    let mut out = (Vec::new(), None);
    let mut buf = BytesMut::from(stream);
    drain(&codec, &mut buf, &mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    // Byte 0: how many of the following bytes are chunk sizes (0-15); the rest is the
    // stream as read from the socket.
    let Some((&count, tail)) = data.split_first() else {
        return;
    };
    let count = usize::from(count % 16).min(tail.len());
    let (chunk_sizes, stream) = tail.split_at(count);

    let whole = decode_whole(stream);
    let chunked = decode_in_chunks(stream, chunk_sizes);
    assert_eq!(whole, chunked, "chunk sizes {chunk_sizes:?}");
});
