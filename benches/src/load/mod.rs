//! The load generator behind `netsvr-load`: raw tokio TCP clients with a hand-rolled
//! WebSocket upgrade, one module per mode, a per-second [`meter::Series`] of every run, an
//! optional PNG plot of it, and a one-line JSON summary.

pub mod args;
pub mod connect;
pub mod deflate;
pub mod echo;
pub mod fanout;
pub mod hist;
pub mod idle;
pub mod meter;
pub mod open;
pub mod payload;
pub mod plot;
pub mod sink;
pub mod ws;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use args::{Args, Mode};
use deflate::RxBytes;
use hist::Histogram;
use meter::{Meter, Reporter};
use open::{Opened, Target, nanos_since, open_many};
use ws::{Stamp, run_id};

/// Longest time allowed to open the connections of a measuring mode.
const SETUP_LIMIT: Duration = Duration::from_secs(120);

/// Runs the mode of `args` within its time limit, draws the plot if asked, and returns the
/// JSON summary.
pub async fn run(args: &Args) -> Result<Value, String> {
    let limit = args.time_limit();
    let work = async {
        match args.mode {
            Mode::Idle => idle::run(args).await,
            Mode::Fanout => fanout::run(args).await,
            Mode::Echo => echo::run(args).await,
            Mode::Connect => connect::run_connect(args).await,
            Mode::Storm => connect::run_storm(args).await,
            Mode::Sink => sink::run(args).await,
        }
    };
    let (summary, series) = tokio::time::timeout(limit, work)
        .await
        .map_err(|_| format!("run did not finish within {limit:?}"))??;
    if let Some(path) = &args.plot {
        let title = format!("netsvr-load {}: {} conns", args.mode.name(), args.conns);
        plot::draw(path, &title, &series)?;
        eprintln!("plot written to {}", path.display());
    }
    Ok(summary)
}

/// The run's identity and time base.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Run id carried in every stamp.
    pub run: u32,
    /// Time zero of the stamps.
    pub epoch: Instant,
    /// When measuring stops.
    pub deadline: Instant,
}

impl Clock {
    /// Starts now and lasts `--duration`.
    pub fn start(args: &Args) -> Self {
        let epoch = Instant::now();
        Self {
            run: run_id(),
            epoch,
            deadline: epoch + args.run_time(),
        }
    }

    /// Seconds measured: from the epoch to now, but no further than the deadline (counting
    /// stops there; joining the tasks afterwards is not part of the run).
    pub fn measured_secs(&self) -> f64 {
        let end = Instant::now().min(self.deadline);
        end.duration_since(self.epoch).as_secs_f64().max(1e-9)
    }

    /// A stamp for message `seq` of connection `conn`, sent now.
    pub fn stamp(&self, conn: u32, seq: u64) -> Stamp {
        Stamp {
            run: self.run,
            conn,
            seq,
            sent_ns: nanos_since(self.epoch),
        }
    }
}

/// How the connection tasks of a run ended, added up.
#[derive(Debug, Default)]
pub struct ConnEnd {
    /// Connection tasks that ended.
    pub conns: u64,
    /// Connections that failed (closed, errored) before the deadline.
    pub failed: u64,
    /// Messages that came out of sequence.
    pub order_violations: u64,
    /// Messages sent.
    pub sent: u64,
    /// Paced senders: the latest a message was written after its scheduled time, ns.
    pub max_send_lag_ns: u64,
    /// Data messages received and their bytes (fanout, echo).
    pub rx: RxBytes,
    /// The first failure's reason.
    pub first_error: Option<String>,
}

impl ConnEnd {
    /// This end, marked failed with `reason`.
    pub fn fail(mut self, reason: String) -> Self {
        self.failed += 1;
        self.first_error.get_or_insert(reason);
        self
    }
}

/// Awaits every task and adds up their ends.
pub async fn sum_ends(tasks: Vec<JoinHandle<ConnEnd>>) -> ConnEnd {
    let mut sum = ConnEnd::default();
    for task in tasks {
        match task.await {
            Ok(end) => {
                sum.conns += 1;
                sum.failed += end.failed;
                sum.order_violations += end.order_violations;
                sum.sent += end.sent;
                sum.max_send_lag_ns = sum.max_send_lag_ns.max(end.max_send_lag_ns);
                sum.rx.add(&end.rx);
                if sum.first_error.is_none() {
                    sum.first_error = end.first_error;
                }
            }
            Err(e) => sum = std::mem::take(&mut sum).fail(format!("task: {e}")),
        }
    }
    sum
}

/// Opens `--conns` connections for a measuring mode (with progress lines); fails if none
/// opened.
pub async fn open_for_run(args: &Args) -> Result<Opened, String> {
    let meter = Meter::new(&["accepted", "failed"]);
    let label = format!("{}/open", args.mode.name());
    let reporter = Reporter::start(label, meter.clone());
    let deadline = Instant::now() + SETUP_LIMIT.max(args.run_time());
    let target = Target::new(args);
    let opened = open_many(&target, args.conns, args.concurrency, deadline, &meter).await;
    reporter.finish().await;
    if opened.conns.is_empty() {
        let why = opened.first_error.as_deref().unwrap_or("no attempt made");
        return Err(format!("no connection could be opened: {why}"));
    }
    eprintln!(
        "{}: {} connected, {} failed, in {:.2}s",
        args.mode.name(),
        opened.conns.len(),
        opened.failed,
        opened.elapsed.as_secs_f64()
    );
    Ok(opened)
}

/// Adds `p50_ms`, `p99_ms` and `max_ms` (null when nothing was measured) to `out`.
pub fn latency_json(out: &mut Value, h: &Histogram) {
    if let Some(map) = out.as_object_mut() {
        map.insert("p50_ms".into(), json!(h.quantile_ms(0.5)));
        map.insert("p99_ms".into(), json!(h.quantile_ms(0.99)));
        map.insert("max_ms".into(), json!(h.max().map(|ns| ns as f64 / 1e6)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_fields() {
        let mut v = json!({"mode": "x"});
        latency_json(&mut v, &Histogram::new());
        assert!(v["p99_ms"].is_null());
        let mut h = Histogram::new();
        h.record(2_000_000);
        latency_json(&mut v, &h);
        assert_eq!(v["max_ms"].as_f64(), Some(2.0));
    }

    #[test]
    fn ends_add_up() {
        let e = ConnEnd::default().fail("a".into()).fail("b".into());
        assert_eq!((e.failed, e.first_error.as_deref()), (2, Some("a")));
    }
}
