//! `netsvr-load`: a WebSocket load generator for netsvr (raw sockets, hand-rolled client).
//!
//! Modes:
//! - `idle`: open `--conns` connections (spread over `--sources` 127.0.0.x source
//!   addresses), then report the server's RSS growth per connection (`--pid`).
//! - `fanout`: `--conns` receivers; `--publishers` of them each keep `--window` messages of
//!   `--size` bytes in flight (a message is done when it comes back to its publisher, as the
//!   `chat` example broadcasts to everyone); reports deliveries/s and latency percentiles.
//!
//! Progress goes to stderr; the final line on stdout is JSON.
#![allow(clippy::print_stdout)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use netsvr_benches::{Args, connect, read_rss_kib};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{}", Args::USAGE);
            return std::process::ExitCode::from(2);
        }
    };
    let result = match args.mode.as_str() {
        "idle" => idle(&args).await,
        "fanout" => fanout(&args).await,
        other => Err(format!("unknown mode {other}\n{}", Args::USAGE)),
    };
    match result {
        Ok(json) => {
            println!("{json}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn source(args: &Args, i: usize) -> IpAddr {
    let last = u8::try_from(1 + i % args.sources.max(1)).unwrap_or(1);
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

async fn idle(args: &Args) -> Result<String, String> {
    let pid = args.pid.ok_or("idle needs --pid of the server")?;
    let before = read_rss_kib(pid)?;
    let started = Instant::now();
    let mut conns = Vec::with_capacity(args.conns);
    for i in 0..args.conns {
        let stream = connect(args.addr, &args.path, source(args, i)).await?;
        conns.push(stream);
        if (i + 1) % 1000 == 0 {
            eprintln!("idle: {} connected, {:?}", i + 1, started.elapsed());
        }
    }
    // Let the server settle (handshake tasks end, buffers freed).
    tokio::time::sleep(Duration::from_secs(args.duration.max(2))).await;
    let after = read_rss_kib(pid)?;
    let per_conn = (after.saturating_sub(before)) as f64 * 1024.0 / args.conns as f64;
    drop(conns);
    Ok(format!(
        "{{\"mode\":\"idle\",\"conns\":{},\"rss_before_kib\":{before},\"rss_after_kib\":{after},\"bytes_per_conn\":{per_conn:.0},\"connect_secs\":{:.2}}}",
        args.conns,
        started.elapsed().as_secs_f64()
    ))
}

async fn fanout(args: &Args) -> Result<String, String> {
    let received = Arc::new(AtomicU64::new(0));
    let epoch = Instant::now();
    let (lat_tx, mut lat_rx) = mpsc::channel::<Vec<u64>>(args.publishers.max(1));
    let mut streams = Vec::with_capacity(args.conns);
    for i in 0..args.conns {
        streams.push(connect(args.addr, &args.path, source(args, i)).await?);
    }
    eprintln!("fanout: {} receivers connected", args.conns);
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let mut tasks = Vec::new();
    for (i, stream) in streams.into_iter().enumerate() {
        let received = received.clone();
        let publisher = i < args.publishers;
        let (size, window) = (args.size.max(8), args.window.max(1));
        let lat_tx = lat_tx.clone();
        tasks.push(tokio::spawn(async move {
            let (mut rd, mut wr) = stream.into_split();
            let mut buf = vec![0u8; 256 * 1024];
            let mut filled = 0usize;
            let mut latencies = Vec::new();
            let mut in_flight = 0usize;
            let payload_for = |epoch: Instant| {
                let mut p = vec![0u8; size];
                let now = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(0);
                p[..8].copy_from_slice(&now.to_be_bytes());
                p[8] = u8::try_from(i % 256).unwrap_or(0);
                p
            };
            if publisher {
                for _ in 0..window {
                    let frame = netsvr_core::wire::encode_client_frame(
                        netsvr_core::wire::OpCode::Binary,
                        true,
                        &payload_for(epoch),
                        [1, 2, 3, 4],
                    );
                    if wr.write_all(&frame).await.is_err() {
                        return;
                    }
                    in_flight += 1;
                }
            }
            loop {
                let remaining = deadline.saturating_duration_since(Instant::now());
                if remaining.is_zero() {
                    break;
                }
                let n = match tokio::time::timeout(remaining, rd.read(&mut buf[filled..])).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(n)) => n,
                };
                filled += n;
                let mut at = 0;
                let mut mine = 0;
                let mut count = 0u64;
                while let Some((header, len)) = netsvr_benches::frame_len(&buf[at..filled]) {
                    if at + header + len > filled {
                        break;
                    }
                    let payload = &buf[at + header..at + header + len];
                    if publisher && len >= 9 && usize::from(payload[8]) == i % 256 {
                        let mut ts = [0u8; 8];
                        ts.copy_from_slice(&payload[..8]);
                        let sent = u64::from_be_bytes(ts);
                        let now = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(0);
                        latencies.push(now.saturating_sub(sent));
                        mine += 1;
                    }
                    count += 1;
                    at += header + len;
                }
                buf.copy_within(at..filled, 0);
                filled -= at;
                received.fetch_add(count, Ordering::Relaxed);
                if publisher {
                    in_flight = in_flight.saturating_sub(mine);
                    let mut out = Vec::new();
                    while in_flight < window {
                        out.extend_from_slice(&netsvr_core::wire::encode_client_frame(
                            netsvr_core::wire::OpCode::Binary,
                            true,
                            &payload_for(epoch),
                            [1, 2, 3, 4],
                        ));
                        in_flight += 1;
                    }
                    if !out.is_empty() && wr.write_all(&out).await.is_err() {
                        break;
                    }
                }
            }
            if publisher {
                let _ = lat_tx.send(latencies).await;
            }
        }));
    }
    drop(lat_tx);
    let started = Instant::now();
    let mut last = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = received.load(Ordering::Relaxed);
        eprintln!("fanout: {:>10} deliveries/s", now - last);
        last = now;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut all = Vec::new();
    while let Some(mut l) = lat_rx.recv().await {
        all.append(&mut l);
    }
    for t in tasks {
        let _ = t.await;
    }
    all.sort_unstable();
    let pct = |p: f64| {
        let idx = ((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1));
        all.get(idx).map_or(0.0, |ns| *ns as f64 / 1e6)
    };
    let total = received.load(Ordering::Relaxed);
    Ok(format!(
        "{{\"mode\":\"fanout\",\"receivers\":{},\"publishers\":{},\"window\":{},\"size\":{},\"secs\":{elapsed:.2},\"deliveries\":{total},\"deliveries_per_sec\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
        args.conns,
        args.publishers,
        args.window,
        args.size,
        total as f64 / elapsed,
        pct(0.5),
        pct(0.99)
    ))
}
