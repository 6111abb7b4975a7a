//! Metric names (part of the public interface), their help texts, and the cached handles.
//!
//! Labels are low-cardinality: never a uniqId, customerId or topic. Install a `metrics`
//! recorder before building the gateway: handles are taken once, at build time.

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

use crate::event::CloseReason;

/// Gauge: connections currently open.
pub const CONNECTIONS: &str = "netsvr_connections";
/// Counter: connections admitted.
pub const OPENS_TOTAL: &str = "netsvr_opens_total";
/// Counter, label `reason`: connections closed, by [`crate::CloseReason::as_str`].
pub const CLOSES_TOTAL: &str = "netsvr_closes_total";
/// Counter, label `reason`: handshakes refused (`path`, `origin`, `bad_request`, `auth`,
/// `full`, `rate_limit`, `shutdown`, `timeout`, `per_ip`, `tls`).
pub const HANDSHAKES_REFUSED_TOTAL: &str = "netsvr_handshakes_refused_total";
/// Counter: data messages received from clients (heartbeats excluded).
pub const MESSAGES_IN_TOTAL: &str = "netsvr_messages_in_total";
/// Counter: payload bytes of those messages.
pub const BYTES_IN_TOTAL: &str = "netsvr_bytes_in_total";
/// Counter: heartbeats received (literal text or ping).
pub const HEARTBEATS_TOTAL: &str = "netsvr_heartbeats_total";
/// Counter: frames queued to clients.
pub const MESSAGES_OUT_TOTAL: &str = "netsvr_messages_out_total";
/// Counter: bytes written to client sockets.
pub const BYTES_OUT_TOTAL: &str = "netsvr_bytes_out_total";
/// Counter, label `kind` (`single`, `customer`, `multicast`, `topic`, `broadcast`): frames
/// enqueued by fan-out operations.
pub const FANOUT_DELIVERIES_TOTAL: &str = "netsvr_fanout_deliveries_total";
/// Counter, label `reason` (`rate_limit_global`, `rate_limit_conn`, `slow_consumer`,
/// `sink_full`, `sink_closed`, `bulk_shape`): what the gateway had to drop.
pub const DROPS_TOTAL: &str = "netsvr_drops_total";
/// Histogram: seconds from accept to the 101 answer.
pub const HANDSHAKE_SECONDS: &str = "netsvr_handshake_seconds";
/// Histogram: seconds to enqueue one fan-out to all its recipients.
pub const FANOUT_SECONDS: &str = "netsvr_fanout_seconds";
/// Gauge, label `sink`: events waiting in a sink's queue.
pub const SINK_QUEUE_DEPTH: &str = "netsvr_sink_queue_depth";
/// Counter, label `sink`: events a sink accepted.
pub const SINK_DELIVERED_TOTAL: &str = "netsvr_sink_delivered_total";
/// Counter, label `sink`: events a sink retried.
pub const SINK_RETRIED_TOTAL: &str = "netsvr_sink_retried_total";
/// Histogram, label `sink`: seconds per back-end delivery call (one batch).
pub const SINK_DELIVERY_SECONDS: &str = "netsvr_sink_delivery_seconds";
/// Counter, label `sink`: events a sink failed to deliver (and dropped).
pub const SINK_FAILED_TOTAL: &str = "netsvr_sink_failed_total";
/// Counter, label `broker`: cross-node messages (commands, queries, replies) published.
pub const BROKER_PUBLISHED_TOTAL: &str = "netsvr_broker_published_total";
/// Counter, label `broker`: cross-node messages received from other nodes and applied.
pub const BROKER_RECEIVED_TOTAL: &str = "netsvr_broker_received_total";
/// Counter, labels `broker` and `reason` (`full`, `duplicate`, `malformed`): cross-node
/// messages dropped. `full` is the bounded outage buffer overflowing; `duplicate` is a
/// re-published message a node had already applied.
pub const BROKER_DROPPED_TOTAL: &str = "netsvr_broker_dropped_total";
/// Histogram, label `broker`: seconds from publish on one node to receipt on another.
pub const BROKER_LAG_SECONDS: &str = "netsvr_broker_lag_seconds";
/// Gauge, label `broker`: messages waiting to be published (the outage buffer).
pub const BROKER_BUFFERED: &str = "netsvr_broker_buffered";
/// Gauge, label `broker`: 1 while the node is connected and subscribed, else 0.
pub const BROKER_CONNECTED: &str = "netsvr_broker_connected";
/// Counter, label `broker`: times the node (re)connected and resubscribed.
pub const BROKER_CONNECTS_TOTAL: &str = "netsvr_broker_connects_total";
/// Gauge: live nodes in the cluster (this one included), as of the last lease renewal.
pub const CLUSTER_NODES: &str = "netsvr_cluster_nodes";
/// Counter: dead nodes this node claimed (their lease ran out) and reported.
pub const CLUSTER_NODES_REAPED_TOTAL: &str = "netsvr_cluster_nodes_reaped_total";
/// Counter: connections of dead nodes this node reported closed (`node_lost`).
pub const CLUSTER_CONNS_REAPED_TOTAL: &str = "netsvr_cluster_conns_reaped_total";
/// Counter: lease renewals that found another live node using this node's id (a
/// misconfiguration: two nodes advertise the same address and port).
pub const CLUSTER_DUPLICATE_ID_TOTAL: &str = "netsvr_cluster_duplicate_id_total";

/// Counter, labels `cmd` (`subscribe`, `unsubscribe`, `publish`, `ping`) and `result`
/// (`ok`, `bad_request`, `forbidden`, `too_large`, `rate_limited`, `unavailable`, `other`):
/// client commands run (see [`crate::client_cmd`]).
pub const CLIENT_COMMANDS_TOTAL: &str = "netsvr_client_commands_total";

/// Registers the help text of every metric with the installed recorder.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(CONNECTIONS, "Client connections currently open.");
    describe_counter!(OPENS_TOTAL, "Client connections admitted.");
    describe_counter!(CLOSES_TOTAL, "Client connections closed, by reason.");
    describe_counter!(HANDSHAKES_REFUSED_TOTAL, "Handshakes refused, by reason.");
    describe_counter!(MESSAGES_IN_TOTAL, "Data messages received from clients.");
    describe_counter!(BYTES_IN_TOTAL, "Payload bytes received from clients.");
    describe_counter!(HEARTBEATS_TOTAL, "Heartbeats received from clients.");
    describe_counter!(MESSAGES_OUT_TOTAL, "Frames queued to clients.");
    describe_counter!(BYTES_OUT_TOTAL, "Bytes written to client sockets.");
    describe_counter!(
        FANOUT_DELIVERIES_TOTAL,
        "Frames enqueued by fan-out, by kind."
    );
    describe_counter!(DROPS_TOTAL, "Messages or events dropped, by reason.");
    describe_histogram!(HANDSHAKE_SECONDS, metrics::Unit::Seconds, "Accept to 101.");
    describe_histogram!(
        FANOUT_SECONDS,
        metrics::Unit::Seconds,
        "Time to enqueue one fan-out."
    );
    describe_gauge!(SINK_QUEUE_DEPTH, "Events waiting in a sink's queue.");
    describe_counter!(SINK_DELIVERED_TOTAL, "Events accepted by a sink.");
    describe_counter!(SINK_RETRIED_TOTAL, "Event deliveries a sink retried.");
    describe_counter!(SINK_FAILED_TOTAL, "Events a sink failed to deliver.");
    describe_histogram!(
        SINK_DELIVERY_SECONDS,
        metrics::Unit::Seconds,
        "Time of one back-end delivery call."
    );
    describe_counter!(BROKER_PUBLISHED_TOTAL, "Cross-node messages published.");
    describe_counter!(BROKER_RECEIVED_TOTAL, "Cross-node messages received.");
    describe_counter!(
        BROKER_DROPPED_TOTAL,
        "Cross-node messages dropped, by reason."
    );
    describe_histogram!(
        BROKER_LAG_SECONDS,
        metrics::Unit::Seconds,
        "Publish on one node to receipt on another."
    );
    describe_gauge!(
        BROKER_BUFFERED,
        "Cross-node messages waiting to be published."
    );
    describe_gauge!(BROKER_CONNECTED, "1 while connected to the broker.");
    describe_counter!(BROKER_CONNECTS_TOTAL, "Broker (re)connections.");
    describe_gauge!(CLUSTER_NODES, "Live cluster nodes.");
    describe_counter!(
        CLUSTER_NODES_REAPED_TOTAL,
        "Dead nodes claimed and reported."
    );
    describe_counter!(
        CLUSTER_CONNS_REAPED_TOTAL,
        "Connections of dead nodes reported closed."
    );
    describe_counter!(
        CLIENT_COMMANDS_TOTAL,
        "Client commands run, by command and result."
    );
    describe_counter!(
        CLUSTER_DUPLICATE_ID_TOTAL,
        "Renewals that found another live node with this node's id."
    );
}

/// Handshake refusal reasons, in the order of [`CoreMetrics::refused`]'s handles.
pub(crate) const REFUSAL_REASONS: [&str; 10] = [
    "path",
    "origin",
    "bad_request",
    "auth",
    "full",
    "rate_limit",
    "shutdown",
    "timeout",
    "per_ip",
    "tls",
];

/// Why a handshake was refused (the `reason` label of [`HANDSHAKES_REFUSED_TOTAL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Path = 0,
    Origin = 1,
    BadRequest = 2,
    Auth = 3,
    Full = 4,
    RateLimit = 5,
    Shutdown = 6,
    Timeout = 7,
    PerIp = 8,
    /// The TLS handshake failed (not TLS, no shared cipher, bad certificate request...).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Tls = 9,
}

/// Close reasons, in the order of [`CoreMetrics::closes`]'s handles.
const CLOSE_REASONS: [CloseReason; 9] = [
    CloseReason::Client(0),
    CloseReason::Disconnected,
    CloseReason::Idle,
    CloseReason::Kicked,
    CloseReason::ProtocolError(0),
    CloseReason::SlowConsumer,
    CloseReason::Shutdown,
    CloseReason::Io,
    CloseReason::NodeLost,
];

fn close_index(reason: CloseReason) -> usize {
    match reason {
        CloseReason::Client(_) => 0,
        CloseReason::Disconnected => 1,
        CloseReason::Idle => 2,
        CloseReason::Kicked => 3,
        CloseReason::ProtocolError(_) => 4,
        CloseReason::SlowConsumer => 5,
        CloseReason::Shutdown => 6,
        CloseReason::Io => 7,
        CloseReason::NodeLost => 8,
    }
}

/// Handles taken once so the hot paths never look a metric up by name.
#[derive(Debug)]
pub(crate) struct CoreMetrics {
    pub(crate) connections: Gauge,
    pub(crate) opens: Counter,
    closes: [Counter; 9],
    refusals: [Counter; 10],
    pub(crate) messages_in: Counter,
    pub(crate) bytes_in: Counter,
    pub(crate) heartbeats: Counter,
    pub(crate) messages_out: Counter,
    pub(crate) bytes_out: Counter,
    pub(crate) fanout: [Counter; 5],
    pub(crate) drop_rate_global: Counter,
    pub(crate) drop_rate_conn: Counter,
    pub(crate) drop_slow_consumer: Counter,
    pub(crate) drop_sink_full: Counter,
    pub(crate) drop_sink_closed: Counter,
    pub(crate) drop_bulk_shape: Counter,
    pub(crate) handshake_seconds: Histogram,
    pub(crate) fanout_seconds: Histogram,
}

/// Which fan-out counter to bump.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FanoutKind {
    Single = 0,
    Customer = 1,
    Multicast = 2,
    Topic = 3,
    Broadcast = 4,
}

impl CoreMetrics {
    pub(crate) fn new() -> Self {
        let fanout = |kind: &'static str| counter!(FANOUT_DELIVERIES_TOTAL, "kind" => kind);
        let drop = |reason: &'static str| counter!(DROPS_TOTAL, "reason" => reason);
        Self {
            connections: gauge!(CONNECTIONS),
            opens: counter!(OPENS_TOTAL),
            closes: CLOSE_REASONS.map(|r| counter!(CLOSES_TOTAL, "reason" => r.as_str())),
            refusals: REFUSAL_REASONS.map(|r| counter!(HANDSHAKES_REFUSED_TOTAL, "reason" => r)),
            messages_in: counter!(MESSAGES_IN_TOTAL),
            bytes_in: counter!(BYTES_IN_TOTAL),
            heartbeats: counter!(HEARTBEATS_TOTAL),
            messages_out: counter!(MESSAGES_OUT_TOTAL),
            bytes_out: counter!(BYTES_OUT_TOTAL),
            fanout: [
                fanout("single"),
                fanout("customer"),
                fanout("multicast"),
                fanout("topic"),
                fanout("broadcast"),
            ],
            drop_rate_global: drop("rate_limit_global"),
            drop_rate_conn: drop("rate_limit_conn"),
            drop_slow_consumer: drop("slow_consumer"),
            drop_sink_full: drop("sink_full"),
            drop_sink_closed: drop("sink_closed"),
            drop_bulk_shape: drop("bulk_shape"),
            handshake_seconds: histogram!(HANDSHAKE_SECONDS),
            fanout_seconds: histogram!(FANOUT_SECONDS),
        }
    }

    pub(crate) fn refused(&self, reason: Refusal) {
        self.refusals[reason as usize].increment(1);
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        self.closes[close_index(reason)].increment(1);
    }
}
