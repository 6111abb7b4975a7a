//! Mode `echo`: `--conns` connections each keep `--window` messages of `--size` bytes in
//! flight against the `echo` example; a message is done when it comes back. Reports round
//! trips per second, latency percentiles, and replies that came back out of order.
//! `--payload` and `--deflate` work as in `fanout`.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use super::args::Args;
use super::deflate::Reader;
use super::meter::{Meter, Reporter, Series};
use super::open::nanos_since;
use super::payload::PayloadKind;
use super::ws::{FrameBuf, WsConn, write_by};
use super::{Clock, ConnEnd, latency_json, open_for_run, sum_ends};

/// Counter index of completed round trips.
const ROUND_TRIPS: usize = 0;

/// Runs the mode; returns the JSON summary and the per-second series.
pub async fn run(args: &Args) -> Result<(Value, Series), String> {
    let opened = open_for_run(args).await?;
    let meter = Meter::new(&["round_trips"]);
    let clock = Clock::start(args);
    meter.warm_at(clock.epoch + std::time::Duration::from_secs(args.warmup));
    let reporter = Reporter::start("echo".into(), meter.clone());
    let tasks: Vec<_> = opened
        .conns
        .into_iter()
        .map(|(i, conn)| {
            let meter = meter.clone();
            let shape = Shape {
                size: args.size,
                window: args.window,
                payload: args.payload,
                deflate: args.deflate,
                inflate_shared: args.inflate_shared,
            };
            tokio::spawn(echo_conn(conn, i, clock, shape, meter))
        })
        .collect();
    let ends = sum_ends(tasks).await;
    let series = reporter.finish().await;
    let secs = clock.measured_secs();
    let total = meter.get(ROUND_TRIPS);
    let mut out = json!({
        "mode": "echo",
        "conns": args.conns,
        "connected": ends.conns,
        "window": args.window,
        "size": args.size,
        "payload": args.payload.name(),
        "secs": secs,
        "warmup_secs": args.warmup,
        "round_trips": total,
        "round_trips_per_sec": total as f64 / secs.max(1e-9),
        "failures": opened.failed + ends.failed,
        "order_violations": ends.order_violations,
        "first_error": opened.first_error.or(ends.first_error),
    });
    latency_json(&mut out, &meter.latencies());
    ends.rx.insert_into(&mut out, args.deflate);
    Ok((out, series))
}

/// The messages of a connection.
#[derive(Debug, Clone, Copy)]
struct Shape {
    size: usize,
    window: usize,
    payload: PayloadKind,
    /// The connection negotiated permessage-deflate.
    deflate: bool,
    /// Reuse messages inflated lately on this thread (`--inflate-shared`).
    inflate_shared: bool,
}

/// One connection: sends `window` stamped messages, then one more per echo, until the
/// deadline.
async fn echo_conn(
    conn: WsConn,
    i: usize,
    clock: Clock,
    shape: Shape,
    meter: Arc<Meter>,
) -> ConnEnd {
    let Shape {
        size,
        window,
        payload: kind,
        ..
    } = shape;
    let (mut rd, mut wr) = conn.stream.into_split();
    let mut fb = FrameBuf::new(size, &conn.leftover);
    let mut reader = Reader::new(shape.deflate, shape.inflate_shared, size);
    let conn_id = u32::try_from(i).unwrap_or(u32::MAX);
    let mut seq = 0u64;
    let mut expect = 0u64;
    let mut end = ConnEnd::default();
    let mut out = Vec::with_capacity(window * (size + 14));
    let mut latencies = Vec::with_capacity(window);
    let mut owed = window;
    // One timer for the whole run: a fresh timeout per read would register and remove a
    // timer entry every round trip, load-generator work that shows up as latency.
    let deadline = tokio::time::sleep_until(clock.deadline.into());
    tokio::pin!(deadline);
    loop {
        out.clear();
        for _ in 0..owed {
            let stamp = clock.stamp(conn_id, seq);
            out.extend_from_slice(&kind.frame(&stamp, size));
            seq += 1;
        }
        match write_by(&mut wr, &out, clock.deadline).await {
            Ok(true) => {}
            Ok(false) => return end,
            Err(e) => return end.fail(e),
        }
        let read = tokio::select! {
            biased;
            r = rd.read(fb.spare()) => r,
            () = &mut deadline => return end,
        };
        let n = match read {
            Ok(0) => return end.fail("server closed the connection".into()),
            Err(e) => return end.fail(format!("read: {e}")),
            Ok(n) => n,
        };
        fb.advance(n);
        let now = nanos_since(clock.epoch);
        latencies.clear();
        let mut bad = None;
        let drained = fb.drain(|head, raw| {
            let payload = match reader.read(head, raw) {
                Ok(p) => p,
                Err(e) => {
                    bad.get_or_insert(e);
                    return;
                }
            };
            let Some(s) = kind.read(&payload) else {
                return;
            };
            if s.run != clock.run || s.conn != conn_id {
                return;
            }
            latencies.push(now.saturating_sub(s.sent_ns));
            if s.seq != expect {
                end.order_violations += 1;
            }
            expect = s.seq + 1;
        });
        end.rx = reader.bytes;
        if let Err(e) = drained.and(bad.map_or(Ok(()), Err)) {
            return end.fail(e);
        }
        owed = latencies.len();
        meter.add_with(ROUND_TRIPS, owed as u64, &latencies);
    }
}
