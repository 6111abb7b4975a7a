//! Fuzzes `netsvr_core::wire::FrameDecoder`: decoding a byte stream in
//! arbitrary chunks (keeping the unconsumed tail, as a connection does) must
//! give exactly the same messages, then the same error if any, as decoding the
//! whole stream at once; and the decoder's answers must be self-consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsvr_core::wire::{
    Decoded, DecoderConfig, FrameDecoder, Message, ProtocolError, is_valid_close_code,
};

/// What decoding produced: the messages in order, then the error that ended
/// the stream, if any.
type Outcome = (Vec<Message>, Option<ProtocolError>);

/// With `compressed`, RSV1 is allowed on a message's first frame (permessage-deflate).
fn config(compressed: bool) -> DecoderConfig {
    DecoderConfig {
        max_message_size: 64 * 1024,
        require_mask: true,
        compressed,
    }
}

/// Checks what every decoded message must satisfy.
fn check_message(message: &Message) {
    match message {
        Message::Text(text) => assert!(std::str::from_utf8(text).is_ok()),
        Message::Binary(data) => assert!(data.len() <= 64 * 1024),
        Message::Ping(data) | Message::Pong(data) => assert!(data.len() <= 125),
        Message::Close(Some(close)) => {
            assert!(is_valid_close_code(close.code));
            assert!(close.reason.len() <= 123);
        }
        Message::Close(None) => {}
        Message::Compressed { payload, .. } => assert!(payload.len() <= 64 * 1024),
    }
}

/// Runs the decoder over `buf` until it needs more bytes or fails, draining
/// consumed frames. Returns false once an error has been recorded.
fn drain(decoder: &mut FrameDecoder, buf: &mut Vec<u8>, out: &mut Outcome) -> bool {
    loop {
        match decoder.decode(buf) {
            Ok(Decoded::NeedMore { at_least }) => {
                assert!(
                    at_least > buf.len(),
                    "NeedMore must ask for more than it has"
                );
                return true;
            }
            Ok(Decoded::Frame { consumed, message }) => {
                assert!(consumed > 0 && consumed <= buf.len());
                buf.drain(..consumed);
                if let Some(message) = message {
                    check_message(&message);
                    out.0.push(message);
                }
            }
            Err(err) => {
                assert!(matches!(err.close_code(), 1002 | 1007 | 1009));
                assert!(!decoder.in_message(), "an error drops the partial message");
                out.1 = Some(err);
                return false;
            }
        }
    }
}

/// Decodes `stream` fed in reads of the given sizes.
fn decode_in_chunks(stream: &[u8], chunk_sizes: &[u8], compressed: bool) -> Outcome {
    let mut decoder = FrameDecoder::new(config(compressed));
    let mut out = (Vec::new(), None);
    let mut buf = Vec::new();
    for chunk in netsvr_fuzz::reads(stream, chunk_sizes) {
        buf.extend_from_slice(chunk);
        if !drain(&mut decoder, &mut buf, &mut out) {
            break;
        }
    }
    out
}

fn decode_whole(stream: &[u8], compressed: bool) -> Outcome {
    let mut decoder = FrameDecoder::new(config(compressed));
    let mut out = (Vec::new(), None);
    let mut buf = stream.to_vec();
    drain(&mut decoder, &mut buf, &mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((chunk_sizes, stream)) = netsvr_fuzz::split_input(data) else {
        return;
    };
    let compressed = chunk_sizes.first().is_some_and(|b| b & 1 == 1);
    let whole = decode_whole(stream, compressed);
    let chunked = decode_in_chunks(stream, chunk_sizes, compressed);
    assert_eq!(whole, chunked, "chunk sizes {chunk_sizes:?}");
});
