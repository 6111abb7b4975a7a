//! Fuzzes `netsvr_protocol::Codec` and the typed messages: a byte stream decoded in
//! arbitrary chunks (a growing buffer, as a business connection reads it) must give the
//! same frames, then the same error if any, as decoding it whole; every command frame is
//! tried as `ToGateway` and as `ToBusiness`, and every message that decodes must survive
//! re-encoding: decoding its encoding gives an equal value.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use netsvr_protocol::DEFAULT_HEARTBEAT;
use netsvr_protocol::codec::{CMD_LEN, Codec, CodecError, Frame};

/// What decoding produced: the frames in order, then the error that ended the stream.
type Outcome = (Vec<Frame>, Option<CodecError>);

/// A small limit, so that over-limit lengths are reachable with short inputs.
const MAX_FRAME: usize = 4096;

fn codec() -> Codec {
    Codec::new(MAX_FRAME, Bytes::from_static(DEFAULT_HEARTBEAT))
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
                    netsvr_fuzz::check_command(codec, MAX_FRAME, *cmd, body);
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

/// Decodes `stream` fed in reads of the given sizes.
fn decode_in_chunks(stream: &[u8], chunk_sizes: &[u8]) -> Outcome {
    let codec = codec();
    let mut out = (Vec::new(), None);
    let mut buf = BytesMut::new();
    for chunk in netsvr_fuzz::reads(stream, chunk_sizes) {
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
    let Some((chunk_sizes, stream)) = netsvr_fuzz::split_input(data) else {
        return;
    };
    let whole = decode_whole(stream);
    let chunked = decode_in_chunks(stream, chunk_sizes);
    assert_eq!(whole, chunked, "chunk sizes {chunk_sizes:?}");
});
