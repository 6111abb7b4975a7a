//! Opening many connections: `concurrency` tasks take connection indexes in turn until all
//! are tried or the deadline passes, timing each upgrade into a [`Meter`] whose counters are
//! `[accepted, failed]`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::args::Args;
use super::meter::Meter;
use super::ws::{WsConn, connect_within};

/// Counter index of completed upgrades.
pub const ACCEPTED: usize = 0;
/// Counter index of failed attempts.
pub const FAILED: usize = 1;
/// Longest single connection attempt.
pub const ATTEMPT_LIMIT: Duration = Duration::from_secs(10);

/// What a connection attempt needs.
#[derive(Debug, Clone)]
pub struct Target {
    /// Gateway address.
    pub addr: SocketAddr,
    /// WebSocket path.
    pub path: Arc<str>,
    /// Command line (for the source addresses).
    pub args: Arc<Args>,
}

impl Target {
    /// The target of `args`.
    pub fn new(args: &Args) -> Self {
        Self {
            addr: args.addr,
            path: Arc::from(args.path.as_str()),
            args: Arc::new(args.clone()),
        }
    }

    /// Connects connection `i`, giving up at `deadline` (or after [`ATTEMPT_LIMIT`]).
    pub async fn connect(&self, i: usize, deadline: Instant) -> Result<WsConn, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("deadline passed".into());
        }
        let source = self.args.source(i);
        let limit = left.min(ATTEMPT_LIMIT);
        connect_within(self.addr, &self.path, source, self.args.deflate, limit).await
    }
}

/// The outcome of [`open_many`].
#[derive(Debug, Default)]
pub struct Opened {
    /// The open connections with their index, in index order.
    pub conns: Vec<(usize, WsConn)>,
    /// Attempts that failed.
    pub failed: u64,
    /// The first failure's reason.
    pub first_error: Option<String>,
    /// From the first attempt to the last completion.
    pub elapsed: Duration,
}

/// Opens connections `0..count` with `concurrency` attempts in flight, until `deadline`.
/// Each upgrade's time goes into `meter` (counters `[accepted, failed]`).
pub async fn open_many(
    target: &Target,
    count: usize,
    concurrency: usize,
    deadline: Instant,
    meter: &Arc<Meter>,
) -> Opened {
    let next = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency.min(count));
    for _ in 0..concurrency.clamp(1, count.max(1)) {
        let (target, next, meter, first_error) = (
            target.clone(),
            next.clone(),
            meter.clone(),
            first_error.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut failed = 0u64;
            let mut last_done = started;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || Instant::now() >= deadline {
                    break;
                }
                let t0 = Instant::now();
                match target.connect(i, deadline).await {
                    Ok(conn) => {
                        meter.add_with(ACCEPTED, 1, &[nanos_since(t0)]);
                        mine.push((i, conn));
                    }
                    Err(e) => {
                        meter.add(FAILED, 1);
                        failed += 1;
                        let mut first = first_error.lock().unwrap_or_else(|p| p.into_inner());
                        first.get_or_insert(e);
                    }
                }
                last_done = Instant::now();
            }
            (mine, failed, last_done)
        }));
    }
    let mut out = Opened::default();
    let mut last = started;
    for task in tasks {
        if let Ok((mine, failed, done)) = task.await {
            out.conns.extend(mine);
            out.failed += failed;
            last = last.max(done);
        }
    }
    out.conns.sort_unstable_by_key(|(i, _)| *i);
    out.elapsed = last.duration_since(started);
    out.first_error = first_error.lock().unwrap_or_else(|p| p.into_inner()).take();
    out
}

/// Nanoseconds from `since` to now.
pub fn nanos_since(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
