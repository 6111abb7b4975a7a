//! Stream-level tests: split points, encoders, the UTF-8 validator, random streams.

use bytes::{Bytes, BytesMut};

use super::super::encoder::{append_unmasked, apply_mask};
use super::super::utf8::Utf8Validator;
use super::super::{
    CloseFrame, Decoded, DecoderConfig, FrameDecoder, Message, OpCode, ProtocolError,
    encode_client_frame, encode_close, encode_frame, encode_frame_into, is_valid_close_code,
    max_header_len,
};
use super::{LIMIT, MASK, concat, decode_chunked, decode_whole, frame, server};

#[test]
fn utf8_validator_all_splits() {
    let valid = "x¢€𐍈y日本語🎉".as_bytes();
    for cut in 0..=valid.len() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&valid[..cut], false), Ok(()), "cut {cut}");
        assert_eq!(v.feed(&valid[cut..], true), Ok(()), "cut {cut}");
    }
    // Byte by byte.
    let mut v = Utf8Validator::new();
    for (i, byte) in valid.iter().enumerate() {
        assert_eq!(v.feed(&[*byte], i + 1 == valid.len()), Ok(()));
    }
    let invalid: [&[u8]; 6] = [
        b"\x80",
        b"\xe0\x80\x80",
        b"\xf5\x80\x80\x80",
        b"\xed\xbf\xbf",
        b"\xe6\x97x",
        b"\xf0\x9f\x8ex",
    ];
    for bad in invalid {
        for cut in 0..=bad.len() {
            let mut v = Utf8Validator::new();
            let first = v.feed(&bad[..cut], false);
            let result = first.and_then(|()| v.feed(&bad[cut..], true));
            assert!(result.is_err(), "{bad:?} cut {cut}");
        }
    }
    let mut v = Utf8Validator::new();
    assert_eq!(v.feed(b"\xe6\x97", false), Ok(()));
    assert!(v.feed(b"", true).is_err());
}

#[test]
fn close_code_table() {
    let mut expected = vec![false; 1 << 16];
    for code in (1000..=1003).chain(1007..=1014).chain(3000..=4999) {
        expected[code] = true;
    }
    for code in 0..=u16::MAX {
        let valid = expected[usize::from(code)];
        assert_eq!(is_valid_close_code(code), valid, "code {code}");
    }
}

fn sample_stream() -> (Vec<u8>, Vec<Message>) {
    let stream = concat(&[
        frame(OpCode::Text, true, "short ✓".as_bytes()),
        frame(OpCode::Binary, true, &[9; 300]),
        frame(OpCode::Text, false, b"frag\xe2"),
        frame(OpCode::Ping, true, b"ping"),
        frame(OpCode::Continuation, true, b"\x9c\x93"),
        frame(OpCode::Binary, true, &[3; 70_000]),
        frame(OpCode::Close, true, b"\x03\xe9going"),
    ]);
    let messages = vec![
        Message::Text(Bytes::from("short ✓".as_bytes())),
        Message::Binary(Bytes::from(vec![9; 300])),
        Message::Ping(Bytes::from_static(b"ping")),
        Message::Text(Bytes::from("frag✓".as_bytes())),
        Message::Binary(Bytes::from(vec![3; 70_000])),
        Message::Close(Some(CloseFrame {
            code: 1001,
            reason: "going".to_owned(),
        })),
    ];
    (stream, messages)
}

#[test]
fn every_prefix_of_a_frame_needs_more() {
    for payload_len in [0, 1, 125, 126, 300, 65_535, 65_536, 70_000] {
        let whole = frame(OpCode::Binary, true, &vec![5; payload_len]);
        let mut decoder = FrameDecoder::new(server(LIMIT));
        for len in 0..whole.len() {
            match decoder.decode(&whole[..len]) {
                Ok(Decoded::NeedMore { at_least }) => {
                    assert!(at_least > len && at_least <= whole.len(), "len {len}");
                }
                other => panic!("prefix {len} of {payload_len}: {other:?}"),
            }
            if len > 16 {
                break; // past the header, the answer is always header + payload
            }
        }
        let last = whole.len() - 1;
        assert_eq!(
            decoder.decode(&whole[..last]),
            Ok(Decoded::NeedMore {
                at_least: whole.len()
            })
        );
        assert!(!decoder.in_message());
    }
}

#[test]
fn every_split_point_gives_the_same_messages() {
    let (stream, expected) = sample_stream();
    assert_eq!(
        decode_whole(server(LIMIT), &stream),
        (expected.clone(), None, 0)
    );
    assert_eq!(
        decode_chunked(server(LIMIT), &stream, || 1),
        (expected.clone(), None, 0)
    );
    // Every split among the small frames, then a sample inside the 70 KB one.
    for split in (0..400).chain((400..stream.len()).step_by(4099)) {
        let mut first = true;
        let chunks = || {
            if std::mem::take(&mut first) {
                split
            } else {
                usize::MAX
            }
        };
        assert_eq!(
            decode_chunked(server(LIMIT), &stream, chunks),
            (expected.clone(), None, 0),
            "split at {split}"
        );
    }
}

#[test]
fn header_forms_of_server_frames() {
    let cases: [(usize, &[u8]); 5] = [
        (0, &[0x82, 0]),
        (125, &[0x82, 125]),
        (126, &[0x82, 126, 0, 126]),
        (65_535, &[0x82, 126, 0xff, 0xff]),
        (65_536, &[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
    ];
    let lax = DecoderConfig {
        max_message_size: LIMIT,
        require_mask: false,
        compressed: false,
    };
    for (len, header) in cases {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let encoded = encode_frame(OpCode::Binary, &payload);
        assert_eq!(&encoded[..header.len()], header, "len {len}");
        assert_eq!(&encoded[header.len()..], &payload[..]);
        let mut out = BytesMut::from(&b"prefix"[..]);
        encode_frame_into(OpCode::Binary, &payload, &mut out);
        assert_eq!(&out[6..], &encoded[..]);
        let (messages, err, _) = decode_whole(lax, &encoded);
        assert_eq!(
            (messages, err),
            (vec![Message::Binary(Bytes::from(payload))], None)
        );
    }
    assert_eq!(max_header_len(), 14);
    let masked = encode_client_frame(OpCode::Binary, true, &[0; 65_536], MASK);
    assert_eq!(masked.len() - 65_536, max_header_len());
}

#[test]
fn client_frames_round_trip() {
    let masks = [[0, 0, 0, 0], MASK, [0xff, 0x01, 0x80, 0x7f]];
    for len in [
        0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 125, 126, 127, 65_535, 65_536, 100_001,
    ] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        for mask in masks {
            let encoded = encode_client_frame(OpCode::Binary, true, &payload, mask);
            let (messages, err, _) = decode_whole(server(LIMIT), &encoded);
            assert_eq!(err, None);
            assert_eq!(
                messages,
                vec![Message::Binary(Bytes::from(payload.clone()))]
            );
        }
    }
}

#[test]
fn masking_matches_bytewise_xor_on_every_path() {
    let lens = (0..40).chain([1000, 1023, 1024, 1025, 1056, 4099]);
    for len in lens {
        let payload: Vec<u8> = (0..len).map(|i| (i * 31 + 1) as u8).collect();
        let expected: Vec<u8> = payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ MASK[i % 4])
            .collect();
        let mut in_place = payload.clone();
        apply_mask(&mut in_place, MASK);
        assert_eq!(in_place, expected, "in place, len {len}");
        let mut appended = b"kept".to_vec();
        append_unmasked(&mut appended, &payload, Some(MASK), LIMIT);
        assert_eq!(&appended[..4], b"kept");
        assert_eq!(&appended[4..], &expected[..], "appended, len {len}");
        let mut plain = Vec::new();
        append_unmasked(&mut plain, &payload, None, LIMIT);
        assert_eq!(plain, payload);
    }
}

#[test]
fn encode_close_truncates_on_char_boundary() {
    let reason = "é".repeat(100);
    let encoded = encode_close(1001, &reason);
    assert_eq!(encoded[0], 0x88);
    let payload_len = usize::from(encoded[1]);
    assert!(payload_len <= 125);
    assert_eq!(payload_len, 2 + 122, "61 two-byte chars fit in 123 bytes");
    let lax = DecoderConfig {
        max_message_size: LIMIT,
        require_mask: false,
        compressed: false,
    };
    let (messages, err, _) = decode_whole(lax, &encoded);
    assert_eq!(err, None);
    assert_eq!(
        messages,
        vec![Message::Close(Some(CloseFrame {
            code: 1001,
            reason: "é".repeat(61),
        }))]
    );
    assert_eq!(&encode_close(1000, "")[..], &[0x88, 2, 0x03, 0xe8]);
    assert_eq!(encode_close(1000, &"a".repeat(123))[1], 125);
}

#[test]
fn errors_display_and_codes() {
    let all = [
        (ProtocolError::UnmaskedFrame, 1002),
        (ProtocolError::ReservedBitsSet, 1002),
        (ProtocolError::ReservedOpCode(3), 1002),
        (ProtocolError::FragmentedControlFrame, 1002),
        (ProtocolError::ControlFrameTooLarge, 1002),
        (ProtocolError::UnexpectedContinuation, 1002),
        (ProtocolError::ExpectedContinuation, 1002),
        (ProtocolError::InvalidLength, 1002),
        (ProtocolError::MessageTooBig { size: 2, limit: 1 }, 1009),
        (ProtocolError::InvalidUtf8, 1007),
        (ProtocolError::InvalidClosePayload, 1002),
        (ProtocolError::InvalidCloseCode(1005), 1002),
        (ProtocolError::InvalidCloseReason, 1007),
    ];
    for (err, code) in all {
        assert_eq!(err.close_code(), code, "{err:?}");
        let boxed: Box<dyn std::error::Error> = Box::new(err);
        assert!(!boxed.to_string().is_empty());
    }
}

/// A tiny deterministic xorshift64* generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn text(&mut self, chars: usize) -> String {
        const ALPHABET: [char; 8] = ['a', 'Z', ' ', 'é', 'ß', '€', '日', '🎉'];
        (0..chars)
            .map(|_| ALPHABET[self.below(ALPHABET.len())])
            .collect()
    }

    fn length(&mut self) -> usize {
        match self.below(10) {
            0 => 0,
            1..=6 => self.below(130),
            7 | 8 => self.below(2_000),
            _ => 65_530 + self.below(20),
        }
    }

    fn mask(&mut self) -> [u8; 4] {
        (self.next() as u32).to_ne_bytes()
    }
}

/// Appends a random control frame to `stream` and its message to `expected`.
fn push_control(rng: &mut Rng, stream: &mut Vec<u8>, expected: &mut Vec<Message>) {
    let payload_len = rng.below(126);
    let payload = rng.bytes(payload_len);
    let (op, message) = match rng.below(3) {
        0 => (OpCode::Ping, Message::Ping(Bytes::from(payload.clone()))),
        1 => (OpCode::Pong, Message::Pong(Bytes::from(payload.clone()))),
        _ => {
            let code = [1000_u16, 1001, 1003, 1011, 3000, 4999][rng.below(6)];
            let reason_len = rng.below(30);
            let reason = rng.text(reason_len);
            let mut body = code.to_be_bytes().to_vec();
            body.extend_from_slice(reason.as_bytes());
            stream.extend(encode_client_frame(OpCode::Close, true, &body, rng.mask()));
            expected.push(Message::Close(Some(CloseFrame { code, reason })));
            return;
        }
    };
    stream.extend(encode_client_frame(op, true, &payload, rng.mask()));
    expected.push(message);
}

/// Appends a random data message, possibly fragmented at arbitrary byte
/// offsets (even inside UTF-8 sequences) with control frames in between.
fn push_data(rng: &mut Rng, stream: &mut Vec<u8>, expected: &mut Vec<Message>) {
    let text = rng.below(2) == 0;
    let len = rng.length();
    let data = if text {
        rng.text(len / 3).into_bytes()
    } else {
        rng.bytes(len)
    };
    let fragments = 1 + rng.below(4);
    let mut cuts: Vec<usize> = (1..fragments).map(|_| rng.below(data.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.push(data.len());
    let mut start = 0;
    for (i, &end) in cuts.iter().enumerate() {
        let op = match (i, text) {
            (0, true) => OpCode::Text,
            (0, false) => OpCode::Binary,
            _ => OpCode::Continuation,
        };
        let fin = i + 1 == cuts.len();
        stream.extend(encode_client_frame(op, fin, &data[start..end], rng.mask()));
        start = end;
        if !fin && rng.below(3) == 0 {
            push_control(rng, stream, expected);
        }
    }
    let data = Bytes::from(data);
    expected.push(if text {
        Message::Text(data)
    } else {
        Message::Binary(data)
    });
}

#[test]
fn random_streams_decode_identically_under_random_splits() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..200 {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for _ in 0..1 + rng.below(6) {
            if rng.below(4) == 0 {
                push_control(&mut rng, &mut stream, &mut expected);
            } else {
                push_data(&mut rng, &mut stream, &mut expected);
            }
        }
        let max_chunk = [1, 3, 20, 500, 100_000][rng.below(5)];
        let mut chunk_rng = Rng(rng.next() | 1);
        let outcome = decode_chunked(server(LIMIT), &stream, || 1 + chunk_rng.below(max_chunk));
        assert_eq!(outcome, (expected, None, 0), "round {round}");
    }
}

#[test]
fn corrupted_streams_fail_the_same_way_under_random_splits() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for round in 0..300 {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for _ in 0..1 + rng.below(4) {
            push_data(&mut rng, &mut stream, &mut expected);
        }
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(stream.len());
            stream[at] ^= 1 << rng.below(8);
        }
        let config = server(70_000);
        let (whole, whole_err, _) = decode_whole(config, &stream);
        let mut chunk_rng = Rng(rng.next() | 1);
        let (split, split_err, _) = decode_chunked(config, &stream, || 1 + chunk_rng.below(64));
        assert_eq!((whole, whole_err), (split, split_err), "round {round}");
    }
}
