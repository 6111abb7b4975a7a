//! Tests for the frame codec: one per decoder rule here, stream-level and
//! property-style tests in `streams`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests panic on failure by design"
)]

mod streams;

use bytes::Bytes;

use super::{
    CloseFrame, Decoded, DecoderConfig, FrameDecoder, Message, OpCode, ProtocolError,
    encode_client_frame, encode_client_frame_raw,
};

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const LIMIT: usize = 1 << 20;

fn server(max_message_size: usize) -> DecoderConfig {
    DecoderConfig {
        max_message_size,
        require_mask: true,
        compressed: false,
    }
}

fn frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    encode_client_frame(opcode, fin, payload, MASK).to_vec()
}

fn concat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

/// What decoding a stream produced: messages, the error that stopped it, and
/// the number of bytes left undecoded.
type Outcome = (Vec<Message>, Option<ProtocolError>, usize);

/// Feeds `stream` in chunks whose sizes come from `next_chunk`, keeping the
/// unconsumed tail the way a connection does.
fn decode_chunked(
    config: DecoderConfig,
    stream: &[u8],
    mut next_chunk: impl FnMut() -> usize,
) -> Outcome {
    let mut decoder = FrameDecoder::new(config);
    let mut buf = Vec::new();
    let mut fed = 0;
    let mut messages = Vec::new();
    while fed < stream.len() {
        let n = next_chunk().clamp(1, stream.len() - fed);
        buf.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
        loop {
            match decoder.decode(&buf) {
                Ok(Decoded::NeedMore { at_least }) => {
                    assert!(at_least > buf.len(), "NeedMore must ask for more bytes");
                    break;
                }
                Ok(Decoded::Frame { consumed, message }) => {
                    assert!(consumed > 0 && consumed <= buf.len());
                    buf.drain(..consumed);
                    messages.extend(message);
                }
                Err(err) => return (messages, Some(err), buf.len()),
            }
        }
    }
    (messages, None, buf.len())
}

fn decode_whole(config: DecoderConfig, stream: &[u8]) -> Outcome {
    decode_chunked(config, stream, || usize::MAX)
}

/// The error a fresh server decoder reports for `stream`.
fn error_of(stream: &[u8]) -> ProtocolError {
    let (_, err, _) = decode_whole(server(LIMIT), stream);
    err.expect("stream should be rejected")
}

fn decode_one(stream: &[u8]) -> Message {
    let (mut messages, err, left) = decode_whole(server(LIMIT), stream);
    assert_eq!((err, left, messages.len()), (None, 0, 1));
    messages.remove(0)
}

#[test]
fn opcode_table() {
    for raw in 0_u8..16 {
        let op = OpCode::from_u8(raw);
        match raw {
            0 | 1 | 2 | 8 | 9 | 10 => {
                let op = op.unwrap();
                assert_eq!(op as u8, raw);
                assert_eq!(op.is_control(), raw >= 8);
            }
            _ => assert_eq!(op, None),
        }
    }
    assert_eq!(OpCode::from_u8(0x81), None);
}

#[test]
fn unmasked_frames_are_rejected_in_server_role() {
    let raw = encode_client_frame_raw(0x82, b"abc", None);
    assert_eq!(error_of(&raw), ProtocolError::UnmaskedFrame);
    assert_eq!(ProtocolError::UnmaskedFrame.close_code(), 1002);
    let lax = DecoderConfig {
        max_message_size: LIMIT,
        require_mask: false,
        compressed: false,
    };
    let (messages, err, _) = decode_whole(lax, &raw);
    assert_eq!(err, None);
    assert_eq!(messages, vec![Message::Binary(Bytes::from_static(b"abc"))]);
}

#[test]
fn reserved_bits_are_rejected() {
    for rsv in [0x40, 0x20, 0x10] {
        let raw = encode_client_frame_raw(0x81 | rsv, b"hi", Some(MASK));
        assert_eq!(error_of(&raw), ProtocolError::ReservedBitsSet);
        assert_eq!(
            error_of(&raw[..2]),
            ProtocolError::ReservedBitsSet,
            "seen in the base header"
        );
    }
}

#[test]
fn reserved_opcodes_are_rejected() {
    for op in (3_u8..=7).chain(11..=15) {
        let raw = encode_client_frame_raw(0x80 | op, b"", Some(MASK));
        let err = error_of(&raw);
        assert_eq!(err, ProtocolError::ReservedOpCode(op));
        assert_eq!(err.close_code(), 1002);
    }
}

#[test]
fn control_frames_limits() {
    for op in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
        let big = frame(op, true, &[b'a'; 126]);
        assert_eq!(error_of(&big), ProtocolError::ControlFrameTooLarge);
        assert_eq!(error_of(&big[..2]), ProtocolError::ControlFrameTooLarge);
        let huge = frame(op, true, &[b'a'; 70_000]);
        assert_eq!(error_of(&huge), ProtocolError::ControlFrameTooLarge);
        let fragmented = frame(op, false, b"");
        assert_eq!(error_of(&fragmented), ProtocolError::FragmentedControlFrame);
    }
    let max_ping = frame(OpCode::Ping, true, &[7; 125]);
    assert_eq!(
        decode_one(&max_ping),
        Message::Ping(Bytes::from(vec![7; 125]))
    );
}

#[test]
fn continuation_rules() {
    let cont = frame(OpCode::Continuation, true, b"x");
    assert_eq!(error_of(&cont), ProtocolError::UnexpectedContinuation);
    for op in [OpCode::Text, OpCode::Binary] {
        let stream = concat(&[frame(OpCode::Binary, false, b"a"), frame(op, true, b"b")]);
        let (_, err, _) = decode_whole(server(LIMIT), &stream);
        assert_eq!(err, Some(ProtocolError::ExpectedContinuation));
    }
}

#[test]
fn sixty_four_bit_length_with_top_bit_is_rejected() {
    let mut raw = vec![0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1];
    raw.extend_from_slice(&MASK);
    let mut decoder = FrameDecoder::new(server(usize::MAX));
    for len in 0..10 {
        assert!(matches!(
            decoder.decode(&raw[..len]),
            Ok(Decoded::NeedMore { .. })
        ));
    }
    assert_eq!(decoder.decode(&raw), Err(ProtocolError::InvalidLength));
    assert_eq!(ProtocolError::InvalidLength.close_code(), 1002);
}

#[test]
fn message_size_limit_is_inclusive_and_checked_on_the_header() {
    let exact = frame(OpCode::Binary, true, &[1; 300]);
    let (messages, err, _) = decode_whole(server(300), &exact);
    assert_eq!((messages.len(), err), (1, None));

    let over = frame(OpCode::Binary, true, &[1; 301]);
    let mut decoder = FrameDecoder::new(server(300));
    // Only the 4-byte length header is present: rejected before the payload arrives.
    let err = decoder.decode(&over[..4]).unwrap_err();
    assert_eq!(
        err,
        ProtocolError::MessageTooBig {
            size: 301,
            limit: 300
        }
    );
    assert_eq!(err.close_code(), 1009);

    let tiny_over = frame(OpCode::Text, true, b"abcd");
    assert_eq!(
        FrameDecoder::new(server(3)).decode(&tiny_over[..2]),
        Err(ProtocolError::MessageTooBig { size: 4, limit: 3 })
    );
}

#[test]
fn message_size_limit_spans_fragments() {
    let ok = concat(&[
        frame(OpCode::Text, false, b"abcd"),
        frame(OpCode::Continuation, false, b"efgh"),
        frame(OpCode::Continuation, true, b"ij"),
    ]);
    let (messages, err, _) = decode_whole(server(10), &ok);
    assert_eq!(err, None);
    assert_eq!(
        messages,
        vec![Message::Text(Bytes::from_static(b"abcdefghij"))]
    );

    let over = concat(&[
        frame(OpCode::Binary, false, b"abcd"),
        frame(OpCode::Continuation, false, b"efgh"),
        frame(OpCode::Continuation, true, b"ijk"),
    ]);
    let (_, err, _) = decode_whole(server(10), &over);
    assert_eq!(
        err,
        Some(ProtocolError::MessageTooBig {
            size: 11,
            limit: 10
        })
    );
}

#[test]
fn text_must_be_utf8() {
    let good = frame(OpCode::Text, true, "héllo 日本 🎉".as_bytes());
    assert_eq!(
        decode_one(&good),
        Message::Text(Bytes::from("héllo 日本 🎉".as_bytes()))
    );
    for bad in [
        &b"\xff"[..],
        b"ab\xc3",
        b"\xed\xa0\x80",
        b"\xc0\xaf",
        b"\xf4\x90\x80\x80",
    ] {
        let err = error_of(&frame(OpCode::Text, true, bad));
        assert_eq!(err, ProtocolError::InvalidUtf8);
        assert_eq!(err.close_code(), 1007);
    }
    // Binary messages are not validated.
    assert_eq!(
        decode_one(&frame(OpCode::Binary, true, b"\xff")),
        Message::Binary(Bytes::from_static(b"\xff"))
    );
}

#[test]
fn utf8_split_across_fragments() {
    let text = "aé日🎉z".as_bytes();
    for cut1 in 0..=text.len() {
        for cut2 in cut1..=text.len() {
            let stream = concat(&[
                frame(OpCode::Text, false, &text[..cut1]),
                frame(OpCode::Continuation, false, &text[cut1..cut2]),
                frame(OpCode::Continuation, true, &text[cut2..]),
            ]);
            let (messages, err, _) = decode_whole(server(LIMIT), &stream);
            assert_eq!(err, None, "cuts {cut1} {cut2}");
            assert_eq!(messages, vec![Message::Text(Bytes::copy_from_slice(text))]);
        }
    }
}

#[test]
fn invalid_utf8_in_fragments_fails_fast() {
    // An invalid byte in the first, non-final fragment is reported at once.
    let mut decoder = FrameDecoder::new(server(LIMIT));
    let first = frame(OpCode::Text, false, b"ok\xffmore");
    assert_eq!(decoder.decode(&first), Err(ProtocolError::InvalidUtf8));
    assert!(!decoder.in_message(), "an error drops the partial message");

    // A sequence started in one fragment and broken in the next.
    let mut decoder = FrameDecoder::new(server(LIMIT));
    let first = frame(OpCode::Text, false, b"a\xe6\x97");
    assert!(matches!(
        decoder.decode(&first),
        Ok(Decoded::Frame { message: None, .. })
    ));
    let second = frame(OpCode::Continuation, false, b"A");
    assert_eq!(decoder.decode(&second), Err(ProtocolError::InvalidUtf8));

    // An incomplete sequence at the end of the final fragment.
    let stream = concat(&[
        frame(OpCode::Text, false, b"a\xf0\x9f"),
        frame(OpCode::Continuation, true, b"\x8e"),
    ]);
    let (_, err, _) = decode_whole(server(LIMIT), &stream);
    assert_eq!(err, Some(ProtocolError::InvalidUtf8));
}

#[test]
fn close_frames() {
    assert_eq!(
        decode_one(&frame(OpCode::Close, true, b"")),
        Message::Close(None)
    );
    assert_eq!(
        error_of(&frame(OpCode::Close, true, b"\x03")),
        ProtocolError::InvalidClosePayload
    );
    let mut payload = 1000_u16.to_be_bytes().to_vec();
    payload.extend_from_slice("bye ✓".as_bytes());
    assert_eq!(
        decode_one(&frame(OpCode::Close, true, &payload)),
        Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "bye ✓".to_owned()
        }))
    );
    for code in [
        0_u16,
        999,
        1004,
        1005,
        1006,
        1015,
        1016,
        2999,
        5000,
        u16::MAX,
    ] {
        let err = error_of(&frame(OpCode::Close, true, &code.to_be_bytes()));
        assert_eq!(err, ProtocolError::InvalidCloseCode(code));
        assert_eq!(err.close_code(), 1002);
    }
    let err = error_of(&frame(OpCode::Close, true, b"\x03\xe8\xff"));
    assert_eq!(err, ProtocolError::InvalidCloseReason);
    assert_eq!(err.close_code(), 1007);
}

#[test]
fn control_frames_interleave_with_fragments() {
    let stream = concat(&[
        frame(OpCode::Binary, false, b"one "),
        frame(OpCode::Ping, true, b"p1"),
        frame(OpCode::Continuation, false, b"two "),
        frame(OpCode::Pong, true, b""),
        frame(OpCode::Close, true, b"\x03\xe8"),
        frame(OpCode::Continuation, true, b"three"),
    ]);
    let mut decoder = FrameDecoder::new(server(LIMIT));
    let mut rest = &stream[..];
    let mut seen = Vec::new();
    while !rest.is_empty() {
        let Decoded::Frame { consumed, message } = decoder.decode(rest).unwrap() else {
            panic!("whole stream is present");
        };
        seen.push((message, decoder.in_message()));
        rest = &rest[consumed..];
    }
    let close = Message::Close(Some(CloseFrame {
        code: 1000,
        reason: String::new(),
    }));
    assert_eq!(
        seen,
        vec![
            (None, true),
            (Some(Message::Ping(Bytes::from_static(b"p1"))), true),
            (None, true),
            (Some(Message::Pong(Bytes::new())), true),
            (Some(close), true),
            (
                Some(Message::Binary(Bytes::from_static(b"one two three"))),
                false
            ),
        ]
    );
}
