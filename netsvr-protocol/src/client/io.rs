//! Framed TCP plumbing shared by the worker and task connections: connect with a timeout,
//! a cancel-safe frame reader, encoding with the gateway's size limit, the back-off timer.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::ClientError;
use crate::codec::{CMD_LEN, LEN_PREFIX};
use crate::{Codec, CodecError, Frame, ToGateway};

/// Initial read buffer capacity; it grows to the frame being read.
const READ_BUF: usize = 8 * 1024;

/// Connects with a timeout, turns Nagle off (frames are small and latency matters) and
/// sends the shared secret first when the config has one.
pub(crate) async fn connect(
    addr: SocketAddr,
    config: &super::ClientConfig,
) -> Result<TcpStream, ClientError> {
    let limit = config.connect_timeout;
    let mut stream = tokio::time::timeout(limit, TcpStream::connect(addr))
        .await
        .map_err(|_| timed_out(format!("connect to {addr} took over {limit:?}")))??;
    stream.set_nodelay(true)?;
    if !config.secret.is_empty() {
        let len = u32::try_from(config.secret.len())
            .map_err(|_| ClientError::Invalid("the secret is over 4 GiB".to_owned()))?;
        let mut frame = Vec::with_capacity(LEN_PREFIX + config.secret.len());
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&config.secret);
        stream.write_all(&frame).await?;
    }
    Ok(stream)
}

/// An `Io(TimedOut)` error.
pub(crate) fn timed_out(msg: String) -> ClientError {
    ClientError::Io(io::Error::new(io::ErrorKind::TimedOut, msg))
}

/// An `Io` error of a given kind, for failing requests with a copy of a connection error.
pub(crate) fn io_error(kind: io::ErrorKind, msg: String) -> ClientError {
    ClientError::Io(io::Error::new(kind, msg))
}

/// Encodes a whole frame, refusing one over the gateway's limit (it would drop the
/// connection and every request in flight on it).
pub(crate) fn encode(msg: &ToGateway, codec: &Codec) -> Result<Bytes, ClientError> {
    let mut out = BytesMut::new();
    msg.encode(&mut out);
    let len = out.len().saturating_sub(LEN_PREFIX);
    if len > codec.max_frame() {
        return Err(ClientError::Codec(CodecError::TooLarge {
            len,
            limit: codec.max_frame(),
        }));
    }
    debug_assert!(len >= CMD_LEN);
    Ok(out.freeze())
}

/// The heartbeat frame of a codec.
pub(crate) fn heartbeat_frame(codec: &Codec) -> Bytes {
    let mut out = BytesMut::new();
    codec.encode_heartbeat(&mut out);
    out.freeze()
}

/// Reads frames off a byte stream.
pub(crate) struct FrameReader<R> {
    rd: R,
    buf: BytesMut,
    codec: Codec,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader with its own buffer.
    pub(crate) fn new(rd: R, codec: Codec) -> Self {
        Self {
            rd,
            buf: BytesMut::with_capacity(READ_BUF),
            codec,
        }
    }

    /// The next frame. Cancel-safe: bytes already read stay in the buffer, so it can sit in
    /// a `select!` next to timers. End of stream is an `UnexpectedEof` error.
    pub(crate) async fn next(&mut self) -> Result<Frame, ClientError> {
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buf)? {
                return Ok(frame);
            }
            if self.rd.read_buf(&mut self.buf).await? == 0 {
                return Err(io_error(
                    io::ErrorKind::UnexpectedEof,
                    "the gateway closed the connection".to_owned(),
                ));
            }
        }
    }
}

/// Capped exponential back-off.
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `min`, never over `max`.
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(1));
        let max = max.max(min);
        Self {
            min,
            max,
            next: min,
        }
    }

    /// The delay to wait now; the one after is twice as long, up to the cap.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let now = self.next;
        self.next = now.saturating_mul(2).min(self.max);
        now
    }

    /// Back to the first delay (after a connection that worked for a while).
    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
}

/// The instant `d` from now, saturating far in the future instead of overflowing.
pub(crate) fn after(d: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Resolves once shutdown is asked for (`true` sent, or the sender dropped). Level
/// triggered: it resolves at once on every call after that.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
