//! `GatewayBuilder`: takes the config and the seams, binds the listener, and returns the
//! `Gateway` handle with the `Serve` future that runs it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::sync::watch;

use super::{Counters, Gateway, Shared};
use crate::auth::{AllowAll, Authenticator};
use crate::client_cmd::{ClientCommands, CommandAuthorizer, CommandRuntime};
use crate::config::{ConfigError, DownstreamOpcode, GatewayConfig};
use crate::id::UniqIdGenerator;
use crate::limit::{GovernorLimiter, RateLimiter};
use crate::metrics::CoreMetrics;
use crate::sink::{EventSink, NoopSink};
use crate::table::Tables;
use crate::wire::OpCode;

/// Why a gateway could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A configuration value is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Why the serve future stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listener could not be registered with the runtime.
    #[error("listener failed: {0}")]
    Listener(#[source] std::io::Error),
}

/// Configures and builds a gateway.
pub struct GatewayBuilder {
    config: GatewayConfig,
    sink: Arc<dyn EventSink>,
    auth: Arc<dyn Authenticator>,
    limiter: Arc<dyn RateLimiter>,
    listener: Option<std::net::TcpListener>,
    commands: Option<ClientCommands>,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ServerConfig>>,
    #[cfg(feature = "cluster")]
    broker: Option<(
        Arc<dyn crate::cluster::Broker>,
        crate::cluster::ClusterConfig,
    )>,
}

impl std::fmt::Debug for GatewayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayBuilder")
            .field("config", &self.config)
            .field("sink", &self.sink.name())
            .finish_non_exhaustive()
    }
}

impl Default for GatewayBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl GatewayBuilder {
    /// Defaults: [`GatewayConfig::default`], [`NoopSink`], [`AllowAll`], no limits.
    pub fn new() -> Self {
        Self {
            config: GatewayConfig::default(),
            sink: Arc::new(NoopSink),
            auth: Arc::new(AllowAll),
            limiter: Arc::new(GovernorLimiter::default()),
            listener: None,
            commands: None,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "cluster")]
            broker: None,
        }
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: GatewayConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the listen address.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.config.listen = addr;
        self
    }

    /// Sets the WebSocket path.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.config.path = path.into();
        self
    }

    /// Sets the address encoded in uniqIds (netsvr: the task port's address).
    pub fn node_addr(mut self, addr: std::net::SocketAddrV4) -> Self {
        self.config.node_addr = Some(addr);
        self
    }

    /// Serves on an already bound listener instead of binding `listen`.
    pub fn listener(mut self, listener: std::net::TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Where events go (use [`crate::FanoutSink`] for several).
    pub fn sink(mut self, sink: impl EventSink) -> Self {
        self.sink = Arc::new(sink);
        self
    }

    /// Same, for a sink shared elsewhere.
    pub fn sink_arc(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sink = sink;
        self
    }

    /// Who may connect.
    pub fn authenticator(mut self, auth: impl Authenticator) -> Self {
        self.auth = Arc::new(auth);
        self
    }

    /// The rate limiter.
    pub fn rate_limiter(mut self, limiter: impl RateLimiter) -> Self {
        self.limiter = Arc::new(limiter);
        self
    }

    /// Same, for a limiter shared elsewhere.
    pub fn rate_limiter_arc(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = limiter;
        self
    }

    /// Turns client commands on (see [`crate::client_cmd`]): a client text message that is
    /// a JSON `subscribe`, `unsubscribe`, `publish` or `ping` command is checked by
    /// `authorizer`, run by the gateway and answered, instead of reaching the sink. Off
    /// unless called.
    pub fn client_commands(self, authorizer: impl CommandAuthorizer) -> Self {
        self.client_commands_with(ClientCommands::new(authorizer))
    }

    /// Same, with the authoriser and limits given as [`ClientCommands`].
    pub fn client_commands_with(mut self, commands: ClientCommands) -> Self {
        self.commands = Some(commands);
        self
    }

    /// Serves TLS (wss://) with this configuration (see [`crate::tls`] to build one from
    /// PEM); [`Gateway::reload_tls`] swaps it later.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Joins a cluster through `broker`: commands given to this node reach every node's
    /// connections, and [`Gateway::cluster`] answers cluster-wide queries. Each node's
    /// uniqId prefix (its [`GatewayBuilder::node_addr`], else the listen address) must be
    /// unique in the cluster. See [`crate::cluster`].
    #[cfg(feature = "cluster")]
    pub fn broker(
        mut self,
        broker: Arc<dyn crate::cluster::Broker>,
        config: crate::cluster::ClusterConfig,
    ) -> Self {
        self.broker = Some((broker, config));
        self
    }

    /// Validates the config, binds the listener, and returns the handle and the future that
    /// serves clients until [`Gateway::shutdown`] completes. Does not need a runtime; the
    /// future does.
    pub fn build(self) -> Result<(Gateway, Serve), BuildError> {
        self.config.validate()?;
        if let Some(commands) = &self.commands {
            commands.validate()?;
        }
        #[cfg(feature = "cluster")]
        if let Some((_, cluster)) = &self.broker {
            cluster.validate()?;
        }
        let listener = match self.listener {
            Some(l) => l,
            None => crate::transport::bind_listener(self.config.listen).map_err(|source| {
                BuildError::Bind {
                    addr: self.config.listen,
                    source,
                }
            })?,
        };
        let local_addr = listener
            .local_addr()
            .and_then(|a| listener.set_nonblocking(true).map(|()| a))
            .map_err(|source| BuildError::Bind {
                addr: self.config.listen,
                source,
            })?;
        let downstream = match self.config.downstream_opcode {
            DownstreamOpcode::Binary => OpCode::Binary,
            _ => OpCode::Text,
        };
        let node_addr = self.config.effective_node_addr(local_addr);
        #[cfg(feature = "cluster")]
        let cluster = self.broker.map(|(broker, config)| {
            let me = crate::cluster::NodeId::of(&UniqIdGenerator::new(node_addr).next(0));
            Arc::new(crate::cluster::Outbound::new(
                me,
                local_addr.to_string(),
                broker,
                config,
            ))
        });
        let commands = self.commands;
        let shared = Arc::new_cyclic(|me| Shared {
            tables: Tables::new(self.config.shards),
            ids: UniqIdGenerator::new(node_addr),
            sink: self.sink,
            auth: self.auth,
            limiter: self.limiter,
            metrics: CoreMetrics::new(),
            counters: Counters::default(),
            admitted: AtomicUsize::new(0),
            per_ip: crate::transport::PerIp::new(),
            clock_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            local_addr,
            downstream,
            draining: watch::channel(false).0,
            stopped: watch::channel(false).0,
            #[cfg(feature = "tls")]
            tls: self.tls.map(arc_swap::ArcSwap::new),
            #[cfg(feature = "cluster")]
            cluster,
            commands: commands.map(|c| CommandRuntime::new(c, me.clone())),
            config: self.config,
        });
        let gateway = Gateway {
            shared: shared.clone(),
            node_only: false,
        };
        let clients = crate::transport::serve(shared, listener);
        #[cfg(feature = "cluster")]
        let clients = {
            let cluster = crate::cluster::run(gateway.clone());
            async move {
                let (served, ()) = tokio::join!(clients, cluster);
                served
            }
        };
        let serve = Serve {
            inner: Box::pin(clients),
        };
        Ok((gateway, serve))
    }
}

/// The future that accepts and serves clients. Spawn it or await it; it returns after a
/// graceful shutdown completes.
#[must_use = "the gateway serves nobody unless this future runs"]
pub struct Serve {
    inner: Pin<Box<dyn Future<Output = Result<(), ServeError>> + Send>>,
}

impl std::fmt::Debug for Serve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve").finish_non_exhaustive()
    }
}

impl Future for Serve {
    type Output = Result<(), ServeError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}
