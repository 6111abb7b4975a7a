//! Mode `sink`: events per second through the gateway's sinks, counted at the consumer.
//! `--conns` clients each send stamped messages as fast as TCP lets them (or `--rate` per
//! second) for `--duration`; a consumer (`--sink worker|redis|amqp`) counts the `Transfer`
//! events that arrive, times them, and checks each connection's sequence. After sending
//! stops, the consumer drains until everything arrived or nothing more comes.

mod consumer;
mod thread;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use netsvr_protocol::{ToBusiness, cmd};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::args::Args;
use super::meter::{Meter, Reporter, Series};
use super::open::nanos_since;
use super::ws::{Stamp, WsConn};
use super::{Clock, ConnEnd, latency_json, open_for_run, sum_ends};

pub use consumer::Tally;

/// Counter index of messages written by the clients.
const SENT: usize = 0;
/// Counter index of events counted by the consumer.
const RECEIVED: usize = 1;
/// Frames per write when sending as fast as possible.
const BATCH: usize = 32;
/// How often a paced client writes what fell due.
const PACE_TICK: Duration = Duration::from_millis(1);
/// Most frames a paced client writes at once (a sender that fell behind catches up over
/// several writes).
const MAX_PACED_BURST: u64 = 1024;
/// Longest drain after sending stops.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// Drain ends early when nothing arrived for this long.
const DRAIN_IDLE: Duration = Duration::from_secs(3);

/// Runs the mode; returns the JSON summary and the per-second series.
pub async fn run(args: &Args) -> Result<(Value, Series), String> {
    let (stop, stopped) = watch::channel(false);
    let mut consuming = thread::ConsumerThread::spawn(args, stopped).await?;
    let opened = open_for_run(args).await?;
    let meter = Meter::new(&["sent", "received"]);
    let clock = Clock::start(args);
    let reporter = Reporter::start("sink".into(), meter.clone());
    consuming.start(Tally::new(args.conns, clock, meter.clone()));
    let (release, released) = watch::channel(false);
    let sending = Arc::new(AtomicUsize::new(opened.conns.len()));
    let tasks: Vec<_> = opened
        .conns
        .into_iter()
        .map(|(i, conn)| {
            let sender = Sender {
                clock,
                size: args.size,
                rate: args.rate,
                meter: meter.clone(),
                sending: sending.clone(),
            };
            tokio::spawn(sender.run(conn, i, released.clone()))
        })
        .collect();
    tokio::time::sleep_until(clock.deadline.into()).await;
    let send_secs = clock.measured_secs();
    // Drain: bounded in time, ends early once every client stopped and all arrived, or
    // when nothing more comes.
    let drain_end = Instant::now() + DRAIN_LIMIT;
    let (mut last, mut last_change) = (meter.get(RECEIVED), Instant::now());
    while Instant::now() < drain_end && last_change.elapsed() < DRAIN_IDLE {
        let stopped_sending = sending.load(Ordering::Acquire) == 0;
        if stopped_sending && meter.get(RECEIVED) >= meter.get(SENT) {
            break;
        }
        if consuming.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = meter.get(RECEIVED);
        if now != last {
            (last, last_change) = (now, Instant::now());
        }
    }
    let _ = stop.send(true);
    let tally = consuming.join().await?;
    let _ = release.send(true);
    let ends = sum_ends(tasks).await;
    let series = reporter.finish().await;
    let (sent, received) = (meter.get(SENT), meter.get(RECEIVED));
    let recv_secs = tally
        .last_at
        .map_or(send_secs, |t| t.duration_since(clock.epoch).as_secs_f64());
    let mut out = json!({
        "mode": "sink",
        "sink": format!("{:?}", args.sink).to_lowercase(),
        "conns": args.conns,
        "connected": ends.conns,
        "rate": args.rate,
        "size": args.size,
        "secs": send_secs,
        "sent": sent,
        "sent_per_sec": sent as f64 / send_secs.max(1e-9),
        "received": received,
        "received_per_sec": received as f64 / recv_secs.max(1e-9),
        "lost": sent.saturating_sub(received),
        "order_violations": tally.order.violations,
        "gaps": tally.order.gaps,
        "foreign": tally.foreign,
        "failures": opened.failed + ends.failed,
        "first_error": opened.first_error.or(ends.first_error).or(tally.first_error),
    });
    latency_json(&mut out, &meter.latencies());
    Ok((out, series))
}

/// What a sending client needs.
struct Sender {
    clock: Clock,
    size: usize,
    rate: u64,
    meter: Arc<Meter>,
    /// Clients still sending; each takes itself off when it stops.
    sending: Arc<AtomicUsize>,
}

impl Sender {
    /// One client: sends until the deadline, then keeps the connection open until
    /// `released` (so that nothing in flight is cut off by a close).
    async fn run(self, conn: WsConn, i: usize, mut released: watch::Receiver<bool>) -> ConnEnd {
        let (_rd, mut wr) = conn.stream.into_split();
        let end = self.send(&mut wr, i).await;
        self.sending.fetch_sub(1, Ordering::Release);
        let _ = wr.flush().await;
        // Bounded: the run releases every connection once the drain ends.
        let _ = released.wait_for(|r| *r).await;
        end
    }

    /// Writes stamped frames until the deadline, paced at `rate` or in batches of
    /// [`BATCH`] as fast as the socket takes them, counting only frames written whole.
    /// Paced frames are written once per [`PACE_TICK`], all that fell due in one write,
    /// each stamped with the time it was due (so latency includes any lag of the sender).
    async fn send(&self, wr: &mut OwnedWriteHalf, i: usize) -> ConnEnd {
        let Self {
            clock, size, rate, ..
        } = *self;
        let conn_id = u32::try_from(i).unwrap_or(u32::MAX);
        let frame_len = clock.stamp(conn_id, 0).frame(size).len();
        let mut end = ConnEnd::default();
        let mut seq = 0u64;
        let mut ticker = tokio::time::interval(PACE_TICK);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let deadline = tokio::time::Instant::from_std(clock.deadline);
        let start = Instant::now();
        let mut out = Vec::with_capacity(BATCH * frame_len);
        while tokio::time::Instant::now() < deadline {
            out.clear();
            if rate > 0 {
                tokio::select! {
                    biased;
                    () = tokio::time::sleep_until(deadline) => break,
                    _ = ticker.tick() => {}
                };
                let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
                for k in seq..due.min(seq + MAX_PACED_BURST) {
                    let at = start + Duration::from_secs_f64(k as f64 / rate as f64);
                    let mut stamp = clock.stamp(conn_id, k);
                    stamp.sent_ns = stamp.sent_ns.saturating_sub(nanos_since(at));
                    out.extend_from_slice(&stamp.frame(size));
                }
            } else {
                for k in 0..BATCH as u64 {
                    out.extend_from_slice(&clock.stamp(conn_id, seq + k).frame(size));
                }
            }
            // `write` is cancel-safe: a timed-out call wrote nothing, so counting whole
            // frames is exact.
            let mut pos = 0;
            while pos < out.len() {
                let rest = out.get(pos..).unwrap_or_default();
                let n = match tokio::time::timeout_at(deadline, wr.write(rest)).await {
                    Err(_) => return end,
                    Ok(Ok(0)) => return end.fail("connection closed while writing".into()),
                    Ok(Err(e)) => return end.fail(format!("write: {e}")),
                    Ok(Ok(n)) => n,
                };
                let whole = ((pos + n) / frame_len - pos / frame_len) as u64;
                pos += n;
                seq += whole;
                end.sent += whole;
                self.meter.add(SENT, whole);
            }
        }
        end
    }
}

/// Per-connection sequence check of the events a consumer sees.
#[derive(Debug, Clone, Default)]
pub struct OrderCheck {
    next: Vec<u64>,
    /// Events whose sequence number was lower than one already seen (reordered or repeated).
    pub violations: u64,
    /// Sequence numbers skipped (events lost in between).
    pub gaps: u64,
}

impl OrderCheck {
    /// A check of `conns` connections, each starting at sequence 0.
    pub fn new(conns: usize) -> Self {
        Self {
            next: vec![0; conns],
            ..Self::default()
        }
    }

    /// Takes event `seq` of connection `conn`; false for an unknown connection.
    pub fn observe(&mut self, conn: u32, seq: u64) -> bool {
        let Some(next) = self.next.get_mut(conn as usize) else {
            return false;
        };
        if seq < *next {
            self.violations += 1;
        } else {
            self.gaps += seq - *next;
            *next = seq + 1;
        }
        true
    }
}

/// The client message inside a queue sink's payload (u32 BE command id + `Transfer`).
pub fn transfer_data(raw: &[u8]) -> Result<Bytes, String> {
    let id: [u8; 4] = raw
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or("payload shorter than a command id")?;
    let id = u32::from_be_bytes(id);
    if id != cmd::TRANSFER {
        return Err(format!("command {id} is not a Transfer"));
    }
    let body = Bytes::copy_from_slice(raw.get(4..).unwrap_or_default());
    match ToBusiness::decode(id, body).map_err(|e| e.to_string())? {
        ToBusiness::Transfer(t) => Ok(t.data),
        _ => Err("not a Transfer".into()),
    }
}

/// The stamp of a client message, if it belongs to this run.
fn own_stamp(data: &[u8], clock: &Clock) -> Option<Stamp> {
    Stamp::read(data).filter(|s| s.run == clock.run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsvr_protocol::{codec, pb};

    #[test]
    fn order_check_counts_violations_and_gaps() {
        let mut c = OrderCheck::new(2);
        for (conn, seq) in [(0, 0), (0, 1), (1, 0), (0, 3), (0, 2), (1, 1), (1, 1)] {
            assert!(c.observe(conn, seq));
        }
        assert!(!c.observe(5, 0));
        assert_eq!((c.violations, c.gaps), (2, 1));
    }

    #[test]
    fn decodes_queue_payloads() {
        let t = pb::Transfer {
            uniq_id: "u".into(),
            data: Bytes::from_static(b"hello"),
            ..pb::Transfer::default()
        };
        let raw = codec::encode_unframed(cmd::TRANSFER, &t);
        assert_eq!(transfer_data(&raw).unwrap(), Bytes::from_static(b"hello"));
        let open = codec::encode_unframed(cmd::CONN_OPEN, &pb::ConnOpen::default());
        assert!(transfer_data(&open).is_err());
        assert!(transfer_data(&[1, 2]).is_err());
        let mut bad = raw.to_vec();
        bad.truncate(6);
        bad.extend_from_slice(&[0xff; 3]);
        assert!(transfer_data(&bad).is_err());
    }
}
