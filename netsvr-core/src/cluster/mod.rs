//! Scale-out: several gateway nodes acting as one through a shared [`Broker`]. Feature
//! `cluster` (turned on by the `redis` and `nats` features, which bring the Redis broker,
//! [`crate::redis_broker`], and the NATS broker, `nats_broker`).
//!
//! With a broker attached ([`crate::GatewayBuilder::broker`]), a command given to **any**
//! node — through the task port, the binary's JSON API or the embedded [`Gateway`] handle —
//! reaches the right connections on every node:
//!
//! - uniqId-addressed commands (send, multicast, subscribe, info updates, kicks) go to the
//!   node that owns each uniqId (its 12-hex node prefix), on that node's channel;
//! - customer, topic and broadcast commands are applied here at once and published once on
//!   the shared channel for every other node.
//!
//! Each command is encoded once with the protocol crate (netsvr's own command messages) in a
//! small [`envelope`] that names the sending node, its incarnation and a sequence number, so a
//! node applies each command once and in the order its sender published it.
//!
//! Nodes hold leases in the engine (node id, address, start time, heartbeat). A node that
//! misses its lease is claimed by exactly one survivor, which reports its connections closed
//! (`CloseReason::NodeLost`) from the copy each node keeps of its connections in the engine.
//! Cluster-wide queries go through [`Cluster`]: every live node answers, the answers merge.
//!
//! While the engine is unreachable, local delivery goes on; cross-node messages wait in a
//! bounded buffer (overflow is counted as `netsvr_broker_dropped_total{reason="full"}`), and
//! the node reconnects, resubscribes and publishes the backlog once every node it knew has
//! come back (or its lease time has passed).

mod config;
pub mod envelope;
mod merge;
mod node;
mod outbound;
mod query;
mod route;
mod runtime;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

pub use config::ClusterConfig;
pub use node::{NodeId, NodeRecord};
pub use query::{Cluster, Merged, NodeAnswer, QueryError};

pub use envelope::Opcode;
pub(crate) use node::unix_ms;
pub(crate) use outbound::Outbound;
pub(crate) use route::{copy, opcode, texts};
pub(crate) use runtime::run;

#[allow(unused_imports)] // rustdoc links
use crate::gateway::Gateway;

/// Why a broker operation failed. The runtime reconnects after any of them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The engine could not be reached or the connection broke.
    #[error("broker connection: {0}")]
    Connection(String),
    /// The engine answered something this broker cannot use.
    #[error("broker protocol: {0}")]
    Protocol(String),
    /// An operation did not finish in time.
    #[error("broker operation timed out")]
    Timeout,
}

/// One entry of a publish batch, in the order the node produced them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Publication {
    /// An envelope for one node's channel.
    To(NodeId, Bytes),
    /// An envelope for the shared channel (every node).
    All(Bytes),
    /// Keep (or replace) this node's copy of a connection: uniqId text → encoded snapshot.
    Put(String, Bytes),
    /// Forget this node's copy of a connection.
    Remove(String),
}

/// What a lease renewal found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease {
    /// Every node holding a lease (this one included), after the renewal.
    pub nodes: Vec<NodeRecord>,
    /// This node's lease was there before the renewal (false on the first renewal, after a
    /// claim by another node, or after the engine lost its data).
    pub existed: bool,
    /// Another node claimed this node as dead: its connections were already reported
    /// closed.
    pub claimed: bool,
    /// Nodes whose lease has run out and that nobody has claimed yet.
    pub expired: Vec<NodeRecord>,
    /// The incarnation the lease record held before this renewal, if there was one. Another
    /// incarnation on a renewal after the first means a second live node uses this node's id.
    pub previous_incarnation: Option<u64>,
}

impl Lease {
    /// A renewal's findings (for [`BrokerLink`] implementations).
    pub fn new(
        nodes: Vec<NodeRecord>,
        expired: Vec<NodeRecord>,
        existed: bool,
        claimed: bool,
    ) -> Self {
        Self {
            nodes,
            existed,
            claimed,
            expired,
            previous_incarnation: None,
        }
    }

    /// Sets [`Lease::previous_incarnation`].
    pub fn with_previous_incarnation(mut self, incarnation: Option<u64>) -> Self {
        self.previous_incarnation = incarnation;
        self
    }
}

/// A shared engine (Redis pub/sub, NATS, ...) that carries messages between gateway nodes
/// and keeps their leases. Implement it to put the cluster on another engine.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// A short name for logs and the `broker` metric label.
    fn name(&self) -> &'static str;

    /// Connects for node `me`. When it returns, the node is subscribed to its own channel
    /// and the shared one; every message arriving on either goes into `inbox`, in the order
    /// the engine delivered them (waiting for room, never dropping). The link is broken when
    /// the subscription ends; [`BrokerLink::is_broken`] then says so.
    async fn connect(
        &self,
        me: NodeId,
        inbox: mpsc::Sender<Bytes>,
    ) -> Result<Box<dyn BrokerLink>, BrokerError>;
}

/// One connection to the engine, made by [`Broker::connect`].
///
/// Receivers apply each origin's messages by sequence number and drop any message whose
/// number is not above the last one applied from that origin. An engine must therefore
/// deliver each origin's messages to a node in publish order (one publishing connection,
/// one subscription per node, as both provided brokers do); a reordering engine would see
/// its late messages dropped as duplicates.
#[async_trait]
pub trait BrokerLink: Send {
    /// Publishes `batch` in order (envelopes to channels, connection copies to storage).
    /// On an error, some of the batch may have gone out; the runtime publishes the whole
    /// batch again after reconnecting, and receivers drop what they already applied.
    async fn publish(&mut self, batch: &[Publication]) -> Result<(), BrokerError>;

    /// Renews this node's lease for `ttl` and lists the nodes holding one.
    async fn renew(&mut self, me: &NodeRecord, ttl: Duration) -> Result<Lease, BrokerError>;

    /// Claims `node` if its lease ended before `now_ms` (unix milliseconds). Exactly one
    /// caller gets `Some`, with the copies of the dead node's connections (which are
    /// removed); the others, and a node whose lease is still valid, get `None`.
    async fn claim(
        &mut self,
        node: &NodeId,
        now_ms: u64,
    ) -> Result<Option<Vec<Bytes>>, BrokerError>;

    /// Gives up this node's lease and connection copies (graceful shutdown: the
    /// connections' own closes have been reported).
    async fn leave(&mut self, me: &NodeId) -> Result<(), BrokerError>;

    /// True once the subscription has ended (the engine went away).
    fn is_broken(&self) -> bool;
}

/// The defaults a test or an embedder can start from.
pub(crate) const fn default_ttl() -> Duration {
    Duration::from_secs(6)
}
