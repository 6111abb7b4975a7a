//! Support for the netsvr load generator: arguments, a minimal WebSocket client handshake,
//! server-frame length parsing, and RSS reading.

use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Parsed command line of `netsvr-load`.
#[derive(Debug, Clone)]
pub struct Args {
    /// `idle` or `fanout`.
    pub mode: String,
    /// Server address.
    pub addr: SocketAddr,
    /// WebSocket path.
    pub path: String,
    /// Connections to open.
    pub conns: usize,
    /// Source addresses (127.0.0.1 ..= 127.0.0.N).
    pub sources: usize,
    /// Server pid (for RSS).
    pub pid: Option<u32>,
    /// Publishing connections (fanout).
    pub publishers: usize,
    /// Messages each publisher keeps in flight.
    pub window: usize,
    /// Payload size in bytes.
    pub size: usize,
    /// Seconds to run (fanout) or to settle (idle).
    pub duration: u64,
}

impl Args {
    /// Usage text.
    pub const USAGE: &'static str = "usage: netsvr-load idle|fanout --addr 127.0.0.1:9000 [--path /] [--conns N] \
[--sources N] [--pid PID] [--publishers N] [--window N] [--size BYTES] [--duration SECS]";

    /// Parses the arguments after the program name.
    pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Self, String> {
        let mode = it.next().ok_or("missing mode")?;
        let mut args = Self {
            mode,
            addr: SocketAddr::from(([127, 0, 0, 1], 9000)),
            path: "/".into(),
            conns: 1000,
            sources: 4,
            pid: None,
            publishers: 1,
            window: 16,
            size: 100,
            duration: 10,
        };
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
            match flag.as_str() {
                "--addr" => args.addr = value.parse().map_err(|e| bad(&e))?,
                "--path" => args.path = value.clone(),
                "--conns" => args.conns = value.parse().map_err(|e| bad(&e))?,
                "--sources" => args.sources = value.parse().map_err(|e| bad(&e))?,
                "--pid" => args.pid = Some(value.parse().map_err(|e| bad(&e))?),
                "--publishers" => args.publishers = value.parse().map_err(|e| bad(&e))?,
                "--window" => args.window = value.parse().map_err(|e| bad(&e))?,
                "--size" => args.size = value.parse().map_err(|e| bad(&e))?,
                "--duration" => args.duration = value.parse().map_err(|e| bad(&e))?,
                other => return Err(format!("unknown option {other}")),
            }
        }
        Ok(args)
    }
}

/// Opens a TCP connection from `source` and completes a WebSocket upgrade on `path`.
pub async fn connect(addr: SocketAddr, path: &str, source: IpAddr) -> Result<TcpStream, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| format!("bind {source}: {e}"))?;
    let mut stream = socket
        .connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.map_err(|e| e.to_string())?;
        if n == 0 || head.len() > 8192 {
            return Err("handshake: connection closed".into());
        }
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(format!(
            "handshake refused: {}",
            String::from_utf8_lossy(&head).lines().next().unwrap_or("")
        ));
    }
    Ok(stream)
}

/// Header length and payload length of an unmasked server frame at the start of `buf`, or
/// `None` if the header is incomplete.
pub fn frame_len(buf: &[u8]) -> Option<(usize, usize)> {
    let b1 = *buf.get(1)?;
    match b1 & 0x7f {
        126 => {
            let len = u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]);
            Some((4, usize::from(len)))
        }
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            Some((10, usize::try_from(u64::from_be_bytes(bytes)).ok()?))
        }
        n => Some((2, usize::from(n))),
    }
}

/// Resident set size of a process, in KiB, from `/proc/PID/status`.
pub fn read_rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("read /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS line".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lengths() {
        assert_eq!(frame_len(&[0x82, 5]), Some((2, 5)));
        assert_eq!(frame_len(&[0x82, 126, 1, 0]), Some((4, 256)));
        assert_eq!(frame_len(&[0x82, 126, 1]), None);
        assert_eq!(frame_len(&[0x82]), None);
        let mut big = vec![0x82, 127];
        big.extend_from_slice(&70_000u64.to_be_bytes());
        assert_eq!(frame_len(&big), Some((10, 70_000)));
    }

    #[test]
    fn parses_args() {
        let a = Args::parse(
            ["fanout", "--conns", "10", "--addr", "127.0.0.1:1"]
                .iter()
                .map(|s| (*s).to_owned()),
        )
        .unwrap();
        assert_eq!(a.conns, 10);
        assert!(Args::parse(["idle", "--bogus", "1"].iter().map(|s| (*s).to_owned())).is_err());
    }
}
