//! Modes `connect` and `storm`.
//!
//! `connect` opens `--conns` connections as fast as it can with `--concurrency` attempts in
//! flight (spread over `--sources` addresses) and reports completed upgrades per second and
//! handshake times, then closes them.
//!
//! `storm` opens and holds `--conns` connections, drops them all at once, and reconnects all
//! of them at once; it reports how long it took until each was accepted again (counted from
//! the drop), the worst case, and how many did not make it within `--duration`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;

use super::args::Args;
use super::meter::{Meter, Reporter, Series};
use super::open::{ACCEPTED, FAILED, Target, nanos_since, open_many};
use super::{latency_json, open_for_run};

/// Time the server gets to register the held connections before the storm.
const SETTLE: Duration = Duration::from_millis(500);

/// Runs `connect`; returns the JSON summary and the per-second series.
pub async fn run_connect(args: &Args) -> Result<(Value, Series), String> {
    let meter = Meter::new(&["accepts", "failures"]);
    let reporter = Reporter::start("connect".into(), meter.clone());
    let target = Target::new(args);
    let deadline = Instant::now() + args.run_time();
    let opened = open_many(&target, args.conns, args.concurrency, deadline, &meter).await;
    let series = reporter.finish().await;
    let accepted = opened.conns.len();
    let secs = opened.elapsed.as_secs_f64().max(1e-9);
    let closing = Instant::now();
    drop(opened.conns);
    let mut out = json!({
        "mode": "connect",
        "conns": args.conns,
        "concurrency": args.concurrency,
        "sources": args.sources,
        "accepted": accepted,
        "failures": opened.failed,
        "not_tried": (args.conns - accepted).saturating_sub(opened.failed as usize),
        "secs": secs,
        "accepts_per_sec": accepted as f64 / secs,
        "close_secs": closing.elapsed().as_secs_f64(),
        "first_error": opened.first_error,
    });
    latency_json(&mut out, &meter.latencies());
    Ok((out, series))
}

/// Runs `storm`; returns the JSON summary and the per-second series of the reconnect.
pub async fn run_storm(args: &Args) -> Result<(Value, Series), String> {
    let held = open_for_run(args).await?;
    tokio::time::sleep(SETTLE).await;
    let meter = Meter::new(&["reaccepts", "failures"]);
    let target = Target::new(args);
    // Every reconnect task is waiting before the drop, so all start at the same moment.
    let (go, ready) = watch::channel(None::<Instant>);
    let deadline_after = args.run_time();
    let tasks: Vec<_> = held
        .conns
        .iter()
        .map(|(i, _)| {
            let (i, target, meter, mut ready) = (*i, target.clone(), meter.clone(), ready.clone());
            tokio::spawn(async move {
                let Ok(start) = ready.wait_for(Option::is_some).await.map(|s| *s) else {
                    return None;
                };
                let start = start.unwrap_or_else(Instant::now);
                match target.connect(i, start + deadline_after).await {
                    Ok(conn) => {
                        meter.add_with(ACCEPTED, 1, &[nanos_since(start)]);
                        Some(Ok(conn))
                    }
                    Err(e) => {
                        meter.add(FAILED, 1);
                        Some(Err(e))
                    }
                }
            })
        })
        .collect();
    drop(ready);
    let reporter = Reporter::start("storm".into(), meter.clone());
    let dropped_at = Instant::now();
    let count = held.conns.len();
    drop(held.conns);
    let drop_secs = dropped_at.elapsed().as_secs_f64();
    let _ = go.send(Some(dropped_at));
    let mut back = Vec::with_capacity(count);
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Some(Ok(conn))) => back.push(conn),
            Ok(Some(Err(e))) => {
                first_error.get_or_insert(e);
            }
            Ok(None) => {
                first_error.get_or_insert_with(|| "never started".to_owned());
            }
            Err(e) => {
                first_error.get_or_insert_with(|| format!("task: {e}"));
            }
        }
    }
    let storm_secs = dropped_at.elapsed().as_secs_f64();
    let series = reporter.finish().await;
    drop(back);
    let lat = meter.latencies();
    let mut out = json!({
        "mode": "storm",
        "conns": args.conns,
        "held": count,
        "fill_failures": held.failed,
        "reconnected": meter.get(ACCEPTED),
        "failed": meter.get(FAILED),
        "drop_secs": drop_secs,
        "secs": storm_secs,
        "reaccepts_per_sec": meter.get(ACCEPTED) as f64 / storm_secs.max(1e-9),
        "worst_ms": lat.max().map(|ns| ns as f64 / 1e6),
        "first_error": held.first_error.or(first_error),
    });
    latency_json(&mut out, &lat);
    Ok((out, series))
}
