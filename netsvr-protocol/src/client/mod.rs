//! The async business client (feature `client`): talk to one or more netsvr gateways the way
//! netsvr's PHP and Go SDKs do.
//!
//! * [`WorkerClient`] connects to every gateway's **worker port**, registers for events and
//!   hands them to you through one bounded channel ([`WorkerClient::recv`]).
//! * [`TaskClient`] keeps one connection per gateway **task port** and sends commands and
//!   queries. uniqId-addressed commands go to the gateway that owns the uniqId (the first 12
//!   hex characters of a uniqId name the gateway, see [`node_prefix`]); customer, topic and
//!   broadcast commands go to every gateway; queries are asked of every gateway (or of the
//!   owners) and the answers merged. [`TaskClient::node`] queries one gateway only.
//!
//! Both reconnect on their own with a capped exponential back-off and send the heartbeat
//! literal on idle connections, so the gateway's 120 s read deadline never fires.
//!
//! ```no_run
//! use netsvr_protocol::client::{ClientConfig, Event, GatewayAddr, TaskClient, WorkerClient};
//! use netsvr_protocol::{ToGateway, pb};
//!
//! # async fn run() -> Result<(), netsvr_protocol::client::ClientError> {
//! let gateways = vec![GatewayAddr::new(
//!     "127.0.0.1:6061".parse().unwrap(),
//!     "127.0.0.1:6062".parse().unwrap(),
//! )];
//! let task = TaskClient::connect(gateways.clone(), ClientConfig::default()).await?;
//! let mut worker = WorkerClient::connect(gateways, ClientConfig::default()).await?;
//! while let Some(ev) = worker.recv().await {
//!     if let Event::Message(msg) = ev.event {
//!         // Echo the message back to the connection that sent it.
//!         let echo = pb::SingleCast { uniq_id: msg.uniq_id, data: msg.data };
//!         task.send(ToGateway::SingleCast(echo)).await?;
//!     }
//! }
//! println!("{} connections online", task.uniq_id_count().await?);
//! # Ok(())
//! # }
//! ```

mod conn;
mod io;
mod merge;
mod node;
mod route;
mod task;
mod worker;

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::{Codec, CodecError};

pub use merge::CustomerUniqIds;
pub use node::NodeTaskClient;
pub use route::{NODE_PREFIX_LEN, node_prefix};
pub use task::TaskClient;
pub use worker::{Event, WorkerClient, WorkerEvent};

/// Everything that can go wrong in the client.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// A socket error, a connect or reply timeout (`TimedOut`), a lost connection, or a
    /// gateway that is not connected right now (`NotConnected`, while reconnecting).
    Io(std::io::Error),
    /// A frame over the size limit: an outgoing command over the gateway's limit (it would
    /// close the connection, so it is not sent), or an incoming frame over ours.
    Codec(CodecError),
    /// The gateway sent something that does not fit the protocol: an undecodable body, or a
    /// reply that matches no request in flight.
    Protocol(String),
    /// `RegisterResp.code` was not 0 (1 unmarshal error, 2 invalid event, 3 duplicate).
    RegisterRefused {
        /// The gateway's code.
        code: i32,
        /// The gateway's message.
        message: String,
    },
    /// A command or a setting this client cannot act on: a query given to `send`, a bulk
    /// command of the wrong shape, an empty gateway list.
    Invalid(String),
    /// The client (or the connection's task) has shut down.
    Closed,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "i/o: {e}"),
            Self::Codec(e) => write!(f, "codec: {e}"),
            Self::Protocol(m) => write!(f, "protocol: {m}"),
            Self::RegisterRefused { code, message } => {
                write!(f, "register refused with code {code}: {message}")
            }
            Self::Invalid(m) => write!(f, "invalid: {m}"),
            Self::Closed => f.write_str("client closed"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Codec(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<CodecError> for ClientError {
    fn from(e: CodecError) -> Self {
        Self::Codec(e)
    }
}

impl From<crate::MessageError> for ClientError {
    fn from(e: crate::MessageError) -> Self {
        Self::Protocol(e.to_string())
    }
}

/// One gateway: its worker address, its task address, and the node prefix its uniqIds
/// start with (derived from the task address, see [`node_prefix`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GatewayAddr {
    worker: SocketAddr,
    task: SocketAddr,
    prefix: Option<String>,
}

impl GatewayAddr {
    /// A gateway by its worker and task addresses; the node prefix is taken from `task`.
    ///
    /// ```
    /// # use netsvr_protocol::client::GatewayAddr;
    /// let g = GatewayAddr::new("127.0.0.1:6061".parse().unwrap(), "127.0.0.1:6062".parse().unwrap());
    /// assert_eq!(g.node_prefix(), Some("7f00000117ae"));
    /// ```
    pub fn new(worker: SocketAddr, task: SocketAddr) -> Self {
        Self {
            worker,
            task,
            prefix: node_prefix(task),
        }
    }

    /// Overrides the node prefix, for a gateway whose uniqIds are not built from the address
    /// the business dials (behind NAT, listening on `0.0.0.0`, reached over IPv6).
    ///
    /// ```
    /// # use netsvr_protocol::client::GatewayAddr;
    /// let g = GatewayAddr::new("10.0.0.5:6061".parse().unwrap(), "10.0.0.5:6062".parse().unwrap())
    ///     .with_node_prefix("0A00000517AE");
    /// assert_eq!(g.node_prefix(), Some("0a00000517ae"));
    /// ```
    pub fn with_node_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into().to_ascii_lowercase());
        self
    }

    /// The worker port address (events).
    pub fn worker(&self) -> SocketAddr {
        self.worker
    }

    /// The task port address (commands and queries).
    pub fn task(&self) -> SocketAddr {
        self.task
    }

    /// The 12 lowercase hex characters its uniqIds start with; `None` for an IPv6 task
    /// address without an override (no uniqId routes there then).
    pub fn node_prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }
}

impl fmt::Display for GatewayAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "worker {} / task {}", self.worker, self.task)
    }
}

/// Settings of both clients. Start from [`ClientConfig::default`] and change fields.
///
/// ```
/// # use netsvr_protocol::client::ClientConfig;
/// let mut config = ClientConfig::default();
/// config.heartbeat_interval = std::time::Duration::from_secs(10);
/// config.max_in_flight = 16;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The heartbeat literal and the gateway's frame limit: a command over
    /// `codec.max_frame()` is refused locally with [`ClientError::Codec`]. Default: netsvr's.
    pub codec: Codec,
    /// The largest reply or event frame accepted (list replies of a big node exceed 2 MiB).
    /// Default 64 MiB.
    pub max_reply_frame: usize,
    /// How often an idle connection sends the heartbeat literal. Default 25 s (the gateway
    /// closes a silent business connection after 120 s).
    pub heartbeat_interval: Duration,
    /// Limit on one TCP connect. Default 5 s.
    pub connect_timeout: Duration,
    /// Limit on one reply (query, Register, Unregister), counted from its write. A query
    /// reply that does not come in time fails that query and resets the connection, as
    /// the reply order can no longer be trusted. Default 10 s.
    pub request_timeout: Duration,
    /// First reconnect delay, doubled after each failure. Default 100 ms.
    pub backoff_min: Duration,
    /// Cap of the reconnect delay. Default 5 s.
    pub backoff_max: Duration,
    /// Worker: the events registered for ([`crate::cmd::events`]). Default all three.
    pub events: i32,
    /// Worker: capacity of the event channel shared by all gateways. Default 1024.
    pub event_buffer: usize,
    /// Task: queries in flight per gateway connection; more wait. Default 64.
    pub max_in_flight: usize,
    /// Task: commands queued per gateway connection before senders wait. Default 256.
    pub queue_len: usize,
    /// The gateway's shared secret (its `worker.secret`), sent as the first frame of every
    /// connection; empty: none. Default empty.
    pub secret: Bytes,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            codec: Codec::default(),
            max_reply_frame: 64 * 1024 * 1024,
            heartbeat_interval: Duration::from_secs(25),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            events: crate::cmd::events::ALL,
            event_buffer: 1024,
            max_in_flight: 64,
            queue_len: 256,
            secret: Bytes::new(),
        }
    }
}

impl ClientConfig {
    /// The codec that reads gateway frames: our reply limit, the same heartbeat literal.
    fn reply_codec(&self) -> Codec {
        Codec::new(self.max_reply_frame, self.codec.heartbeat().clone())
    }

    /// The heartbeat period, never zero (a zero period would make the timer panic).
    fn heartbeat_period(&self) -> Duration {
        self.heartbeat_interval.max(Duration::from_millis(1))
    }
}
