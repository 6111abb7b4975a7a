//! Configuration of the worker and task ports, with netsvr's defaults.

use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use bytes::Bytes;

use super::access::PeerNet;
use crate::config::{ConfigError, DEFAULT_HEARTBEAT};

/// How events of client connections are spread over registered business connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Dispatch {
    /// All events of one client connection go to the same business connection while the
    /// registered set is unchanged (hash of the uniqId). Keeps per-connection order.
    #[default]
    ByUniqId,
    /// Each event to the next business connection in turn (netsvr's behaviour; no order).
    RoundRobin,
}

/// The ports' settings. Start from [`WorkerConfig::default`] and change fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// Worker port: business processes register here and receive events.
    /// Default `127.0.0.1:6061`.
    pub worker_listen: SocketAddr,
    /// Task port: business processes send commands and queries here.
    /// Default `127.0.0.1:6062`.
    pub task_listen: SocketAddr,
    /// Address encoded in uniqIds. Default: the task listener's address; when that is
    /// `0.0.0.0`, the first non-loopback IPv4 of the host (loopback if there is none).
    pub advertise: Option<SocketAddrV4>,
    /// The heartbeat literal business processes send (never answered).
    pub heartbeat_message: Bytes,
    /// A business connection silent for this long is closed. Default 120 s.
    pub read_timeout: Duration,
    /// Largest frame accepted from a business process (after the length prefix).
    /// Default 2 MiB.
    pub max_frame_size: usize,
    /// Frames queued per business connection before events are dropped and counted.
    /// Default 65,536.
    pub send_queue_capacity: usize,
    /// How events are spread over business connections. Default by uniqId.
    pub dispatch: Dispatch,
    /// Shared secret, at least 16 bytes; empty: none (netsvr has none). When set, a business
    /// connection's first frame must be exactly `[u32 BE length][secret]`, within
    /// 10 s (or `read_timeout` if shorter); otherwise it is closed. netsvr's SDKs do not
    /// send it; the Rust client does when `ClientConfig::secret` is set.
    pub secret: Bytes,
    /// Peers allowed to connect to either port; empty: any. Others are closed at accept.
    pub allowed_peers: Vec<PeerNet>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            worker_listen: SocketAddr::from(([127, 0, 0, 1], 6061)),
            task_listen: SocketAddr::from(([127, 0, 0, 1], 6062)),
            advertise: None,
            heartbeat_message: Bytes::from_static(DEFAULT_HEARTBEAT),
            read_timeout: Duration::from_secs(120),
            max_frame_size: 2 * 1024 * 1024,
            send_queue_capacity: 65_536,
            dispatch: Dispatch::ByUniqId,
            secret: Bytes::new(),
            allowed_peers: Vec::new(),
        }
    }
}

impl WorkerConfig {
    /// Checks every field; the first bad one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, reason: &str| Err(ConfigError::new(key, reason));
        if self.heartbeat_message.len() < 4 {
            // Shorter than a command id it could be mistaken for nothing, but netsvr's
            // framing tells them apart only by content; keep it unambiguous.
            return bad("worker.heartbeat_message", "must be at least 4 bytes");
        }
        if self.read_timeout < Duration::from_secs(1) {
            return bad("worker.read_timeout", "must be at least 1 s");
        }
        if self.max_frame_size < 64 || self.max_frame_size > u32::MAX as usize {
            return bad(
                "worker.max_frame_size",
                "must be between 64 bytes and 4 GiB",
            );
        }
        if self.send_queue_capacity == 0 {
            return bad("worker.send_queue_capacity", "must be at least 1");
        }
        if !self.secret.is_empty() && self.secret.len() < 16 {
            return bad("worker.secret", "must be empty (off) or at least 16 bytes");
        }
        if self.secret.len() > self.max_frame_size {
            return bad("worker.secret", "must fit in max_frame_size");
        }
        if !self.secret.is_empty() && self.secret == self.heartbeat_message {
            return bad("worker.secret", "must differ from the heartbeat literal");
        }
        Ok(())
    }
}
