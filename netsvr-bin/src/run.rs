//! Wiring: builds the gateway and its connectors from a [`Config`], serves them, and hands
//! back a [`Running`] with the bound addresses, the [`Gateway`] handle, hot reload of limits
//! and log level, and a graceful shutdown.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use netsvr_core::amqp_queue::AmqpSink;
use netsvr_core::callbacks::Callbacks;
use netsvr_core::cluster::Broker;
use netsvr_core::nats_broker::NatsBroker;
use netsvr_core::redis_broker::RedisBroker;
use netsvr_core::redis_queue::RedisSink;
use netsvr_core::worker::{WorkerError, WorkerPorts};
use netsvr_core::{
    BuildError, ConfigError, EventSink, FanoutSink, Gateway, GovernorLimiter, RateLimiter,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{self, AdminState, DemoSettings};
use crate::config::{BrokerKind, ClusterSection, Config, TaskPortScope};
use crate::logging::LogHandle;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A connector refused its configuration.
    #[error("{}: {}", .0.key, .0.reason)]
    Connector(ConfigError),
    /// The worker or task port could not start.
    #[error("worker ports: {0}")]
    Worker(#[from] WorkerError),
    /// The TLS certificate or key could not be loaded (`key` is `tls.cert` or `tls.key`).
    #[error("{key}: {reason}")]
    Tls {
        /// The configuration key naming the file at fault.
        key: &'static str,
        /// Why.
        reason: String,
    },
    /// The client WebSocket listener could not start.
    #[error("websocket: {0}")]
    Gateway(#[from] BuildError),
    /// The admin port could not be bound.
    #[error("admin: cannot listen on {addr}: {source}")]
    Admin {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A part stopped on its own, or did not stop in time.
#[derive(Debug, thiserror::Error)]
#[error("{part}: {reason}")]
pub struct RunError {
    /// `websocket`, `worker` or `admin`.
    pub part: &'static str,
    /// What happened.
    pub reason: String,
}

/// Buckets (seconds) of the latency histograms.
const LATENCY_BUCKETS: [f64; 12] = [
    0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

/// Installs the Prometheus recorder (once per process) and describes netsvr's metrics.
/// If another recorder is already installed, metrics go there and the handle renders an
/// empty, detached recorder (logged).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => {
                    netsvr_core::metrics::describe();
                    handle
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed; /metrics is empty");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            }
        })
        .clone()
}

/// A running gateway with its connectors and admin port.
pub struct Running {
    /// The gateway handle (send, query, shut down).
    pub gateway: Gateway,
    /// The bound client WebSocket address.
    pub ws_addr: SocketAddr,
    /// The bound worker port, when enabled.
    pub worker_addr: Option<SocketAddr>,
    /// The bound task port, when enabled.
    pub task_addr: Option<SocketAddr>,
    /// The bound admin port.
    pub admin_addr: SocketAddr,
    /// Renders the Prometheus exposition.
    pub prometheus: PrometheusHandle,
    config: Config,
    tasks: Vec<(&'static str, JoinHandle<Result<(), String>>)>,
    failed: watch::Receiver<Option<RunError>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("ws_addr", &self.ws_addr)
            .field("worker_addr", &self.worker_addr)
            .field("task_addr", &self.task_addr)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

/// Spawns `fut`, reporting an error (or an exit before shutdown) on `failed`.
fn supervise<F, E>(
    part: &'static str,
    gateway: &Gateway,
    failed: &Arc<watch::Sender<Option<RunError>>>,
    fut: F,
) -> (&'static str, JoinHandle<Result<(), String>>)
where
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    let failed = failed.clone();
    let gateway = gateway.clone();
    let handle = tokio::spawn(async move {
        let result = fut.await.map_err(|e| e.to_string());
        let reason = match &result {
            Err(e) => Some(e.clone()),
            Ok(()) if !gateway.is_shutting_down() => Some("stopped unexpectedly".to_owned()),
            Ok(()) => None,
        };
        if let Some(reason) = reason {
            failed.send_replace(Some(RunError { part, reason }));
        }
        result
    });
    (part, handle)
}

/// Builds everything `config` describes, binds every port and starts serving.
///
/// Order: Prometheus recorder, limiter, worker ports, sinks (worker, Redis, AMQP, HTTP) in one
/// fan-out, the HTTP authenticator, the cluster broker, the gateway, the admin port. Port 0
/// binds any free port; the real addresses are in the returned [`Running`].
pub async fn start(config: Config) -> Result<Running, StartError> {
    let prometheus = prometheus();
    let tls = match config.tls.as_ref().filter(|t| t.enabled()) {
        Some(section) => Some(
            section
                .load()
                .map_err(|(key, reason)| StartError::Tls { key, reason })?,
        ),
        None => None,
    };
    let limiter: Arc<dyn RateLimiter> = Arc::new(GovernorLimiter::new(config.limits.to_core()));

    let ports = if config.worker.enabled {
        let mut worker = config.worker.to_core();
        worker.advertise = config.worker.advertise.or(config.gateway.node_addr);
        Some(WorkerPorts::bind(worker)?)
    } else {
        None
    };

    let mut fanout = FanoutSink::default();
    if let Some(ports) = &ports {
        fanout.push(Arc::new(ports.sink()));
    }
    let mut auth = None;
    if let Some(http) = &config.http {
        let callbacks = Callbacks::new(http.to_core()).map_err(StartError::Connector)?;
        auth = callbacks.authenticator();
        if let Some(sink) = callbacks.sink() {
            fanout.push(Arc::new(sink));
        }
    }
    if let Some(redis) = config.redis.as_ref().filter(|r| r.enabled) {
        let sink = RedisSink::start(redis.to_core()).map_err(StartError::Connector)?;
        fanout.push(Arc::new(sink));
    }
    if let Some(amqp) = config.amqp.as_ref().filter(|a| a.enabled) {
        let sink = AmqpSink::start(amqp.to_core()).map_err(StartError::Connector)?;
        fanout.push(Arc::new(sink));
    }
    let sink_names: Vec<String> = fanout.sinks().iter().map(|s| s.name().to_owned()).collect();

    let mut builder = Gateway::builder()
        .config(config.gateway.to_core())
        .rate_limiter_arc(limiter)
        .sink_arc(Arc::new(fanout) as Arc<dyn EventSink>);
    if let Some(auth) = auth {
        builder = builder.authenticator(auth);
    }
    if let Some(tls) = tls {
        builder = builder.tls(tls);
    }
    if let Some(ports) = &ports {
        builder = builder.node_addr(ports.node_addr());
    }
    if let Some(commands) = config.client_commands.to_core() {
        builder = builder.client_commands_with(commands);
    }
    let cluster = config.cluster.as_ref().filter(|c| c.enabled);
    if let Some(cluster) = cluster {
        let broker: Arc<dyn Broker> = match cluster.broker {
            BrokerKind::Redis => {
                Arc::new(RedisBroker::new(&cluster.redis.to_core()).map_err(StartError::Connector)?)
            }
            BrokerKind::Nats => {
                Arc::new(NatsBroker::new(&cluster.nats.to_core()).map_err(StartError::Connector)?)
            }
        };
        builder = builder.broker(broker, cluster.to_core());
    }
    let (gateway, serve) = builder.build()?;
    if let Some(section) = cluster {
        log_cluster(&gateway, section);
    }

    let admin_listener = admin::bind(&config.admin).map_err(|source| StartError::Admin {
        addr: config.admin.listen,
        source,
    })?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|source| StartError::Admin {
            addr: config.admin.listen,
            source,
        })?;
    let worker_addr = ports.as_ref().and_then(|p| p.worker_addr().ok());
    let task_addr = ports.as_ref().and_then(|p| p.task_addr().ok());
    let ws_addr = gateway.local_addr();

    let (failed_tx, failed) = watch::channel(None);
    let failed_tx = Arc::new(failed_tx);
    let mut tasks = vec![supervise("websocket", &gateway, &failed_tx, serve)];
    if let Some(ports) = ports {
        // A cluster-wide task port routes commands and merges queries across the nodes; a
        // node-scoped one acts on this node only (the SDK talks to every node).
        let handle = match cluster.map(|c| c.task_port) {
            Some(TaskPortScope::Node) => gateway.node_only(),
            Some(TaskPortScope::Cluster) | None => gateway.clone(),
        };
        let business = ports.serve(handle);
        tasks.push(supervise("worker", &gateway, &failed_tx, business));
    }
    let demo = DemoSettings {
        client_commands: config.client_commands.enabled,
    };
    let state = AdminState::new(gateway.clone(), prometheus.clone(), config.admin.token())
        .with_demo(config.admin.demo.then_some(demo));
    let admin = admin::serve(admin_listener, state);
    tasks.push(supervise("admin", &gateway, &failed_tx, async move {
        admin.await;
        Ok::<(), std::convert::Infallible>(())
    }));

    tracing::info!(
        websocket = %ws_addr,
        tls = gateway.is_tls(),
        path = %gateway.config().path,
        worker = %worker_addr.map_or_else(|| "off".to_owned(), |a| a.to_string()),
        task = %task_addr.map_or_else(|| "off".to_owned(), |a| a.to_string()),
        admin = %admin_addr,
        node = %crate::admin::node_addr(&gateway),
        sinks = %sink_names.join(","),
        client_commands = config.client_commands.enabled,
        version = env!("CARGO_PKG_VERSION"),
        "netsvr listening"
    );
    Ok(Running {
        gateway,
        ws_addr,
        worker_addr,
        task_addr,
        admin_addr,
        prometheus,
        config,
        tasks,
        failed,
    })
}

impl Running {
    /// The configuration in force (limits and log level as last reloaded).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Resolves when a part (the WebSocket listener, the worker ports, the admin port)
    /// stopped on its own; the process should then shut down.
    pub async fn failed(&self) -> RunError {
        let mut failed = self.failed.clone();
        match failed.wait_for(Option::is_some).await {
            Ok(error) => match &*error {
                Some(e) => RunError {
                    part: e.part,
                    reason: e.reason.clone(),
                },
                None => unreachable_run_error(),
            },
            Err(_) => unreachable_run_error(),
        }
    }

    /// Applies what can change without a restart: the `[limits]` (swapped atomically, no
    /// connection dropped), `log.level` (through `log`) and the TLS certificate (its files
    /// are read again even if their names did not change; open connections keep the old
    /// one). Returns the sections that changed but need a restart to take effect.
    pub fn reload(&mut self, new: &Config, log: Option<&LogHandle>) -> Vec<&'static str> {
        let tls_on = |c: &Config| c.tls.as_ref().is_some_and(|t| t.enabled());
        if let Some(section) = new
            .tls
            .as_ref()
            .filter(|_| tls_on(new) && self.gateway.is_tls())
        {
            match section.load() {
                Ok(tls) => match self.gateway.reload_tls(tls) {
                    Ok(()) => {
                        tracing::info!(cert = %section.cert.display(), "TLS certificate reloaded");
                        self.config.tls = new.tls.clone();
                    }
                    Err(e) => tracing::error!(error = %e, "TLS certificate not reloaded"),
                },
                Err((key, reason)) => {
                    tracing::error!(key, %reason, "TLS certificate not reloaded; keeping the old one");
                }
            }
        }
        if new.limits != self.config.limits {
            if self.gateway.limiter().set_limits(new.limits.to_core()) {
                tracing::info!(limits = ?new.limits, "limits reloaded");
                self.config.limits = new.limits;
            } else {
                tracing::warn!("the rate limiter cannot change its limits at runtime");
            }
        }
        if new.log.level != self.config.log.level {
            if log.is_some() {
                // Said before the switch, so that a quieter level does not hide it.
                tracing::info!(from = %self.config.log.level, to = %new.log.level, "log level reloaded");
            }
            match log.map(|l| l.set_level(&new.log.level)) {
                Some(Ok(())) => self.config.log.level.clone_from(&new.log.level),
                Some(Err(e)) => tracing::warn!(error = %e, "log level not reloaded"),
                None => {}
            }
        }
        let mut restart = Vec::new();
        let old = &self.config;
        let changed = [
            ("gateway", old.gateway != new.gateway),
            ("tls", tls_on(old) != tls_on(new)),
            ("worker", old.worker != new.worker),
            ("http", old.http != new.http),
            ("redis", old.redis != new.redis),
            ("amqp", old.amqp != new.amqp),
            ("cluster", old.cluster != new.cluster),
            (
                "client_commands",
                old.client_commands != new.client_commands,
            ),
            ("admin", old.admin != new.admin),
            ("log.format", old.log.format != new.log.format),
        ];
        for (section, differs) in changed {
            if differs {
                tracing::warn!(section, "changed on reload; takes effect after a restart");
                restart.push(section);
            }
        }
        restart
    }

    /// Graceful drain: refuses new clients, closes every connection with 1001, flushes the
    /// sinks (all within `gateway.shutdown_timeout`), then waits for every part to stop.
    pub async fn shutdown(self) -> Result<(), RunError> {
        self.gateway.shutdown().await;
        // Parts stop once the gateway has; give them a little beyond that.
        let grace = Duration::from_secs(5);
        let mut result = Ok(());
        for (part, handle) in self.tasks {
            let outcome = match tokio::time::timeout(grace, handle).await {
                Ok(Ok(Ok(()))) => continue,
                Ok(Ok(Err(reason))) => reason,
                Ok(Err(join)) => format!("task failed: {join}"),
                Err(_) => "did not stop in time".to_owned(),
            };
            tracing::warn!(part, reason = %outcome, "stopped with an error");
            result = result.and(Err(RunError {
                part,
                reason: outcome,
            }));
        }
        result
    }
}

/// Says which node this is and where it meets the others.
fn log_cluster(gateway: &Gateway, section: &ClusterSection) {
    let node = gateway
        .cluster()
        .map_or_else(|| "none".to_owned(), |c| c.node_id().to_string());
    tracing::info!(
        node = %node,
        broker = section.broker.as_str(),
        url = %section.broker_url(),
        prefix = %section.broker_prefix(),
        task_port = section.task_port.as_str(),
        lease_ttl = ?section.lease_ttl,
        heartbeat = ?section.heartbeat,
        "joining the cluster"
    );
    let addr = crate::admin::node_addr(gateway);
    if addr.ip().is_loopback() {
        tracing::warn!(
            node = %node,
            addr = %addr,
            "the node id names a loopback address: a node on another host with the same port \
             would have the same id; set worker.advertise to an address of this host"
        );
    }
}

fn unreachable_run_error() -> RunError {
    RunError {
        part: "supervisor",
        reason: "the failure channel closed".to_owned(),
    }
}
