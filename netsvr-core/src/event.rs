//! Events the gateway hands to the business back-end, and the connection snapshot they carry.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use crate::id::UniqId;

/// What never changes about a connection: identity and handshake facts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnMeta {
    /// The connection's id.
    pub uniq_id: UniqId,
    /// The TCP peer.
    pub remote_addr: SocketAddr,
    /// The query string of the upgrade request, without the `?`.
    pub raw_query: String,
    /// The `X-Forwarded-For` header, or empty.
    pub x_forwarded_for: String,
    /// The `X-Real-IP` header, or empty.
    pub x_real_ip: String,
}

impl ConnMeta {
    /// Identity and peer, with no query and no proxy headers (for custom transports and
    /// for testing sinks).
    pub fn new(uniq_id: UniqId, remote_addr: SocketAddr) -> Self {
        Self {
            uniq_id,
            remote_addr,
            raw_query: String::new(),
            x_forwarded_for: String::new(),
            x_real_ip: String::new(),
        }
    }
}

/// What the business may change about a connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnInfo {
    /// The customer (user) the connection is bound to, if any.
    pub customer_id: Option<String>,
    /// Opaque session text, empty when unset.
    pub session: String,
    /// Subscribed topics, each once, in subscription order.
    pub topics: Vec<String>,
}

impl ConnInfo {
    /// Builds info from its parts (topics are de-duplicated, first occurrence kept).
    pub fn new(customer_id: Option<String>, session: String, topics: Vec<String>) -> Self {
        let mut info = Self {
            customer_id: customer_id.filter(|c| !c.is_empty()),
            session,
            topics: Vec::with_capacity(topics.len()),
        };
        for topic in topics {
            if !topic.is_empty() && !info.topics.contains(&topic) {
                info.topics.push(topic);
            }
        }
        info
    }

    /// True for a guest: no session and no customer.
    pub fn is_guest(&self) -> bool {
        self.customer_id.is_none() && self.session.is_empty()
    }
}

/// A connection as it was when the event happened. Cheap to clone (two `Arc`s).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnSnapshot {
    /// Identity and handshake facts.
    pub meta: Arc<ConnMeta>,
    /// Customer, session and topics at the time of the event.
    pub info: Arc<ConnInfo>,
}

impl ConnSnapshot {
    /// A snapshot from its parts.
    pub fn new(meta: ConnMeta, info: ConnInfo) -> Self {
        Self {
            meta: Arc::new(meta),
            info: Arc::new(info),
        }
    }
}

/// The kind of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// A text message (valid UTF-8).
    Text,
    /// A binary message.
    Binary,
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client sent a close frame with this code (1005 when it gave none).
    Client(u16),
    /// The TCP connection ended without a close frame.
    Disconnected,
    /// Idle longer than the heartbeat interval.
    Idle,
    /// Forced offline by the business.
    Kicked,
    /// The client broke the protocol; the gateway closed with this code.
    ProtocolError(u16),
    /// The outbound queue overflowed under the close policy.
    SlowConsumer,
    /// The gateway is shutting down.
    Shutdown,
    /// A socket error.
    Io,
    /// The node holding the connection missed its cluster lease; a surviving node reports
    /// the close on its behalf.
    NodeLost,
}

impl CloseReason {
    /// A short label, used in metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Client(_) => "client",
            Self::Disconnected => "disconnected",
            Self::Idle => "idle",
            Self::Kicked => "kicked",
            Self::ProtocolError(_) => "protocol_error",
            Self::SlowConsumer => "slow_consumer",
            Self::Shutdown => "shutdown",
            Self::Io => "io_error",
            Self::NodeLost => "node_lost",
        }
    }
}

/// What happened.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EventKind {
    /// The connection was admitted (after the authenticator, before any message).
    Open,
    /// A data message from the client (never the heartbeat literal).
    Message {
        /// Text or binary.
        kind: MessageKind,
        /// The whole message.
        payload: Bytes,
    },
    /// The connection ended; its snapshot is the last state it had.
    Close {
        /// Why.
        reason: CloseReason,
    },
}

/// One event for the business back-end.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Event {
    /// The connection.
    pub conn: ConnSnapshot,
    /// What happened.
    pub kind: EventKind,
}

impl Event {
    /// Builds an event (used by sinks' tests and custom transports).
    pub fn new(conn: ConnSnapshot, kind: EventKind) -> Self {
        Self { conn, kind }
    }

    /// The connection's id.
    pub fn uniq_id(&self) -> UniqId {
        self.conn.meta.uniq_id
    }
}

/// An event of a connection whose uniqId is 14 × `id_byte`, from 127.0.0.1:1, for tests.
#[cfg(test)]
pub(crate) fn test_event(id_byte: u8, kind: EventKind) -> Event {
    let meta = ConnMeta::new(
        UniqId::from_bytes([id_byte; 14]),
        SocketAddr::from(([127, 0, 0, 1], 1)),
    );
    Event::new(ConnSnapshot::new(meta, ConnInfo::default()), kind)
}
