//! The harness of the conformance suite: one gateway per test, a fresh raw connection per
//! case, and the exact reaction a case expects (events, pongs, close code, end of TCP).

use std::time::Duration;

use bytes::Bytes;
use netsvr_core::wire::OpCode;
use netsvr_core::{CloseReason, EventKind, MessageKind, UniqId};

use crate::common::raw::{self, RawConn, close, frame};
use crate::common::{TestGateway, test_config};

/// The message limit of the gateways of categories 1-7 (and the large 9.x cases).
pub(crate) const MIB: usize = 1024 * 1024;

/// How the client writes a case's frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Split {
    /// All frames in one write.
    Whole,
    /// One write per frame, with a pause after each ("frame-wise" in Autobahn).
    Frames,
    /// Writes of at most this many bytes, with a pause after each ("chopped").
    Chops(usize),
}

/// How a case ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// The connection is still usable: the client's close 1000 is then echoed.
    Open,
    /// The gateway fails the connection with this close code (and no pong or message
    /// for anything after the offending frame).
    Fail(u16),
    /// The client's close is echoed with this code; 1005 stands for an empty close,
    /// which must be echoed empty.
    Echo(u16),
}

/// What the gateway must do with a case's frames.
#[derive(Clone, Debug)]
pub(crate) struct Expect {
    /// The Message events, in order, of the case's connection.
    messages: Vec<(MessageKind, Bytes)>,
    /// The payloads of the pongs the client receives, in order, before any close.
    pongs: Vec<Bytes>,
    end: End,
}

/// The connection stays open.
pub(crate) fn open() -> Expect {
    ends(End::Open)
}

/// The gateway fails the connection with `code`.
pub(crate) fn fail(code: u16) -> Expect {
    ends(End::Fail(code))
}

/// The client's close is echoed with `code` (1005: empty).
pub(crate) fn echo(code: u16) -> Expect {
    ends(End::Echo(code))
}

fn ends(end: End) -> Expect {
    Expect {
        messages: Vec::new(),
        pongs: Vec::new(),
        end,
    }
}

impl Expect {
    /// Also a Text message event with `payload`.
    pub(crate) fn text(mut self, payload: impl AsRef<[u8]>) -> Self {
        let payload = Bytes::copy_from_slice(payload.as_ref());
        self.messages.push((MessageKind::Text, payload));
        self
    }

    /// Also a Binary message event with `payload`.
    pub(crate) fn binary(mut self, payload: impl AsRef<[u8]>) -> Self {
        let payload = Bytes::copy_from_slice(payload.as_ref());
        self.messages.push((MessageKind::Binary, payload));
        self
    }

    /// Also a pong with `payload`.
    pub(crate) fn pong(mut self, payload: impl AsRef<[u8]>) -> Self {
        self.pongs.push(Bytes::copy_from_slice(payload.as_ref()));
        self
    }
}

/// Names the Autobahn case on stderr when an assertion inside it (or inside a shared
/// helper that cannot know the case) panics.
struct CaseGuard<'a>(&'a str);

impl Drop for CaseGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("conformance case {} failed", self.0);
        }
    }
}

/// A gateway under test.
pub(crate) struct Suite {
    pub(crate) gw: TestGateway,
}

impl Suite {
    /// A gateway with a `max_message_size` of `limit` and a 1 s close timeout.
    pub(crate) async fn start(limit: usize) -> Self {
        let mut config = test_config();
        config.max_message_size = limit;
        config.close_timeout = Duration::from_secs(1);
        Self {
            gw: TestGateway::start(config).await,
        }
    }

    /// A raw client past the upgrade (which asserts the RFC accept value) and its uniqId.
    pub(crate) async fn connect(&mut self) -> (RawConn, UniqId) {
        let conn = raw::upgrade(self.gw.gateway.local_addr(), "/netsvr").await;
        let event = self.gw.next_event().await;
        assert!(matches!(event.kind, EventKind::Open), "{event:?}");
        (conn, event.uniq_id())
    }

    /// Runs Autobahn case `name` on a fresh connection: writes `frames` as `split` says
    /// and asserts `expect` exactly: the pongs, the close frame, the end of TCP, then the
    /// connection's events and nothing more.
    pub(crate) async fn case(
        &mut self,
        name: &str,
        frames: &[Bytes],
        split: Split,
        expect: Expect,
    ) {
        let _guard = CaseGuard(name);
        let (mut conn, id) = self.connect().await;
        write(&mut conn, frames, split).await;
        self.reaction(name, conn, id, expect).await;
    }

    /// The reaction part of [`Self::case`], for a connection set up by the caller.
    pub(crate) async fn react(&mut self, name: &str, conn: RawConn, id: UniqId, expect: Expect) {
        let _guard = CaseGuard(name);
        self.reaction(name, conn, id, expect).await;
    }

    async fn reaction(&mut self, name: &str, mut conn: RawConn, id: UniqId, expect: Expect) {
        for want in &expect.pongs {
            let got = conn.read_frame().await;
            let got = got.unwrap_or_else(|| panic!("{name}: connection ended before a pong"));
            assert_eq!(
                (got.fin, got.opcode, got.payload.as_slice()),
                (true, 0xA, want.as_ref()),
                "{name}: expected a pong"
            );
        }
        let closing = match expect.end {
            End::Open => {
                conn.send(&close(1000, b"")).await;
                1000
            }
            End::Echo(code) | End::Fail(code) => code,
        };
        let got = conn
            .read_frame()
            .await
            .unwrap_or_else(|| panic!("{name}: connection ended without a close frame"));
        assert_eq!(
            got.opcode, 0x8,
            "{name}: expected a close frame, got {got:?}"
        );
        assert_eq!(got.close_code(), closing, "{name}: close code of {got:?}");
        match expect.end {
            End::Echo(1005) => assert!(got.payload.is_empty(), "{name}: {got:?}"),
            End::Fail(code) => {
                assert!(!got.close_reason().is_empty(), "{name}: no reason");
                conn.send_lossy(&close(code, b"")).await;
            }
            _ => {}
        }
        // The server ends the TCP connection (first, after an echo).
        let rest = conn.read_to_end().await;
        assert!(
            rest.is_empty(),
            "{name}: bytes after the close frame: {rest:02x?}"
        );

        for (kind, payload) in expect.messages {
            let event = self.gw.next_event().await;
            assert_eq!(event.uniq_id(), id, "{name}: {event:?}");
            match event.kind {
                EventKind::Message {
                    kind: got_kind,
                    payload: got,
                } => assert!(
                    got_kind == kind && got == payload,
                    "{name}: expected a {kind:?} message of {} bytes, got a {got_kind:?} one \
                     of {} bytes",
                    payload.len(),
                    got.len()
                ),
                other => panic!("{name}: expected a message, got {other:?}"),
            }
        }
        let reason = match expect.end {
            End::Open => CloseReason::Client(1000),
            End::Echo(code) => CloseReason::Client(code),
            End::Fail(code) => CloseReason::ProtocolError(code),
        };
        let event = self.gw.next_event().await;
        assert_eq!(event.uniq_id(), id, "{name}: {event:?}");
        assert!(
            matches!(event.kind, EventKind::Close { reason: got } if got == reason),
            "{name}: expected Close {reason:?}, got {:?}",
            event.kind
        );
        if let Some(extra) = self.gw.events.try_recv() {
            panic!("{name}: unexpected extra event {extra:?}");
        }
    }
}

/// A short pause between writes, so the gateway sees the bytes in separate reads.
pub(crate) async fn pause() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// Writes `frames` as `split` says; ignores a gateway that already closed.
pub(crate) async fn write(conn: &mut RawConn, frames: &[Bytes], split: Split) {
    match split {
        Split::Whole => conn.send_lossy(&frames.concat()).await,
        Split::Frames => {
            for f in frames {
                conn.send_lossy(f).await;
                pause().await;
            }
        }
        Split::Chops(size) => {
            for chop in frames.concat().chunks(size) {
                conn.send_lossy(chop).await;
                pause().await;
            }
        }
    }
}

/// A masked final text frame.
pub(crate) fn text(payload: impl AsRef<[u8]>) -> Bytes {
    frame(OpCode::Text, true, payload.as_ref())
}

/// A masked final binary frame.
pub(crate) fn binary(payload: impl AsRef<[u8]>) -> Bytes {
    frame(OpCode::Binary, true, payload.as_ref())
}

/// A masked ping.
pub(crate) fn ping(payload: impl AsRef<[u8]>) -> Bytes {
    frame(OpCode::Ping, true, payload.as_ref())
}

/// A masked pong.
pub(crate) fn pong(payload: impl AsRef<[u8]>) -> Bytes {
    frame(OpCode::Pong, true, payload.as_ref())
}

/// A masked data frame: `opcode` Text, Binary or Continuation, FIN as given.
pub(crate) fn part(opcode: OpCode, fin: bool, payload: impl AsRef<[u8]>) -> Bytes {
    frame(opcode, fin, payload.as_ref())
}

/// `payload` as a message of `opcode` in fragments of the given sizes (the last
/// fragment takes the rest).
pub(crate) fn fragments(opcode: OpCode, payload: &[u8], sizes: &[usize]) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut rest = payload;
    for &size in sizes {
        let (head, tail) = rest.split_at(size.min(rest.len()));
        let first = out.is_empty();
        out.push(part(
            if first { opcode } else { OpCode::Continuation },
            false,
            head,
        ));
        rest = tail;
    }
    let last = if out.is_empty() {
        opcode
    } else {
        OpCode::Continuation
    };
    out.push(part(last, true, rest));
    out
}
