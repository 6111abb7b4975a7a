//! The client side of WebSocket, by hand: the upgrade request, a bounded buffer that cuts
//! server frames out of the byte stream, and the 24-byte stamp every load message starts
//! with (run id, connection index, sequence number, send time).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use netsvr_core::wire::{OpCode, encode_client_frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::deflate::{OFFER, accepted};

/// Largest HTTP response head accepted.
const HEAD_LIMIT: usize = 8192;
/// Bytes of the stamp at the start of every payload.
pub const STAMP_LEN: usize = 24;
/// Opcode of a close frame.
const CLOSE: u8 = 0x8;

/// An upgraded connection and the bytes that came after the response head.
#[derive(Debug)]
pub struct WsConn {
    /// The socket.
    pub stream: TcpStream,
    /// Frame bytes read together with the head.
    pub leftover: Vec<u8>,
}

/// Opens a TCP connection from `source` and completes a WebSocket upgrade on `path`; with
/// `deflate`, offers permessage-deflate and fails unless the 101 accepts it.
pub async fn connect(
    addr: SocketAddr,
    path: &str,
    source: IpAddr,
    deflate: bool,
) -> Result<WsConn, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| format!("bind {source}: {e}"))?;
    let mut stream = socket
        .connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let offer = if deflate {
        format!("Sec-WebSocket-Extensions: {OFFER}\r\n")
    } else {
        String::new()
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send upgrade: {e}"))?;
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if head.len() > HEAD_LIMIT {
            return Err("handshake: response head too long".into());
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        if n == 0 {
            return Err("handshake: connection closed".into());
        }
        head.extend_from_slice(chunk.get(..n).unwrap_or_default());
    };
    if !head.starts_with(b"HTTP/1.1 101") {
        let line = String::from_utf8_lossy(&head);
        let first = line.lines().next().unwrap_or_default();
        return Err(format!("handshake refused: {first}"));
    }
    if deflate && !accepted(head.get(..end).unwrap_or_default()) {
        return Err("handshake: permessage-deflate offered but not accepted".into());
    }
    let leftover = head.get(end..).unwrap_or_default().to_vec();
    Ok(WsConn { stream, leftover })
}

/// [`connect`] within `limit`.
pub async fn connect_within(
    addr: SocketAddr,
    path: &str,
    source: IpAddr,
    deflate: bool,
    limit: Duration,
) -> Result<WsConn, String> {
    tokio::time::timeout(limit, connect(addr, path, source, deflate))
        .await
        .unwrap_or_else(|_| Err(format!("no upgrade within {limit:?}")))
}

/// Writes all of `buf` unless `deadline` comes first: `Ok(true)` when written, `Ok(false)`
/// at the deadline (the connection is then mid-frame and must not be written to again).
pub async fn write_by(
    wr: &mut (impl AsyncWriteExt + Unpin),
    buf: &[u8],
    deadline: std::time::Instant,
) -> Result<bool, String> {
    let deadline = tokio::time::Instant::from_std(deadline);
    match tokio::time::timeout_at(deadline, wr.write_all(buf)).await {
        Ok(Ok(())) => Ok(true),
        Ok(Err(e)) => Err(format!("write: {e}")),
        Err(_) => Ok(false),
    }
}

/// Header length and payload length of a server frame at the start of `buf`, or `None` if
/// the header is incomplete. A set mask bit adds the 4-byte key to the header.
pub fn frame_len(buf: &[u8]) -> Option<(usize, usize)> {
    let b1 = *buf.get(1)?;
    let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
    match b1 & 0x7f {
        126 => {
            let len = u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]);
            Some((4 + mask, usize::from(len)))
        }
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            Some((10 + mask, usize::try_from(u64::from_be_bytes(bytes)).ok()?))
        }
        n => Some((2 + mask, usize::from(n))),
    }
}

/// The first header byte and size of a received data frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The opcode (1 text, 2 binary, 0 continuation).
    pub opcode: u8,
    /// RSV1: the message is compressed (permessage-deflate).
    pub rsv1: bool,
    /// Header and payload bytes on the wire.
    pub wire_len: usize,
}

/// A bounded receive buffer that yields complete server frames.
#[derive(Debug)]
pub struct FrameBuf {
    buf: Vec<u8>,
    filled: usize,
}

impl FrameBuf {
    /// A buffer able to hold a frame with a payload of `max_payload` bytes (at least 64 KiB),
    /// starting with `leftover`.
    pub fn new(max_payload: usize, leftover: &[u8]) -> Self {
        let cap = (max_payload + 14).max(64 * 1024).max(leftover.len());
        let mut buf = vec![0; cap];
        buf[..leftover.len()].copy_from_slice(leftover);
        Self {
            buf,
            filled: leftover.len(),
        }
    }

    /// Room to read into (never empty after [`drain`](Self::drain) succeeded).
    pub fn spare(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.filled..).unwrap_or_default()
    }

    /// Marks `n` more bytes as read.
    pub fn advance(&mut self, n: usize) {
        self.filled = (self.filled + n).min(self.buf.len());
    }

    /// Calls `f(head, payload)` for every complete data frame in the buffer (pings and
    /// pongs are skipped) and keeps the incomplete rest. Fails on a close frame and on a
    /// frame that can never fit the buffer.
    pub fn drain(&mut self, mut f: impl FnMut(Head, &[u8])) -> Result<usize, String> {
        let mut at = 0;
        let mut frames = 0;
        let result = loop {
            let rest = self.buf.get(at..self.filled).unwrap_or_default();
            let Some((header, len)) = frame_len(rest) else {
                break Ok(frames);
            };
            if header.saturating_add(len) > self.buf.len() {
                break Err(format!("server frame of {len} bytes exceeds the buffer"));
            }
            let Some(payload) = rest.get(header..header + len) else {
                break Ok(frames);
            };
            let b0 = rest.first().copied().unwrap_or_default();
            let opcode = b0 & 0x0f;
            if opcode == CLOSE {
                let code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                break Err(format!("server closed the connection (code {code:?})"));
            }
            if opcode < CLOSE {
                let head = Head {
                    opcode,
                    rsv1: b0 & 0x40 != 0,
                    wire_len: header + len,
                };
                f(head, payload);
                frames += 1;
            }
            at += header + len;
        };
        self.buf.copy_within(at..self.filled, 0);
        self.filled -= at;
        result
    }
}

/// What every load message starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// This run's id: messages of other runs are ignored.
    pub run: u32,
    /// Index of the sending connection.
    pub conn: u32,
    /// Per-connection sequence number, from 0.
    pub seq: u64,
    /// Send time in nanoseconds since the run's epoch.
    pub sent_ns: u64,
}

impl Stamp {
    /// A payload of `size` bytes (at least [`STAMP_LEN`]) starting with this stamp.
    pub fn payload(&self, size: usize) -> Vec<u8> {
        let mut p = vec![b'x'; size.max(STAMP_LEN)];
        p[0..4].copy_from_slice(&self.run.to_be_bytes());
        p[4..8].copy_from_slice(&self.conn.to_be_bytes());
        p[8..16].copy_from_slice(&self.seq.to_be_bytes());
        p[16..24].copy_from_slice(&self.sent_ns.to_be_bytes());
        p
    }

    /// A masked client frame carrying [`payload`](Self::payload).
    pub fn frame(&self, size: usize) -> Bytes {
        encode_client_frame(
            OpCode::Binary,
            true,
            &self.payload(size),
            [0x5a, 0x17, 0xc3, 0x2e],
        )
    }

    /// The stamp at the start of `payload`, if it is long enough.
    pub fn read(payload: &[u8]) -> Option<Self> {
        let b = payload.get(..STAMP_LEN)?;
        let u32_at = |i: usize| b.get(i..i + 4)?.try_into().ok().map(u32::from_be_bytes);
        let u64_at = |i: usize| b.get(i..i + 8)?.try_into().ok().map(u64::from_be_bytes);
        Some(Self {
            run: u32_at(0)?,
            conn: u32_at(4)?,
            seq: u64_at(8)?,
            sent_ns: u64_at(16)?,
        })
    }
}

/// An id for this run, to tell its messages from leftovers of earlier runs.
pub fn run_id() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::process::id().rotate_left(16) ^ nanos
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => f.push(n as u8),
            n if n <= 0xffff => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn frame_lengths() {
        assert_eq!(frame_len(&[0x82, 5]), Some((2, 5)));
        assert_eq!(frame_len(&[0x82, 126, 1, 0]), Some((4, 256)));
        assert_eq!(frame_len(&[0x82, 126, 1]), None);
        assert_eq!(frame_len(&[0x82]), None);
        assert_eq!(frame_len(&[0x82, 0x85]), Some((6, 5)));
        let mut big = vec![0x82, 127];
        big.extend_from_slice(&70_000u64.to_be_bytes());
        assert_eq!(frame_len(&big), Some((10, 70_000)));
    }

    #[test]
    fn drains_whole_frames_and_keeps_the_rest() {
        let mut bytes = server_frame(0x2, b"one");
        bytes.extend(server_frame(0x9, b"ping"));
        bytes.extend(server_frame(0x1, &[7; 300]));
        let split = bytes.len() - 100;
        let mut fb = FrameBuf::new(1000, &bytes[..split]);
        let mut got = Vec::new();
        assert_eq!(fb.drain(|h, p| got.push((h.opcode, p.len()))), Ok(1));
        let tail = &bytes[split..];
        fb.spare()[..tail.len()].copy_from_slice(tail);
        fb.advance(tail.len());
        assert_eq!(fb.drain(|h, p| got.push((h.opcode, p.len()))), Ok(1));
        assert_eq!(got, [(2, 3), (1, 300)]);
        let mut fb = FrameBuf::new(10, &[0xc1, 2, b'h', b'i']);
        let mut heads = Vec::new();
        assert_eq!(fb.drain(|h, _| heads.push(h)), Ok(1));
        let want = Head {
            opcode: 1,
            rsv1: true,
            wire_len: 4,
        };
        assert_eq!(heads, [want]);
        assert_eq!(fb.drain(|_, _| {}), Ok(0));
    }

    #[test]
    fn close_and_oversize_frames_fail() {
        let mut fb = FrameBuf::new(10, &server_frame(0x8, &[0x03, 0xe9]));
        assert!(fb.drain(|_, _| {}).unwrap_err().contains("1001"));
        let mut huge = vec![0x82, 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        let mut fb = FrameBuf::new(10, &huge);
        assert!(fb.drain(|_, _| {}).is_err());
    }

    #[test]
    fn stamps_round_trip() {
        let s = Stamp {
            run: 7,
            conn: 3,
            seq: 1 << 40,
            sent_ns: 123_456_789,
        };
        let p = s.payload(100);
        assert_eq!(p.len(), 100);
        assert_eq!(Stamp::read(&p), Some(s));
        assert_eq!(Stamp::read(&p[..STAMP_LEN - 1]), None);
        assert_eq!(s.payload(3).len(), STAMP_LEN);
        assert!(s.frame(30).len() > 30);
    }
}
