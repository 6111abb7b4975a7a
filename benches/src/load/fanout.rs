//! Mode `fanout`: `--conns` receivers, the first `--publishers` of which also publish
//! against the `chat` example (which broadcasts every message to everyone). Publishers send
//! `--rate` messages per second each, paced (latency measured from the scheduled send time,
//! so a stall is not hidden), or with `--rate 0` keep `--window` messages in flight (a
//! message is done when it comes back to its publisher). Every receiver times every
//! delivery and checks that each publisher's sequence never goes backwards.
//!
//! `--payload json` sends ~`--size`-byte JSON chat messages; `--deflate` clients negotiate
//! permessage-deflate and inflate compressed deliveries before reading them (see
//! [`super::deflate`]); the summary counts bytes on the wire against bytes of payload.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::time::MissedTickBehavior;

use super::args::Args;
use super::deflate::Reader;
use super::meter::{Meter, Reporter, Series};
use super::open::nanos_since;
use super::payload::PayloadKind;
use super::ws::{FrameBuf, WsConn, write_by};
use super::{Clock, ConnEnd, latency_json, open_for_run, sum_ends};

/// Counter index of deliveries (messages received by any connection).
const DELIVERIES: usize = 0;
/// Counter index of messages published.
const SENT: usize = 1;

/// What every connection task of a run shares.
#[derive(Debug, Clone, Copy)]
struct Plan {
    clock: Clock,
    publishers: usize,
    size: usize,
    window: usize,
    rate: u64,
    /// What the messages carry.
    payload: PayloadKind,
    /// The connections negotiated permessage-deflate.
    deflate: bool,
    /// Reuse messages inflated lately on this thread (`--inflate-shared`).
    inflate_shared: bool,
    /// End of the warm-up (latencies and send lag count from here).
    warm_at: std::time::Instant,
}

/// Runs the mode; returns the JSON summary and the per-second series.
pub async fn run(args: &Args) -> Result<(Value, Series), String> {
    let opened = open_for_run(args).await?;
    let meter = Meter::new(&["deliveries", "sent"]);
    let clock = Clock::start(args);
    let plan = Plan {
        clock,
        warm_at: clock.epoch + Duration::from_secs(args.warmup),
        publishers: args.publishers,
        size: args.size,
        window: args.window,
        rate: args.rate,
        payload: args.payload,
        deflate: args.deflate,
        inflate_shared: args.inflate_shared,
    };
    meter.warm_at(plan.warm_at);
    let reporter = Reporter::start("fanout".into(), meter.clone());
    let tasks: Vec<_> = opened
        .conns
        .into_iter()
        .map(|(i, conn)| tokio::spawn(fanout_conn(conn, i, plan, meter.clone())))
        .collect();
    let ends = sum_ends(tasks).await;
    let series = reporter.finish().await;
    let secs = plan.clock.measured_secs();
    let (deliveries, sent) = (meter.get(DELIVERIES), meter.get(SENT));
    let mut out = json!({
        "mode": "fanout",
        "receivers": args.conns,
        "connected": ends.conns,
        "publishers": args.publishers,
        "rate": args.rate,
        "window": if args.rate == 0 { Some(args.window) } else { None },
        "size": args.size,
        "payload": args.payload.name(),
        "secs": secs,
        "warmup_secs": args.warmup,
        "sent": sent,
        "sent_per_sec": sent as f64 / secs,
        "deliveries": deliveries,
        "deliveries_per_sec": deliveries as f64 / secs,
        "failures": opened.failed + ends.failed,
        "order_violations": ends.order_violations,
        "send_lag_max_ms": (args.rate > 0).then(|| ends.max_send_lag_ns as f64 / 1e6),
        "first_error": opened.first_error.or(ends.first_error),
    });
    latency_json(&mut out, &meter.latencies());
    ends.rx.insert_into(&mut out, args.deflate);
    Ok((out, series))
}

async fn fanout_conn(conn: WsConn, i: usize, plan: Plan, meter: Arc<Meter>) -> ConnEnd {
    let Plan {
        clock,
        size,
        payload: kind,
        ..
    } = plan;
    let (mut rd, mut wr) = conn.stream.into_split();
    let mut fb = FrameBuf::new(size, &conn.leftover);
    let mut reader = Reader::new(plan.deflate, plan.inflate_shared, size);
    let conn_id = u32::try_from(i).unwrap_or(u32::MAX);
    let publisher = i < plan.publishers;
    let paced = publisher && plan.rate > 0;
    // Next expected sequence number of each publisher, as seen by this receiver.
    let mut expect = vec![0u64; plan.publishers];
    let mut end = ConnEnd::default();
    let mut seq = 0u64;
    let period = Duration::from_secs_f64(1.0 / plan.rate.max(1) as f64);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut owed = if publisher && !paced { plan.window } else { 0 };
    let mut out = Vec::new();
    let mut latencies = Vec::new();
    // One timer for the whole run (a `sleep_until` per read would add and remove a timer
    // entry per delivery: load-generator work that shows up as latency).
    let deadline = tokio::time::sleep_until(clock.deadline.into());
    tokio::pin!(deadline);
    loop {
        if owed > 0 {
            out.clear();
            for _ in 0..owed {
                out.extend_from_slice(&kind.frame(&clock.stamp(conn_id, seq), size));
                seq += 1;
            }
            match write_by(&mut wr, &out, clock.deadline).await {
                Ok(true) => {}
                Ok(false) => return end,
                Err(e) => return end.fail(e),
            }
            end.sent += owed as u64;
            meter.add(SENT, owed as u64);
            owed = 0;
        }
        let read = tokio::select! {
            biased;
            () = &mut deadline => return end,
            at = ticker.tick(), if paced => {
                // Stamped when written: tokio's timer fires up to a millisecond after the
                // scheduled time, and that is the load generator's lag, not the server's.
                // The lag is reported on its own (`send_lag_max_ms`).
                let stamp = clock.stamp(conn_id, seq);
                if at.into_std() >= plan.warm_at {
                    let lag = nanos_since(at.into_std());
                    end.max_send_lag_ns = end.max_send_lag_ns.max(lag);
                }
                seq += 1;
                match write_by(&mut wr, &kind.frame(&stamp, size), clock.deadline).await {
                    Ok(true) => {}
                    Ok(false) => return end,
                    Err(e) => return end.fail(e),
                }
                end.sent += 1;
                meter.add(SENT, 1);
                continue;
            }
            r = rd.read(fb.spare()) => r,
        };
        let n = match read {
            Ok(0) => return end.fail("server closed the connection".into()),
            Err(e) => return end.fail(format!("read: {e}")),
            Ok(n) => n,
        };
        fb.advance(n);
        let now = nanos_since(clock.epoch);
        latencies.clear();
        let mut mine = 0;
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
            if s.run != clock.run {
                return;
            }
            latencies.push(now.saturating_sub(s.sent_ns));
            if let Some(next) = expect.get_mut(s.conn as usize) {
                if s.seq < *next {
                    end.order_violations += 1;
                }
                *next = (*next).max(s.seq + 1);
            }
            if s.conn == conn_id {
                mine += 1;
            }
        });
        end.rx = reader.bytes;
        if let Err(e) = drained.and(bad.map_or(Ok(()), Err)) {
            return end.fail(e);
        }
        meter.add_with(DELIVERIES, latencies.len() as u64, &latencies);
        if publisher && !paced {
            owed = mine;
        }
    }
}
