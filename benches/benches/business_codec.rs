//! Micro-benchmarks for the business wire protocol (`netsvr_protocol`): taking frames off a
//! worker-port byte stream, decoding command bodies, and encoding event frames.
//!
//! - `decode_stream/single_cast_100b_x1000`: `Codec::decode` over a buffer of 1,000
//!   SingleCast frames of exactly 100 bytes each (length prefix included);
//! - `to_gateway/single_cast_body`: `ToGateway::decode` of one SingleCast body;
//! - `to_business/transfer_encode`: a Transfer event frame (100-byte payload, two topics)
//!   appended to a reused buffer, as a sink does;
//! - `multicast_1000_ids/{encode,decode}`: a Multicast to 1,000 uniqIds with a 100-byte
//!   payload.
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use netsvr_protocol::{Codec, Frame, Message as _, ToBusiness, ToGateway, cmd, codec, pb};

const FRAMES: usize = 1_000;
const FRAME_BYTES: usize = 100;

/// A uniqId as the gateway prints it: 28 hex digits.
fn uniq_id(i: usize) -> String {
    format!("7f0000011770{i:016x}")
}

/// A SingleCast whose whole frame (prefix, command id, body) is `FRAME_BYTES` long.
fn single_cast() -> pb::SingleCast {
    let mut message = pb::SingleCast {
        uniq_id: uniq_id(1),
        data: Bytes::new(),
    };
    // Prefix + command id + body with an empty payload, plus the payload's tag and length.
    let fixed = codec::LEN_PREFIX + codec::CMD_LEN + message.encoded_len() + 2;
    message.data = Bytes::from(vec![0x5a; FRAME_BYTES - fixed]);
    assert_eq!(
        codec::encode_to_bytes(cmd::SINGLE_CAST, &message).len(),
        FRAME_BYTES
    );
    message
}

fn bench_decode_stream(c: &mut Criterion) {
    let message = single_cast();
    let mut stream = BytesMut::new();
    for _ in 0..FRAMES {
        codec::encode(cmd::SINGLE_CAST, &message, &mut stream);
    }
    let codec = Codec::default();
    let mut group = c.benchmark_group("decode_stream");
    group.throughput(Throughput::Elements(FRAMES as u64));
    group.bench_function("single_cast_100b_x1000", |b| {
        b.iter_batched_ref(
            || stream.clone(),
            |buf| {
                let mut frames = 0_usize;
                while let Ok(Some(frame)) = codec.decode(buf) {
                    if let Frame::Command { body, .. } = frame {
                        black_box(body);
                        frames += 1;
                    }
                }
                frames
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn bench_messages(c: &mut Criterion) {
    let body = Bytes::from(single_cast().encode_to_vec());
    c.bench_function("to_gateway/single_cast_body", |b| {
        b.iter(|| ToGateway::decode(cmd::SINGLE_CAST, black_box(body.clone())));
    });

    let transfer = ToBusiness::Transfer(pb::Transfer {
        uniq_id: uniq_id(7),
        customer_id: "customer-42".to_owned(),
        session: "session-token-0123456789".to_owned(),
        topics: vec!["room-1".to_owned(), "news".to_owned()],
        data: Bytes::from(vec![0x5a; 100]),
    });
    let mut out = BytesMut::with_capacity(1024);
    c.bench_function("to_business/transfer_encode", |b| {
        b.iter(|| {
            out.clear();
            black_box(&transfer).encode(&mut out);
            out.len()
        });
    });
}

fn bench_multicast(c: &mut Criterion) {
    let multicast = ToGateway::Multicast(pb::Multicast {
        uniq_ids: (0..1_000).map(uniq_id).collect(),
        data: Bytes::from(vec![0x5a; 100]),
    });
    let body = multicast.encode_body();
    let mut group = c.benchmark_group("multicast_1000_ids");
    group.throughput(Throughput::Elements(1_000));
    let mut out = BytesMut::with_capacity(body.len() + 16);
    group.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            black_box(&multicast).encode(&mut out);
            out.len()
        });
    });
    group.bench_function("decode", |b| {
        b.iter(|| ToGateway::decode(cmd::MULTICAST, black_box(body.clone())));
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_decode_stream,
    bench_messages,
    bench_multicast
);
criterion_main!(benches);
