//! The admin HTTP port: Prometheus metrics, health and readiness probes, the JSON status and
//! command API, and a small status page.
//!
//! ```no_run
//! # async fn run(gateway: netsvr_core::Gateway,
//! #              prometheus: metrics_exporter_prometheus::PrometheusHandle) -> std::io::Result<()> {
//! use netsvr_bin::admin::{self, AdminConfig, AdminState};
//!
//! let config = AdminConfig::default();
//! let listener = admin::bind(&config)?;
//! let state = AdminState::new(gateway, prometheus, config.token());
//! tokio::spawn(admin::serve(listener, state)); // returns once the gateway has stopped
//! # Ok(()) }
//! ```
//!
//! # Endpoints
//!
//! | path | method | token (when one is set) |
//! |---|---|---|
//! | `/healthz` → `ok`; `/readyz` → 200 `{"ready":true}` or 503 `{"ready":false,"reason":…,"unhealthy_sinks":[…]}` | GET | never: probes must not need secrets |
//! | `/metrics` (Prometheus text format; besides the gateway's metrics, the gauge [`TOKIO_ALIVE_TASKS`]) | GET | required: metrics reveal traffic; Prometheus sends it with `authorization: { credentials: … }` |
//! | `/` (status page) | GET | required; `?token=` is accepted here so a browser can open it |
//! | `/demo` (demo page, a WebSocket client of the gateway; 404 unless [`AdminState::with_demo`]) | GET | required; `?token=` accepted as on `/` |
//! | `/api/v1/status`, `/api/v1/connections`, `/api/v1/connections/{uniqId}`, `/api/v1/topics` | GET | required |
//! | `/api/v1/cluster/nodes`, `/api/v1/cluster/connections` (404 without a cluster) | GET | required |
//! | `/api/v1/{send,send_to_customers,broadcast,publish,subscribe,unsubscribe,kick}` | POST, `Content-Type: application/json` | required |
//!
//! The token (`Authorization: Bearer <token>`, compared in constant time) is checked before
//! the path is resolved: without it everything but the probes answers 401 with
//! `WWW-Authenticate: Bearer`. Unknown paths answer 404 and wrong methods 405, both with a
//! JSON `{"error": …}` body. Commands require a JSON content type so that a web page cannot
//! post to the port cross-site without a CORS preflight (which is never granted).
//!
//! Listings take `offset` (default 0) and `limit` (default 100, at most [`MAX_LIMIT`]) and
//! answer `{"total", "offset", "limit", "connections"|"topics": […]}`, ordered by uniqId or
//! topic name; `/api/v1/connections` also filters by `customer_id` and `topic`. A
//! connection is `{"uniq_id", "node", "remote_addr", "customer_id", "session", "topics",
//! "raw_query", "x_forwarded_for", "x_real_ip"}`; a topic is `{"topic", "connections"}`.
//!
//! # Cluster
//!
//! When the node belongs to a cluster (`[cluster]`), the listings and
//! `/api/v1/connections/{uniqId}` answer for every node unless `scope=node` is given
//! (`scope=cluster` is the default; without a cluster both answer for this node). Each
//! listing says which it answered with `"scope"`. Connections held by other nodes show
//! `null` for the handshake facts (`remote_addr`, `raw_query`, `x_forwarded_for`,
//! `x_real_ip`). A node that does not answer within `cluster.query_timeout` makes a
//! cluster-wide read answer 503 `{"error", "missing": [node ids]}`.
//! `/api/v1/cluster/nodes` lists the live nodes `{"node", "nodes": [{"id", "addr",
//! "started_ms", "heartbeat_ms", "local"}]}`; `/api/v1/cluster/connections` answers
//! `{"node", "connections", "customers", "topics", "complete", "missing", "nodes":
//! [{"node", "connections"}]}` (per-node counts; `null` for a node that did not answer).
//! Commands need nothing special: the `Gateway` handle routes them to the nodes holding the
//! connections. Their `delivered` and `kicked` figures then count this node's connections
//! only; the other nodes' get the command through the broker, uncounted here.
//!
//! Commands take `data` as UTF-8 text, or standard base64 with `"encoding": "base64"`, and
//! reject unknown fields: `send {uniq_ids, data}` / `send_to_customers {customer_ids, data}`
//! / `broadcast {data}` / `publish {topics, data}` → `{"delivered": n}`;
//! `subscribe` / `unsubscribe {uniq_id, topics, data?}` → `{"found": bool}`;
//! `kick {uniq_ids?, customer_ids?, data?}` → `{"kicked": n}`. Bad input is a 400.
//!
//! # Bounds
//!
//! At most [`MAX_CONNECTIONS`] connections at once (more wait in the backlog), request
//! heads of at most 64 KiB read within 10 s, bodies of at most [`MAX_BODY`] bytes (413
//! beyond) read within 10 s, and a connection lives at most 5 minutes (keep-alive clients
//! simply reconnect).

mod cluster;
mod commands;
mod config;
mod demo;
mod http;
mod page;
mod routes;
mod status;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use netsvr_core::Gateway;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

pub use config::{AdminConfig, AdminConfigError, MAX_TOKEN_LEN};
pub use demo::DemoSettings;
pub use http::MAX_BODY;
pub use routes::METRICS_CONTENT_TYPE;
pub use status::{MAX_LIMIT, node_addr, node_id};

/// Most admin connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Gauge: tasks alive on the tokio runtime that serves the admin port (the binary's one
/// runtime: connections, sinks, worker sessions, admin requests), read when `/metrics` is
/// rendered. Under steady load it stays level; a figure that keeps growing is a task leak
/// (`benches/soak.sh` watches it).
pub const TOKIO_ALIVE_TASKS: &str = "netsvr_tokio_alive_tasks";
/// Time allowed for a request head to arrive.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest buffered request head.
const MAX_HEAD: usize = 64 * 1024;
/// Longest life of one connection.
const MAX_CONN_LIFETIME: Duration = Duration::from_secs(300);
/// How long in-flight requests may finish once the gateway has stopped.
const DRAIN: Duration = Duration::from_secs(2);
/// How often the Prometheus recorder's upkeep (histogram maintenance) runs.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// What the admin port serves from.
pub struct AdminState {
    /// The gateway to report on and command.
    pub gateway: Gateway,
    /// Renders `/metrics`; its upkeep is run by [`serve`].
    pub prometheus: PrometheusHandle,
    /// Required bearer token; `None` for none.
    pub token: Option<String>,
    /// When the process started, for the uptime in `/api/v1/status`.
    pub started: Instant,
    /// The demo page at `/demo`; `None` (the default) answers 404 there.
    pub demo: Option<DemoSettings>,
}

impl AdminState {
    /// State with the uptime counted from now. An empty token means none.
    pub fn new(gateway: Gateway, prometheus: PrometheusHandle, token: Option<String>) -> Self {
        Self {
            gateway,
            prometheus,
            token: token.filter(|t| !t.is_empty()),
            started: Instant::now(),
            demo: None,
        }
    }

    /// Serves the demo page at `/demo` with `settings`, or not (`None`).
    #[must_use]
    pub fn with_demo(mut self, settings: Option<DemoSettings>) -> Self {
        self.demo = settings;
        self
    }
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("gateway", &self.gateway)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("started", &self.started)
            .field("demo", &self.demo)
            .finish_non_exhaustive()
    }
}

/// Binds the admin listener (non-blocking, ready for [`serve`]).
pub fn bind(config: &AdminConfig) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(config.listen)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves the admin port on `listener` until `state.gateway.stopped()` resolves, then gives
/// in-flight requests a moment to finish and returns. While the gateway drains, the port
/// keeps answering (and `/readyz` says 503).
pub async fn serve(listener: std::net::TcpListener, state: AdminState) {
    let listener = match listener
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpListener::from_std(listener))
    {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "admin listener unusable");
            return;
        }
    };
    metrics::describe_gauge!(
        TOKIO_ALIVE_TASKS,
        "Tasks alive on the tokio runtime serving the gateway, read when /metrics is rendered."
    );
    let state = Arc::new(state);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let gateway = state.gateway.clone();
    let stopped = gateway.stopped();
    tokio::pin!(stopped);
    let mut upkeep = tokio::time::interval(UPKEEP_EVERY);
    upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stopped => break,
            _ = upkeep.tick() => state.prometheus.run_upkeep(),
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            (accepted, permit) = accept(&listener, &permits) => match accepted {
                Ok(stream) => {
                    tasks.spawn(connection(stream, state.clone(), stop_rx.clone(), permit));
                }
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    stop_tx.send_replace(true);
    let drained =
        tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::debug!("admin connections cut after the drain period");
    }
    tasks.abort_all();
}

/// Sets the runtime gauges ([`TOKIO_ALIVE_TASKS`]) from the current tokio runtime.
fn record_runtime() {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        let alive = handle.metrics().num_alive_tasks();
        metrics::gauge!(TOKIO_ALIVE_TASKS).set(alive as f64);
    }
}

/// Waits for a connection slot, then for a connection.
async fn accept(
    listener: &tokio::net::TcpListener,
    permits: &Arc<Semaphore>,
) -> (std::io::Result<TcpStream>, Option<OwnedSemaphorePermit>) {
    // The semaphore is never closed, so this only fails in theory; serve without a permit then.
    let permit = permits.clone().acquire_owned().await.ok();
    (listener.accept().await.map(|(s, _)| s), permit)
}

/// Serves one connection: HTTP/1.1 with keep-alive, bounded in time and size.
async fn connection(
    stream: TcpStream,
    state: Arc<AdminState>,
    mut stop: watch::Receiver<bool>,
    _permit: Option<OwnedSemaphorePermit>,
) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(routes::handle(&state, req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let lifetime = tokio::time::sleep(MAX_CONN_LIFETIME);
    tokio::pin!(lifetime);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "admin connection ended with an error");
            }
            return;
        }
        _ = stop.wait_for(|s| *s) => {}
        () = &mut lifetime => {}
    }
    // Finish the request in flight (if any), then close.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(DRAIN, conn).await;
}
