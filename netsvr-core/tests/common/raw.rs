//! A raw-socket client: hand-written HTTP requests and WebSocket frames over a `TcpStream`,
//! for tests that must see (or send) exact bytes.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use netsvr_core::wire::{OpCode, encode_client_frame, encode_client_frame_raw};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::WAIT;

/// The RFC 6455 sample key and its accept value.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
/// The masking key of every hand-built client frame.
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A GET upgrade request for `target` (path and query) with `extra` header lines, each
/// ending in `\r\n`.
pub fn upgrade_request(target: &str, extra: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\
         {extra}\r\n"
    )
}

/// A masked client frame.
pub fn frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Bytes {
    encode_client_frame(opcode, fin, payload, MASK)
}

/// A masked, final text frame (the payload need not be UTF-8).
pub fn text(payload: &[u8]) -> Bytes {
    frame(OpCode::Text, true, payload)
}

/// A masked close frame with `code` and raw `reason` bytes.
pub fn close(code: u16, reason: &[u8]) -> Bytes {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    frame(OpCode::Close, true, &payload)
}

/// A masked frame whose first byte is given verbatim.
pub fn raw_frame(first_byte: u8, payload: &[u8]) -> Bytes {
    encode_client_frame_raw(first_byte, payload, Some(MASK))
}

/// A response head.
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub text: String,
}

impl Head {
    /// A header's value (name case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.text.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A frame from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    /// RSV1: a permessage-deflate compressed message.
    pub rsv1: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The status code of a close frame (1005 when it has none).
    pub fn close_code(&self) -> u16 {
        assert_eq!(self.opcode, 0x8, "not a close frame: {self:?}");
        match self.payload.as_slice() {
            [] => 1005,
            [hi, lo, ..] => u16::from_be_bytes([*hi, *lo]),
            _ => panic!("close payload of 1 byte"),
        }
    }

    /// The reason of a close frame.
    pub fn close_reason(&self) -> String {
        String::from_utf8(self.payload.get(2..).unwrap_or_default().to_vec()).unwrap()
    }
}

/// A client socket with the bytes read but not yet parsed.
#[derive(Debug)]
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// permessage-deflate was negotiated: the server may set RSV1.
    pub deflate: bool,
}

impl RawConn {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        Self::from_stream(stream)
    }

    pub fn from_stream(stream: TcpStream) -> Self {
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buf: Vec::new(),
            deflate: false,
        }
    }

    /// Writes all of `bytes`; panics on error.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Writes all of `bytes`, ignoring a peer that already closed.
    pub async fn send_lossy(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Reads more bytes; 0 on EOF or reset. Panics after [`WAIT`].
    async fn fill(&mut self) -> usize {
        let mut chunk = vec![0_u8; 16 * 1024];
        let read = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
            .await
            .expect("timed out reading from the server");
        match read {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                n
            }
            Err(e) if is_reset(&e) => 0,
            Err(e) => panic!("read error: {e}"),
        }
    }

    /// Reads a response head; `None` if the connection ends before a whole head.
    pub async fn read_head(&mut self) -> Option<Head> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let text = String::from_utf8(self.buf[..end].to_vec()).unwrap();
                self.buf.drain(..end + 4);
                let status = text
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("bad status line in {text:?}"));
                return Some(Head { status, text });
            }
            if self.fill().await == 0 {
                return None;
            }
        }
    }

    /// Sends `request` and reads the response head; panics if there is none.
    pub async fn request(&mut self, request: &str) -> Head {
        self.send(request.as_bytes()).await;
        self.read_head()
            .await
            .expect("connection ended before a response")
    }

    /// Reads one frame; `None` on EOF (or reset) at a frame boundary.
    pub async fn read_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf, self.deflate) {
                self.buf.drain(..used);
                return Some(frame);
            }
            if self.fill().await == 0 {
                assert!(
                    self.buf.is_empty(),
                    "connection ended mid-frame: {:?}",
                    self.buf
                );
                return None;
            }
        }
    }

    /// Reads the next frame, which must be a close frame.
    pub async fn expect_close(&mut self) -> Frame {
        let frame = self
            .read_frame()
            .await
            .expect("connection ended without a close frame");
        assert_eq!(frame.opcode, 0x8, "expected a close frame, got {frame:?}");
        frame
    }

    /// The next frame must be a data frame with FIN; returns its payload.
    pub async fn expect_data(&mut self) -> Vec<u8> {
        let frame = self.read_frame().await.expect("connection ended");
        assert!(
            frame.fin && (frame.opcode == 0x1 || frame.opcode == 0x2),
            "{frame:?}"
        );
        frame.payload
    }

    /// The server closes the TCP connection next, sending nothing more.
    pub async fn expect_eof(&mut self) {
        assert!(self.buf.is_empty(), "unread bytes: {:?}", self.buf);
        let n = self.fill().await;
        assert_eq!(n, 0, "expected EOF, got {:?}", self.buf);
    }

    /// Reads until EOF or reset, returning everything read.
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        while self.fill().await > 0 {}
        std::mem::take(&mut self.buf)
    }

    /// Asserts that nothing arrives within `within`.
    pub async fn expect_silence(&mut self, within: Duration) {
        assert!(self.buf.is_empty(), "unread bytes: {:?}", self.buf);
        let mut chunk = [0_u8; 1024];
        if let Ok(read) = tokio::time::timeout(within, self.stream.read(&mut chunk)).await {
            panic!(
                "expected silence, got {read:?} ({:?})",
                chunk.get(..*read.as_ref().unwrap_or(&0))
            );
        }
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Parses one unmasked server frame from the front of `buf`.
fn parse_frame(buf: &[u8], deflate: bool) -> Option<(Frame, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let allowed = if deflate { 0x40 } else { 0 };
    assert_eq!(b0 & 0x70 & !allowed, 0, "server set RSV bits");
    assert_eq!(b1 & 0x80, 0, "server masked a frame");
    let (len, at) = match b1 & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => {
            let len = u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?);
            (usize::try_from(len).unwrap(), 10)
        }
        n => (usize::from(n), 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    let frame = Frame {
        fin: b0 & 0x80 != 0,
        rsv1: b0 & 0x40 != 0,
        opcode: b0 & 0x0f,
        payload,
    };
    Some((frame, at + len))
}

/// Connects and upgrades with the fixed key; asserts the 101 and its accept value.
pub async fn upgrade(addr: SocketAddr, target: &str) -> RawConn {
    upgrade_with(RawConn::connect(addr).await, target, "", &[]).await
}

/// Upgrades `conn` with `extra` header lines, writing `pipelined` bytes in the same write
/// as the request head.
pub async fn upgrade_with(
    mut conn: RawConn,
    target: &str,
    extra: &str,
    pipelined: &[u8],
) -> RawConn {
    let mut bytes = upgrade_request(target, extra).into_bytes();
    bytes.extend_from_slice(pipelined);
    conn.send(&bytes).await;
    let head = conn
        .read_head()
        .await
        .expect("connection ended before the 101");
    assert_eq!(head.status, 101, "{}", head.text);
    assert_eq!(
        head.header("sec-websocket-accept"),
        Some(ACCEPT),
        "{}",
        head.text
    );
    assert!(
        head.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
        "{}",
        head.text
    );
    conn
}

/// One plain HTTP exchange on a fresh connection: the response head, or `None` when the
/// server closed without one.
pub async fn http(addr: SocketAddr, request: &str) -> Option<Head> {
    let mut conn = RawConn::connect(addr).await;
    conn.send_lossy(request.as_bytes()).await;
    conn.read_head().await
}
