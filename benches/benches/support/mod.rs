//! Shared by the gateway benches: a raw WebSocket client (hand-rolled upgrade over a tokio
//! `TcpStream`) and a reader that discards what the gateway sends while counting the bytes.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connects to `addr` and completes a WebSocket upgrade on `path`.
pub(crate) async fn connect(addr: SocketAddr, path: &str) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    // The gateway sends nothing after the 101 until a bench sends, so reading in chunks
    // cannot swallow a frame.
    let mut head = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || head.len() > 8192 {
            return Err(io::Error::other("handshake: connection closed"));
        }
        head.extend_from_slice(&chunk[..n]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(io::Error::other("handshake refused"));
    }
    Ok(stream)
}

thread_local! {
    /// One read buffer per thread, so an idle client task holds no buffer.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; 64 * 1024]);
}

/// Reads and discards until the connection ends, adding every byte read to `received`.
pub(crate) async fn discard(stream: TcpStream, received: Arc<AtomicU64>) {
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        let read = SCRATCH.with(|buf| stream.try_read(&mut buf.borrow_mut()));
        match read {
            Ok(0) => return,
            Ok(n) => {
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// Opens `n` clients to `addr` (at most 500 handshakes in flight) and spawns a
/// [`discard`] task for each on the current runtime.
pub(crate) async fn connect_many(
    addr: SocketAddr,
    path: &str,
    n: usize,
    received: &Arc<AtomicU64>,
) -> io::Result<()> {
    let mut left = n;
    while left > 0 {
        let wave = left.min(500);
        let mut handshakes = tokio::task::JoinSet::new();
        for _ in 0..wave {
            let path = path.to_owned();
            handshakes.spawn(async move { connect(addr, &path).await });
        }
        while let Some(joined) = handshakes.join_next().await {
            let stream = joined.map_err(io::Error::other)??;
            tokio::spawn(discard(stream, received.clone()));
        }
        left -= wave;
    }
    Ok(())
}
