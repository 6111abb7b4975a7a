//! The client socket under a session: plain TCP, or TCP carrying TLS records (rustls), behind
//! the same non-blocking, readiness-driven calls.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Frames handed to one `writev`.
const MAX_IOV: usize = 64;

/// A connection's byte stream after the upgrade.
pub(super) enum Link {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<TlsLink>),
}

/// What the HTTP upgrade hands back: turned into a [`Link`] for the session.
pub(super) trait IntoLink:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send
{
    fn into_link(self) -> Link;
}

impl IntoLink for TcpStream {
    fn into_link(self) -> Link {
        Link::Plain(self)
    }
}

impl Link {
    pub(super) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Self::Plain(tcp) => tcp.poll_read_ready(cx),
            #[cfg(feature = "tls")]
            Self::Tls(tls) if tls.buffered => Poll::Ready(Ok(())),
            #[cfg(feature = "tls")]
            Self::Tls(tls) => tls.tcp.poll_read_ready(cx),
        }
    }

    pub(super) fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tcp().poll_write_ready(cx)
    }

    pub(super) async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_read_ready(cx)).await
    }

    pub(super) async fn writable(&self) -> io::Result<()> {
        self.tcp().writable().await
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            #[cfg(feature = "tls")]
            Self::Tls(tls) => &tls.tcp,
        }
    }

    /// Reads what the client sent (plaintext); `Ok(0)` is the end of the stream,
    /// `WouldBlock` means nothing is waiting.
    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => read_draining(tcp, buf),
            #[cfg(feature = "tls")]
            Self::Tls(tls) => tls.read(buf),
        }
    }

    /// Writes queued frames from the front of `out`: how many bytes were taken, or
    /// `WouldBlock`. With TLS the bytes are taken into rustls' bounded record buffer, which
    /// [`Link::flush`] empties.
    pub(super) fn write(&mut self, out: &VecDeque<Bytes>) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => match (out.len(), out.front()) {
                // One frame (the usual case below saturation) needs no I/O vector; a few
                // need a small one: initialising all MAX_IOV slots cost more than the frame.
                (1, Some(front)) => tcp.try_write(front),
                (2..8, _) => with_slices::<8>(out, |s| tcp.try_write_vectored(s)),
                _ => with_slices::<MAX_IOV>(out, |s| tcp.try_write_vectored(s)),
            },
            #[cfg(feature = "tls")]
            Self::Tls(tls) => with_slices::<MAX_IOV>(out, |s| {
                std::io::Write::write_vectored(&mut tls.conn.writer(), s)
            }),
        }
    }

    /// Sends what the TLS layer holds: `true` once nothing is left, `false` if the socket
    /// is full. Plain TCP holds nothing.
    pub(super) fn flush(&mut self) -> io::Result<bool> {
        match self {
            Self::Plain(_) => Ok(true),
            #[cfg(feature = "tls")]
            Self::Tls(tls) => tls.flush(),
        }
    }

    /// Whether the TLS layer holds records not yet written.
    pub(super) fn wants_write(&self) -> bool {
        match self {
            Self::Plain(_) => false,
            #[cfg(feature = "tls")]
            Self::Tls(tls) => tls.conn.wants_write(),
        }
    }

    /// Queues TLS' `close_notify` (sent by the next flush); says whether there was one to
    /// queue (not for plain TCP).
    pub(super) fn close_notify(&mut self) -> bool {
        match self {
            Self::Plain(_) => false,
            #[cfg(feature = "tls")]
            Self::Tls(tls) => {
                tls.conn.send_close_notify();
                true
            }
        }
    }
}

/// Reads into `buf`; a read that did not fill it drained the socket, so the read readiness
/// is cleared at once (as tokio's own `poll_read` does with epoll) instead of by a second
/// `read` failing with `WouldBlock`. The clear is skipped if readiness arrived meanwhile.
fn read_draining(tcp: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = None;
    let len = buf.len();
    let result = tcp.try_io(Interest::READABLE, || {
        let n = tcp.try_read(buf)?;
        if n > 0 && n < len {
            got = Some(n);
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match got {
        Some(n) => Ok(n),
        None => result,
    }
}

/// Calls `write` with I/O slices over the first `N` (at most) frames of `out`.
fn with_slices<const N: usize>(
    out: &VecDeque<Bytes>,
    write: impl FnOnce(&[IoSlice<'_>]) -> io::Result<usize>,
) -> io::Result<usize> {
    let mut slices = [IoSlice::new(&[]); N];
    let mut count = 0;
    for (slot, frame) in slices.iter_mut().zip(out.iter()) {
        *slot = IoSlice::new(frame);
        count += 1;
    }
    write(slices.get(..count).unwrap_or_default())
}

#[cfg(feature = "tls")]
pub(super) use tls::TlsLink;

#[cfg(feature = "tls")]
mod tls {
    use std::io::{self, IoSlice, Read, Write};

    use rustls::ServerConnection;
    use tokio::net::TcpStream;
    use tokio_rustls::server::TlsStream;

    use super::{IntoLink, Link};

    /// TCP plus the rustls state of its TLS session.
    pub(in crate::transport) struct TlsLink {
        pub(super) tcp: TcpStream,
        pub(super) conn: ServerConnection,
        /// Decrypted bytes may be waiting in rustls without the socket being readable.
        pub(super) buffered: bool,
    }

    impl IntoLink for TlsStream<TcpStream> {
        fn into_link(self) -> Link {
            let (tcp, conn) = self.into_inner();
            // What the handshake read past the HTTP request may already be decrypted.
            Link::Tls(Box::new(TlsLink {
                tcp,
                conn,
                buffered: true,
            }))
        }
    }

    /// `io::Read`/`io::Write` over the non-blocking socket, for rustls.
    struct Tcp<'a>(&'a TcpStream);

    impl Read for Tcp<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.try_read(buf)
        }
    }

    impl Write for Tcp<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.try_write(buf)
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.0.try_write_vectored(bufs)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl TlsLink {
        pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let mut eof = false;
            loop {
                match self.conn.reader().read(buf) {
                    Ok(n) => {
                        // A full buffer may have left more behind; an empty read is the
                        // client's close_notify.
                        self.buffered = n == buf.len() && n > 0;
                        return Ok(n);
                    }
                    // TCP closed without close_notify: the end of the stream all the same.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock && eof => return Ok(0),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                self.buffered = false;
                // Nothing decrypted is waiting: take records from the socket (`WouldBlock`
                // when it has none, which also clears its readiness).
                eof = self.conn.read_tls(&mut Tcp(&self.tcp))? == 0;
                if let Err(e) = self.conn.process_new_packets() {
                    // rustls queued an alert saying why; send it if the socket takes it.
                    let _ = self.flush();
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
        }

        pub(super) fn flush(&mut self) -> io::Result<bool> {
            while self.conn.wants_write() {
                match self.conn.write_tls(&mut Tcp(&self.tcp)) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) => return Err(e),
                }
            }
            Ok(true)
        }
    }
}
