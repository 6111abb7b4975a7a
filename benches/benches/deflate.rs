//! permessage-deflate costs (`netsvr_core::deflate`): compressing one message, which a
//! fan-out pays once however many recipients negotiated the extension, and inflating one
//! inbound message.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netsvr_core::deflate::{Deflater, Inflater};

/// A JSON-ish chat message of about `len` bytes, the kind of payload a gateway fans out.
fn payload(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 96);
    let mut i = 0_u32;
    while out.len() < len {
        out.extend_from_slice(
            format!(
                r#"{{"id":{i},"user":"user{}","text":"message number {i} in the room"}},"#,
                i % 37
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

fn bench_compress(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate");
    for (name, len) in [("json_1k", 1024_usize), ("json_16k", 16 * 1024)] {
        let data = payload(len);
        group.throughput(Throughput::Bytes(len as u64));
        for level in [1_u32, 3, 6] {
            let mut deflater = Deflater::new(level, 15);
            let mut out = Vec::with_capacity(len);
            group.bench_function(format!("compress_{name}_level{level}"), |b| {
                b.iter(|| {
                    out.clear();
                    black_box(deflater.compress_into(black_box(&data), &mut out, true))
                });
            });
            out.clear();
            deflater.compress_into(&data, &mut out, true);
            eprintln!(
                "deflate: {name} level {level}: {len} → {} bytes ({:.1}%)",
                out.len(),
                100.0 * out.len() as f64 / len as f64
            );
        }
        let mut packed = Vec::new();
        Deflater::new(3, 15).compress_into(&data, &mut packed, true);
        let mut inflater = Inflater::new();
        group.bench_function(format!("inflate_{name}"), |b| {
            b.iter(|| black_box(inflater.inflate(black_box(&packed), len, true).unwrap()));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_compress);
criterion_main!(benches);
