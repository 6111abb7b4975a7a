//! Gateway configuration: every knob of the client-facing side, with netsvr's defaults.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use bytes::Bytes;

pub use crate::deflate::DeflateConfig;

/// netsvr's default heartbeat literal (`~6YOt5rW35piO~`).
pub const DEFAULT_HEARTBEAT: &[u8] = b"~6YOt5rW35piO~";

/// What to do when a connection's outbound queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SlowConsumerPolicy {
    /// Drop the new frame and count it (`netsvr_drops_total{reason="slow_consumer"}`).
    #[default]
    Drop,
    /// Discard the queue and close the connection with 1013.
    Close,
}

/// The WebSocket opcode of frames the gateway sends to clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DownstreamOpcode {
    /// Text frames (netsvr's default); payloads are sent as given and must be UTF-8 for
    /// browsers to accept them.
    #[default]
    Text,
    /// Binary frames.
    Binary,
}

/// The gateway's configuration. Start from [`GatewayConfig::default`] and change fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// Client WebSocket listen address. Default `127.0.0.1:6060`.
    pub listen: SocketAddr,
    /// WebSocket path, matched without the query string. Default `/netsvr`.
    pub path: String,
    /// Exact `Origin` values allowed to connect; empty allows any (and requests without one).
    pub allowed_origins: Vec<String>,
    /// Largest client message (all fragments together), in bytes. Default 2 MiB, netsvr's.
    pub max_message_size: usize,
    /// A connection that sends nothing for this long is closed with 1001. Default 120 s.
    pub heartbeat_interval: Duration,
    /// A text message equal to this literal refreshes activity and is not forwarded.
    pub heartbeat_message: Bytes,
    /// Most connections held at once; more are closed with 1013. Default 1,000,000.
    pub max_connections: usize,
    /// Most connections held at once from one client IP address (the TCP peer, not a
    /// forwarded header a client could forge); more are closed with 1013. 0: no limit
    /// (netsvr has none). Default 0.
    pub max_connections_per_ip: u32,
    /// The kernel send buffer of each client socket (`SO_SNDBUF`, which Linux doubles);
    /// 0: the OS default and its autotuning. A small buffer bounds the kernel memory a
    /// client that stops reading can pin, and makes `slow_consumer` act sooner. Default 0.
    pub socket_send_buffer: usize,
    /// Time allowed from accept to the end of the HTTP upgrade. Default 10 s.
    pub handshake_timeout: Duration,
    /// Largest HTTP request head, in bytes (at least 8 KiB is buffered). Default 8 KiB.
    pub max_header_size: usize,
    /// Frames queued per connection before the slow-consumer policy applies. Default 1024.
    pub outbound_queue_capacity: usize,
    /// What a full outbound queue does. Default: drop and count.
    pub slow_consumer: SlowConsumerPolicy,
    /// Opcode of frames sent to clients. Default text.
    pub downstream_opcode: DownstreamOpcode,
    /// Address encoded in uniqIds (the node prefix). Default: the listen address when it is
    /// a specific IPv4 address, else `127.0.0.1` with the listen port.
    pub node_addr: Option<SocketAddrV4>,
    /// Number of lock stripes per table, a power of two. Default 64.
    pub shards: usize,
    /// How long a closing connection waits for the client's close frame. Default 2 s.
    pub close_timeout: Duration,
    /// How long a graceful shutdown waits for clients to close and sinks to flush. Default 10 s.
    pub shutdown_timeout: Duration,
    /// permessage-deflate negotiation and compression. Default: on, level 3, 256-byte minimum.
    pub deflate: DeflateConfig,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 6060)),
            path: "/netsvr".to_owned(),
            allowed_origins: Vec::new(),
            max_message_size: 2 * 1024 * 1024,
            heartbeat_interval: Duration::from_secs(120),
            heartbeat_message: Bytes::from_static(DEFAULT_HEARTBEAT),
            max_connections: 1_000_000,
            max_connections_per_ip: 0,
            socket_send_buffer: 0,
            handshake_timeout: Duration::from_secs(10),
            max_header_size: 8 * 1024,
            outbound_queue_capacity: 1024,
            slow_consumer: SlowConsumerPolicy::Drop,
            downstream_opcode: DownstreamOpcode::Text,
            node_addr: None,
            shards: 64,
            close_timeout: Duration::from_secs(2),
            shutdown_timeout: Duration::from_secs(10),
            deflate: DeflateConfig::default(),
        }
    }
}

/// A configuration value is out of range; says which key and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config `{key}`: {reason}")]
#[non_exhaustive]
pub struct ConfigError {
    /// The field name.
    pub key: &'static str,
    /// Why it was refused.
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(key: &'static str, reason: impl Into<String>) -> Self {
        Self {
            key,
            reason: reason.into(),
        }
    }
}

impl GatewayConfig {
    /// Checks every field; the first bad one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.path.starts_with('/') || self.path.contains('?') {
            return Err(ConfigError::new(
                "path",
                format!("`{}` must start with `/` and hold no query", self.path),
            ));
        }
        if self.max_message_size == 0 {
            return Err(ConfigError::new("max_message_size", "must be at least 1"));
        }
        if self.heartbeat_interval < Duration::from_millis(100) {
            return Err(ConfigError::new(
                "heartbeat_interval",
                "must be at least 100 ms",
            ));
        }
        if self.heartbeat_message.is_empty() || self.heartbeat_message.len() > 125 {
            return Err(ConfigError::new(
                "heartbeat_message",
                "must be 1 to 125 bytes",
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::new("max_connections", "must be at least 1"));
        }
        if self.handshake_timeout.is_zero() {
            return Err(ConfigError::new("handshake_timeout", "must be above zero"));
        }
        if self.max_header_size < 512 || self.max_header_size > 1024 * 1024 {
            return Err(ConfigError::new(
                "max_header_size",
                "must be between 512 bytes and 1 MiB",
            ));
        }
        if self.outbound_queue_capacity == 0 {
            return Err(ConfigError::new(
                "outbound_queue_capacity",
                "must be at least 1",
            ));
        }
        if self.shards == 0 || !self.shards.is_power_of_two() || self.shards > 65536 {
            return Err(ConfigError::new(
                "shards",
                format!("{} is not a power of two between 1 and 65536", self.shards),
            ));
        }
        if let Some(origin) = self.allowed_origins.iter().find(|o| o.is_empty()) {
            return Err(ConfigError::new(
                "allowed_origins",
                format!("`{origin}`: an origin cannot be empty"),
            ));
        }
        self.deflate.validate()
    }

    /// The address put in uniqIds, given the address actually bound.
    pub(crate) fn effective_node_addr(&self, bound: SocketAddr) -> SocketAddrV4 {
        if let Some(addr) = self.node_addr {
            return addr;
        }
        match bound {
            SocketAddr::V4(v4) if !v4.ip().is_unspecified() => v4,
            other => SocketAddrV4::new(Ipv4Addr::LOCALHOST, other.port()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(GatewayConfig::default().validate(), Ok(()));
    }

    #[test]
    fn bad_values_name_their_key() {
        let base = GatewayConfig::default;
        let c = GatewayConfig {
            shards: 3,
            ..base()
        };
        assert_eq!(c.validate().map_err(|e| e.key), Err("shards"));
        let c = GatewayConfig {
            path: "netsvr".into(),
            ..base()
        };
        assert_eq!(c.validate().map_err(|e| e.key), Err("path"));
        let c = GatewayConfig {
            outbound_queue_capacity: 0,
            ..base()
        };
        let err = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("outbound_queue_capacity"), "{err}");
    }

    #[test]
    fn node_addr_falls_back_to_loopback_for_wildcard() {
        let c = GatewayConfig::default();
        let bound: SocketAddr = "0.0.0.0:7000".parse().unwrap_or(c.listen);
        assert_eq!(c.effective_node_addr(bound).to_string(), "127.0.0.1:7000");
    }
}
