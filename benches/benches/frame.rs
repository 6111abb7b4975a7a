//! Micro-benchmarks for the RFC 6455 frame codec (`netsvr_core::wire`): decoding masked client frames and encoding server frames.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netsvr_core::wire::{
    Decoded, DecoderConfig, FrameDecoder, Message, OpCode, encode_client_frame, encode_frame,
};

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn config() -> DecoderConfig {
    DecoderConfig {
        max_message_size: 1 << 20,
        require_mask: true,
        compressed: false,
    }
}

/// Decodes every frame in `stream` and returns the last completed message.
fn decode_stream(decoder: &mut FrameDecoder, stream: &[u8]) -> Option<Message> {
    let mut rest = stream;
    let mut last = None;
    while let Ok(Decoded::Frame { consumed, message }) = decoder.decode(rest) {
        rest = rest.get(consumed..).unwrap_or_default();
        if message.is_some() {
            last = message;
        }
    }
    last
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (name, len) in [("binary_100b", 100_usize), ("binary_16k", 16 * 1024)] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let frame = encode_client_frame(OpCode::Binary, true, &payload, MASK);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut decoder = FrameDecoder::new(config());
                decoder.decode(black_box(&frame))
            });
        });
    }

    let text = "fragmented text message ✓ ".repeat(40);
    let quarter = text.len() / 4;
    let mut stream = Vec::new();
    for i in 0..4 {
        let start = i * quarter;
        let end = if i == 3 { text.len() } else { start + quarter };
        let opcode = if i == 0 {
            OpCode::Text
        } else {
            OpCode::Continuation
        };
        let fragment = text.as_bytes().get(start..end).unwrap_or_default();
        stream.extend_from_slice(&encode_client_frame(opcode, i == 3, fragment, MASK));
    }
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("text_4_fragments", |b| {
        b.iter(|| {
            let mut decoder = FrameDecoder::new(config());
            decode_stream(&mut decoder, black_box(&stream))
        });
    });
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (name, len) in [("frame_100b", 100_usize), ("frame_16k", 16 * 1024)] {
        let payload = vec![0x5a_u8; len];
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(name, |b| {
            b.iter(|| encode_frame(OpCode::Binary, black_box(&payload)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decode, bench_encode);
criterion_main!(benches);
