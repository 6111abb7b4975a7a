//! The `Gateway` handle: a cheap clone over the shared core that every operation goes
//! through. Sending only enqueues; nothing here awaits a socket.

mod builder;
mod info;
mod query;
mod send;
mod stats;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::auth::Authenticator;
use crate::config::{GatewayConfig, SlowConsumerPolicy};
use crate::conn::{CloseRequest, Conn, Deflatable, Frame, Push};
use crate::event::{CloseReason, Event, EventKind};
use crate::id::UniqIdGenerator;
use crate::limit::RateLimiter;
use crate::metrics::{CoreMetrics, FanoutKind};
use crate::sink::{EventSink, SinkError};
use crate::table::{Tables, index_add, index_remove};
use crate::wire::{self, OpCode};

pub use builder::{BuildError, GatewayBuilder, Serve, ServeError};
pub use info::{InfoDelete, InfoUpdate};
pub use query::ConnDetails;
pub use send::BulkShapeError;
pub use stats::Stats;

use stats::Counters;

/// Handle to a running gateway. Clone it freely; every clone drives the same gateway.
///
/// With a cluster broker attached (feature `cluster`), its commands reach the connections
/// of every node; [`Gateway::node_only`] gives a handle that acts on this node alone.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) shared: Arc<Shared>,
    /// Commands act on this node only, even with a broker attached.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) node_only: bool,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("local_addr", &self.shared.local_addr)
            .field("connections", &self.connection_count())
            .finish()
    }
}

/// Everything the handle, the listener and the connection tasks share.
pub(crate) struct Shared {
    pub(crate) config: GatewayConfig,
    pub(crate) tables: Tables,
    pub(crate) sink: Arc<dyn EventSink>,
    pub(crate) auth: Arc<dyn Authenticator>,
    pub(crate) limiter: Arc<dyn RateLimiter>,
    pub(crate) ids: UniqIdGenerator,
    pub(crate) metrics: CoreMetrics,
    pub(crate) counters: Counters,
    /// Connections admitted and not yet gone (checked against `max_connections`).
    pub(crate) admitted: AtomicUsize,
    /// Connections per client IP address (checked against `max_connections_per_ip`).
    pub(crate) per_ip: crate::transport::PerIp,
    /// Milliseconds since `epoch`, refreshed by the sweeper (a coarse clock).
    pub(crate) clock_ms: AtomicU64,
    pub(crate) epoch: Instant,
    pub(crate) local_addr: SocketAddr,
    pub(crate) downstream: OpCode,
    /// Set once a graceful shutdown starts.
    pub(crate) draining: watch::Sender<bool>,
    /// Set once the shutdown has finished; the serve future then returns.
    pub(crate) stopped: watch::Sender<bool>,
    /// The TLS configuration new connections get, when TLS is on.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<arc_swap::ArcSwap<rustls::ServerConfig>>,
    /// The cluster link, when a broker is attached.
    #[cfg(feature = "cluster")]
    pub(crate) cluster: Option<Arc<crate::cluster::Outbound>>,
    /// Client commands, when enabled: client text messages that are commands run here
    /// instead of reaching the sink.
    pub(crate) commands: Option<crate::client_cmd::CommandRuntime>,
}

impl Shared {
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn tick_clock(&self) -> u64 {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.clock_ms.store(now, Ordering::Relaxed);
        now
    }

    pub(crate) fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Encodes `data` once as a downstream frame.
    pub(crate) fn frame(&self, data: &[u8]) -> Frame {
        self.frame_as(self.downstream, data)
    }

    /// Encodes `data` once as a frame of `opcode`. While some connection has negotiated
    /// permessage-deflate, a message of at least `deflate.min_size` bytes is queued so that
    /// those connections get it compressed (once, shared) and the others plain.
    pub(crate) fn frame_as(&self, opcode: OpCode, data: &[u8]) -> Frame {
        let plain = wire::encode_frame(opcode, data);
        let deflate = &self.config.deflate;
        if deflate.enabled
            && data.len() >= deflate.min_size
            && self.counters.deflate_connections.load(Ordering::Relaxed) > 0
        {
            Frame::Deflatable(Arc::new(Deflatable::new(plain, opcode, data.len())))
        } else {
            Frame::Plain(plain)
        }
    }

    /// Queues `frame` to one connection, applying the slow-consumer policy.
    pub(crate) fn enqueue(&self, conn: &Conn, frame: &Frame) -> bool {
        match conn
            .outbox
            .push(frame.clone(), self.config.outbound_queue_capacity)
        {
            Push::Queued => true,
            Push::Full => {
                self.slow_consumer(conn, frame.len());
                false
            }
            Push::Closed => false,
        }
    }

    /// Queues several frames to one connection, in order, all or none.
    pub(crate) fn enqueue_all(&self, conn: &Conn, frames: &[Frame]) -> bool {
        match conn
            .outbox
            .push_all(frames, self.config.outbound_queue_capacity)
        {
            Push::Queued => true,
            Push::Full => {
                self.slow_consumer(conn, frames.iter().map(Frame::len).sum());
                false
            }
            Push::Closed => false,
        }
    }

    fn slow_consumer(&self, conn: &Conn, bytes: usize) {
        self.metrics.drop_slow_consumer.increment(1);
        let counters = &self.counters;
        counters.drops_slow_consumer.fetch_add(1, Ordering::Relaxed);
        counters
            .drops_slow_consumer_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
        if self.config.slow_consumer == SlowConsumerPolicy::Close {
            conn.outbox.close_now(CloseRequest {
                code: crate::close::TRY_AGAIN_LATER,
                reason: "slow consumer",
                cause: CloseReason::SlowConsumer,
            });
        }
    }

    /// Counts `n` frames queued by a fan-out of `kind` that started at `started`.
    pub(crate) fn count_fanout(&self, kind: FanoutKind, n: usize, started: Option<Instant>) {
        let n64 = n as u64;
        self.metrics.fanout[kind as usize].increment(n64);
        self.metrics.messages_out.increment(n64);
        self.counters.messages_out.fetch_add(n64, Ordering::Relaxed);
        if let Some(started) = started {
            self.metrics
                .fanout_seconds
                .record(started.elapsed().as_secs_f64());
        }
    }

    /// Hands an event to the sink; a refusal is counted, never hidden. With client commands
    /// on, a client message that is a command is run (on this, the connection's task, in
    /// message order) instead.
    pub(crate) fn emit(&self, event: Event) {
        let event = match &self.commands {
            Some(commands) => match commands.intercept(event) {
                Some(event) => event,
                None => return,
            },
            None => event,
        };
        match self.sink.deliver(event) {
            Ok(()) => {}
            Err(SinkError::Full) => {
                self.metrics.drop_sink_full.increment(1);
                self.counters.drops_sink.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.metrics.drop_sink_closed.increment(1);
                self.counters.drops_sink.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Puts a new connection in the tables with its initial bindings.
    pub(crate) fn attach(&self, conn: &Arc<Conn>) {
        let state = conn.lock();
        self.tables
            .conns
            .write(&conn.meta.uniq_id)
            .insert(conn.meta.uniq_id, conn.clone());
        if let Some(customer) = &state.info.customer_id {
            index_add(&self.tables.customers, customer, conn);
        }
        for topic in &state.info.topics {
            index_add(&self.tables.topics, topic, conn);
        }
        #[cfg(feature = "cluster")]
        if let Some(cluster) = &self.cluster {
            cluster.put_conn(&conn.meta, &state.info);
        }
        drop(state);
        self.metrics.opens.increment(1);
        self.metrics.connections.increment(1.0);
        self.counters.opened.fetch_add(1, Ordering::Relaxed);
    }

    /// Removes a connection from every table and reports its close. Runs once per
    /// connection, from its own task.
    pub(crate) fn detach(&self, conn: &Arc<Conn>, reason: CloseReason) {
        conn.outbox.shut();
        let mut state = conn.lock();
        if state.detached {
            return;
        }
        state.detached = true;
        let id = conn.meta.uniq_id;
        self.tables.conns.write(&id).remove(&id);
        if let Some(customer) = &state.info.customer_id {
            index_remove(&self.tables.customers, customer, &id);
        }
        for topic in &state.info.topics {
            index_remove(&self.tables.topics, topic, &id);
        }
        #[cfg(feature = "cluster")]
        if let Some(cluster) = &self.cluster {
            cluster.remove_conn(&id);
        }
        let info = state.info.clone();
        let reported = state.close_reported;
        drop(state);
        self.metrics.connections.decrement(1.0);
        self.metrics.closed(reason);
        self.counters.closed.fetch_add(1, Ordering::Relaxed);
        if reported {
            return; // another node already reported this close (its lease was lost)
        }
        self.emit(Event::new(
            crate::event::ConnSnapshot {
                meta: conn.meta.clone(),
                info,
            },
            EventKind::Close { reason },
        ));
    }
}

/// A handle that does not keep the gateway alive (for sinks that call back into it).
#[derive(Clone, Debug, Default)]
pub struct WeakGateway {
    shared: std::sync::Weak<Shared>,
}

impl WeakGateway {
    /// The gateway, if it still exists.
    pub fn upgrade(&self) -> Option<Gateway> {
        self.shared.upgrade().map(|shared| Gateway {
            shared,
            node_only: false,
        })
    }
}

impl Gateway {
    /// A handle that does not keep the gateway alive.
    pub fn downgrade(&self) -> WeakGateway {
        WeakGateway {
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// A handle whose commands act on this node's connections only, even with a cluster
    /// broker attached (netsvr's own way: the business talks to every node itself).
    pub fn node_only(&self) -> Gateway {
        Gateway {
            shared: self.shared.clone(),
            node_only: true,
        }
    }

    /// The cluster this node belongs to (cluster-wide queries, the live nodes), when a
    /// broker is attached.
    #[cfg(feature = "cluster")]
    pub fn cluster(&self) -> Option<crate::cluster::Cluster> {
        self.shared
            .cluster
            .clone()
            .map(|out| crate::cluster::Cluster::new(self.clone(), out))
    }

    /// Starts building a gateway.
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder::new()
    }

    /// The address the client listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The configuration in force.
    pub fn config(&self) -> &GatewayConfig {
        &self.shared.config
    }

    /// Whether the client port serves TLS (wss://).
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.shared.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// Swaps the TLS configuration (a renewed certificate): handshakes from now on use it;
    /// open connections keep theirs. Fails if the gateway was built without TLS.
    #[cfg(feature = "tls")]
    pub fn reload_tls(
        &self,
        config: std::sync::Arc<rustls::ServerConfig>,
    ) -> Result<(), crate::tls::TlsError> {
        let tls = self
            .shared
            .tls
            .as_ref()
            .ok_or(crate::tls::TlsError::NotEnabled)?;
        tls.store(config);
        Ok(())
    }

    /// The rate limiter in force (to read or swap limits at runtime).
    pub fn limiter(&self) -> &Arc<dyn RateLimiter> {
        &self.shared.limiter
    }

    /// True once a graceful shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.is_draining()
    }

    /// Resolves once a graceful shutdown has completed.
    pub async fn stopped(&self) {
        let mut stopped = self.shared.stopped.subscribe();
        // An error means the sender is gone, which only happens with the gateway itself.
        let _ = stopped.wait_for(|s| *s).await;
    }

    /// Graceful shutdown: new clients are refused (503 before the upgrade, 1012 after),
    /// open connections are closed with 1001 after their queued frames, then the sink is
    /// flushed; all within `shutdown_timeout`. The serve future returns afterwards.
    /// Calling it again waits for the same shutdown.
    pub async fn shutdown(&self) {
        let shared = &self.shared;
        let first = !shared.draining.send_replace(true);
        if first {
            let deadline = tokio::time::Instant::now() + shared.config.shutdown_timeout;
            for shard in shared.tables.conns.shards() {
                let conns: Vec<Arc<Conn>> = shard.read().values().cloned().collect();
                for conn in conns {
                    conn.outbox.request_close(CloseRequest {
                        code: crate::close::GOING_AWAY,
                        reason: "going away",
                        cause: CloseReason::Shutdown,
                    });
                }
            }
            while shared.admitted.load(Ordering::Acquire) > 0
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !shared.sink.flush(left).await {
                tracing::warn!(
                    sink = shared.sink.name(),
                    "sink not flushed before deadline"
                );
            }
            shared.stopped.send_replace(true);
        } else {
            self.stopped().await;
        }
    }
}
