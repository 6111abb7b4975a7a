//! netsvr-core: the netsvr WebSocket gateway as an async library.
//!
//! The gateway holds client WebSocket connections, hands their open / message / close
//! [`Event`]s to an [`EventSink`], and carries out the back-end's commands through the
//! [`Gateway`] handle: send to a connection, a customer, a topic or everyone; subscribe;
//! update session info; kick; query who is online.
//!
//! ```no_run
//! use netsvr_core::{ChannelSink, EventKind, Gateway};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let (sink, mut events) = ChannelSink::new(4096);
//! let (gateway, serve) = Gateway::builder()
//!     .listen("127.0.0.1:6060".parse()?)
//!     .sink(sink)
//!     .build()?;
//! tokio::spawn(serve);
//! while let Some(event) = events.recv().await {
//!     if let EventKind::Message { payload, .. } = event.kind {
//!         gateway.broadcast(&payload); // encoded once, shared by every recipient
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Layering (each module imports only from its own layer or lower ones): leaf
//! (`id`, `config`, `close`, `event`, `metrics`) → seams (`sink`, `auth`, `limit`) → pure
//! (`wire`) → tables → connections and fan-out → the gateway facade → `transport`, the only
//! layer that touches sockets.

#[cfg(feature = "amqp")]
pub mod amqp_queue;
pub mod auth;
#[cfg(feature = "http")]
pub mod callbacks;
pub mod client_cmd;
pub mod close;
#[cfg(feature = "cluster")]
pub mod cluster;
#[cfg(any(feature = "worker", feature = "cluster"))]
mod command;
pub mod config;
mod conn;
pub mod deflate;
pub mod event;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod gateway;
mod id;
pub mod limit;
pub mod metrics;
#[cfg(feature = "nats")]
pub mod nats_broker;
#[cfg(any(
    feature = "worker",
    feature = "http",
    feature = "redis",
    feature = "amqp"
))]
pub mod pbevent;
#[cfg(feature = "redis")]
pub mod redis_broker;
#[cfg(feature = "redis")]
pub mod redis_queue;
pub mod sink;
mod table;
#[cfg(feature = "tls")]
pub mod tls;
mod transport;
pub mod wire;
#[cfg(feature = "worker")]
pub mod worker;

pub use auth::{Admission, AllowAll, AuthDecision, Authenticator, HandshakeRequest, Rejection};
pub use client_cmd::{ClientCommands, ClientGrants, CommandAuthorizer};
pub use config::{ConfigError, DeflateConfig, DownstreamOpcode, GatewayConfig, SlowConsumerPolicy};

pub use event::{CloseReason, ConnInfo, ConnMeta, ConnSnapshot, Event, EventKind, MessageKind};
pub use gateway::{
    BuildError, BulkShapeError, ConnDetails, Gateway, GatewayBuilder, InfoDelete, InfoUpdate,
    Serve, ServeError, Stats, WeakGateway,
};
pub use id::{ParseUniqIdError, UniqId};
pub use limit::{GovernorLimiter, Limits, MessageWindow, NoLimits, RateLimiter, Verdict};
pub use sink::{
    Backend, BatchError, BufferedConfig, BufferedSink, ChannelSink, EventReceiver, EventSink,
    FanoutSink, FnSink, NoopSink, SinkError, SinkStatus,
};

/// Re-exported so implementors of the seams name the same versions.
pub use async_trait::async_trait;
pub use bytes::Bytes;
