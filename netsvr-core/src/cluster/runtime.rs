//! The node's cluster task: connect and subscribe (with back-off), renew the lease, claim
//! dead nodes, publish the queue in order, apply what other nodes send, and leave on
//! shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use netsvr_protocol::{ToBusiness, ToGateway, pb};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, timeout};

use super::envelope::{Envelope, Kind, Opcode};
use super::node::{NodeId, unix_ms};
use super::outbound::{Outbound, conn_copy, parse_conn_copy};
use super::{BrokerError, BrokerLink, Lease, Publication};
use crate::close;
use crate::conn::CloseRequest;
use crate::event::{CloseReason, ConnSnapshot, Event, EventKind, MessageKind};
use crate::gateway::Gateway;

/// What a sender's messages were last seen at: (incarnation, sequence).
type Seen = HashMap<NodeId, (u64, u64)>;

/// Why a link's run ended.
enum End {
    /// The gateway stopped.
    Stop(Box<dyn BrokerLink>),
    /// The engine went away or failed.
    Broken(BrokerError),
}

/// What the runtime remembers across links.
struct State {
    /// Publications taken from the queue and not yet known to be published.
    carry: Vec<Publication>,
    /// The other nodes seen live at the last renewal.
    known: Vec<NodeId>,
    /// This node has held a lease before.
    registered: bool,
}

/// Runs the node's cluster link until the gateway has stopped.
pub(crate) async fn run(gateway: Gateway) {
    let Some(out) = gateway.shared.cluster.clone() else {
        return;
    };
    let Some(mut rx) = out.rx.lock().take() else {
        return;
    };
    let mut stopped = gateway.shared.stopped.subscribe();
    let config = out.config.clone();
    let mut state = State {
        carry: Vec::with_capacity(config.batch),
        known: Vec::new(),
        registered: false,
    };
    let mut seen = Seen::new();
    let mut backoff = config.retry_min;
    let mut inbox_task: Option<JoinHandle<Seen>> = None;
    loop {
        if *stopped.borrow() {
            break;
        }
        if let Some(task) = inbox_task.take() {
            // Everything the last link delivered is applied before the next one starts.
            seen = task.await.unwrap_or_default();
        }
        let (tx, inbox) = mpsc::channel(config.inbox);
        let link = match timeout(config.timeout, out.broker.connect(out.id(), tx)).await {
            Ok(Ok(link)) => link,
            failed => {
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "connect timed out".to_owned(),
                };
                tracing::warn!(broker = out.broker.name(), %error, ?backoff, "cluster broker unreachable");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stopped.wait_for(|s| *s) => {}
                }
                backoff = (backoff * 2).min(config.retry_max);
                continue;
            }
        };
        backoff = config.retry_min;
        out.metrics.connects.increment(1);
        out.set_connected(true);
        tracing::info!(broker = out.broker.name(), node = %out.id(), "cluster broker connected");
        let applier = gateway.node_only();
        inbox_task = Some(tokio::spawn(apply_inbox(
            applier,
            out.clone(),
            inbox,
            std::mem::take(&mut seen),
        )));
        let end = drive(&gateway, &out, link, &mut rx, &mut state, &mut stopped).await;
        out.set_connected(false);
        match end {
            End::Stop(link) => {
                leave(&out, link, &mut rx, &mut state).await;
                break;
            }
            End::Broken(error) => {
                tracing::warn!(broker = out.broker.name(), %error, "cluster broker link lost; reconnecting");
            }
        }
    }
}

/// One link's life: register, wait for the nodes known before, then publish and renew.
async fn drive(
    gateway: &Gateway,
    out: &Arc<Outbound>,
    mut link: Box<dyn BrokerLink>,
    rx: &mut mpsc::Receiver<Publication>,
    state: &mut State,
    stopped: &mut watch::Receiver<bool>,
) -> End {
    let config = &out.config;
    let since = unix_ms();
    let mut lease = match renew(out, &mut link).await {
        Ok(lease) => lease,
        Err(e) => return End::Broken(e),
    };
    // After an outage, hold the backlog until every node known before has renewed its lease
    // since this link came up (a node renews only while subscribed, so it has resubscribed),
    // or a lease time has passed (it is gone).
    let gate = Instant::now() + config.lease_ttl;
    while !state.known.iter().all(|k| {
        lease
            .nodes
            .iter()
            .any(|n| n.id == *k && n.heartbeat_ms >= since)
    }) && Instant::now() < gate
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        lease = match renew(out, &mut link).await {
            Ok(lease) => lease,
            Err(e) => return End::Broken(e),
        };
    }
    if let Err(e) = on_lease(gateway, out, &mut link, &lease, state).await {
        return End::Broken(e);
    }
    let mut heartbeat = tokio::time::interval(config.heartbeat);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    heartbeat.tick().await;
    let mut check = tokio::time::interval(Duration::from_millis(200));
    let mut batch = Vec::with_capacity(config.batch);
    loop {
        if !state.carry.is_empty() {
            if let Err(e) = publish(out, &mut link, &state.carry).await {
                return End::Broken(e);
            }
            state.carry.clear();
        }
        if *stopped.borrow() {
            return End::Stop(link);
        }
        tokio::select! {
            biased;
            _ = stopped.changed() => {}
            _ = heartbeat.tick() => {
                let lease = match renew(out, &mut link).await {
                    Ok(lease) => lease,
                    Err(e) => return End::Broken(e),
                };
                if let Err(e) = on_lease(gateway, out, &mut link, &lease, state).await {
                    return End::Broken(e);
                }
            }
            _ = check.tick() => {
                if link.is_broken() {
                    return End::Broken(BrokerError::Connection("subscription ended".into()));
                }
            }
            n = rx.recv_many(&mut batch, config.batch) => {
                if n == 0 {
                    return End::Stop(link);
                }
                out.taken(n);
                state.carry.append(&mut batch);
            }
        }
    }
}

async fn renew(out: &Outbound, link: &mut Box<dyn BrokerLink>) -> Result<Lease, BrokerError> {
    let mut me = out.me.clone();
    me.heartbeat_ms = unix_ms();
    timeout(out.config.timeout, link.renew(&me, out.config.lease_ttl))
        .await
        .unwrap_or(Err(BrokerError::Timeout))
}

async fn publish(
    out: &Outbound,
    link: &mut Box<dyn BrokerLink>,
    batch: &[Publication],
) -> Result<(), BrokerError> {
    timeout(out.config.timeout, link.publish(batch))
        .await
        .unwrap_or(Err(BrokerError::Timeout))?;
    let envelopes = batch
        .iter()
        .filter(|p| matches!(p, Publication::To(..) | Publication::All(_)))
        .count();
    out.metrics.published.increment(envelopes as u64);
    Ok(())
}

/// Acts on a renewal: records the live nodes; closes this node's connections if another
/// node claimed it; copies them again if the engine lost them; claims dead nodes.
async fn on_lease(
    gateway: &Gateway,
    out: &Outbound,
    link: &mut Box<dyn BrokerLink>,
    lease: &Lease,
    state: &mut State,
) -> Result<(), BrokerError> {
    out.nodes.store(Arc::new(lease.nodes.clone()));
    out.metrics.nodes.set(lease.nodes.len() as f64);
    state.known = lease
        .nodes
        .iter()
        .map(|n| n.id)
        .filter(|id| *id != out.id())
        .collect();
    if lease.claimed {
        tracing::error!(node = %out.id(), "this node missed its lease and was declared dead; closing its connections");
        fence(gateway);
    } else if !lease.existed && state.registered {
        tracing::warn!(node = %out.id(), "the engine lost this node's lease; copying its connections again");
        resync(gateway, out, link).await?;
    }
    if state.registered
        && lease
            .previous_incarnation
            .is_some_and(|other| other != out.me.incarnation)
    {
        tracing::error!(
            node = %out.id(),
            "another live node uses this node id (the same advertised address and port): uniqId routing and node-lost reports cannot work; give each node its own address"
        );
        out.metrics.duplicate_id.increment(1);
    }
    state.registered = true;
    let now = unix_ms();
    for dead in &lease.expired {
        if dead.id == out.id() {
            continue;
        }
        let claimed = timeout(out.config.timeout, link.claim(&dead.id, now))
            .await
            .unwrap_or(Err(BrokerError::Timeout))?;
        if let Some(copies) = claimed {
            report_lost(gateway, out, &dead.id, &copies);
        }
    }
    Ok(())
}

/// Reports the connections of a dead node closed (`node_lost`), once: only the claimer
/// gets the copies.
fn report_lost(gateway: &Gateway, out: &Outbound, dead: &NodeId, copies: &[Bytes]) {
    out.metrics.nodes_reaped.increment(1);
    let mut reported = 0u64;
    for copy in copies {
        let Some((meta, info)) = parse_conn_copy(copy) else {
            out.metrics.dropped_malformed.increment(1);
            continue;
        };
        let event = Event::new(
            ConnSnapshot::new(meta, info),
            EventKind::Close {
                reason: CloseReason::NodeLost,
            },
        );
        gateway.shared.emit(event);
        reported += 1;
    }
    out.metrics.conns_reaped.increment(reported);
    tracing::warn!(node = %dead, connections = reported, "cluster node lost; its connections are reported closed");
}

/// This node was declared dead and its connections reported closed: close them (1012)
/// without reporting them again.
fn fence(gateway: &Gateway) {
    for shard in gateway.shared.tables.conns.shards() {
        let conns: Vec<_> = shard.read().values().cloned().collect();
        for conn in conns {
            conn.lock().close_reported = true;
            conn.outbox.request_close(CloseRequest {
                code: close::SERVICE_RESTART,
                reason: "node lease lost",
                cause: CloseReason::NodeLost,
            });
        }
    }
}

/// Copies every local connection to the engine again (it lost them, e.g. restarted empty).
async fn resync(
    gateway: &Gateway,
    out: &Outbound,
    link: &mut Box<dyn BrokerLink>,
) -> Result<(), BrokerError> {
    let mut batch = Vec::with_capacity(out.config.batch);
    for shard in gateway.shared.tables.conns.shards() {
        let conns: Vec<_> = shard.read().values().cloned().collect();
        for conn in conns {
            let (key, value) = conn_copy(&conn.meta, &conn.info());
            batch.push(Publication::Put(key, value));
            if batch.len() >= out.config.batch {
                publish(out, link, &batch).await?;
                batch.clear();
            }
        }
    }
    if !batch.is_empty() {
        publish(out, link, &batch).await?;
    }
    Ok(())
}

/// On shutdown: publish what is left (the connections' removals), then give up the lease.
async fn leave(
    out: &Outbound,
    mut link: Box<dyn BrokerLink>,
    rx: &mut mpsc::Receiver<Publication>,
    state: &mut State,
) {
    let mut rest = std::mem::take(&mut state.carry);
    while let Ok(p) = rx.try_recv() {
        rest.push(p);
    }
    out.taken(rest.len());
    for chunk in rest.chunks(out.config.batch) {
        if let Err(e) = publish(out, &mut link, chunk).await {
            tracing::warn!(%e, "cluster backlog not published at shutdown");
            return;
        }
    }
    let left = timeout(out.config.timeout, link.leave(&out.id())).await;
    if !matches!(left, Ok(Ok(()))) {
        tracing::warn!("cluster lease not given up at shutdown; it will expire");
    }
}

/// Applies what other nodes publish, in arrival order, once each.
async fn apply_inbox(
    gateway: Gateway,
    out: Arc<Outbound>,
    mut inbox: mpsc::Receiver<Bytes>,
    mut seen: Seen,
) -> Seen {
    while let Some(bytes) = inbox.recv().await {
        let Ok(envelope) = Envelope::decode(&bytes) else {
            out.metrics.dropped_malformed.increment(1);
            continue;
        };
        if envelope.origin == out.id() {
            continue; // this node's own shared publications
        }
        let last = seen
            .entry(envelope.origin)
            .or_insert((envelope.incarnation, 0));
        if last.0 != envelope.incarnation {
            *last = (envelope.incarnation, 0);
        }
        if envelope.seq <= last.1 {
            out.metrics.dropped_duplicate.increment(1);
            continue;
        }
        last.1 = envelope.seq;
        out.metrics.received.increment(1);
        let lag = unix_ms().saturating_sub(envelope.sent_ms);
        out.metrics.lag.record(lag as f64 / 1000.0);
        handle(&gateway, &out, envelope);
    }
    seen
}

fn handle(gateway: &Gateway, out: &Outbound, envelope: Envelope) {
    match envelope.kind {
        Kind::Command | Kind::Query => {
            let Ok(message) = ToGateway::decode(envelope.cmd, envelope.body) else {
                out.metrics.dropped_malformed.increment(1);
                return;
            };
            if envelope.kind == Kind::Command {
                command(gateway, envelope.opcode, message);
            } else if let Some(answer) =
                crate::command::apply(gateway, message, pb::MetricsResp::default)
            {
                out.reply(envelope.origin, envelope.request, &answer);
            }
        }
        Kind::Reply => {
            let Ok(answer) = ToBusiness::decode(envelope.cmd, envelope.body) else {
                out.metrics.dropped_malformed.increment(1);
                return;
            };
            let waiting = out.pending.lock().get(&envelope.request).cloned();
            if let Some(tx) = waiting {
                let _ = tx.try_send((envelope.origin, answer));
            }
        }
    }
}

/// Applies a command from another node here; a forced opcode applies to sends.
fn command(gateway: &Gateway, opcode: Opcode, message: ToGateway) {
    let kind = match opcode {
        Opcode::Default => None,
        Opcode::Text => Some(MessageKind::Text),
        Opcode::Binary => Some(MessageKind::Binary),
    };
    match (kind, message) {
        (Some(kind), ToGateway::SingleCast(m)) => {
            if let Ok(id) = m.uniq_id.parse() {
                gateway.send_as(&id, kind, &m.data);
            }
        }
        (Some(kind), ToGateway::Broadcast(m)) => {
            gateway.broadcast_as(kind, &m.data);
        }
        (_, message) => {
            crate::command::apply(gateway, message, pb::MetricsResp::default);
        }
    }
}
