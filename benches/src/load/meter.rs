//! Counting while a run goes on: a [`Meter`] shared by the connection tasks (named counters
//! and a latency histogram), and a [`Reporter`] that samples it once a second into a
//! [`Series`] and prints a progress line on stderr.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::hist::Histogram;

/// Counters and latencies of one phase of a run.
#[derive(Debug)]
pub struct Meter {
    names: Vec<&'static str>,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    counts: Vec<u64>,
    second: Histogram,
    total: Histogram,
    /// Latencies recorded before this go to the per-second samples only.
    warm_at: Option<Instant>,
}

impl Meter {
    /// A meter with one counter per name; the first is the throughput the series plots.
    pub fn new(names: &[&'static str]) -> Arc<Self> {
        Arc::new(Self {
            names: names.to_vec(),
            inner: Mutex::new(Inner {
                counts: vec![0; names.len()],
                second: Histogram::new(),
                total: Histogram::new(),
                warm_at: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds `n` to counter `i`.
    pub fn add(&self, i: usize, n: u64) {
        if let Some(c) = self.lock().counts.get_mut(i) {
            *c += n;
        }
    }

    /// Leaves latencies recorded before `at` out of [`latencies`](Self::latencies) (the
    /// warm-up); the per-second samples still show them.
    pub fn warm_at(&self, at: Instant) {
        self.lock().warm_at = Some(at);
    }

    /// Adds `n` to counter `i` and records `latencies` (nanoseconds) under one lock.
    pub fn add_with(&self, i: usize, n: u64, latencies: &[u64]) {
        let mut inner = self.lock();
        if let Some(c) = inner.counts.get_mut(i) {
            *c += n;
        }
        let warm = inner.warm_at.is_none_or(|at| Instant::now() >= at);
        for &l in latencies {
            inner.second.record(l);
            if warm {
                inner.total.record(l);
            }
        }
    }

    /// Counter `i` so far.
    pub fn get(&self, i: usize) -> u64 {
        self.lock().counts.get(i).copied().unwrap_or(0)
    }

    /// Every latency recorded so far.
    pub fn latencies(&self) -> Histogram {
        self.lock().total.clone()
    }

    /// The counters, and the latency quantiles since the last call (which resets them).
    fn sample(&self) -> (Vec<u64>, Option<(f64, f64)>) {
        let mut inner = self.lock();
        let lat = inner
            .second
            .quantile_ms(0.5)
            .zip(inner.second.quantile_ms(0.99));
        inner.second.reset();
        (inner.counts.clone(), lat)
    }
}

/// One sample of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Seconds since the series started (end of the interval).
    pub t: f64,
    /// Per-second rate of each counter over the interval.
    pub rates: Vec<f64>,
    /// Median latency of the interval, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency of the interval, ms.
    pub p99_ms: Option<f64>,
}

/// The per-second history of a run.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Counter names (`/s` is implied).
    pub names: Vec<&'static str>,
    /// Samples, oldest first.
    pub rows: Vec<Row>,
}

impl Series {
    /// Whether any sample has a latency.
    pub fn has_latency(&self) -> bool {
        self.rows.iter().any(|r| r.p99_ms.is_some())
    }
}

/// Samples a meter every second until [`finish`](Reporter::finish).
#[derive(Debug)]
pub struct Reporter {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Series>,
}

impl Reporter {
    /// Starts sampling `meter`; progress lines are labelled `label`.
    pub fn start(label: String, meter: Arc<Meter>) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        // Taken here, not in the task: a busy runtime may poll the task late.
        let started = Instant::now();
        let task = tokio::spawn(async move {
            let mut series = Series {
                names: meter.names.clone(),
                rows: Vec::new(),
            };
            let mut last_counts = vec![0; meter.names.len()];
            let mut last_t = 0.0;
            let second = Duration::from_secs(1);
            let mut tick = tokio::time::interval_at((started + second).into(), second);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            // Bounded: one row per second of a run that is itself bounded in time.
            loop {
                let last = tokio::select! {
                    _ = tick.tick() => false,
                    _ = &mut stopped => true,
                };
                let t = started.elapsed().as_secs_f64();
                let dt = t - last_t;
                if !last || dt > 0.05 {
                    let (counts, lat) = meter.sample();
                    let rates = counts
                        .iter()
                        .zip(&last_counts)
                        .map(|(now, before)| now.saturating_sub(*before) as f64 / dt.max(1e-3))
                        .collect();
                    let row = Row {
                        t,
                        rates,
                        p50_ms: lat.map(|l| l.0),
                        p99_ms: lat.map(|l| l.1),
                    };
                    eprintln!("{}", progress_line(&label, &series.names, &row));
                    series.rows.push(row);
                    last_counts = counts;
                    last_t = t;
                }
                if last {
                    return series;
                }
            }
        });
        Self {
            stop: Some(stop),
            task,
        }
    }

    /// Takes a last sample and returns the series.
    pub async fn finish(mut self) -> Series {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap_or_default()
    }
}

/// `echo  3.0s  round_trips 12345/s  p50 0.520 ms  p99 1.900 ms`.
pub fn progress_line(label: &str, names: &[&'static str], row: &Row) -> String {
    let mut line = format!("{label:<8} {:>6.1}s", row.t);
    for (name, rate) in names.iter().zip(&row.rates) {
        line.push_str(&format!("  {name} {rate:.0}/s"));
    }
    if let (Some(p50), Some(p99)) = (row.p50_ms, row.p99_ms) {
        line.push_str(&format!("  p50 {p50:.3} ms  p99 {p99:.3} ms"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_counts_and_samples() {
        let m = Meter::new(&["a", "b"]);
        m.add(0, 3);
        m.add_with(1, 2, &[1_000_000, 3_000_000]);
        m.add(9, 1); // unknown counter: ignored
        assert_eq!((m.get(0), m.get(1), m.get(9)), (3, 2, 0));
        let (counts, lat) = m.sample();
        assert_eq!(counts, [3, 2]);
        let (p50, p99) = lat.unwrap();
        assert!(
            (p50 - 1.0).abs() < 0.01 && (p99 - 3.0).abs() < 0.03,
            "{p50} {p99}"
        );
        assert_eq!(m.sample().1, None, "the per-second histogram resets");
        assert_eq!(m.latencies().count(), 2, "the total does not");
    }

    #[test]
    fn warm_up_latencies_stay_out_of_the_total() {
        let m = Meter::new(&["a"]);
        m.warm_at(Instant::now() + Duration::from_secs(60));
        m.add_with(0, 1, &[5_000_000]);
        assert_eq!(m.latencies().count(), 0);
        assert!(m.sample().1.is_some(), "the per-second sample keeps them");
        m.warm_at(Instant::now());
        m.add_with(0, 1, &[1_000_000]);
        assert_eq!((m.get(0), m.latencies().count()), (2, 1));
    }

    #[test]
    fn progress_line_format() {
        let row = Row {
            t: 2.0,
            rates: vec![1500.0],
            p50_ms: Some(0.5),
            p99_ms: Some(2.25),
        };
        let line = progress_line("echo", &["round_trips"], &row);
        assert!(line.contains("round_trips 1500/s"), "{line}");
        assert!(line.contains("p99 2.250 ms"), "{line}");
    }

    #[tokio::test]
    async fn reporter_takes_a_final_sample() {
        let m = Meter::new(&["x"]);
        let r = Reporter::start("t".into(), m.clone());
        tokio::time::sleep(Duration::from_millis(120)).await;
        m.add(0, 10);
        let s = r.finish().await;
        assert_eq!(s.rows.len(), 1);
        assert!(s.rows[0].rates[0] > 10.0);
    }
}
