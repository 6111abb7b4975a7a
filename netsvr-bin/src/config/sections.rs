//! The core sections of the TOML file: `[gateway]`, `[limits]`, `[worker]` and `[log]`, each
//! mirroring a netsvr-core config type field by field, with that type's defaults.

use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use bytes::Bytes;
use netsvr_core::worker::{Dispatch, PeerNet, WorkerConfig};
use netsvr_core::{DownstreamOpcode, GatewayConfig, Limits, SlowConsumerPolicy};
use serde::{Deserialize, Serialize};

use super::DeflateSection;

/// `[gateway]`: the client-facing side ([`GatewayConfig`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySection {
    /// Client WebSocket listen address. Default `127.0.0.1:6060`.
    pub listen: SocketAddr,
    /// WebSocket path. Default `/netsvr`.
    pub path: String,
    /// Exact `Origin` values allowed; empty allows any.
    pub allowed_origins: Vec<String>,
    /// Largest client message, bytes. Default 2 MiB.
    pub max_message_size: usize,
    /// Idle connections are closed after this long. Default 120 s.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// The client heartbeat literal. Default `~6YOt5rW35piO~`.
    pub heartbeat_message: String,
    /// Most connections at once. Default 1,000,000.
    pub max_connections: usize,
    /// Most connections at once from one client IP address; 0: no limit. Default 0.
    pub max_connections_per_ip: u32,
    /// Kernel send buffer per client socket (`SO_SNDBUF`), bytes; 0: OS default. Default 0.
    pub socket_send_buffer: usize,
    /// Accept to end of upgrade. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// Largest HTTP request head, bytes. Default 8 KiB.
    pub max_header_size: usize,
    /// Frames queued per connection. Default 1024.
    pub outbound_queue_capacity: usize,
    /// What a full outbound queue does. Default `drop`.
    pub slow_consumer: SlowConsumer,
    /// Opcode of frames sent to clients. Default `text`.
    pub downstream_opcode: Opcode,
    /// Address encoded in uniqIds; default: the worker ports' address (or the listen address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_addr: Option<SocketAddrV4>,
    /// Lock stripes per table, a power of two. Default 64.
    pub shards: usize,
    /// Wait for the client's close frame. Default 2 s.
    #[serde(with = "humantime_serde")]
    pub close_timeout: Duration,
    /// Graceful drain budget. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// `[gateway.deflate]`: permessage-deflate. Default: on, level 3, 256-byte minimum.
    pub deflate: DeflateSection,
}

/// `slow_consumer`: `drop` or `close`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlowConsumer {
    /// Drop the frame and count it.
    Drop,
    /// Close the connection with 1013.
    Close,
}

/// `downstream_opcode`: `text` or `binary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Opcode {
    /// Text frames.
    Text,
    /// Binary frames.
    Binary,
}

impl Default for GatewaySection {
    fn default() -> Self {
        let c = GatewayConfig::default();
        Self {
            listen: c.listen,
            path: c.path,
            allowed_origins: c.allowed_origins,
            max_message_size: c.max_message_size,
            heartbeat_interval: c.heartbeat_interval,
            heartbeat_message: String::from_utf8_lossy(&c.heartbeat_message).into_owned(),
            max_connections: c.max_connections,
            max_connections_per_ip: c.max_connections_per_ip,
            socket_send_buffer: c.socket_send_buffer,
            handshake_timeout: c.handshake_timeout,
            max_header_size: c.max_header_size,
            outbound_queue_capacity: c.outbound_queue_capacity,
            slow_consumer: match c.slow_consumer {
                SlowConsumerPolicy::Close => SlowConsumer::Close,
                _ => SlowConsumer::Drop,
            },
            downstream_opcode: match c.downstream_opcode {
                DownstreamOpcode::Binary => Opcode::Binary,
                _ => Opcode::Text,
            },
            node_addr: c.node_addr,
            shards: c.shards,
            close_timeout: c.close_timeout,
            shutdown_timeout: c.shutdown_timeout,
            deflate: DeflateSection::default(),
        }
    }
}

impl GatewaySection {
    /// The core config these settings describe.
    pub fn to_core(&self) -> GatewayConfig {
        let mut c = GatewayConfig::default();
        c.listen = self.listen;
        c.path.clone_from(&self.path);
        c.allowed_origins.clone_from(&self.allowed_origins);
        c.max_message_size = self.max_message_size;
        c.heartbeat_interval = self.heartbeat_interval;
        c.heartbeat_message = Bytes::from(self.heartbeat_message.clone());
        c.max_connections = self.max_connections;
        c.max_connections_per_ip = self.max_connections_per_ip;
        c.socket_send_buffer = self.socket_send_buffer;
        c.handshake_timeout = self.handshake_timeout;
        c.max_header_size = self.max_header_size;
        c.outbound_queue_capacity = self.outbound_queue_capacity;
        c.slow_consumer = match self.slow_consumer {
            SlowConsumer::Drop => SlowConsumerPolicy::Drop,
            SlowConsumer::Close => SlowConsumerPolicy::Close,
        };
        c.downstream_opcode = match self.downstream_opcode {
            Opcode::Text => DownstreamOpcode::Text,
            Opcode::Binary => DownstreamOpcode::Binary,
        };
        c.node_addr = self.node_addr;
        c.shards = self.shards;
        c.close_timeout = self.close_timeout;
        c.shutdown_timeout = self.shutdown_timeout;
        c.deflate = self.deflate.to_core();
        c
    }
}

/// `[limits]`: the default rate limiter ([`Limits`]); 0 means no limit. Reloaded on SIGHUP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    /// Connections admitted per second, gateway-wide. Default 0 (no limit).
    pub opens_per_sec: u32,
    /// Connections admitted per second from one client IP address. Default 0.
    pub opens_per_ip_per_sec: u32,
    /// Client messages per second, gateway-wide. Default 0.
    pub messages_per_sec: u32,
    /// Client messages per connection per `conn_window`. Default 0.
    pub conn_messages: u32,
    /// The per-connection window. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub conn_window: Duration,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            opens_per_sec: 0,
            opens_per_ip_per_sec: 0,
            messages_per_sec: 0,
            conn_messages: 0,
            conn_window: Duration::from_secs(1),
        }
    }
}

impl LimitsSection {
    /// The limiter's limits.
    pub fn to_core(&self) -> Limits {
        Limits::unlimited()
            .opens_per_sec(self.opens_per_sec)
            .opens_per_ip_per_sec(self.opens_per_ip_per_sec)
            .messages_per_sec(self.messages_per_sec)
            .per_connection(self.conn_messages, self.conn_window)
    }

    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.conn_window.is_zero() {
            return Err(("limits.conn_window", "must be above zero".into()));
        }
        Ok(())
    }
}

/// `[worker]`: netsvr's worker and task ports ([`WorkerConfig`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSection {
    /// Serve the worker and task ports. Default true.
    pub enabled: bool,
    /// Worker port (business processes register for events). Default `127.0.0.1:6061`.
    pub worker_listen: SocketAddr,
    /// Task port (business commands and queries). Default `127.0.0.1:6062`.
    pub task_listen: SocketAddr,
    /// Address encoded in uniqIds. Default: the task port's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise: Option<SocketAddrV4>,
    /// The business heartbeat literal.
    pub heartbeat_message: String,
    /// Silent business connections are closed after this long. Default 120 s.
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Largest business frame, bytes. Default 2 MiB.
    pub max_frame_size: usize,
    /// Frames queued per business connection. Default 65,536.
    pub send_queue_capacity: usize,
    /// How events are spread over business connections. Default `uniq_id`.
    pub dispatch: DispatchMode,
    /// Shared secret a business connection must send as its first frame (at least 16
    /// bytes); empty: none, as in netsvr. Printed as `***`.
    #[serde(serialize_with = "serialize_secret")]
    pub secret: String,
    /// Peers allowed on the worker and task ports, addresses or CIDR blocks
    /// (`10.0.0.0/8`); empty: any.
    pub allowed_peers: Vec<String>,
}

fn serialize_secret<S: serde::Serializer>(secret: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if secret.is_empty() { "" } else { "***" })
}

/// `dispatch`: `uniq_id` or `round_robin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchMode {
    /// By hash of the uniqId (keeps per-connection order).
    UniqId,
    /// Each event to the next business connection (netsvr's behaviour).
    RoundRobin,
}

impl Default for WorkerSection {
    fn default() -> Self {
        let c = WorkerConfig::default();
        Self {
            enabled: true,
            worker_listen: c.worker_listen,
            task_listen: c.task_listen,
            advertise: c.advertise,
            heartbeat_message: String::from_utf8_lossy(&c.heartbeat_message).into_owned(),
            read_timeout: c.read_timeout,
            max_frame_size: c.max_frame_size,
            send_queue_capacity: c.send_queue_capacity,
            dispatch: match c.dispatch {
                Dispatch::RoundRobin => DispatchMode::RoundRobin,
                _ => DispatchMode::UniqId,
            },
            secret: String::new(),
            allowed_peers: Vec::new(),
        }
    }
}

impl WorkerSection {
    /// The core config these settings describe (whether or not `enabled`).
    pub fn to_core(&self) -> WorkerConfig {
        let mut c = WorkerConfig::default();
        c.worker_listen = self.worker_listen;
        c.task_listen = self.task_listen;
        c.advertise = self.advertise;
        c.heartbeat_message = Bytes::from(self.heartbeat_message.clone());
        c.read_timeout = self.read_timeout;
        c.max_frame_size = self.max_frame_size;
        c.send_queue_capacity = self.send_queue_capacity;
        c.dispatch = match self.dispatch {
            DispatchMode::UniqId => Dispatch::ByUniqId,
            DispatchMode::RoundRobin => Dispatch::RoundRobin,
        };
        c.secret = Bytes::from(self.secret.clone());
        // Bad entries are reported by `peers` (checked before this is used).
        c.allowed_peers = self
            .allowed_peers
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect();
        c
    }

    /// Checks `allowed_peers`: every entry an address or a CIDR block.
    pub(crate) fn check_peers(&self) -> Result<(), (&'static str, String)> {
        for peer in &self.allowed_peers {
            peer.parse::<PeerNet>()
                .map_err(|reason| ("worker.allowed_peers", reason))?;
        }
        Ok(())
    }
}

/// `[log]`: structured logs. `level` is reloaded on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// An `EnvFilter` directive string: `info`, `warn,netsvr_core=debug`, ... Default `info`.
    pub level: String,
    /// `text` or `json`. Default `text`.
    pub format: LogFormat,
}

/// `format`: `text` or `json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

impl LogSection {
    /// Checks `level`: every comma-separated directive is a level name or `target=level`
    /// (a bare word would silently mean "everything from target `<word>`").
    pub fn check_level(level: &str) -> Result<(), String> {
        if level.trim().is_empty() {
            return Err("must not be empty".into());
        }
        for directive in level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let bare = !directive.contains(['=', '[', ':']);
            if bare && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
                return Err(format!(
                    "unknown level `{directive}`: use trace, debug, info, warn, error, off \
                     or target=level directives"
                ));
            }
        }
        tracing_subscriber::EnvFilter::try_new(level)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}
