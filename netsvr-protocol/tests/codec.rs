//! Codec and message behaviour: partial input, splits, heartbeats, limits, errors, round
//! trips of one value of every message, and randomised streams (inline xorshift PRNG).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use netsvr_protocol::codec::{self, Codec, CodecError, DEFAULT_MAX_FRAME, Frame};
use netsvr_protocol::{DEFAULT_HEARTBEAT, MessageError, ToBusiness, ToGateway, cmd, pb};
use std::collections::{BTreeMap, BTreeSet};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn s(text: &str) -> String {
    text.to_owned()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn b(data: &'static [u8]) -> Bytes {
    Bytes::from_static(data)
}

/// Decodes frames off `buf` until the codec wants more bytes or fails. Checks on the way
/// that `Ok(None)` leaves the buffer untouched.
fn drain(codec: &Codec, buf: &mut BytesMut, out: &mut Vec<Frame>) -> Result<(), CodecError> {
    loop {
        let before = buf.clone();
        match codec.decode(buf)? {
            Some(frame) => {
                assert!(buf.len() < before.len(), "a frame consumes bytes");
                out.push(frame);
            }
            None => {
                assert_eq!(*buf, before, "Ok(None) must consume nothing");
                return Ok(());
            }
        }
    }
}

/// Feeds `stream` in the given pieces into a growing buffer; returns the frames and
/// the bytes left over.
fn decode_pieces(codec: &Codec, pieces: &[&[u8]]) -> (Vec<Frame>, BytesMut) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        drain(codec, &mut buf, &mut out).expect("a valid stream never fails");
    }
    (out, buf)
}

fn frame_bytes(len: u32, rest: &[u8]) -> Vec<u8> {
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(rest);
    out
}

/// A valid stream of several frames (commands in both directions, empty bodies and
/// heartbeats) and the frames it holds, in order.
fn sample_stream() -> (Vec<u8>, Vec<Frame>) {
    let codec = Codec::default();
    let messages_to_gateway = [
        ToGateway::SingleCast(pb::SingleCast {
            uniq_id: s("7f00000117ae65f3a1b200000001"),
            data: b(b"hello"),
        }),
        ToGateway::UniqIdCount,
        ToGateway::Register(pb::RegisterReq {
            events: cmd::events::ALL,
        }),
    ];
    let messages_to_business = [ToBusiness::Transfer(pb::Transfer {
        uniq_id: s("u1"),
        customer_id: s("c1"),
        session: s("s1"),
        topics: strings(&["t1", "t2"]),
        data: b(b"payload"),
    })];
    let mut stream = BytesMut::new();
    let mut frames = Vec::new();
    codec.encode_heartbeat(&mut stream);
    frames.push(Frame::Heartbeat);
    for message in &messages_to_gateway {
        message.encode(&mut stream);
        frames.push(Frame::Command {
            cmd: message.cmd(),
            body: message.encode_body(),
        });
    }
    codec.encode_heartbeat(&mut stream);
    frames.push(Frame::Heartbeat);
    for message in &messages_to_business {
        message.encode(&mut stream);
        frames.push(Frame::Command {
            cmd: message.cmd(),
            body: message.encode_body(),
        });
    }
    codec::encode_raw(cmd::BROADCAST, &[0x0a, 0x01, 0x2a], &mut stream);
    frames.push(Frame::Command {
        cmd: cmd::BROADCAST,
        body: b(&[0x0a, 0x01, 0x2a]),
    });
    (stream.to_vec(), frames)
}

/// Where each frame of `stream` ends (byte offsets), read from the length prefixes.
fn frame_ends(stream: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let len = u32::from_be_bytes(stream[at..at + 4].try_into().unwrap()) as usize;
        at += 4 + len;
        ends.push(at);
    }
    assert_eq!(at, stream.len());
    ends
}

// ---------------------------------------------------------------------------------------
// Partial input and splits
// ---------------------------------------------------------------------------------------

#[test]
fn sample_stream_decodes_whole() {
    let (stream, frames) = sample_stream();
    assert_eq!(frames.len(), 7);
    let (out, rest) = decode_pieces(&Codec::default(), &[&stream]);
    assert_eq!(out, frames);
    assert!(rest.is_empty());
}

#[test]
fn every_prefix_yields_only_whole_frames_and_consumes_nothing_more() {
    let (stream, frames) = sample_stream();
    let ends = frame_ends(&stream);
    let codec = Codec::default();
    for cut in 0..=stream.len() {
        let whole = ends.iter().filter(|&&end| end <= cut).count();
        let consumed = if whole == 0 { 0 } else { ends[whole - 1] };
        let (out, rest) = decode_pieces(&codec, &[&stream[..cut]]);
        assert_eq!(out, frames[..whole], "prefix of {cut} bytes");
        assert_eq!(&rest[..], &stream[consumed..cut], "prefix of {cut} bytes");
    }
}

#[test]
fn every_strict_prefix_of_a_frame_is_ok_none_and_untouched() {
    let (stream, _) = sample_stream();
    let ends = frame_ends(&stream);
    let codec = Codec::default();
    let mut start = 0;
    for end in ends {
        for cut in start..end {
            let mut buf = BytesMut::from(&stream[start..cut]);
            assert_eq!(
                codec.decode(&mut buf),
                Ok(None),
                "{} of {} bytes",
                cut - start,
                end - start
            );
            assert_eq!(&buf[..], &stream[start..cut], "nothing consumed");
        }
        start = end;
    }
}

#[test]
fn one_split_at_every_point_decodes_the_same() {
    let (stream, frames) = sample_stream();
    let codec = Codec::default();
    for cut in 0..=stream.len() {
        let (out, rest) = decode_pieces(&codec, &[&stream[..cut], &stream[cut..]]);
        assert_eq!(out, frames, "split at {cut}");
        assert!(rest.is_empty(), "split at {cut}");
    }
}

#[test]
fn two_splits_at_every_pair_of_points_decode_the_same() {
    let (stream, frames) = sample_stream();
    let codec = Codec::default();
    for first in 0..=stream.len() {
        for second in first..=stream.len() {
            let (out, rest) = decode_pieces(
                &codec,
                &[&stream[..first], &stream[first..second], &stream[second..]],
            );
            assert_eq!(out, frames, "splits at {first} and {second}");
            assert!(rest.is_empty());
        }
    }
}

#[test]
fn one_byte_at_a_time_decodes_the_same() {
    let (stream, frames) = sample_stream();
    let pieces: Vec<&[u8]> = stream.chunks(1).collect();
    let (out, rest) = decode_pieces(&Codec::default(), &pieces);
    assert_eq!(out, frames);
    assert!(rest.is_empty());
}

// ---------------------------------------------------------------------------------------
// Heartbeats
// ---------------------------------------------------------------------------------------

#[test]
fn default_heartbeat_literal_is_recognised() {
    let codec = Codec::default();
    assert_eq!(&codec.heartbeat()[..], b"~6YOt5rW35piO~");
    assert_eq!(codec.max_frame(), 2 * 1024 * 1024);
    let mut buf = BytesMut::from(&frame_bytes(14, DEFAULT_HEARTBEAT)[..]);
    assert_eq!(codec.decode(&mut buf), Ok(Some(Frame::Heartbeat)));
    assert!(buf.is_empty());

    // One byte different: a command frame whose id is the first four bytes.
    let mut other = DEFAULT_HEARTBEAT.to_vec();
    other[13] = b'!';
    let mut buf = BytesMut::from(&frame_bytes(14, &other)[..]);
    assert_eq!(
        codec.decode(&mut buf),
        Ok(Some(Frame::Command {
            cmd: u32::from_be_bytes(*b"~6YO"),
            body: Bytes::copy_from_slice(&other[4..]),
        }))
    );
}

#[test]
fn custom_heartbeat_literal_via_new() {
    let codec = Codec::new(1024, b(b"PING"));
    assert_eq!(&codec.heartbeat()[..], b"PING");
    assert_eq!(codec.max_frame(), 1024);
    let mut out = BytesMut::new();
    codec.encode_heartbeat(&mut out);
    assert_eq!(&out[..], b"\x00\x00\x00\x04PING");
    let mut buf = out.clone();
    assert_eq!(codec.decode(&mut buf), Ok(Some(Frame::Heartbeat)));
    assert!(buf.is_empty());

    // The default literal is just a command to this codec.
    let mut buf = BytesMut::from(&frame_bytes(14, DEFAULT_HEARTBEAT)[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Ok(Some(Frame::Command { .. }))
    ));
}

#[test]
fn short_custom_heartbeat_wins_over_too_short() {
    let codec = Codec::new(1024, b(b"hb"));
    let mut buf = BytesMut::from(&b"\x00\x00\x00\x02hb"[..]);
    assert_eq!(codec.decode(&mut buf), Ok(Some(Frame::Heartbeat)));
    let mut buf = BytesMut::from(&b"\x00\x00\x00\x02xx"[..]);
    assert_eq!(codec.decode(&mut buf), Err(CodecError::TooShort { len: 2 }));
}

// ---------------------------------------------------------------------------------------
// Limits and malformed frames
// ---------------------------------------------------------------------------------------

#[test]
fn over_the_limit_fails_on_the_prefix_alone() {
    let codec = Codec::new(16, b(DEFAULT_HEARTBEAT));
    // Three bytes of the prefix: not yet known.
    let mut buf = BytesMut::from(&17u32.to_be_bytes()[..3]);
    assert_eq!(codec.decode(&mut buf), Ok(None));
    // The fourth arrives, no body at all: fails at once.
    let mut buf = BytesMut::from(&17u32.to_be_bytes()[..]);
    assert_eq!(
        codec.decode(&mut buf),
        Err(CodecError::TooLarge { len: 17, limit: 16 })
    );

    let codec = Codec::default();
    let mut buf = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
    assert_eq!(
        codec.decode(&mut buf),
        Err(CodecError::TooLarge {
            len: u32::MAX as usize,
            limit: DEFAULT_MAX_FRAME,
        })
    );
    let over = u32::try_from(DEFAULT_MAX_FRAME + 1).unwrap();
    let mut buf = BytesMut::from(&over.to_be_bytes()[..]);
    assert_eq!(
        codec.decode(&mut buf),
        Err(CodecError::TooLarge {
            len: DEFAULT_MAX_FRAME + 1,
            limit: DEFAULT_MAX_FRAME,
        })
    );
    // Also when a valid frame came first in the same buffer.
    let mut buf = BytesMut::from(&frame_bytes(14, DEFAULT_HEARTBEAT)[..]);
    buf.extend_from_slice(&over.to_be_bytes());
    assert_eq!(codec.decode(&mut buf), Ok(Some(Frame::Heartbeat)));
    assert!(matches!(
        codec.decode(&mut buf),
        Err(CodecError::TooLarge { .. })
    ));
}

#[test]
fn exactly_at_the_limit_is_accepted() {
    let codec = Codec::new(16, b(DEFAULT_HEARTBEAT));
    let mut body = cmd::BROADCAST.to_be_bytes().to_vec();
    body.extend_from_slice(&[7; 12]);
    let whole = frame_bytes(16, &body);
    let mut buf = BytesMut::from(&whole[..4]);
    assert_eq!(codec.decode(&mut buf), Ok(None), "waits for the body");
    let mut buf = BytesMut::from(&whole[..]);
    assert_eq!(
        codec.decode(&mut buf),
        Ok(Some(Frame::Command {
            cmd: cmd::BROADCAST,
            body: Bytes::from(vec![7; 12]),
        }))
    );
    assert!(buf.is_empty());
}

#[test]
fn exactly_at_the_default_limit_is_accepted() {
    let codec = Codec::default();
    let mut body = cmd::BROADCAST.to_be_bytes().to_vec();
    body.resize(DEFAULT_MAX_FRAME, 0xab);
    let whole = frame_bytes(u32::try_from(DEFAULT_MAX_FRAME).unwrap(), &body);
    let mut buf = BytesMut::from(&whole[..whole.len() - 1]);
    assert_eq!(codec.decode(&mut buf), Ok(None));
    buf.extend_from_slice(&whole[whole.len() - 1..]);
    match codec.decode(&mut buf) {
        Ok(Some(Frame::Command { cmd, body })) => {
            assert_eq!(cmd, cmd::BROADCAST);
            assert_eq!(body.len(), DEFAULT_MAX_FRAME - 4);
        }
        other => panic!("expected a command frame, got {other:?}"),
    }
    assert!(buf.is_empty());
}

#[test]
fn lengths_below_a_command_id_are_too_short() {
    let codec = Codec::default();
    for len in 0..4u32 {
        let mut buf = BytesMut::from(&frame_bytes(len, &b"abc"[..len as usize])[..]);
        assert_eq!(
            codec.decode(&mut buf),
            Err(CodecError::TooShort { len: len as usize }),
            "length {len}"
        );
    }
    // Length 4 is the shortest command: an id and an empty body.
    let mut buf = BytesMut::from(&frame_bytes(4, &cmd::TOPIC_COUNT.to_be_bytes())[..]);
    assert_eq!(
        codec.decode(&mut buf),
        Ok(Some(Frame::Command {
            cmd: cmd::TOPIC_COUNT,
            body: Bytes::new(),
        }))
    );
}

#[test]
fn errors_display_their_numbers() {
    let text = CodecError::TooLarge { len: 17, limit: 16 }.to_string();
    assert!(text.contains("17") && text.contains("16"), "{text}");
    let text = CodecError::TooShort { len: 3 }.to_string();
    assert!(text.contains('3'), "{text}");
    let text = MessageError::UnknownCmd(42).to_string();
    assert!(text.contains("42"), "{text}");
    let error = ToGateway::decode(cmd::SINGLE_CAST, b(&[0x0a, 0x05])).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("SingleCast") && text.contains("900002006"),
        "{text}"
    );
}

#[test]
fn unknown_command_ids() {
    for unknown in [
        0,
        1,
        900_000_000,
        900_001_004,
        900_002_018,
        900_003_019,
        u32::MAX,
    ] {
        assert_eq!(
            ToGateway::decode(unknown, Bytes::new()),
            Err(MessageError::UnknownCmd(unknown))
        );
        assert_eq!(
            ToBusiness::decode(unknown, Bytes::new()),
            Err(MessageError::UnknownCmd(unknown))
        );
    }
    // Known, but not in this direction.
    for event in [cmd::CONN_OPEN, cmd::CONN_CLOSE, cmd::TRANSFER] {
        assert_eq!(
            ToGateway::decode(event, Bytes::new()),
            Err(MessageError::UnknownCmd(event))
        );
    }
    for command in [cmd::BROADCAST, cmd::SINGLE_CAST, cmd::FORCE_OFFLINE_GUEST] {
        assert_eq!(
            ToBusiness::decode(command, Bytes::new()),
            Err(MessageError::UnknownCmd(command))
        );
    }
}

#[test]
fn garbage_bodies_are_body_errors() {
    let garbage: [&'static [u8]; 5] = [
        &[0x0a, 0x05, b'a'], // length 5, 1 byte present
        &[0x0a, 0x01, 0xff], // invalid UTF-8 in a string
        &[0x0f],             // wire type 7 does not exist
        &[0x08],             // a tag with no varint after it
        &[
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ], // varint > 10 bytes
    ];
    for body in garbage {
        let error = ToGateway::decode(cmd::SINGLE_CAST, b(body)).unwrap_err();
        assert!(
            matches!(error, MessageError::Body { cmd, .. } if cmd == cmd::SINGLE_CAST),
            "{body:02x?}: {error:?}"
        );
        let error = ToBusiness::decode(cmd::TRANSFER, b(body)).unwrap_err();
        assert!(
            matches!(error, MessageError::Body { cmd, .. } if cmd == cmd::TRANSFER),
            "{body:02x?}: {error:?}"
        );
    }
    // A message field (map entry) whose inner bytes are garbage.
    let error = ToBusiness::decode(cmd::METRICS, b(&[0x0a, 0x02, 0x12, 0x05])).unwrap_err();
    assert!(matches!(error, MessageError::Body { cmd, .. } if cmd == cmd::METRICS));
}

// ---------------------------------------------------------------------------------------
// Every message round-trips
// ---------------------------------------------------------------------------------------

/// One value of every `ToGateway` variant, fields set to non-default values.
fn to_gateway_samples() -> Vec<ToGateway> {
    vec![
        ToGateway::ConnInfoUpdate(pb::ConnInfoUpdate {
            uniq_id: s("u1"),
            new_session: s("session"),
            new_customer_id: s("c1"),
            new_topics: strings(&["t1", "t2"]),
            data: b(b"update"),
        }),
        ToGateway::ConnInfoDelete(pb::ConnInfoDelete {
            uniq_id: s("u1"),
            del_session: true,
            del_customer_id: true,
            del_topic: true,
            data: b(b"delete"),
        }),
        ToGateway::Broadcast(pb::Broadcast {
            data: b(b"\x00\x01all"),
        }),
        ToGateway::Multicast(pb::Multicast {
            uniq_ids: strings(&["u1", "u2"]),
            data: b(b"multi"),
        }),
        ToGateway::MulticastByCustomerId(pb::MulticastByCustomerId {
            customer_ids: strings(&["c1", "c2"]),
            data: b(b"multi-c"),
        }),
        ToGateway::SingleCast(pb::SingleCast {
            uniq_id: s("u1"),
            data: b(b"single"),
        }),
        ToGateway::SingleCastBulk(pb::SingleCastBulk {
            uniq_ids: strings(&["u1", "u2"]),
            data: vec![b(b"a"), b(b""), b(b"c")],
        }),
        ToGateway::SingleCastByCustomerId(pb::SingleCastByCustomerId {
            customer_id: s("c1"),
            data: b(b"single-c"),
        }),
        ToGateway::SingleCastBulkByCustomerId(pb::SingleCastBulkByCustomerId {
            customer_ids: strings(&["c1"]),
            data: vec![b(b"x"), b(b"y")],
        }),
        ToGateway::TopicSubscribe(pb::TopicSubscribe {
            uniq_id: s("u1"),
            topics: strings(&["t1", "t2"]),
            data: b(b"sub"),
        }),
        ToGateway::TopicUnsubscribe(pb::TopicUnsubscribe {
            uniq_id: s("u2"),
            topics: strings(&["t3"]),
            data: b(b"unsub"),
        }),
        ToGateway::TopicDelete(pb::TopicDelete {
            topics: strings(&["t1"]),
            data: b(b"gone"),
        }),
        ToGateway::TopicPublish(pb::TopicPublish {
            topics: strings(&["t1", "t2"]),
            data: b(b"news"),
        }),
        ToGateway::TopicPublishBulk(pb::TopicPublishBulk {
            topics: strings(&["t1", "t2"]),
            data: vec![b(b"n1"), b(b"n2")],
        }),
        ToGateway::ForceOffline(pb::ForceOffline {
            uniq_ids: strings(&["u1"]),
            data: b(b"bye"),
        }),
        ToGateway::ForceOfflineByCustomerId(pb::ForceOfflineByCustomerId {
            customer_ids: strings(&["c1", "c2"]),
            data: b(b"bye-c"),
        }),
        ToGateway::ForceOfflineGuest(pb::ForceOfflineGuest {
            uniq_ids: strings(&["u1", "u2"]),
            delay: -7,
            data: b(b"guest"),
        }),
        ToGateway::Register(pb::RegisterReq {
            events: cmd::events::ON_OPEN | cmd::events::ON_MESSAGE,
        }),
        ToGateway::Unregister(pb::UnRegisterReq { conn_id: s("w1") }),
        ToGateway::CheckOnline(pb::CheckOnlineReq {
            uniq_ids: strings(&["u1", "u9"]),
        }),
        ToGateway::CustomerIdList,
        ToGateway::CustomerIdCount,
        ToGateway::UniqIdList,
        ToGateway::UniqIdCount,
        ToGateway::TopicList,
        ToGateway::TopicCount,
        ToGateway::TopicUniqIdList(pb::TopicUniqIdListReq {
            topics: strings(&["t1"]),
        }),
        ToGateway::TopicUniqIdCount(pb::TopicUniqIdCountReq {
            topics: strings(&["t1", "t2"]),
            count_all: true,
        }),
        ToGateway::TopicCustomerIdList(pb::TopicCustomerIdListReq {
            topics: strings(&["t2"]),
        }),
        ToGateway::TopicCustomerIdToUniqIdsList(pb::TopicCustomerIdToUniqIdsListReq {
            topics: strings(&["t3"]),
        }),
        ToGateway::TopicCustomerIdCount(pb::TopicCustomerIdCountReq {
            topics: strings(&["t1"]),
            count_all: true,
        }),
        ToGateway::ConnInfo(pb::ConnInfoReq {
            uniq_ids: strings(&["u1"]),
            req_session: true,
            req_customer_id: true,
            req_topic: true,
        }),
        ToGateway::ConnInfoByCustomerId(pb::ConnInfoByCustomerIdReq {
            customer_ids: strings(&["c1"]),
            req_session: true,
            req_uniq_id: true,
            req_topic: true,
        }),
        ToGateway::Metrics,
        ToGateway::Limit(pb::LimitReq {
            on_open: 100,
            on_message: -1,
        }),
    ]
}

/// One value of every `ToBusiness` variant, fields set to non-default values.
fn to_business_samples() -> Vec<ToBusiness> {
    vec![
        ToBusiness::ConnOpen(pb::ConnOpen {
            uniq_id: s("u1"),
            raw_query: s("token=abc&x=1"),
            x_forwarded_for: s("10.0.0.1, 10.0.0.2"),
            x_real_ip: s("10.0.0.1"),
            remote_addr: s("127.0.0.1:50000"),
        }),
        ToBusiness::ConnClose(pb::ConnClose {
            uniq_id: s("u1"),
            customer_id: s("c1"),
            session: s("session"),
            topics: strings(&["t1", "t2"]),
            reason: s("node_lost"),
        }),
        ToBusiness::Transfer(pb::Transfer {
            uniq_id: s("u1"),
            customer_id: s("c1"),
            session: s("session"),
            topics: strings(&["t1"]),
            data: b(b"\xff\x00message"),
        }),
        ToBusiness::Register(pb::RegisterResp {
            code: pb::RegisterRespCode::InvalidEvent as i32,
            message: s("invalid event"),
            conn_id: s("w1"),
        }),
        ToBusiness::Unregister(pb::UnRegisterResp {}),
        ToBusiness::CheckOnline(pb::CheckOnlineResp {
            uniq_ids: strings(&["u1"]),
        }),
        ToBusiness::CustomerIdList(pb::CustomerIdListResp {
            customer_ids: strings(&["c1", "c2"]),
        }),
        ToBusiness::CustomerIdCount(pb::CustomerIdCountResp { count: 2 }),
        ToBusiness::UniqIdList(pb::UniqIdListResp {
            uniq_ids: strings(&["u1", "u2", "u3"]),
        }),
        ToBusiness::UniqIdCount(pb::UniqIdCountResp { count: 3 }),
        ToBusiness::TopicList(pb::TopicListResp {
            topics: strings(&["t1", "t2"]),
        }),
        ToBusiness::TopicCount(pb::TopicCountResp { count: 2 }),
        ToBusiness::TopicUniqIdList(pb::TopicUniqIdListResp {
            items: BTreeMap::from([
                (
                    s("t1"),
                    pb::TopicUniqIdListRespItem {
                        uniq_ids: strings(&["u1", "u2"]),
                    },
                ),
                (
                    s("t2"),
                    pb::TopicUniqIdListRespItem {
                        uniq_ids: strings(&["u3"]),
                    },
                ),
            ]),
        }),
        ToBusiness::TopicUniqIdCount(pb::TopicUniqIdCountResp {
            items: BTreeMap::from([(s("t1"), 2), (s("t2"), 1)]),
        }),
        ToBusiness::TopicCustomerIdList(pb::TopicCustomerIdListResp {
            items: BTreeMap::from([(
                s("t1"),
                pb::TopicCustomerIdListRespItem {
                    customer_ids: strings(&["c1", "c2"]),
                },
            )]),
        }),
        ToBusiness::TopicCustomerIdToUniqIdsList(pb::TopicCustomerIdToUniqIdsListResp {
            items: BTreeMap::from([(
                s("t1"),
                pb::TopicCustomerIdToUniqIdsListRespItem {
                    items: BTreeMap::from([
                        (
                            s("c1"),
                            pb::CustomerIdToUniqIdsRespItem {
                                uniq_ids: strings(&["u1", "u2"]),
                            },
                        ),
                        (
                            s("c2"),
                            pb::CustomerIdToUniqIdsRespItem {
                                uniq_ids: strings(&["u3"]),
                            },
                        ),
                    ]),
                },
            )]),
        }),
        ToBusiness::TopicCustomerIdCount(pb::TopicCustomerIdCountResp {
            items: BTreeMap::from([(s("t1"), 2)]),
        }),
        ToBusiness::ConnInfo(pb::ConnInfoResp {
            items: BTreeMap::from([(
                s("u1"),
                pb::ConnInfoRespItem {
                    session: s("session"),
                    customer_id: s("c1"),
                    topics: strings(&["t1", "t2"]),
                },
            )]),
        }),
        ToBusiness::ConnInfoByCustomerId(pb::ConnInfoByCustomerIdResp {
            items: BTreeMap::from([(
                s("c1"),
                pb::ConnInfoByCustomerIdRespItems {
                    items: vec![
                        pb::ConnInfoByCustomerIdRespItem {
                            session: s("s1"),
                            uniq_id: s("u1"),
                            topics: strings(&["t1"]),
                        },
                        pb::ConnInfoByCustomerIdRespItem {
                            session: s("s2"),
                            uniq_id: s("u2"),
                            topics: strings(&["t2", "t3"]),
                        },
                    ],
                },
            )]),
        }),
        ToBusiness::Metrics(pb::MetricsResp {
            items: BTreeMap::from([
                (
                    1,
                    pb::MetricsRespItem {
                        item: 1,
                        count: 1_000_000_000_000,
                        mean_rate: 1.5,
                        rate1: 2.25,
                        rate5: 0.125,
                        rate15: -3.0,
                    },
                ),
                (
                    -5,
                    pb::MetricsRespItem {
                        item: -5,
                        count: -1,
                        mean_rate: f32::MAX,
                        rate1: f32::MIN_POSITIVE,
                        rate5: f32::INFINITY,
                        rate15: 1e-3,
                    },
                ),
            ]),
        }),
        ToBusiness::Limit(pb::LimitResp {
            on_open: 10,
            on_message: 20,
        }),
    ]
}

/// Every known command id, with its PROTOCOL.md name.
const KNOWN: [(u32, &str); 38] = [
    (900_001_001, "ConnOpen"),
    (900_001_002, "ConnClose"),
    (900_001_003, "Transfer"),
    (900_002_001, "ConnInfoUpdate"),
    (900_002_002, "ConnInfoDelete"),
    (900_002_003, "Broadcast"),
    (900_002_004, "Multicast"),
    (900_002_005, "MulticastByCustomerId"),
    (900_002_006, "SingleCast"),
    (900_002_007, "SingleCastBulk"),
    (900_002_008, "SingleCastByCustomerId"),
    (900_002_009, "SingleCastBulkByCustomerId"),
    (900_002_010, "TopicSubscribe"),
    (900_002_011, "TopicUnsubscribe"),
    (900_002_012, "TopicDelete"),
    (900_002_013, "TopicPublish"),
    (900_002_014, "TopicPublishBulk"),
    (900_002_015, "ForceOffline"),
    (900_002_016, "ForceOfflineByCustomerId"),
    (900_002_017, "ForceOfflineGuest"),
    (900_003_001, "Register"),
    (900_003_002, "Unregister"),
    (900_003_003, "CheckOnline"),
    (900_003_004, "CustomerIdList"),
    (900_003_005, "CustomerIdCount"),
    (900_003_006, "UniqIdList"),
    (900_003_007, "UniqIdCount"),
    (900_003_008, "TopicList"),
    (900_003_009, "TopicCount"),
    (900_003_010, "TopicUniqIdList"),
    (900_003_011, "TopicUniqIdCount"),
    (900_003_012, "TopicCustomerIdList"),
    (900_003_013, "TopicCustomerIdToUniqIdsList"),
    (900_003_014, "TopicCustomerIdCount"),
    (900_003_015, "ConnInfo"),
    (900_003_016, "ConnInfoByCustomerId"),
    (900_003_017, "Metrics"),
    (900_003_018, "Limit"),
];

fn group(id: u32) -> u32 {
    id / 1000
}

#[test]
fn every_to_gateway_variant_round_trips() {
    let samples = to_gateway_samples();
    for message in &samples {
        let body = message.encode_body();
        assert_eq!(
            ToGateway::decode(message.cmd(), body.clone()).as_ref(),
            Ok(message),
            "{message:?}"
        );
        // The framed encoding is the same body behind a length and the id.
        let mut framed = BytesMut::new();
        message.encode(&mut framed);
        assert_eq!(
            Codec::default().decode(&mut framed),
            Ok(Some(Frame::Command {
                cmd: message.cmd(),
                body: body.clone(),
            }))
        );
        let is_unit = body.is_empty();
        let unit_cmds = [
            cmd::CUSTOMER_ID_LIST,
            cmd::CUSTOMER_ID_COUNT,
            cmd::UNIQ_ID_LIST,
            cmd::UNIQ_ID_COUNT,
            cmd::TOPIC_LIST,
            cmd::TOPIC_COUNT,
            cmd::METRICS,
        ];
        assert_eq!(
            is_unit,
            unit_cmds.contains(&message.cmd()),
            "only the empty queries have an empty body: {message:?}"
        );
    }
    // One sample per id, and the ids are exactly what ToGateway accepts.
    let sample_ids: BTreeSet<u32> = samples.iter().map(ToGateway::cmd).collect();
    assert_eq!(sample_ids.len(), samples.len(), "one sample per command");
    let accepted: BTreeSet<u32> = (900_000_000..900_004_000)
        .filter(|&id| ToGateway::decode(id, Bytes::new()).is_ok())
        .collect();
    assert_eq!(sample_ids, accepted, "a sample for every variant");
    let expected: BTreeSet<u32> = KNOWN
        .iter()
        .map(|&(id, _)| id)
        .filter(|&id| group(id) == 900_002 || group(id) == 900_003)
        .collect();
    assert_eq!(
        accepted, expected,
        "business -> gateway: 900002xxx and 900003xxx"
    );
}

#[test]
fn every_to_business_variant_round_trips() {
    let samples = to_business_samples();
    for message in &samples {
        let body = message.encode_body();
        assert_eq!(
            ToBusiness::decode(message.cmd(), body.clone()).as_ref(),
            Ok(message),
            "{message:?}"
        );
        let mut framed = BytesMut::new();
        message.encode(&mut framed);
        assert_eq!(
            Codec::default().decode(&mut framed),
            Ok(Some(Frame::Command {
                cmd: message.cmd(),
                body: body.clone(),
            }))
        );
        assert_eq!(
            body.is_empty(),
            message.cmd() == cmd::UNREGISTER,
            "only UnRegisterResp has no fields: {message:?}"
        );
        assert_eq!(
            message.is_event(),
            group(message.cmd()) == 900_001,
            "{message:?}"
        );
    }
    let sample_ids: BTreeSet<u32> = samples.iter().map(ToBusiness::cmd).collect();
    assert_eq!(sample_ids.len(), samples.len(), "one sample per command");
    let accepted: BTreeSet<u32> = (900_000_000..900_004_000)
        .filter(|&id| ToBusiness::decode(id, Bytes::new()).is_ok())
        .collect();
    assert_eq!(sample_ids, accepted, "a sample for every variant");
    let expected: BTreeSet<u32> = KNOWN
        .iter()
        .map(|&(id, _)| id)
        .filter(|&id| group(id) == 900_001 || group(id) == 900_003)
        .collect();
    assert_eq!(
        accepted, expected,
        "gateway -> business: 900001xxx and 900003xxx"
    );
}

#[test]
fn expects_response_exactly_for_900003xxx() {
    let samples = to_gateway_samples();
    let answering = samples.iter().filter(|m| m.expects_response()).count();
    assert_eq!(answering, 18);
    for message in &samples {
        assert_eq!(
            message.expects_response(),
            group(message.cmd()) == 900_003,
            "{message:?}"
        );
    }
}

#[test]
fn cmd_name_knows_every_id() {
    let constants = [
        cmd::CONN_OPEN,
        cmd::CONN_CLOSE,
        cmd::TRANSFER,
        cmd::CONN_INFO_UPDATE,
        cmd::CONN_INFO_DELETE,
        cmd::BROADCAST,
        cmd::MULTICAST,
        cmd::MULTICAST_BY_CUSTOMER_ID,
        cmd::SINGLE_CAST,
        cmd::SINGLE_CAST_BULK,
        cmd::SINGLE_CAST_BY_CUSTOMER_ID,
        cmd::SINGLE_CAST_BULK_BY_CUSTOMER_ID,
        cmd::TOPIC_SUBSCRIBE,
        cmd::TOPIC_UNSUBSCRIBE,
        cmd::TOPIC_DELETE,
        cmd::TOPIC_PUBLISH,
        cmd::TOPIC_PUBLISH_BULK,
        cmd::FORCE_OFFLINE,
        cmd::FORCE_OFFLINE_BY_CUSTOMER_ID,
        cmd::FORCE_OFFLINE_GUEST,
        cmd::REGISTER,
        cmd::UNREGISTER,
        cmd::CHECK_ONLINE,
        cmd::CUSTOMER_ID_LIST,
        cmd::CUSTOMER_ID_COUNT,
        cmd::UNIQ_ID_LIST,
        cmd::UNIQ_ID_COUNT,
        cmd::TOPIC_LIST,
        cmd::TOPIC_COUNT,
        cmd::TOPIC_UNIQ_ID_LIST,
        cmd::TOPIC_UNIQ_ID_COUNT,
        cmd::TOPIC_CUSTOMER_ID_LIST,
        cmd::TOPIC_CUSTOMER_ID_TO_UNIQ_IDS_LIST,
        cmd::TOPIC_CUSTOMER_ID_COUNT,
        cmd::CONN_INFO,
        cmd::CONN_INFO_BY_CUSTOMER_ID,
        cmd::METRICS,
        cmd::LIMIT,
    ];
    for (constant, (id, name)) in constants.iter().zip(KNOWN) {
        assert_eq!(*constant, id, "{name}");
        assert_eq!(cmd::name(id), Some(name), "{id}");
    }
    // Nothing else in (or around) the three groups has a name.
    let named: Vec<u32> = (899_999_000..900_005_000)
        .filter(|&id| cmd::name(id).is_some())
        .collect();
    assert_eq!(named, KNOWN.map(|(id, _)| id));
    assert_eq!(cmd::name(0), None);
    assert_eq!(cmd::name(u32::MAX), None);
    let names: BTreeSet<&str> = KNOWN.iter().map(|&(_, name)| name).collect();
    assert_eq!(names.len(), KNOWN.len(), "names are unique");
}

#[test]
fn register_event_bits() {
    assert_eq!(cmd::events::ON_OPEN, 1);
    assert_eq!(cmd::events::ON_CLOSE, 2);
    assert_eq!(cmd::events::ON_MESSAGE, 4);
    assert_eq!(cmd::events::ALL, 7);
}

// ---------------------------------------------------------------------------------------
// Randomised
// ---------------------------------------------------------------------------------------

/// xorshift64: tiny, deterministic, good enough to pick cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// A random frame: the encoded bytes and what decoding must give back.
fn random_frame(rng: &mut Rng, codec: &Codec, out: &mut BytesMut) -> Frame {
    match rng.below(8) {
        0 => {
            codec.encode_heartbeat(out);
            Frame::Heartbeat
        }
        1 => {
            let samples = to_gateway_samples();
            let message = &samples[rng.below(samples.len())];
            message.encode(out);
            Frame::Command {
                cmd: message.cmd(),
                body: message.encode_body(),
            }
        }
        2 => {
            let samples = to_business_samples();
            let message = &samples[rng.below(samples.len())];
            message.encode(out);
            Frame::Command {
                cmd: message.cmd(),
                body: message.encode_body(),
            }
        }
        _ => {
            // A known id with a random body (the codec does not look inside it); small
            // bodies mostly, sometimes big ones so that a body spans many reads.
            let cmd = KNOWN[rng.below(KNOWN.len())].0;
            let len = if rng.below(10) == 0 {
                rng.below(5000)
            } else {
                rng.below(40)
            };
            let body = rng.bytes(len);
            codec::encode_raw(cmd, &body, out);
            Frame::Command {
                cmd,
                body: Bytes::from(body),
            }
        }
    }
}

#[test]
fn random_streams_split_at_random_points_decode_in_order() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let codecs = [Codec::default(), Codec::new(8192, b(b"hb"))];
    for case in 0..400 {
        let codec = &codecs[case % codecs.len()];
        let mut stream = BytesMut::new();
        let count = rng.below(12);
        let frames: Vec<Frame> = (0..count)
            .map(|_| random_frame(&mut rng, codec, &mut stream))
            .collect();

        // Random cut points (some cases many tiny pieces, some few big ones).
        let max_piece = [1, 3, 16, 200, 10_000][rng.below(5)];
        let mut pieces = Vec::new();
        let mut at = 0;
        while at < stream.len() {
            let len = (1 + rng.below(max_piece)).min(stream.len() - at);
            pieces.push(&stream[at..at + len]);
            at += len;
        }
        let (out, rest) = decode_pieces(codec, &pieces);
        assert_eq!(out, frames, "case {case}");
        assert!(rest.is_empty(), "case {case}");

        // And every decoded command whose body came from a typed message decodes back
        // to a message of its direction.
        for frame in &out {
            if let Frame::Command { cmd, body } = frame {
                let gateway = ToGateway::decode(*cmd, body.clone());
                let business = ToBusiness::decode(*cmd, body.clone());
                if let Ok(message) = gateway {
                    assert_eq!(message.cmd(), *cmd);
                }
                if let Ok(message) = business {
                    assert_eq!(message.cmd(), *cmd);
                }
            }
        }
    }
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let codecs = [
        Codec::default(),
        Codec::new(64, b(DEFAULT_HEARTBEAT)),
        Codec::new(16, b(b"hb")),
    ];
    let mut seen_frames = 0usize;
    let mut seen_errors = 0usize;
    let mut seen_messages = 0usize;
    for case in 0..2000 {
        let codec = &codecs[case % codecs.len()];
        let mut input = Vec::new();
        // Mostly garbage with plausible small length prefixes, so that frames do parse;
        // sometimes a known id right after, so that bodies reach the message decoders.
        for _ in 0..rng.below(6) {
            match rng.below(4) {
                0 => {
                    let len = rng.below(30);
                    input.extend_from_slice(&rng.bytes(len));
                }
                1 => {
                    let len = rng.below(24);
                    input.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
                    if len >= 4 && rng.below(2) == 0 {
                        let id = KNOWN[rng.below(KNOWN.len())].0;
                        input.extend_from_slice(&id.to_be_bytes());
                        input.extend_from_slice(&rng.bytes(len - 4));
                    } else {
                        input.extend_from_slice(&rng.bytes(len));
                    }
                }
                2 => input.extend_from_slice(&(rng.next() as u32).to_be_bytes()),
                _ => {
                    // A real message, its body sometimes with one byte changed.
                    let (id, mut body) = if rng.below(2) == 0 {
                        let samples = to_gateway_samples();
                        let message = &samples[rng.below(samples.len())];
                        (message.cmd(), message.encode_body().to_vec())
                    } else {
                        let samples = to_business_samples();
                        let message = &samples[rng.below(samples.len())];
                        (message.cmd(), message.encode_body().to_vec())
                    };
                    if !body.is_empty() && rng.below(2) == 0 {
                        let at = rng.below(body.len());
                        body[at] = rng.next() as u8;
                    }
                    let mut framed = BytesMut::new();
                    codec::encode_raw(id, &body, &mut framed);
                    input.extend_from_slice(&framed);
                }
            }
        }
        let mut buf = BytesMut::new();
        let mut at = 0;
        'feed: while at < input.len() {
            let len = (1 + rng.below(8)).min(input.len() - at);
            buf.extend_from_slice(&input[at..at + len]);
            at += len;
            loop {
                let before = buf.len();
                match codec.decode(&mut buf) {
                    Ok(None) => {
                        assert_eq!(buf.len(), before);
                        break;
                    }
                    Ok(Some(Frame::Heartbeat)) => seen_frames += 1,
                    Ok(Some(Frame::Command { cmd, body })) => {
                        seen_frames += 1;
                        assert!(body.len() + 4 <= codec.max_frame());
                        if let Ok(message) = ToGateway::decode(cmd, body.clone()) {
                            seen_messages += 1;
                            assert_eq!(ToGateway::decode(cmd, message.encode_body()), Ok(message));
                        }
                        if let Ok(message) = ToBusiness::decode(cmd, body) {
                            seen_messages += 1;
                            // Random float bits may be NaN, which is not equal to itself:
                            // compare the re-encodings, which are canonical.
                            let again = ToBusiness::decode(cmd, message.encode_body()).unwrap();
                            assert_eq!(again.encode_body(), message.encode_body());
                        }
                    }
                    Err(CodecError::TooLarge { len, limit }) => {
                        assert!(len > limit);
                        seen_errors += 1;
                        break 'feed;
                    }
                    Err(CodecError::TooShort { len }) => {
                        assert!(len < 4);
                        seen_errors += 1;
                        break 'feed;
                    }
                    Err(other) => panic!("unexpected error {other:?}"),
                }
            }
        }
    }
    // The generator must actually exercise both outcomes.
    assert!(seen_frames > 500, "{seen_frames} frames");
    assert!(seen_errors > 500, "{seen_errors} errors");
    assert!(seen_messages > 300, "{seen_messages} messages decoded");
}
