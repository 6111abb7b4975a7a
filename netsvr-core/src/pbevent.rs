//! Client events as netsvr protobuf messages (`ConnOpen`, `Transfer`, `ConnClose`), encoded
//! the three ways the connectors need: framed (worker port), unframed (queue sinks: cmd id +
//! body) and bare body (HTTP callbacks).

use bytes::Bytes;
use netsvr_protocol::{cmd, codec, pb};
use prost::Message as _;

use crate::event::{Event, EventKind};

/// An event as its netsvr message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PbEvent {
    /// `ConnOpen` (cmd 900001001).
    Open(pb::ConnOpen),
    /// `Transfer` (cmd 900001003).
    Message(pb::Transfer),
    /// `ConnClose` (cmd 900001002).
    Close(pb::ConnClose),
}

impl PbEvent {
    /// Converts an event (copies the strings; the payload is shared).
    pub fn from_event(event: &Event) -> Self {
        let meta = &event.conn.meta;
        let info = &event.conn.info;
        let uniq_id = meta.uniq_id.to_string();
        let customer_id = info.customer_id.clone().unwrap_or_default();
        match &event.kind {
            EventKind::Open => Self::Open(pb::ConnOpen {
                uniq_id,
                raw_query: meta.raw_query.clone(),
                x_forwarded_for: meta.x_forwarded_for.clone(),
                x_real_ip: meta.x_real_ip.clone(),
                remote_addr: meta.remote_addr.to_string(),
            }),
            EventKind::Message { payload, .. } => Self::Message(pb::Transfer {
                uniq_id,
                customer_id,
                session: info.session.clone(),
                topics: info.topics.clone(),
                data: payload.clone(),
            }),
            EventKind::Close { reason } => Self::Close(pb::ConnClose {
                uniq_id,
                customer_id,
                session: info.session.clone(),
                topics: info.topics.clone(),
                reason: reason.as_str().to_owned(),
            }),
        }
    }

    /// The command id.
    pub fn cmd(&self) -> u32 {
        match self {
            Self::Open(_) => cmd::CONN_OPEN,
            Self::Message(_) => cmd::TRANSFER,
            Self::Close(_) => cmd::CONN_CLOSE,
        }
    }

    /// Length prefix + cmd id + body (the worker port's frame).
    pub fn framed(&self) -> Bytes {
        match self {
            Self::Open(m) => codec::encode_to_bytes(self.cmd(), m),
            Self::Message(m) => codec::encode_to_bytes(self.cmd(), m),
            Self::Close(m) => codec::encode_to_bytes(self.cmd(), m),
        }
    }

    /// Cmd id + body, no length prefix (a queue sink's payload, PROTOCOL.md §8).
    pub fn unframed(&self) -> Bytes {
        match self {
            Self::Open(m) => codec::encode_unframed(self.cmd(), m),
            Self::Message(m) => codec::encode_unframed(self.cmd(), m),
            Self::Close(m) => codec::encode_unframed(self.cmd(), m),
        }
    }

    /// The bare protobuf body (an HTTP callback's request body, PROTOCOL.md §7).
    pub fn body(&self) -> Bytes {
        Bytes::from(match self {
            Self::Open(m) => m.encode_to_vec(),
            Self::Message(m) => m.encode_to_vec(),
            Self::Close(m) => m.encode_to_vec(),
        })
    }
}
