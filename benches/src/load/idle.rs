//! Mode `idle`: opens `--conns` connections, lets the server settle for `--duration`
//! seconds, and reports the growth of its resident set (`--pid`) per connection.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::args::Args;
use super::latency_json;
use super::meter::{Meter, Reporter, Series};
use super::open::{Target, open_many};

/// Runs the mode; returns the JSON summary and the per-second series of the opening.
pub async fn run(args: &Args) -> Result<(Value, Series), String> {
    let pid = args.pid.ok_or("idle needs --pid of the server")?;
    let before = read_rss_kib(pid)?;
    let meter = Meter::new(&["accepts", "failures"]);
    let reporter = Reporter::start("idle".into(), meter.clone());
    let deadline = Instant::now() + Duration::from_secs(120).max(args.run_time());
    let opened = open_many(
        &Target::new(args),
        args.conns,
        args.concurrency,
        deadline,
        &meter,
    )
    .await;
    let series = reporter.finish().await;
    if opened.conns.is_empty() {
        let why = opened.first_error.unwrap_or_default();
        return Err(format!("no connection could be opened: {why}"));
    }
    // Let the server settle (handshake tasks end, buffers freed), reporting once a second.
    let settle = args.duration.max(2);
    for s in 1..=settle {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = read_rss_kib(pid).unwrap_or(0);
        eprintln!("idle     settle {s}/{settle}s  rss {rss} KiB");
    }
    let after = read_rss_kib(pid)?;
    let held = opened.conns.len();
    let per_conn = after.saturating_sub(before) as f64 * 1024.0 / held as f64;
    drop(opened.conns);
    let mut out = json!({
        "mode": "idle",
        "conns": args.conns,
        "held": held,
        "failures": opened.failed,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "bytes_per_conn": per_conn.round(),
        "connect_secs": opened.elapsed.as_secs_f64(),
        "first_error": opened.first_error,
    });
    latency_json(&mut out, &meter.latencies());
    Ok((out, series))
}

/// Resident set size of a process, in KiB, from `/proc/PID/status`.
pub fn read_rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("read /proc/{pid}/status: {e}"))?;
    parse_rss_kib(&status).ok_or_else(|| "no VmRSS line".to_owned())
}

/// The `VmRSS:` value of a `/proc/PID/status` text, in KiB.
pub fn parse_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vmrss() {
        assert_eq!(
            parse_rss_kib("Name:\tx\nVmRSS:\t  12345 kB\nVmSwap: 0 kB\n"),
            Some(12345)
        );
        assert_eq!(parse_rss_kib("Name:\tx\n"), None);
        assert!(read_rss_kib(std::process::id()).unwrap() > 0);
    }
}
