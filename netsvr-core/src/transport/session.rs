//! A client connection's task: reads with a per-thread scratch buffer (an idle connection
//! keeps no read buffer), decodes with the sans-IO decoder, and writes its queued frames
//! with vectored writes, many frames per syscall.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes};
use tokio::time::timeout_at;

use super::Slot;
use super::link::Link;
use crate::conn::{CloseRequest, Compression, Conn, Frame};
use crate::deflate::{Inflater, Negotiated};
use crate::event::{CloseReason, ConnInfo, ConnMeta, Event, EventKind, MessageKind};
use crate::gateway::Shared;
use crate::limit::{MessageWindow, Verdict};
use crate::wire::{self, CloseFrame, Decoded, DecoderConfig, FrameDecoder, Message, OpCode};

/// Read size; one buffer per worker thread, shared by all its connections.
const SCRATCH_LEN: usize = 64 * 1024;
/// Write rounds before giving reads (and other tasks) a turn.
const WRITE_ROUNDS: usize = 16;
/// An emptied write queue keeping more than this many slots is given back.
const KEEP_OUT_SLOTS: usize = 64;
/// Most of an incomplete frame's declared length reserved ahead of its bytes: a header
/// alone must not cost the whole `max_message_size`.
const RESERVE_AHEAD: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_LEN].into_boxed_slice());
    /// Inflates the messages of connections whose clients reset their context each message.
    static INFLATER: RefCell<Inflater> = RefCell::new(Inflater::new());
}

/// A connection that negotiated permessage-deflate, counted while it lives (the fan-out
/// prepares compressible frames only while there is one).
pub(super) struct DeflateSeat {
    shared: Arc<Shared>,
    agreed: Negotiated,
}

impl DeflateSeat {
    pub(super) fn new(shared: &Arc<Shared>, agreed: Negotiated) -> Self {
        shared
            .counters
            .deflate_connections
            .fetch_add(1, Ordering::Relaxed);
        Self {
            shared: shared.clone(),
            agreed,
        }
    }
}

impl Drop for DeflateSeat {
    fn drop(&mut self) {
        self.shared
            .counters
            .deflate_connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs an admitted connection to its end, then removes it and reports the close.
pub(super) async fn run(
    slot: Slot,
    conn: Arc<Conn>,
    link: Link,
    early: Bytes,
    deflate: Option<DeflateSeat>,
) {
    let shared = slot.shared().clone();
    let agreed = deflate.as_ref().map(|seat| seat.agreed);
    let reason = Session::new(&shared, &conn, link, agreed)
        .drive(early)
        .await;
    drop(deflate);
    // Give the place back before reporting the close, so a client that reconnects on
    // seeing it is not refused as over the cap.
    drop(slot);
    shared.detach(&conn, reason);
}

/// Sends `message` (if any) and a close frame to a client that upgraded but was not
/// admitted, then waits briefly for its close.
pub(super) async fn refuse(
    shared: Arc<Shared>,
    meta: ConnMeta,
    link: Link,
    code: u16,
    reason: &str,
    message: Option<Bytes>,
) {
    let conn = Conn::new(meta, ConnInfo::default(), shared.now_ms());
    let mut session = Session::new(&shared, &conn, link, None);
    if let Some(message) = message.filter(|m| !m.is_empty()) {
        session.out.push_back(shared.frame(&message).resolve(None));
    }
    let end = End::Close {
        code,
        reason: Cow::Owned(reason.to_owned()),
        cause: CloseReason::ProtocolError(code),
    };
    Box::pin(session.finish(end)).await;
}

/// How a connection ends.
enum End {
    /// The gateway closes: queued frames, then a close frame, then wait for the reply.
    Close {
        code: u16,
        reason: Cow<'static, str>,
        cause: CloseReason,
    },
    /// The client sent a close frame: echo it after the queued frames.
    Echo(Option<CloseFrame>),
    /// Nothing more can be said on this socket.
    Gone(CloseReason),
}

enum Step {
    Readable,
    Close(CloseRequest),
    Broken,
}

struct Session<'a> {
    shared: &'a Shared,
    conn: &'a Conn,
    link: Link,
    decoder: FrameDecoder,
    /// Bytes of an incomplete frame; empty (and unallocated) between frames.
    inbound: Vec<u8>,
    /// How many bytes the incomplete frame needs in all.
    need: usize,
    /// Frames taken from the outbox and not yet fully written.
    out: VecDeque<Bytes>,
    /// Frames just taken from the outbox, before compression is decided.
    staged: VecDeque<Frame>,
    /// permessage-deflate, when negotiated.
    deflate: Option<Deflate>,
    window: MessageWindow,
    /// After our close frame: only a close reply still matters.
    closing: bool,
}

/// A connection's permessage-deflate state.
struct Deflate {
    /// How outgoing messages are compressed.
    params: Compression,
    /// The client keeps its context: this connection's own inflater, else the thread's.
    inflater: Option<Box<Inflater>>,
}

impl<'a> Session<'a> {
    fn new(shared: &'a Shared, conn: &'a Conn, link: Link, agreed: Option<Negotiated>) -> Self {
        let deflate = agreed.map(|agreed| Deflate {
            params: Compression {
                level: shared.config.deflate.level,
                window_bits: agreed.server_window_bits,
                only_if_smaller: shared.config.deflate.skip_incompressible,
            },
            inflater: (!agreed.client_no_context_takeover).then(Box::default),
        });
        Self {
            shared,
            conn,
            link,
            decoder: FrameDecoder::new(DecoderConfig {
                max_message_size: shared.config.max_message_size,
                require_mask: true,
                compressed: deflate.is_some(),
            }),
            inbound: Vec::new(),
            need: 0,
            out: VecDeque::new(),
            staged: VecDeque::new(),
            deflate,
            window: MessageWindow::default(),
            closing: false,
        }
    }

    async fn drive(mut self, early: Bytes) -> CloseReason {
        let mut end = if early.is_empty() {
            None
        } else {
            self.ingest(&early)
        };
        // `early` may be a slice of hyper's read buffer: holding it would pin that buffer.
        drop(early);
        while end.is_none() {
            end = match poll_fn(|cx| self.poll_step(cx)).await {
                Step::Readable => {
                    // poll_step takes the outbox again right after: what the business
                    // answers to this read needs no wake-up.
                    self.conn.outbox.disarm();
                    let (end, filled) = self.read_once();
                    if filled && end.is_none() {
                        // A client sending flat out would keep this task ready for ever
                        // (tokio's budget allows 128 reads, megabytes): let the other
                        // connections, the sinks and the I/O driver run between buffers.
                        tokio::task::yield_now().await;
                    }
                    end
                }
                Step::Close(request) => Some(End::Close {
                    code: request.code,
                    reason: Cow::Borrowed(request.reason),
                    cause: request.cause,
                }),
                Step::Broken => Some(End::Gone(CloseReason::Io)),
            };
        }
        match end {
            Some(end) => Box::pin(self.finish(end)).await,
            None => CloseReason::Io,
        }
    }

    /// Writes what is queued while the socket takes it; resolves when there is something to
    /// read, a close was requested, or the socket broke.
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        let mut rounds = 0;
        loop {
            if self.out.is_empty() {
                let close = self.conn.outbox.take(cx.waker(), &mut self.staged);
                self.unstage();
                if let Some(request) = close {
                    return Poll::Ready(Step::Close(request));
                }
                if self.out.is_empty() && !self.link.wants_write() {
                    if self.out.capacity() > KEEP_OUT_SLOTS {
                        self.out = VecDeque::new();
                    }
                    if self.staged.capacity() > KEEP_OUT_SLOTS {
                        self.staged = VecDeque::new();
                    }
                    break;
                }
            } else if let Some(request) = self.conn.outbox.take_close(cx.waker(), &mut self.staged)
            {
                self.unstage();
                // The socket may be stuck: `finish` writes what it can within close_timeout.
                return Poll::Ready(Step::Close(request));
            }
            match self.write_out() {
                Ok(true) => {
                    rounds += 1;
                    if rounds >= WRITE_ROUNDS {
                        cx.waker().wake_by_ref();
                        break;
                    }
                }
                Ok(false) => match self.link.poll_write_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => return Poll::Ready(Step::Broken),
                    Poll::Pending => break,
                },
                Err(_) => return Poll::Ready(Step::Broken),
            }
        }
        match self.link.poll_read_ready(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Step::Readable),
            Poll::Ready(Err(_)) => Poll::Ready(Step::Broken),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Moves the frames taken from the outbox to the write queue, compressed for this
    /// connection where it negotiated permessage-deflate.
    fn unstage(&mut self) {
        let params = self.deflate.as_ref().map(|d| d.params);
        self.out
            .extend(self.staged.drain(..).map(|frame| frame.resolve(params)));
    }

    /// Writes queued frames until done (`true`) or the socket is full (`false`).
    fn write_out(&mut self) -> io::Result<bool> {
        loop {
            if !self.link.flush()? {
                return Ok(false);
            }
            if self.out.is_empty() {
                return Ok(true);
            }
            let written = match self.link.write(&self.out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            };
            self.advance(written);
        }
    }

    fn advance(&mut self, written: usize) {
        let shared = self.shared;
        shared.metrics.bytes_out.increment(written as u64);
        shared
            .counters
            .bytes_out
            .fetch_add(written as u64, Ordering::Relaxed);
        let mut left = written;
        while left > 0 {
            let Some(front) = self.out.front_mut() else {
                break;
            };
            if front.len() <= left {
                left -= front.len();
                self.out.pop_front();
            } else {
                front.advance(left);
                left = 0;
            }
        }
    }

    /// One read into the thread's scratch buffer, decoded at once. Also says whether the
    /// read filled the buffer (more is probably waiting).
    fn read_once(&mut self) -> (Option<End>, bool) {
        SCRATCH.with_borrow_mut(|buf| match self.link.read(buf) {
            Ok(0) => (Some(End::Gone(CloseReason::Disconnected)), false),
            Ok(n) => (
                self.ingest(buf.get(..n).unwrap_or_default()),
                n == buf.len(),
            ),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => (None, false),
            Err(_) => (Some(End::Gone(CloseReason::Io)), false),
        })
    }

    /// Decodes fresh bytes (after any kept tail); keeps only an incomplete frame's bytes.
    fn ingest(&mut self, fresh: &[u8]) -> Option<End> {
        if self.inbound.is_empty() {
            let (used, end) = self.decode_from(fresh);
            if end.is_none()
                && let Some(rest) = fresh.get(used..).filter(|r| !r.is_empty())
            {
                let ahead = self.need.min(RESERVE_AHEAD);
                self.inbound.reserve_exact(ahead.max(rest.len()));
                self.inbound.extend_from_slice(rest);
            }
            return end;
        }
        self.inbound.extend_from_slice(fresh);
        let mut buf = std::mem::take(&mut self.inbound);
        let (used, end) = self.decode_from(&buf);
        if used < buf.len() {
            buf.drain(..used);
            if buf.capacity() < self.need {
                // Grows with what arrives (amortised doubling), not with what is declared.
                buf.reserve((self.need - buf.len()).min(RESERVE_AHEAD));
            }
            self.inbound = buf;
        }
        end
    }

    fn decode_from(&mut self, input: &[u8]) -> (usize, Option<End>) {
        let mut used = 0;
        while let Some(rest) = input.get(used..).filter(|r| !r.is_empty()) {
            match self.decoder.decode(rest) {
                Ok(Decoded::NeedMore { at_least }) => {
                    self.need = at_least;
                    break;
                }
                Ok(Decoded::Frame { consumed, message }) => {
                    used += consumed;
                    if let Some(end) = message.and_then(|m| self.on_message(m)) {
                        return (used, Some(end));
                    }
                }
                Err(e) => {
                    let code = e.close_code();
                    let end = if self.closing {
                        End::Gone(CloseReason::ProtocolError(code))
                    } else {
                        End::Close {
                            code,
                            reason: Cow::Owned(e.to_string()),
                            cause: CloseReason::ProtocolError(code),
                        }
                    };
                    return (used, Some(end));
                }
            }
        }
        (used, None)
    }

    fn on_message(&mut self, message: Message) -> Option<End> {
        if self.closing {
            return matches!(message, Message::Close(_))
                .then_some(End::Gone(CloseReason::Disconnected));
        }
        let shared = self.shared;
        self.conn.touch(shared.now_ms());
        let message = match message {
            Message::Compressed { text, payload } => match self.inflate(text, &payload) {
                Ok(message) => message,
                Err(end) => return Some(end),
            },
            other => other,
        };
        match message {
            Message::Text(payload) if payload == shared.config.heartbeat_message => {
                self.heartbeat();
            }
            Message::Text(payload) => self.on_data(MessageKind::Text, payload),
            Message::Binary(payload) => self.on_data(MessageKind::Binary, payload),
            Message::Ping(payload) => {
                self.heartbeat();
                // Bounded like the outbox: a client that pings without reading loses pongs.
                if self.out.len() < shared.config.outbound_queue_capacity {
                    self.out
                        .push_back(wire::encode_frame(OpCode::Pong, &payload));
                }
            }
            Message::Pong(_) => {}
            Message::Close(frame) => return Some(End::Echo(frame)),
            // Inflated above.
            Message::Compressed { .. } => {}
        }
        None
    }

    /// Inflates a compressed data message within `max_message_size` inflated bytes.
    fn inflate(&mut self, text: bool, payload: &[u8]) -> Result<Message, End> {
        let limit = self.shared.config.max_message_size;
        let inflated = match self.deflate.as_mut().and_then(|d| d.inflater.as_mut()) {
            Some(own) => own.inflate(payload, limit, false),
            None => INFLATER.with_borrow_mut(|inflater| inflater.inflate(payload, limit, true)),
        };
        let fail = |code: u16, reason: String| End::Close {
            code,
            reason: Cow::Owned(reason),
            cause: CloseReason::ProtocolError(code),
        };
        let data = inflated.map_err(|e| fail(e.close_code(), e.to_string()))?;
        if !text {
            return Ok(Message::Binary(Bytes::from(data)));
        }
        match String::from_utf8(data) {
            Ok(text) => Ok(Message::Text(Bytes::from(text))),
            Err(_) => Err(fail(1007, "text message is not valid UTF-8".to_owned())),
        }
    }

    fn heartbeat(&self) {
        self.shared.metrics.heartbeats.increment(1);
        self.shared
            .counters
            .heartbeats
            .fetch_add(1, Ordering::Relaxed);
    }

    fn on_data(&mut self, kind: MessageKind, payload: Bytes) {
        let shared = self.shared;
        let (metrics, counters) = (&shared.metrics, &shared.counters);
        match shared
            .limiter
            .check_message(&mut self.window, Instant::now())
        {
            Verdict::Allow => {
                metrics.messages_in.increment(1);
                metrics.bytes_in.increment(payload.len() as u64);
                counters.messages_in.fetch_add(1, Ordering::Relaxed);
                counters
                    .bytes_in
                    .fetch_add(payload.len() as u64, Ordering::Relaxed);
                shared.emit(Event::new(
                    self.conn.snapshot(),
                    EventKind::Message { kind, payload },
                ));
            }
            Verdict::ConnectionLimit => {
                metrics.drop_rate_conn.increment(1);
                counters.drops_rate_conn.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                metrics.drop_rate_global.increment(1);
                counters.drops_rate_global.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Says goodbye as `end` requires, within `close_timeout`, and names the close reason.
    async fn finish(mut self, end: End) -> CloseReason {
        self.conn.outbox.shut();
        let deadline = tokio::time::Instant::now() + self.shared.config.close_timeout;
        match end {
            End::Gone(cause) => cause,
            End::Echo(frame) => {
                let (reply, cause) = match &frame {
                    Some(f) => (wire::encode_close(f.code, ""), CloseReason::Client(f.code)),
                    None => (
                        wire::encode_frame(OpCode::Close, &[]),
                        CloseReason::Client(1005),
                    ),
                };
                self.out.push_back(reply);
                if self.flush_until(deadline).await {
                    self.end_tls(deadline).await;
                }
                cause
            }
            End::Close {
                code,
                reason,
                cause,
            } => {
                self.out.push_back(wire::encode_close(code, &reason));
                if self.flush_until(deadline).await {
                    self.closing = true;
                    self.linger(deadline).await;
                    self.end_tls(deadline).await;
                }
                cause
            }
        }
    }

    async fn flush_until(&mut self, deadline: tokio::time::Instant) -> bool {
        loop {
            match self.write_out() {
                Ok(true) => return true,
                Ok(false) => {}
                Err(_) => return false,
            }
            match timeout_at(deadline, self.link.writable()).await {
                Ok(Ok(())) => {}
                _ => return false,
            }
        }
    }

    /// Sends TLS' `close_notify` once the close frames are out (nothing for plain TCP).
    async fn end_tls(&mut self, deadline: tokio::time::Instant) {
        if self.link.close_notify() {
            self.flush_until(deadline).await;
        }
    }

    /// After our close frame: read until the client's close reply, EOF or the deadline, so
    /// the close frame is not lost to a reset.
    async fn linger(&mut self, deadline: tokio::time::Instant) {
        loop {
            match timeout_at(deadline, self.link.readable()).await {
                Ok(Ok(())) => {}
                _ => return,
            }
            if self.read_once().0.is_some() {
                return;
            }
        }
    }
}
