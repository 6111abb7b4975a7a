//! One AMQP 0-9-1 connection of the sink, on the caller's tokio task: the handshake, one
//! channel in confirm mode with the topology declared, then whole batches published in one
//! write and their confirms read back. Frames are encoded and parsed with `amq-protocol`.
//!
//! Running on the lane's own task (no I/O thread of a client library) matters: handing every
//! publish to another thread cost two context switches per message on a one-core server.

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame, parse_frame};
use amq_protocol::protocol::basic::AMQPProperties;
use amq_protocol::protocol::{AMQPClass, basic, channel, confirm, connection, exchange, queue};
use amq_protocol::types::{AMQPValue, FieldTable, LongString};
use amq_protocol::uri::AMQPUri;
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::{AmqpConfig, ExchangeKind};

/// The one channel the sink uses.
const CHANNEL: u16 = 1;
/// Largest frame proposed to the broker (and accepted from it).
const FRAME_MAX: u32 = 128 * 1024;
/// Frame type of a content body frame, and the end-of-frame octet (AMQP 0-9-1 §4.2.3).
const FRAME_BODY: u8 = 3;
const FRAME_END: u8 = 0xCE;
/// Bytes of a frame besides its payload: type, channel, size, end octet.
const FRAME_OVERHEAD: usize = 8;
/// Offset of `body_size` in an encoded content header frame (after type, channel, size,
/// class id and weight).
const BODY_SIZE_AT: usize = 11;
/// A read buffer past this size after a batch is given back.
const KEEP_INBOX: usize = 64 * 1024;

/// What went wrong, in words for the sink status and the log.
pub(super) type LinkError = String;

/// An open connection with its channel in confirm mode.
pub(super) struct Link {
    stream: TcpStream,
    inbox: BytesMut,
    out: Vec<u8>,
    frame_max: usize,
    /// Delivery tag of the next publish; tags start at 1 on a confirm channel.
    next_tag: u64,
    /// Encoded `basic.publish` method frames, one per routing key used so far.
    methods: Vec<(String, Vec<u8>)>,
    /// An encoded content header frame with `body_size` 0, patched per message.
    header: Vec<u8>,
}

/// How one batch went: the leading run of messages the broker confirmed (skipped events
/// included), and the failure that stopped it, if any.
pub(super) struct Published {
    pub(super) delivered: usize,
    pub(super) error: Option<LinkError>,
}

impl Link {
    /// Connects to the broker of `uri`, logs in, opens the channel in confirm mode and
    /// declares the exchange (and the queue and its binding, when configured).
    pub(super) async fn open(
        config: &AmqpConfig,
        uri: &AMQPUri,
        properties: &AMQPProperties,
        deadline: Instant,
    ) -> Result<Self, LinkError> {
        let authority = &uri.authority;
        let address = (authority.host.as_str(), authority.port);
        let stream = match timeout_at(deadline, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("connect timed out".to_owned()),
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        let mut link = Self {
            stream,
            inbox: BytesMut::with_capacity(4096),
            out: Vec::new(),
            frame_max: FRAME_MAX as usize,
            next_tag: 1,
            methods: Vec::new(),
            header: Vec::new(),
        };
        link.handshake(config, uri, deadline).await?;
        link.header = encode(&AMQPFrame::Header(
            CHANNEL,
            AMQPContentHeader {
                class_id: 60,
                body_size: 0,
                properties: properties.clone(),
            },
        ))?;
        Ok(link)
    }

    async fn handshake(
        &mut self,
        config: &AmqpConfig,
        uri: &AMQPUri,
        deadline: Instant,
    ) -> Result<(), LinkError> {
        self.out.clear();
        self.out.extend_from_slice(b"AMQP\x00\x00\x09\x01");
        self.flush(deadline).await?;
        let start = match self.next_method(deadline).await? {
            AMQPClass::Connection(connection::AMQPMethod::Start(start)) => start,
            other => return Err(unexpected("connection.start", &other)),
        };
        if !start
            .mechanisms
            .to_string()
            .split(' ')
            .any(|m| m == "PLAIN")
        {
            return Err(format!(
                "the broker offers no PLAIN login (mechanisms: {})",
                start.mechanisms
            ));
        }
        let user = &uri.authority.userinfo;
        let response = format!("\0{}\0{}", user.username, user.password);
        self.send(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: client_properties(),
            mechanism: "PLAIN".into(),
            response: LongString::from(response),
            locale: "en_US".into(),
        }))?;
        self.flush(deadline).await?;
        let tune = match self.next_method(deadline).await? {
            AMQPClass::Connection(connection::AMQPMethod::Tune(tune)) => tune,
            other => return Err(unexpected("connection.tune", &other)),
        };
        let frame_max = match tune.frame_max {
            0 => FRAME_MAX,
            n => n.min(FRAME_MAX),
        };
        self.frame_max = frame_max as usize;
        // Heartbeats off: the lane is idle between batches and a dead broker shows up as a
        // missing confirm (`confirm_timeout`), after which the batch is published again.
        self.send(connection::AMQPMethod::TuneOk(connection::TuneOk {
            channel_max: tune.channel_max,
            frame_max,
            heartbeat: 0,
        }))?;
        self.send(connection::AMQPMethod::Open(connection::Open {
            virtual_host: uri.vhost.as_str().into(),
        }))?;
        self.flush(deadline).await?;
        self.expect(deadline, "connection.open-ok", |m| {
            matches!(m, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_)))
        })
        .await?;
        self.call(
            AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
            deadline,
            "channel.open-ok",
            |m| matches!(m, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))),
        )
        .await?;
        self.call(
            AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select {
                nowait: false,
            })),
            deadline,
            "confirm.select-ok",
            |m| matches!(m, AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(_))),
        )
        .await?;
        self.declare(config, deadline).await
    }

    async fn declare(&mut self, config: &AmqpConfig, deadline: Instant) -> Result<(), LinkError> {
        let declare = exchange::Declare {
            exchange: config.exchange.as_str().into(),
            kind: kind_name(config.exchange_type).into(),
            passive: false,
            durable: config.durable,
            auto_delete: false,
            internal: false,
            nowait: false,
            arguments: FieldTable::default(),
        };
        self.call(
            AMQPClass::Exchange(exchange::AMQPMethod::Declare(declare)),
            deadline,
            "exchange.declare-ok",
            |m| matches!(m, AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(_))),
        )
        .await?;
        let binding = &config.queue;
        if binding.name.is_empty() {
            return Ok(());
        }
        let declare = queue::Declare {
            queue: binding.name.as_str().into(),
            passive: false,
            durable: config.durable,
            exclusive: false,
            auto_delete: false,
            nowait: false,
            arguments: FieldTable::default(),
        };
        self.call(
            AMQPClass::Queue(queue::AMQPMethod::Declare(declare)),
            deadline,
            "queue.declare-ok",
            |m| matches!(m, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_))),
        )
        .await?;
        let bind = queue::Bind {
            queue: binding.name.as_str().into(),
            exchange: config.exchange.as_str().into(),
            routing_key: binding.binding_key.as_str().into(),
            nowait: false,
            arguments: FieldTable::default(),
        };
        self.call(
            AMQPClass::Queue(queue::AMQPMethod::Bind(bind)),
            deadline,
            "queue.bind-ok",
            |m| matches!(m, AMQPClass::Queue(queue::AMQPMethod::BindOk(_))),
        )
        .await
    }

    /// Whether the link can take a batch: the broker has not closed it or sent anything
    /// unasked but heartbeats and flow notices while the lane was idle. (A link that failed
    /// a batch is dropped by the back-end, never asked again.)
    pub(super) fn usable(&mut self) -> bool {
        match self.read_idle() {
            Ok(()) => true,
            Err(reason) => {
                tracing::info!(sink = super::SINK_NAME, %reason, "dropping the AMQP connection");
                false
            }
        }
    }

    /// Reads and checks what arrived while the lane was idle, without waiting.
    fn read_idle(&mut self) -> Result<(), LinkError> {
        loop {
            match self.stream.try_read_buf(&mut self.inbox) {
                Ok(0) => return Err("the broker closed the connection".to_owned()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.to_string()),
            }
        }
        while let Some(frame) = self.parse_one()? {
            match frame {
                AMQPFrame::Heartbeat | AMQPFrame::InvalidHeartbeat(_) => {}
                AMQPFrame::Method(_, AMQPClass::Connection(m)) if is_flow_notice(&m) => {}
                other => return Err(format!("the broker sent {}", describe(&other))),
            }
        }
        Ok(())
    }

    /// Publishes `messages` (in order; `None` is an event that is not sent) to `exchange` in
    /// one write, then reads confirms until every message is confirmed or `deadline`.
    pub(super) async fn publish<'m, B: AsRef<[u8]>>(
        &mut self,
        exchange: &str,
        messages: impl Iterator<Item = Option<(&'m str, B)>>,
        deadline: Instant,
    ) -> Published {
        self.out.clear();
        // Per event: its delivery tag, or None when skipped.
        let mut tags = Vec::new();
        let first = self.next_tag;
        for message in messages {
            let Some((key, body)) = message else {
                tags.push(None);
                continue;
            };
            if let Err(error) = self.encode_publish(exchange, key, body.as_ref()) {
                return failed(0, error);
            }
            tags.push(Some(self.next_tag));
            self.next_tag += 1;
        }
        let count = self.next_tag - first;
        if count == 0 {
            return Published {
                delivered: tags.len(),
                error: None,
            };
        }
        if let Err(error) = self.flush(deadline).await {
            return failed(0, error);
        }
        // Confirm state per published message: None pending, Some(ack?).
        let mut confirms: Vec<Option<bool>> = vec![None; usize::try_from(count).unwrap_or(0)];
        let mut pending = confirms.len();
        let mut error = None;
        while pending > 0 && error.is_none() {
            match self.next_frame(deadline).await {
                Ok(AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Ack(ack)))) => {
                    pending -= settle(&mut confirms, first, ack.delivery_tag, ack.multiple, true);
                }
                Ok(AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Nack(nack)))) => {
                    settle(
                        &mut confirms,
                        first,
                        nack.delivery_tag,
                        nack.multiple,
                        false,
                    );
                    error = Some("the broker nacked a message".to_owned());
                }
                Ok(AMQPFrame::Heartbeat | AMQPFrame::InvalidHeartbeat(_)) => {}
                Ok(AMQPFrame::Method(_, AMQPClass::Connection(m))) if is_flow_notice(&m) => {}
                Ok(other) => error = Some(format!("the broker sent {}", describe(&other))),
                Err(e) => error = Some(e),
            }
        }
        let mut delivered = 0;
        for tag in &tags {
            let acked = match tag {
                None => true,
                Some(tag) => {
                    let at = usize::try_from(tag - first).unwrap_or(usize::MAX);
                    confirms.get(at).copied().flatten() == Some(true)
                }
            };
            if !acked {
                break;
            }
            delivered += 1;
        }
        if self.inbox.capacity() > KEEP_INBOX {
            self.inbox = BytesMut::new();
        }
        match error {
            Some(error) => failed(delivered, error),
            None => Published {
                delivered,
                error: None,
            },
        }
    }

    /// Appends `basic.publish`, the content header and the body frames of one message.
    fn encode_publish(&mut self, exchange: &str, key: &str, body: &[u8]) -> Result<(), String> {
        let method = match self.methods.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                let frame = AMQPFrame::Method(
                    CHANNEL,
                    AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                        exchange: exchange.into(),
                        routing_key: key.into(),
                        mandatory: false,
                        immediate: false,
                    })),
                );
                self.methods.push((key.to_owned(), encode(&frame)?));
                self.methods.len() - 1
            }
        };
        if let Some((_, frame)) = self.methods.get(method) {
            self.out.extend_from_slice(frame);
        }
        let at = self.out.len();
        self.out.extend_from_slice(&self.header);
        if let Some(size) = self.out.get_mut(at + BODY_SIZE_AT..at + BODY_SIZE_AT + 8) {
            size.copy_from_slice(&(body.len() as u64).to_be_bytes());
        }
        for chunk in body.chunks(self.frame_max.saturating_sub(FRAME_OVERHEAD).max(1)) {
            self.out.push(FRAME_BODY);
            self.out.extend_from_slice(&CHANNEL.to_be_bytes());
            self.out
                .extend_from_slice(&u32::try_from(chunk.len()).unwrap_or(0).to_be_bytes());
            self.out.extend_from_slice(chunk);
            self.out.push(FRAME_END);
        }
        Ok(())
    }

    /// Sends `method` on the channel and waits for the reply `what` recognises.
    async fn call(
        &mut self,
        method: AMQPClass,
        deadline: Instant,
        what: &str,
        reply: impl Fn(&AMQPClass) -> bool,
    ) -> Result<(), LinkError> {
        self.out.clear();
        self.out
            .extend_from_slice(&encode(&AMQPFrame::Method(CHANNEL, method))?);
        self.flush(deadline).await?;
        self.expect(deadline, what, reply).await
    }

    async fn expect(
        &mut self,
        deadline: Instant,
        what: &str,
        reply: impl Fn(&AMQPClass) -> bool,
    ) -> Result<(), LinkError> {
        let method = self.next_method(deadline).await?;
        if reply(&method) {
            Ok(())
        } else {
            Err(unexpected(what, &method))
        }
    }

    /// Appends a channel-0 connection method to the output.
    fn send(&mut self, method: connection::AMQPMethod) -> Result<(), LinkError> {
        let frame = AMQPFrame::Method(0, AMQPClass::Connection(method));
        self.out.extend_from_slice(&encode(&frame)?);
        Ok(())
    }

    async fn flush(&mut self, deadline: Instant) -> Result<(), LinkError> {
        let written = timeout_at(deadline, self.stream.write_all(&self.out)).await;
        self.out.clear();
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("write failed: {e}")),
            Err(_) => Err("the broker did not take the data in time".to_owned()),
        }
    }

    /// The next method, skipping heartbeats; a close from the broker is an error.
    async fn next_method(&mut self, deadline: Instant) -> Result<AMQPClass, LinkError> {
        loop {
            match self.next_frame(deadline).await? {
                AMQPFrame::Heartbeat | AMQPFrame::InvalidHeartbeat(_) => {}
                // `next_frame` turned a close into an error already.
                AMQPFrame::Method(_, method) => return Ok(method),
                other => return Err(format!("the broker sent {}", describe(&other))),
            }
        }
    }

    async fn next_frame(&mut self, deadline: Instant) -> Result<AMQPFrame, LinkError> {
        loop {
            if let Some(frame) = self.parse_one()? {
                return match frame {
                    AMQPFrame::Method(ch, method) => {
                        closed(method).map(|m| AMQPFrame::Method(ch, m))
                    }
                    other => Ok(other),
                };
            }
            let read = timeout_at(deadline, self.stream.read_buf(&mut self.inbox)).await;
            match read {
                Ok(Ok(0)) => return Err("the broker closed the connection".to_owned()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(format!("read failed: {e}")),
                Err(_) => return Err("no answer from the broker in time".to_owned()),
            }
        }
    }

    /// One whole frame from the read buffer, if there is one.
    fn parse_one(&mut self) -> Result<Option<AMQPFrame>, LinkError> {
        if self.inbox.is_empty() {
            return Ok(None);
        }
        let (frame, used) = match parse_frame(&self.inbox[..]) {
            Ok((rest, frame)) => (frame, self.inbox.len() - rest.len()),
            Err(e) if e.is_incomplete() => {
                if self.inbox.len() > self.frame_max + FRAME_OVERHEAD {
                    return Err("the broker sent a frame over frame_max".to_owned());
                }
                return Ok(None);
            }
            Err(e) => return Err(format!("bad frame from the broker: {e}")),
        };
        self.inbox.advance(used);
        Ok(Some(frame))
    }
}

/// A batch that stopped at `error` after `delivered` events.
fn failed(delivered: usize, error: LinkError) -> Published {
    Published {
        delivered,
        error: Some(error),
    }
}

/// Marks `tag` (and every earlier pending one when `multiple`) as acked or nacked; returns
/// how many were pending.
fn settle(confirms: &mut [Option<bool>], first: u64, tag: u64, multiple: bool, ack: bool) -> usize {
    let Some(at) = tag.checked_sub(first).and_then(|t| usize::try_from(t).ok()) else {
        return 0;
    };
    let start = if multiple { 0 } else { at };
    let Some(slots) = confirms.get_mut(start..=at) else {
        return 0;
    };
    let mut settled = 0;
    for slot in slots.iter_mut().filter(|slot| slot.is_none()) {
        *slot = Some(ack);
        settled += 1;
    }
    settled
}

/// A method, or the error a `connection.close` / `channel.close` stands for.
fn closed(method: AMQPClass) -> Result<AMQPClass, LinkError> {
    match method {
        AMQPClass::Connection(connection::AMQPMethod::Close(c)) => Err(format!(
            "the broker closed the connection: {} {}",
            c.reply_code, c.reply_text
        )),
        AMQPClass::Channel(channel::AMQPMethod::Close(c)) => Err(format!(
            "the broker closed the channel: {} {}",
            c.reply_code, c.reply_text
        )),
        other => Ok(other),
    }
}

fn is_flow_notice(method: &connection::AMQPMethod) -> bool {
    matches!(
        method,
        connection::AMQPMethod::Blocked(_) | connection::AMQPMethod::Unblocked(_)
    )
}

fn unexpected(wanted: &str, got: &AMQPClass) -> LinkError {
    format!("expected {wanted}, the broker sent {got:?}")
}

fn describe(frame: &AMQPFrame) -> String {
    match frame {
        AMQPFrame::Method(_, method) => format!("{method:?}"),
        AMQPFrame::Header(..) => "a content header".to_owned(),
        AMQPFrame::Body(..) => "a content body".to_owned(),
        AMQPFrame::ProtocolHeader(_) => "a protocol header".to_owned(),
        AMQPFrame::Heartbeat | AMQPFrame::InvalidHeartbeat(_) => "a heartbeat".to_owned(),
    }
}

/// Encodes one frame.
fn encode(frame: &AMQPFrame) -> Result<Vec<u8>, LinkError> {
    gen_frame(frame)(WriteContext::from(Vec::new()))
        .map(|ctx| ctx.write)
        .map_err(|e| format!("cannot encode a frame: {e:?}"))
}

/// Who we are, and that we understand publisher confirms and flow notices.
fn client_properties() -> FieldTable {
    let mut capabilities = FieldTable::default();
    for name in [
        "publisher_confirms",
        "connection.blocked",
        "authentication_failure_close",
    ] {
        capabilities.insert(name.into(), AMQPValue::Boolean(true));
    }
    let mut properties = FieldTable::default();
    properties.insert("product".into(), AMQPValue::LongString("netsvr".into()));
    properties.insert(
        "version".into(),
        AMQPValue::LongString(env!("CARGO_PKG_VERSION").into()),
    );
    properties.insert(
        "connection_name".into(),
        AMQPValue::LongString("netsvr".into()),
    );
    properties.insert("capabilities".into(), AMQPValue::FieldTable(capabilities));
    properties
}

/// The AMQP name of an exchange type.
fn kind_name(kind: ExchangeKind) -> &'static str {
    match kind {
        ExchangeKind::Direct => "direct",
        ExchangeKind::Fanout => "fanout",
        ExchangeKind::Topic => "topic",
        ExchangeKind::Headers => "headers",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_single_and_multiple() {
        let mut confirms = vec![None; 4];
        assert_eq!(settle(&mut confirms, 10, 11, false, true), 1);
        assert_eq!(settle(&mut confirms, 10, 12, true, true), 2);
        assert_eq!(
            settle(&mut confirms, 10, 12, true, true),
            0,
            "already settled"
        );
        assert_eq!(settle(&mut confirms, 10, 13, false, false), 1);
        assert_eq!(confirms, [Some(true), Some(true), Some(true), Some(false)]);
        assert_eq!(
            settle(&mut confirms, 10, 9, true, true),
            0,
            "before the batch"
        );
        assert_eq!(
            settle(&mut confirms, 10, 99, false, true),
            0,
            "after the batch"
        );
    }

    #[test]
    fn header_template_has_body_size_at_its_offset() {
        let frame = |size| {
            encode(&AMQPFrame::Header(
                CHANNEL,
                AMQPContentHeader {
                    class_id: 60,
                    body_size: size,
                    properties: super::super::properties(true),
                },
            ))
            .unwrap()
        };
        let (zero, some) = (frame(0), frame(0x0102_0304_0506_0708));
        let mut patched = zero.clone();
        patched[BODY_SIZE_AT..BODY_SIZE_AT + 8]
            .copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        assert_eq!(patched, some);
    }

    #[test]
    fn publish_frames_parse_back() {
        let frame = AMQPFrame::Method(
            CHANNEL,
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: "x".into(),
                routing_key: "k".into(),
                mandatory: false,
                immediate: false,
            })),
        );
        let bytes = encode(&frame).unwrap();
        let (rest, parsed) = parse_frame(&bytes[..]).unwrap();
        assert!(rest.is_empty());
        assert_eq!(parsed, frame);
        // A hand-built body frame is what amq-protocol would build.
        let body = encode(&AMQPFrame::Body(CHANNEL, b"abc".to_vec())).unwrap();
        let mut ours = vec![FRAME_BODY];
        ours.extend_from_slice(&CHANNEL.to_be_bytes());
        ours.extend_from_slice(&3u32.to_be_bytes());
        ours.extend_from_slice(b"abc");
        ours.push(FRAME_END);
        assert_eq!(ours, body);
    }
}
