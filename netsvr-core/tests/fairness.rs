//! One client sending flat out must not starve the other connections of the same worker
//! thread: the gateway runs on a single tokio worker while a flooder keeps its socket
//! readable, and another client's pings must still be answered promptly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::raw::{frame, upgrade_request};
use common::{TestGateway, test_config};
use netsvr_core::wire::OpCode;

/// Without yielding between full reads, the first pong here waited 0.2–0.7 s (a flooder's
/// task kept reading for tokio's whole budget of 128 reads); with it, under 10 ms.
const PONG_WITHIN: Duration = Duration::from_millis(150);

/// Clients sending flat out.
const FLOODERS: usize = 4;

/// Opens a blocking client connection and reads past the 101 response.
fn open(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .write_all(upgrade_request("/netsvr", "").as_bytes())
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "not upgraded");
    stream
}

/// Writes 16 KiB binary frames until `stop`; counts the bytes written.
fn flood(addr: SocketAddr, stop: Arc<AtomicBool>, written: Arc<AtomicU64>) {
    let mut stream = open(addr);
    stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let one = frame(OpCode::Binary, true, &[7u8; 16 * 1024]);
    let burst: Vec<u8> = (0..16).flat_map(|_| one.iter().copied()).collect();
    while !stop.load(Ordering::Relaxed) {
        match stream.write(&burst) {
            Ok(n) => {
                written.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
}

/// Sends a ping and waits for its pong; returns the round trip.
fn ping(stream: &mut TcpStream, n: u8) -> Duration {
    let started = Instant::now();
    stream.write_all(&frame(OpCode::Ping, true, &[n])).unwrap();
    let mut reply = [0u8; 3];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(reply, [0x8a, 1, n], "expected the pong of ping {n}");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_flooding_client_does_not_starve_the_others() {
    let mut config = test_config();
    config.max_message_size = 64 * 1024;
    let gw = TestGateway::start(config).await;
    let addr = gw.gateway.local_addr();

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let flooders: Vec<_> = (0..FLOODERS)
        .map(|_| {
            let (stop, written) = (stop.clone(), written.clone());
            thread::spawn(move || flood(addr, stop, written))
        })
        .collect();
    let probe = tokio::task::spawn_blocking(move || {
        let mut stream = open(addr);
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        // Let the flood build up: the server's socket stays readable from here on.
        thread::sleep(Duration::from_millis(500));
        (0..5u8)
            .map(|n| {
                let rtt = ping(&mut stream, n);
                thread::sleep(Duration::from_millis(50));
                rtt
            })
            .collect::<Vec<_>>()
    });
    let rtts = probe.await.unwrap();
    let flooded = written.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for flooder in flooders {
        flooder.join().unwrap();
    }
    eprintln!("ping round trips {rtts:?} while {FLOODERS} clients wrote {flooded} bytes");

    assert!(
        flooded > 8 << 20,
        "the flooder wrote only {flooded} bytes: no flood, nothing tested"
    );
    let worst = rtts.iter().max().copied().unwrap_or_default();
    assert!(
        worst < PONG_WITHIN,
        "pongs took {rtts:?} while another client flooded ({flooded} bytes)"
    );
    drop(gw);
}
