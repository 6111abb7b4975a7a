//! The producing half of a node's cluster link: commands, queries, replies and connection
//! copies go into one bounded, ordered queue that the runtime publishes. Never awaits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use bytes::{BufMut, Bytes, BytesMut};
use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
use netsvr_protocol::{ToBusiness, ToGateway, pb};
use parking_lot::Mutex;
use prost::Message as _;
use tokio::sync::mpsc;

use super::envelope::{Envelope, Kind, Opcode};
use super::node::{NodeId, NodeRecord, unix_ms};
use super::{Broker, ClusterConfig, Publication};
use crate::event::{ConnInfo, ConnMeta};
use crate::id::UniqId;
use crate::metrics as names;

/// The broker's metric handles, taken once.
#[derive(Debug)]
pub(crate) struct BrokerMetrics {
    pub(crate) published: Counter,
    pub(crate) received: Counter,
    pub(crate) dropped_full: Counter,
    pub(crate) dropped_duplicate: Counter,
    pub(crate) dropped_malformed: Counter,
    pub(crate) lag: Histogram,
    pub(crate) buffered: Gauge,
    pub(crate) connected: Gauge,
    pub(crate) connects: Counter,
    pub(crate) nodes: Gauge,
    pub(crate) nodes_reaped: Counter,
    pub(crate) conns_reaped: Counter,
    pub(crate) duplicate_id: Counter,
}

impl BrokerMetrics {
    fn new(broker: &'static str) -> Self {
        let dropped = |reason: &'static str| counter!(names::BROKER_DROPPED_TOTAL, "broker" => broker, "reason" => reason);
        Self {
            published: counter!(names::BROKER_PUBLISHED_TOTAL, "broker" => broker),
            received: counter!(names::BROKER_RECEIVED_TOTAL, "broker" => broker),
            dropped_full: dropped("full"),
            dropped_duplicate: dropped("duplicate"),
            dropped_malformed: dropped("malformed"),
            lag: histogram!(names::BROKER_LAG_SECONDS, "broker" => broker),
            buffered: gauge!(names::BROKER_BUFFERED, "broker" => broker),
            connected: gauge!(names::BROKER_CONNECTED, "broker" => broker),
            connects: counter!(names::BROKER_CONNECTS_TOTAL, "broker" => broker),
            nodes: gauge!(names::CLUSTER_NODES),
            nodes_reaped: counter!(names::CLUSTER_NODES_REAPED_TOTAL),
            conns_reaped: counter!(names::CLUSTER_CONNS_REAPED_TOTAL),
            duplicate_id: counter!(names::CLUSTER_DUPLICATE_ID_TOTAL),
        }
    }
}

/// Answers to one pending query: (node, answer) pairs.
pub(crate) type ReplyTx = mpsc::Sender<(NodeId, ToBusiness)>;

/// A node's cluster state, shared by the gateway handle and the runtime.
pub(crate) struct Outbound {
    pub(crate) me: NodeRecord,
    pub(crate) config: ClusterConfig,
    pub(crate) broker: Arc<dyn Broker>,
    pub(crate) metrics: BrokerMetrics,
    /// The sequence counter; held only while a message is numbered and queued, so the
    /// queue order is the sequence order.
    seq: Mutex<u64>,
    tx: mpsc::Sender<Publication>,
    /// Taken by the runtime when it starts.
    pub(crate) rx: Mutex<Option<mpsc::Receiver<Publication>>>,
    /// The live nodes as of the last lease renewal (this one included).
    pub(crate) nodes: ArcSwap<Vec<NodeRecord>>,
    /// Queries waiting for answers, by request id.
    pub(crate) pending: Mutex<HashMap<u64, ReplyTx>>,
    next_request: AtomicU64,
    /// Messages waiting in the queue (for the gauge and [`super::Cluster::buffered`]).
    pub(crate) queued: AtomicU64,
    /// Messages dropped because the queue was full ([`super::Cluster::dropped`]).
    pub(crate) dropped: AtomicU64,
    /// The runtime holds a live, subscribed link ([`super::Cluster::is_connected`]).
    pub(crate) connected: AtomicBool,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("me", &self.me)
            .field("broker", &self.broker.name())
            .finish_non_exhaustive()
    }
}

impl Outbound {
    pub(crate) fn new(
        me: NodeId,
        addr: String,
        broker: Arc<dyn Broker>,
        config: ClusterConfig,
    ) -> Self {
        let (tx, rx) = mpsc::channel(config.buffer);
        let record = NodeRecord::new(me, addr, unix_ms(), rand::random());
        Self {
            metrics: BrokerMetrics::new(broker.name()),
            nodes: ArcSwap::from_pointee(vec![record.clone()]),
            me: record,
            config,
            broker,
            seq: Mutex::new(0),
            tx,
            rx: Mutex::new(Some(rx)),
            pending: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            queued: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            connected: AtomicBool::new(false),
        }
    }

    pub(crate) fn id(&self) -> NodeId {
        self.me.id
    }

    /// Whether `uniq_id` belongs to another node.
    pub(crate) fn is_remote(&self, uniq_id: &UniqId) -> bool {
        NodeId::of(uniq_id) != self.me.id
    }

    /// Queues one publication; a full buffer is counted, never hidden.
    fn push(&self, publication: Publication) -> bool {
        // Counted before it can be taken, so the count never dips below zero.
        let depth = self.queued.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        match self.tx.try_send(publication) {
            Ok(()) => {
                self.metrics.buffered.set(depth as f64);
                true
            }
            Err(_) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                self.metrics.dropped_full.increment(1);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Numbers, encodes (once) and queues an envelope for `to` (`None`: every node).
    fn envelope(
        &self,
        to: Option<NodeId>,
        kind: Kind,
        opcode: Opcode,
        request: u64,
        cmd: u32,
        body: Bytes,
    ) -> bool {
        let mut seq = self.seq.lock();
        *seq += 1;
        let bytes = Envelope {
            kind,
            opcode,
            origin: self.me.id,
            incarnation: self.me.incarnation,
            seq: *seq,
            request,
            sent_ms: unix_ms(),
            cmd,
            body,
        }
        .encode();
        self.push(match to {
            Some(node) => Publication::To(node, bytes),
            None => Publication::All(bytes),
        })
    }

    /// A command for one node.
    pub(crate) fn command_to(&self, node: NodeId, opcode: Opcode, message: &ToGateway) -> bool {
        let body = message.encode_body();
        self.envelope(Some(node), Kind::Command, opcode, 0, message.cmd(), body)
    }

    /// A command for every other node.
    pub(crate) fn command_all(&self, opcode: Opcode, message: &ToGateway) -> bool {
        let body = message.encode_body();
        self.envelope(None, Kind::Command, opcode, 0, message.cmd(), body)
    }

    /// A query for every other node; answers come back to `replies`. Returns the request
    /// id (to forget it), or `None` when the buffer is full.
    pub(crate) fn query_all(&self, message: &ToGateway, replies: ReplyTx) -> Option<u64> {
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        self.pending.lock().insert(request, replies);
        let body = message.encode_body();
        if self.envelope(
            None,
            Kind::Query,
            Opcode::Default,
            request,
            message.cmd(),
            body,
        ) {
            Some(request)
        } else {
            self.pending.lock().remove(&request);
            None
        }
    }

    /// A query's answer, to the node that asked.
    pub(crate) fn reply(&self, to: NodeId, request: u64, answer: &ToBusiness) -> bool {
        let body = answer.encode_body();
        self.envelope(
            Some(to),
            Kind::Reply,
            Opcode::Default,
            request,
            answer.cmd(),
            body,
        )
    }

    /// Keeps the engine's copy of a connection current (for the report if this node dies).
    pub(crate) fn put_conn(&self, meta: &ConnMeta, info: &ConnInfo) -> bool {
        let (key, value) = conn_copy(meta, info);
        self.push(Publication::Put(key, value))
    }

    /// Forgets the engine's copy of a connection.
    pub(crate) fn remove_conn(&self, uniq_id: &UniqId) -> bool {
        self.push(Publication::Remove(uniq_id.to_string()))
    }

    /// Records whether the runtime holds a live link (metric and accessor).
    pub(crate) fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
        self.metrics.connected.set(if up { 1.0 } else { 0.0 });
    }

    /// Records that the runtime took `n` publications off the queue.
    pub(crate) fn taken(&self, n: usize) {
        let left = self
            .queued
            .fetch_sub(n as u64, Ordering::Relaxed)
            .saturating_sub(n as u64);
        self.metrics.buffered.set(left as f64);
    }
}

/// The engine's copy of a connection: key = uniqId text; value = the peer address, a
/// newline, then a netsvr `ConnClose` body (customerId, session, topics).
pub(crate) fn conn_copy(meta: &ConnMeta, info: &ConnInfo) -> (String, Bytes) {
    let close = pb::ConnClose {
        uniq_id: meta.uniq_id.to_string(),
        customer_id: info.customer_id.clone().unwrap_or_default(),
        session: info.session.clone(),
        topics: info.topics.clone(),
        reason: String::new(),
    };
    let addr = meta.remote_addr.to_string();
    let mut out = BytesMut::with_capacity(addr.len() + 1 + close.encoded_len());
    out.put_slice(addr.as_bytes());
    out.put_u8(b'\n');
    // Encoding into a BytesMut grows it as needed and cannot fail.
    let _ = close.encode(&mut out);
    (close.uniq_id, out.freeze())
}

/// Reads [`conn_copy`]'s value back; `None` when it is not one.
pub(crate) fn parse_conn_copy(value: &[u8]) -> Option<(ConnMeta, ConnInfo)> {
    let split = value.iter().position(|b| *b == b'\n')?;
    let addr: SocketAddr = std::str::from_utf8(&value[..split]).ok()?.parse().ok()?;
    let close = pb::ConnClose::decode(&value[split + 1..]).ok()?;
    let uniq_id: UniqId = close.uniq_id.parse().ok()?;
    let info = ConnInfo::new(Some(close.customer_id), close.session, close.topics);
    Some((ConnMeta::new(uniq_id, addr), info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_copies_round_trip() {
        let id: UniqId = "7f00000117ae65432100aabbccdd".parse().unwrap();
        let meta = ConnMeta::new(id, "127.0.0.1:4000".parse().unwrap());
        let info = ConnInfo::new(Some("c1".into()), "s".into(), vec!["a".into(), "b".into()]);
        let (key, value) = conn_copy(&meta, &info);
        assert_eq!(key, id.to_string());
        assert_eq!(parse_conn_copy(&value), Some((meta, info)));
        assert_eq!(parse_conn_copy(b"no newline"), None);
        assert_eq!(parse_conn_copy(b"not-an-addr\n"), None);
    }
}
