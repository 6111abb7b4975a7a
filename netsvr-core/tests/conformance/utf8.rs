//! Category 6, UTF-8 handling: valid text (every sequence length and its edges,
//! noncharacters) is delivered, whole or split across fragments at every byte; invalid text
//! (overlong forms, surrogates, code points above U+10FFFF, truncated sequences, lone
//! continuation bytes, 0xFE/0xFF) fails the connection with 1007, also when it shows in a
//! non-final fragment while the message is still incomplete (fail fast).

use netsvr_core::wire::OpCode;

use crate::support::{MIB, Split, Suite, fail, fragments, open, part, text};

/// Valid text, by Autobahn case.
const VALID: &[(&str, &[u8])] = &[
    ("6.1.1 empty", b""),
    (
        "6.2.1 Hello-µ@ßöäüàá-UTF-8!!",
        "Hello-µ@ßöäüàá-UTF-8!!".as_bytes(),
    ),
    ("6.5.1 κόσμε", "κόσμε".as_bytes()),
    ("6.7.1 U+0000", &[0x00]),
    ("6.7.2 U+0080", &[0xc2, 0x80]),
    ("6.7.3 U+0800", &[0xe0, 0xa0, 0x80]),
    ("6.7.4 U+10000", &[0xf0, 0x90, 0x80, 0x80]),
    ("6.9.1 U+007F", &[0x7f]),
    ("6.9.2 U+07FF", &[0xdf, 0xbf]),
    ("6.9.3 U+FFFF", &[0xef, 0xbf, 0xbf]),
    ("6.9.4 U+10FFFF", &[0xf4, 0x8f, 0xbf, 0xbf]),
    ("6.11.1 U+D7FF", &[0xed, 0x9f, 0xbf]),
    ("6.11.2 U+E000", &[0xee, 0x80, 0x80]),
    ("6.11.3 U+FFFD", &[0xef, 0xbf, 0xbd]),
    ("6.22.1 U+FFFE", &[0xef, 0xbf, 0xbe]),
    ("6.22.x U+1FFFE", &[0xf0, 0x9f, 0xbf, 0xbe]),
    ("6.22.x U+10FFFE", &[0xf4, 0x8f, 0xbf, 0xbe]),
    ("6.23.x U+FEFF", &[0xef, 0xbb, 0xbf]),
    (
        "6.x mixed widths",
        "a\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}z".as_bytes(),
    ),
];

/// Invalid text, by Autobahn case.
const INVALID: &[(&str, &[u8])] = &[
    (
        "6.3.1 κόσμε with a surrogate",
        &[
            0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80,
            0x65, 0x64,
        ],
    ),
    ("6.8.1 5-byte sequence", &[0xf8, 0x88, 0x80, 0x80, 0x80]),
    (
        "6.8.2 6-byte sequence",
        &[0xfc, 0x84, 0x80, 0x80, 0x80, 0x80],
    ),
    ("6.10.1 U+1FFFFF", &[0xf7, 0xbf, 0xbf, 0xbf]),
    ("6.10.2 5-byte U+3FFFFFF", &[0xfb, 0xbf, 0xbf, 0xbf, 0xbf]),
    ("6.11.5 U+110000", &[0xf4, 0x90, 0x80, 0x80]),
    ("6.12.1 lone 0x80", &[0x80]),
    ("6.12.2 lone 0xBF", &[0xbf]),
    ("6.12.3 0x80 0xBF", &[0x80, 0xbf]),
    ("6.12.x continuation after ASCII", b"ok\x80"),
    ("6.13.1 2-byte lead, then space", &[0xc0, 0x20]),
    ("6.13.2 3-byte lead, then space", &[0xe0, 0x20]),
    ("6.13.3 4-byte lead, then space", &[0xf0, 0x20]),
    ("6.14.1 2-byte sequence cut short", &[0xc2]),
    ("6.14.2 3-byte sequence cut short", &[0xe0, 0xa0]),
    ("6.14.3 4-byte sequence cut short", &[0xf0, 0x90, 0x80]),
    ("6.14.x euro sign cut short", &[b'a', 0xe2, 0x82]),
    (
        "6.15.1 concatenated cut-short sequences",
        &[0xc2, 0xe0, 0xa0, 0xf0, 0x90, 0x80],
    ),
    ("6.16.1 0xFE", &[0xfe]),
    ("6.16.2 0xFF", &[0xff]),
    ("6.16.3 0xFE 0xFE 0xFF 0xFF", &[0xfe, 0xfe, 0xff, 0xff]),
    ("6.17.1 overlong '/' in 2 bytes", &[0xc0, 0xaf]),
    ("6.17.2 overlong '/' in 3 bytes", &[0xe0, 0x80, 0xaf]),
    ("6.17.3 overlong '/' in 4 bytes", &[0xf0, 0x80, 0x80, 0xaf]),
    ("6.18.1 overlong U+007F", &[0xc1, 0xbf]),
    ("6.18.2 overlong U+07FF", &[0xe0, 0x9f, 0xbf]),
    ("6.18.3 overlong U+FFFF", &[0xf0, 0x8f, 0xbf, 0xbf]),
    ("6.19.1 overlong NUL in 2 bytes", &[0xc0, 0x80]),
    ("6.19.2 overlong NUL in 3 bytes", &[0xe0, 0x80, 0x80]),
    ("6.20.1 U+D800", &[0xed, 0xa0, 0x80]),
    ("6.20.4 U+DBFF", &[0xed, 0xaf, 0xbf]),
    ("6.20.5 U+DC00", &[0xed, 0xb0, 0x80]),
    ("6.20.7 U+DFFF", &[0xed, 0xbf, 0xbf]),
    (
        "6.21.1 U+D800 U+DC00",
        &[0xed, 0xa0, 0x80, 0xed, 0xb0, 0x80],
    ),
    (
        "6.21.8 U+DBFF U+DFFF",
        &[0xed, 0xaf, 0xbf, 0xed, 0xbf, 0xbf],
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_text_is_delivered_whole_and_split_at_every_byte() {
    let mut suite = Suite::start(MIB).await;
    for (name, bytes) in VALID {
        assert!(std::str::from_utf8(bytes).is_ok(), "{name} is not valid");
        suite
            .case(name, &[text(bytes)], Split::Whole, open().text(bytes))
            .await;
        // 6.2.2-6.2.4 / 6.6.x: the same text split in two at every byte, each split a
        // message of its own on one connection, then one fragment per byte.
        let mut frames = Vec::new();
        let mut expect = open();
        for at in 0..=bytes.len() {
            frames.extend(fragments(OpCode::Text, bytes, &[at]));
            expect = expect.text(bytes);
        }
        frames.extend(fragments(OpCode::Text, bytes, &vec![1; bytes.len()]));
        expect = expect.text(bytes);
        let split_name = format!("{name}, split at every byte");
        suite
            .case(&split_name, &frames, Split::Frames, expect)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_text_is_1007_whole_and_one_fragment_per_byte() {
    let mut suite = Suite::start(MIB).await;
    for (name, bytes) in INVALID {
        assert!(std::str::from_utf8(bytes).is_err(), "{name} is valid");
        suite
            .case(name, &[text(bytes)], Split::Whole, fail(1007))
            .await;
        // 6.3.2: one fragment per byte; nothing may be delivered.
        let frames = fragments(OpCode::Text, bytes, &vec![1; bytes.len()]);
        let per_byte = format!("{name}, one fragment per byte");
        suite
            .case(&per_byte, &frames, Split::Frames, fail(1007))
            .await;
    }
}

/// 6.4.x: the invalid bytes arrive in a non-final fragment and the rest of the message
/// never comes; the gateway must fail the connection without waiting for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_text_in_a_non_final_fragment_fails_fast() {
    let kosme = "κόσμε".as_bytes();
    let mut kosme_f4 = kosme.to_vec();
    kosme_f4.push(0xf4);
    let cases = [
        (
            "6.4.1 valid fragment, then U+110000 in a non-final one",
            vec![
                part(OpCode::Text, false, kosme),
                part(OpCode::Continuation, false, [0xf4, 0x90, 0x80, 0x80]),
            ],
        ),
        (
            "6.4.2 valid fragment ending in 0xF4, then 0x90 in a non-final one",
            vec![
                part(OpCode::Text, false, &kosme_f4),
                part(OpCode::Continuation, false, [0x90]),
            ],
        ),
        (
            "6.4.x first fragment 0xFF",
            vec![part(OpCode::Text, false, [0xff])],
        ),
        (
            "6.4.x surrogate in the first of many fragments",
            vec![part(OpCode::Text, false, [b'a', 0xed, 0xa0, 0x80])],
        ),
    ];
    let mut suite = Suite::start(MIB).await;
    for (name, frames) in cases {
        suite.case(name, &frames, Split::Frames, fail(1007)).await;
    }
    // A text frame in chops with the invalid byte in the first chop: 1007 (Autobahn 6.4.3
    // accepts detection once the frame is complete, which is what the gateway does).
    let mut payload = kosme.to_vec();
    payload.extend_from_slice(&[0xf4, 0x90, 0x80, 0x80]);
    payload.extend_from_slice(b"edited");
    suite
        .case(
            "6.4.3 (chopped)",
            &[text(&payload)],
            Split::Chops(4),
            fail(1007),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_text_then_invalid_keeps_the_valid_message() {
    let mut suite = Suite::start(MIB).await;
    let frames = [text("κόσμε"), text([0xce, 0xba, 0xe1]), text("never")];
    let expect = fail(1007).text("κόσμε");
    suite
        .case("6.x valid, then invalid", &frames, Split::Whole, expect)
        .await;
    // Binary frames are not UTF-8 checked.
    let frames = [part(OpCode::Binary, true, [0xff, 0xfe, 0xed, 0xa0, 0x80])];
    let expect = open().binary([0xff, 0xfe, 0xed, 0xa0, 0x80]);
    suite
        .case("6.x binary is not validated", &frames, Split::Whole, expect)
        .await;
}
