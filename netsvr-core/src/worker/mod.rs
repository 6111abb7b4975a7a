//! netsvr's business ports, byte-compatible with netsvr: the worker port (business
//! processes register and receive open / close / message events) and the task port (they
//! send commands and queries). Feature `worker`.
//!
//! ```no_run
//! use netsvr_core::Gateway;
//! use netsvr_core::worker::{WorkerConfig, WorkerPorts};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let ports = WorkerPorts::bind(WorkerConfig::default())?;
//! let (gateway, serve) = Gateway::builder()
//!     .node_addr(ports.node_addr()) // uniqIds name the task port, as netsvr's SDKs expect
//!     .sink(ports.sink())
//!     .build()?;
//! tokio::spawn(ports.serve(gateway.clone()));
//! serve.await?;
//! # Ok(()) }
//! ```

mod access;
mod config;
mod dispatch;
mod meter;
mod session;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use netsvr_protocol::Codec;
use tokio::net::TcpListener;

pub use access::PeerNet;
pub use config::{Dispatch, WorkerConfig};
pub use dispatch::WorkerSink;

use crate::config::ConfigError;
use crate::gateway::Gateway;
use dispatch::Registry;
use meter::Meters;
use session::Port;

/// Why the ports could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// A configuration value is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listen address could not be bound or registered.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The bound worker and task ports, before they serve.
#[derive(Debug)]
pub struct WorkerPorts {
    config: WorkerConfig,
    worker: std::net::TcpListener,
    task: std::net::TcpListener,
    node: SocketAddrV4,
    registry: Arc<Registry>,
}

/// What every business connection shares.
pub(crate) struct Ports {
    pub(crate) config: WorkerConfig,
    pub(crate) codec: Codec,
    pub(crate) gateway: Gateway,
    pub(crate) registry: Arc<Registry>,
    pub(crate) meters: Meters,
    next_id: AtomicU64,
}

impl Ports {
    pub(crate) fn next_business_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }
}

fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, WorkerError> {
    crate::transport::bind_listener(addr).map_err(|source| WorkerError::Bind { addr, source })
}

/// The first non-loopback IPv4 address of this host, if any.
fn first_external_ipv4() -> Option<Ipv4Addr> {
    if_addrs::get_if_addrs()
        .ok()?
        .into_iter()
        .filter(|i| !i.is_loopback())
        .find_map(|i| match i.ip() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
}

impl WorkerPorts {
    /// Validates the config and binds both listeners.
    pub fn bind(config: WorkerConfig) -> Result<Self, WorkerError> {
        config.validate()?;
        let worker = bind(config.worker_listen)?;
        let task = bind(config.task_listen)?;
        let task_addr = task.local_addr().map_err(|source| WorkerError::Bind {
            addr: config.task_listen,
            source,
        })?;
        let node = config.advertise.unwrap_or_else(|| match task_addr {
            SocketAddr::V4(v4) if !v4.ip().is_unspecified() => v4,
            other => {
                let ip = first_external_ipv4().unwrap_or(Ipv4Addr::LOCALHOST);
                SocketAddrV4::new(ip, other.port())
            }
        });
        Ok(Self {
            config,
            worker,
            task,
            node,
            registry: Arc::default(),
        })
    }

    /// The address to put in uniqIds: give it to [`crate::GatewayBuilder::node_addr`].
    pub fn node_addr(&self) -> SocketAddrV4 {
        self.node
    }

    /// The bound worker port.
    pub fn worker_addr(&self) -> std::io::Result<SocketAddr> {
        self.worker.local_addr()
    }

    /// The bound task port.
    pub fn task_addr(&self) -> std::io::Result<SocketAddr> {
        self.task.local_addr()
    }

    /// The sink that forwards events to registered business connections: give it to
    /// [`crate::GatewayBuilder::sink`] (or into a [`crate::FanoutSink`]).
    pub fn sink(&self) -> WorkerSink {
        WorkerSink::new(self.registry.clone(), self.config.dispatch)
    }

    /// Serves both ports, applying commands through `gateway`, until the gateway's shutdown
    /// completes.
    pub async fn serve(self, gateway: Gateway) -> Result<(), WorkerError> {
        let listen = |listener: std::net::TcpListener, addr| {
            TcpListener::from_std(listener).map_err(|source| WorkerError::Bind { addr, source })
        };
        let worker = listen(self.worker, self.config.worker_listen)?;
        let task = listen(self.task, self.config.task_listen)?;
        let ports = Arc::new(Ports {
            codec: Codec::new(
                self.config.max_frame_size,
                self.config.heartbeat_message.clone(),
            ),
            meters: Meters::new(gateway.clone(), self.registry.clone()),
            config: self.config,
            registry: self.registry,
            gateway: gateway.clone(),
            next_id: AtomicU64::new(0),
        });
        tokio::select! {
            () = accept(ports.clone(), worker, Port::Worker) => {}
            () = accept(ports.clone(), task, Port::Task) => {}
            () = tick_meters(&ports) => {}
            () = gateway.stopped() => {}
        }
        Ok(())
    }
}

async fn accept(ports: Arc<Ports>, listener: TcpListener, port: Port) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let allowed = &ports.config.allowed_peers;
                if !allowed.is_empty() && !allowed.iter().any(|net| net.contains(peer.ip())) {
                    tracing::warn!(%peer, ?port, "refused a business connection: peer not allowed");
                    drop(stream);
                    continue;
                }
                tokio::spawn(session::serve(ports.clone(), stream, peer, port));
            }
            Err(e) => {
                tracing::warn!(?port, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}

async fn tick_meters(ports: &Ports) {
    let mut ticker = tokio::time::interval(meter::TICK);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        ports.meters.tick();
    }
}
