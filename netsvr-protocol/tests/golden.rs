//! Golden bytes: frames worked out by hand from PROTOCOL.md §1 and §3–5, checked
//! against the encoder and the decoder in both directions.
#![allow(clippy::unwrap_used, clippy::expect_used)]
//
// How the expected bytes are derived (nothing here comes from calling the encoder):
//
// * Frame (§1): `u32` BE length N = 4 + body length, `u32` BE command id, protobuf body.
// * Command ids: 900_000_000 = 0x35A4_E900, so
//     900_001_xxx = 0x35A4_E900 + 1000 + xxx = 0x35A4_ECE8 + xxx  (ConnOpen 001 -> 35 a4 ec e9)
//     900_002_xxx = 0x35A4_E900 + 2000 + xxx = 0x35A4_F0D0 + xxx  (ConnInfoUpdate 001 -> f0 d1)
//     900_003_xxx = 0x35A4_E900 + 3000 + xxx = 0x35A4_F4B8 + xxx  (Register 001 -> 35 a4 f4 b9)
// * Protobuf tag byte = (field number << 3) | wire type; wire type 0 = varint, 2 = length
//   delimited (string, bytes, message, map entry), 5 = 32-bit (float, little endian).
// * proto3: fields holding their default value (0, false, "", empty) are not written.
// * Negative int32 is sign-extended to 64 bits, so its varint is always 10 bytes.
// * A map<K, V> field is a repeated entry message: key = field 1, value = field 2.

use bytes::{Bytes, BytesMut};
use netsvr_protocol::codec::{self, Codec, Frame};
use netsvr_protocol::{DEFAULT_HEARTBEAT, ToBusiness, ToGateway, cmd, pb};
use std::collections::BTreeMap;

/// Lowercase hex with spaces, so that a mismatch shows where the bytes differ.
fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn assert_bytes(actual: &[u8], expected: &[u8], what: &str) {
    assert_eq!(hex(actual), hex(expected), "{what}");
}

/// Decodes exactly one command frame from `expected` with the default codec.
fn decode_one(expected: &[u8]) -> (u32, Bytes) {
    let mut buf = BytesMut::from(expected);
    let frame = Codec::default()
        .decode(&mut buf)
        .expect("a valid frame")
        .expect("a whole frame");
    assert!(buf.is_empty(), "the frame is consumed whole");
    match frame {
        Frame::Command { cmd, body } => (cmd, body),
        Frame::Heartbeat => panic!("expected a command frame, got a heartbeat"),
    }
}

/// `codec::encode(cmd, message)` writes exactly `expected`.
fn assert_codec_encode<M: prost::Message>(cmd: u32, message: &M, expected: &[u8]) {
    let mut out = BytesMut::new();
    codec::encode(cmd, message, &mut out);
    assert_bytes(&out, expected, "codec::encode");
    assert_bytes(
        &codec::encode_to_bytes(cmd, message),
        expected,
        "codec::encode_to_bytes",
    );
    // §8: the queue payload is the same frame without its length prefix.
    assert_bytes(
        &codec::encode_unframed(cmd, message),
        &expected[4..],
        "codec::encode_unframed",
    );
}

/// `ToGateway::encode` writes exactly `expected`, and `expected` decodes back to `message`.
fn golden_to_gateway(message: &ToGateway, expected: &[u8]) {
    let mut out = BytesMut::new();
    message.encode(&mut out);
    assert_bytes(&out, expected, "ToGateway::encode");
    assert_bytes(
        &message.encode_body(),
        &expected[8..],
        "ToGateway::encode_body",
    );
    let (cmd, body) = decode_one(expected);
    assert_eq!(cmd, message.cmd());
    assert_eq!(&ToGateway::decode(cmd, body).unwrap(), message);
}

/// `ToBusiness::encode` writes exactly `expected`, and `expected` decodes back to `message`.
fn golden_to_business(message: &ToBusiness, expected: &[u8]) {
    let mut out = BytesMut::new();
    message.encode(&mut out);
    assert_bytes(&out, expected, "ToBusiness::encode");
    assert_bytes(
        &message.encode_body(),
        &expected[8..],
        "ToBusiness::encode_body",
    );
    let (cmd, body) = decode_one(expected);
    assert_eq!(cmd, message.cmd());
    assert_eq!(&ToBusiness::decode(cmd, body).unwrap(), message);
}

#[test]
fn command_ids_in_hex() {
    // The three bases of the derivation above, and one id of each group.
    assert_eq!(900_000_000u32.to_be_bytes(), [0x35, 0xa4, 0xe9, 0x00]);
    assert_eq!(cmd::CONN_OPEN.to_be_bytes(), [0x35, 0xa4, 0xec, 0xe9]);
    assert_eq!(
        cmd::CONN_INFO_UPDATE.to_be_bytes(),
        [0x35, 0xa4, 0xf0, 0xd1]
    );
    assert_eq!(cmd::REGISTER.to_be_bytes(), [0x35, 0xa4, 0xf4, 0xb9]);
}

#[test]
fn single_cast() {
    // A real-shaped uniqId: 28 hex chars = 127.0.0.1, port 0x17ae, seconds, counter.
    let uniq_id = "7f00000117ae65f3a1b200000001";
    assert_eq!(uniq_id.len(), 28);
    let message = pb::SingleCast {
        uniq_id: uniq_id.into(),
        data: Bytes::from_static(b"hi"),
    };
    let mut expected = vec![
        0x00, 0x00, 0x00, 0x26, // length 38 = 4 (cmd) + 34 (body)
        0x35, 0xa4, 0xf0, 0xd6, // cmd 900002006 SingleCast = 0x35A4F0D0 + 6
        0x0a, 0x1c, // field 1 (uniqId), wire type 2; length 28
    ];
    expected.extend_from_slice(b"7f00000117ae65f3a1b200000001");
    expected.extend_from_slice(&[
        0x12, 0x02, b'h', b'i', // field 2 (data), wire type 2 = 0x12; length 2; "hi"
    ]);
    // body = 2 + 28 + 4 = 34
    assert_eq!(expected.len(), 4 + 38);
    assert_codec_encode(cmd::SINGLE_CAST, &message, &expected);
    golden_to_gateway(&ToGateway::SingleCast(message), &expected);
}

#[test]
fn broadcast_with_two_byte_varint_length() {
    let data = vec![0x5a; 200];
    let message = pb::Broadcast {
        data: Bytes::from(data.clone()),
    };
    let mut expected = vec![
        0x00, 0x00, 0x00, 0xcf, // length 207 = 4 + 203
        0x35, 0xa4, 0xf0, 0xd3, // cmd 900002003 Broadcast = 0x35A4F0D0 + 3
        0x0a, // field 1 (data), wire type 2
        0xc8,
        0x01, // length 200 = 0b1_1001000: low 7 bits 0x48 | 0x80 = 0xc8, then 200 >> 7 = 1
    ];
    expected.extend_from_slice(&data); // body = 1 + 2 + 200 = 203
    assert_eq!(expected.len(), 4 + 207);
    assert_codec_encode(cmd::BROADCAST, &message, &expected);
    golden_to_gateway(&ToGateway::Broadcast(message), &expected);
}

#[test]
fn register_request() {
    let message = pb::RegisterReq {
        events: cmd::events::ALL,
    };
    let expected = [
        0x00, 0x00, 0x00, 0x06, // length 6 = 4 + 2
        0x35, 0xa4, 0xf4, 0xb9, // cmd 900003001 Register = 0x35A4F4B8 + 1
        0x08,
        0x07, // field 1 (events), wire type 0 = 0x08; varint 7 = OnOpen|OnClose|OnMessage
    ];
    assert_codec_encode(cmd::REGISTER, &message, &expected);
    golden_to_gateway(&ToGateway::Register(message), &expected);
}

#[test]
fn register_response_with_error_code() {
    let message = pb::RegisterResp {
        code: pb::RegisterRespCode::DuplicateRegister as i32,
        message: "dup".into(),
        conn_id: "c1".into(),
    };
    let expected = [
        0x00, 0x00, 0x00, 0x0f, // length 15 = 4 + 11
        0x35, 0xa4, 0xf4, 0xb9, // cmd 900003001 Register (same id back)
        0x08, 0x03, // field 1 (code), wire type 0; DuplicateRegister = 3
        0x12, 0x03, b'd', b'u', b'p', // field 2 (message), wire type 2 = 0x12; length 3
        0x1a, 0x02, b'c', b'1', // field 3 (connId), wire type 2 = 0x1a; length 2
    ];
    assert_codec_encode(cmd::REGISTER, &message, &expected);
    golden_to_business(&ToBusiness::Register(message), &expected);
}

#[test]
fn topic_uniq_id_list_response_uses_field_2() {
    let message = pb::TopicUniqIdListResp {
        items: BTreeMap::from([
            (
                "t1".to_owned(),
                pb::TopicUniqIdListRespItem {
                    uniq_ids: vec!["u1".into(), "u2".into()],
                },
            ),
            (
                "t2".to_owned(),
                pb::TopicUniqIdListRespItem {
                    uniq_ids: vec!["u3".into()],
                },
            ),
        ]),
    };
    let expected = [
        0x00, 0x00, 0x00, 0x20, // length 32 = 4 + 28
        0x35, 0xa4, 0xf4, 0xc2, // cmd 900003010 TopicUniqIdList = 0x35A4F4B8 + 10
        // entry "t1": field 2 (items), wire type 2 = 0x12 (NOT 0x0a); entry length 14
        0x12, 0x0e, //
        0x0a, 0x02, b't', b'1', // entry field 1 (key), wire type 2; "t1"
        0x12, 0x08, // entry field 2 (value), wire type 2; item length 8
        0x0a, 0x02, b'u', b'1', // item field 1 (uniqIds), wire type 2; "u1"
        0x0a, 0x02, b'u', b'2', // item field 1 again; "u2"
        // entry "t2" (map keys in order): 0x12, entry length 10
        0x12, 0x0a, //
        0x0a, 0x02, b't', b'2', // key "t2"
        0x12, 0x04, // value, length 4
        0x0a, 0x02, b'u', b'3', // uniqIds "u3"
    ];
    assert_codec_encode(cmd::TOPIC_UNIQ_ID_LIST, &message, &expected);
    golden_to_business(&ToBusiness::TopicUniqIdList(message), &expected);
}

#[test]
fn metrics_response_with_floats() {
    let message = pb::MetricsResp {
        items: BTreeMap::from([(
            1,
            pb::MetricsRespItem {
                item: 1,
                count: 300,
                mean_rate: 1.5,
                rate1: 0.25,
                rate5: 0.0,
                rate15: -2.0,
            },
        )]),
    };
    let expected = [
        0x00, 0x00, 0x00, 0x1e, // length 30 = 4 + 26
        0x35, 0xa4, 0xf4, 0xc9, // cmd 900003017 Metrics = 0x35A4F4B8 + 17
        0x0a, 0x18, // field 1 (items), wire type 2; entry length 24
        0x08, 0x01, // entry key: field 1, wire type 0; int32 1
        0x12, 0x14, // entry value: field 2, wire type 2; item length 20
        0x08, 0x01, // item field 1 (item), varint 1
        // field 2 (count), wire type 0 = 0x10; 300 = 0b10_0101100 -> 0xac 0x02
        0x10, 0xac, 0x02, //
        // field 3 (meanRate), wire type 5 = 0x1d; 1.5f = 0x3fc00000, little endian
        0x1d, 0x00, 0x00, 0xc0, 0x3f, //
        // field 5 (rate1), wire type 5 = 0x2d; 0.25f = 0x3e800000, little endian
        0x2d, 0x00, 0x00, 0x80, 0x3e, //
        // field 7 (rate5) is 0.0: not written
        // field 9 (rate15), wire type 5 = 0x4d; -2.0f = 0xc0000000, little endian
        0x4d, 0x00, 0x00, 0x00, 0xc0,
    ];
    assert_codec_encode(cmd::METRICS, &message, &expected);
    golden_to_business(&ToBusiness::Metrics(message), &expected);
}

#[test]
fn force_offline_guest_with_delay() {
    let message = pb::ForceOfflineGuest {
        uniq_ids: vec!["x".into()],
        delay: 30,
        data: Bytes::from_static(b"bye"),
    };
    let expected = [
        0x00, 0x00, 0x00, 0x0e, // length 14 = 4 + 10
        0x35, 0xa4, 0xf0, 0xe1, // cmd 900002017 ForceOfflineGuest = 0x35A4F0D0 + 17
        0x0a, 0x01, b'x', // field 1 (uniqIds), wire type 2; "x"
        0x10, 0x1e, // field 2 (delay), wire type 0 = 0x10; int32 30
        0x1a, 0x03, b'b', b'y', b'e', // field 3 (data), wire type 2 = 0x1a; "bye"
    ];
    assert_codec_encode(cmd::FORCE_OFFLINE_GUEST, &message, &expected);
    golden_to_gateway(&ToGateway::ForceOfflineGuest(message), &expected);
}

#[test]
fn limit_request_with_negative_int32() {
    let message = pb::LimitReq {
        on_open: -1,
        on_message: 5,
    };
    let expected = [
        0x00, 0x00, 0x00, 0x11, // length 17 = 4 + 13
        0x35, 0xa4, 0xf4, 0xca, // cmd 900003018 Limit = 0x35A4F4B8 + 18
        0x08, // field 1 (onOpen), wire type 0
        // -1 as u64 = 0xffff_ffff_ffff_ffff: nine groups of 7 one-bits with the
        // continuation bit (0xff), then the last bit alone (0x01): 10 bytes.
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, //
        0x10, 0x05, // field 2 (onMessage), wire type 0; 5
    ];
    assert_codec_encode(cmd::LIMIT, &message, &expected);
    golden_to_gateway(&ToGateway::Limit(message), &expected);
}

#[test]
fn customer_id_count_response_with_negative_int32() {
    let message = pb::CustomerIdCountResp { count: -2 };
    let expected = [
        0x00, 0x00, 0x00, 0x0f, // length 15 = 4 + 11
        0x35, 0xa4, 0xf4, 0xbd, // cmd 900003005 CustomerIdCount = 0x35A4F4B8 + 5
        0x08, // field 1 (count), wire type 0
        // -2 as u64 = 0xffff_ffff_ffff_fffe: low 7 bits 0x7e | 0x80 = 0xfe, then 8 x 0xff, 0x01
        0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ];
    assert_codec_encode(cmd::CUSTOMER_ID_COUNT, &message, &expected);
    golden_to_business(&ToBusiness::CustomerIdCount(message), &expected);
}

#[test]
fn uniq_id_count_empty_request_and_response() {
    let request = [
        0x00, 0x00, 0x00, 0x04, // length 4: the cmd id alone, empty body
        0x35, 0xa4, 0xf4, 0xbf, // cmd 900003007 UniqIdCount = 0x35A4F4B8 + 7
    ];
    golden_to_gateway(&ToGateway::UniqIdCount, &request);

    let message = pb::UniqIdCountResp { count: 150 };
    let response = [
        0x00, 0x00, 0x00, 0x07, // length 7 = 4 + 3
        0x35, 0xa4, 0xf4, 0xbf, // cmd 900003007, same id back
        0x08, 0x96, 0x01, // field 1 (count), wire type 0; 150 = 0b1_0010110 -> 0x96 0x01
    ];
    assert_codec_encode(cmd::UNIQ_ID_COUNT, &message, &response);
    golden_to_business(&ToBusiness::UniqIdCount(message), &response);
}

#[test]
fn unregister_response_is_an_empty_body() {
    let expected = [
        0x00, 0x00, 0x00, 0x04, // length 4, no body: UnRegisterResp has no fields
        0x35, 0xa4, 0xf4, 0xba, // cmd 900003002 Unregister = 0x35A4F4B8 + 2
    ];
    golden_to_business(&ToBusiness::Unregister(pb::UnRegisterResp {}), &expected);
}

#[test]
fn heartbeat_frame() {
    let expected = [
        0x00, 0x00, 0x00, 0x0e, // length 14
        b'~', b'6', b'Y', b'O', b't', b'5', b'r', b'W', b'3', b'5', b'p', b'i', b'O', b'~',
    ];
    assert_eq!(&expected[4..], DEFAULT_HEARTBEAT);
    let codec = Codec::default();
    let mut out = BytesMut::new();
    codec.encode_heartbeat(&mut out);
    assert_bytes(&out, &expected, "encode_heartbeat");
    let mut buf = BytesMut::from(&expected[..]);
    assert_eq!(codec.decode(&mut buf), Ok(Some(Frame::Heartbeat)));
    assert!(buf.is_empty());
}

#[test]
fn transfer_event() {
    let message = pb::Transfer {
        uniq_id: "u".into(),
        customer_id: "c".into(),
        session: "s".into(),
        topics: vec!["a".into(), "b".into()],
        data: Bytes::from_static(&[0x01, 0x02]),
    };
    let expected = [
        0x00, 0x00, 0x00, 0x17, // length 23 = 4 + 19
        0x35, 0xa4, 0xec, 0xeb, // cmd 900001003 Transfer = 0x35A4ECE8 + 3
        0x0a, 0x01, b'u', // field 1 (uniqId), wire type 2
        0x12, 0x01, b'c', // field 2 (customerId), wire type 2 = 0x12
        0x1a, 0x01, b's', // field 3 (session), wire type 2 = 0x1a
        0x22, 0x01, b'a', // field 4 (topics), wire type 2 = 0x22
        0x22, 0x01, b'b', // field 4 again: repeated strings are never packed
        0x2a, 0x02, 0x01, 0x02, // field 5 (data), wire type 2 = 0x2a
    ];
    assert_codec_encode(cmd::TRANSFER, &message, &expected);
    golden_to_business(&ToBusiness::Transfer(message), &expected);
}

#[test]
fn conn_open_event() {
    let message = pb::ConnOpen {
        uniq_id: "u".into(),
        raw_query: "q=1".into(),
        x_forwarded_for: String::new(),
        x_real_ip: String::new(),
        remote_addr: "1.2.3.4:5".into(),
    };
    let expected = [
        0x00, 0x00, 0x00, 0x17, // length 23 = 4 + 19
        0x35, 0xa4, 0xec, 0xe9, // cmd 900001001 ConnOpen = 0x35A4ECE8 + 1
        0x0a, 0x01, b'u', // field 1 (uniqId)
        0x12, 0x03, b'q', b'=', b'1', // field 2 (rawQuery), wire type 2 = 0x12
        // fields 3 and 4 are empty: not written
        0x2a, 0x09, b'1', b'.', b'2', b'.', b'3', b'.', b'4', b':',
        b'5', // field 5 (remoteAddr) = 0x2a
    ];
    assert_codec_encode(cmd::CONN_OPEN, &message, &expected);
    golden_to_business(&ToBusiness::ConnOpen(message), &expected);
}

#[test]
fn conn_info_update_skips_field_2() {
    let message = pb::ConnInfoUpdate {
        uniq_id: "u".into(),
        new_session: "s".into(),
        new_customer_id: String::new(),
        new_topics: vec!["t".into()],
        data: Bytes::new(),
    };
    let expected = [
        0x00, 0x00, 0x00, 0x0d, // length 13 = 4 + 9
        0x35, 0xa4, 0xf0, 0xd1, // cmd 900002001 ConnInfoUpdate = 0x35A4F0D0 + 1
        0x0a, 0x01, b'u', // field 1 (uniqId)
        0x1a, 0x01, b's', // field 3 (newSession), wire type 2 = 0x1a; there is no field 2
        // field 4 (newCustomerId) empty: not written
        // field 5 (newTopics), wire type 2 = 0x2a; field 6 (data) empty: not written
        0x2a, 0x01, b't',
    ];
    assert_codec_encode(cmd::CONN_INFO_UPDATE, &message, &expected);
    golden_to_gateway(&ToGateway::ConnInfoUpdate(message), &expected);
}

#[test]
fn conn_info_delete_bools() {
    let message = pb::ConnInfoDelete {
        uniq_id: "u".into(),
        del_session: true,
        del_customer_id: false,
        del_topic: true,
        data: Bytes::new(),
    };
    let expected = [
        0x00, 0x00, 0x00, 0x0b, // length 11 = 4 + 7
        0x35, 0xa4, 0xf0, 0xd2, // cmd 900002002 ConnInfoDelete = 0x35A4F0D0 + 2
        0x0a, 0x01, b'u', // field 1 (uniqId)
        0x10, 0x01, // field 2 (delSession), wire type 0 = 0x10; true
        // field 3 (delCustomerId) false: not written
        0x20, 0x01, // field 4 (delTopic), wire type 0 = 0x20; true
    ];
    assert_codec_encode(cmd::CONN_INFO_DELETE, &message, &expected);
    golden_to_gateway(&ToGateway::ConnInfoDelete(message), &expected);
}

#[test]
fn topic_uniq_id_count_response_map_of_int32() {
    let message = pb::TopicUniqIdCountResp {
        items: BTreeMap::from([("a".to_owned(), 3)]),
    };
    let expected = [
        0x00, 0x00, 0x00, 0x0b, // length 11 = 4 + 7
        0x35, 0xa4, 0xf4, 0xc3, // cmd 900003011 TopicUniqIdCount = 0x35A4F4B8 + 11
        0x0a, 0x05, // field 1 (items), wire type 2; entry length 5
        0x0a, 0x01, b'a', // key: field 1, wire type 2; "a"
        0x10, 0x03, // value: field 2, wire type 0 = 0x10; 3
    ];
    assert_codec_encode(cmd::TOPIC_UNIQ_ID_COUNT, &message, &expected);
    golden_to_business(&ToBusiness::TopicUniqIdCount(message), &expected);
}

/// prost leaves a map entry's default key or value out of the entry (Go writes both, see
/// `decodes_other_legal_encodings`); both forms mean the same to every decoder.
#[test]
fn map_entry_with_zero_value_leaves_the_value_out() {
    let message = pb::TopicUniqIdCountResp {
        items: BTreeMap::from([("a".to_owned(), 0)]),
    };
    let expected = [
        0x00, 0x00, 0x00, 0x09, // length 9 = 4 + 5
        0x35, 0xa4, 0xf4, 0xc3, // cmd 900003011 TopicUniqIdCount
        0x0a, 0x03, // field 1 (items), wire type 2; entry length 3
        0x0a, 0x01, b'a', // key "a"; the value 0 (field 2) is not written
    ];
    assert_codec_encode(cmd::TOPIC_UNIQ_ID_COUNT, &message, &expected);
    golden_to_business(&ToBusiness::TopicUniqIdCount(message), &expected);
}

/// What another encoder (netsvr's Go side) may legally write must decode the same:
/// fields out of order, defaults written explicitly, map entries with an explicit zero
/// value, and unknown (future, additive) fields, which are skipped.
#[test]
fn decodes_other_legal_encodings() {
    // SingleCast, data before uniqId, plus unknown field 15 (varint) and 16 (bytes).
    let body: &[u8] = &[
        0x12, 0x02, b'h', b'i', // field 2 (data) first
        0x78, 0x2a, // field 15, wire type 0 = (15 << 3) | 0 = 0x78; 42 (unknown, skipped)
        0x0a, 0x01, b'u', // field 1 (uniqId)
        0x82, 0x01, 0x01, b'z', // field 16, wire type 2: tag (16 << 3) | 2 = 130 -> 0x82 0x01
    ];
    let decoded = ToGateway::decode(cmd::SINGLE_CAST, Bytes::from_static(body)).unwrap();
    assert_eq!(
        decoded,
        ToGateway::SingleCast(pb::SingleCast {
            uniq_id: "u".into(),
            data: Bytes::from_static(b"hi"),
        })
    );

    // TopicUniqIdCountResp {"a": 0} written with the zero value present (as Go does).
    let body: &[u8] = &[
        0x0a, 0x05, // field 1 (items), entry length 5
        0x0a, 0x01, b'a', // key "a"
        0x10, 0x00, // value 0, written explicitly
    ];
    let decoded = ToBusiness::decode(cmd::TOPIC_UNIQ_ID_COUNT, Bytes::from_static(body)).unwrap();
    assert_eq!(
        decoded,
        ToBusiness::TopicUniqIdCount(pb::TopicUniqIdCountResp {
            items: BTreeMap::from([("a".to_owned(), 0)]),
        })
    );

    // RegisterReq with events = 0 written explicitly, then 4: the last value wins.
    let body: &[u8] = &[0x08, 0x00, 0x08, 0x04];
    let decoded = ToGateway::decode(cmd::REGISTER, Bytes::from_static(body)).unwrap();
    assert_eq!(
        decoded,
        ToGateway::Register(pb::RegisterReq {
            events: cmd::events::ON_MESSAGE,
        })
    );

    // An int32 -1 written as a 5-byte varint (legal for int32 on the wire).
    let body: &[u8] = &[0x08, 0xff, 0xff, 0xff, 0xff, 0x0f];
    let decoded = ToBusiness::decode(cmd::UNIQ_ID_COUNT, Bytes::from_static(body)).unwrap();
    assert_eq!(
        decoded,
        ToBusiness::UniqIdCount(pb::UniqIdCountResp { count: -1 })
    );
}
