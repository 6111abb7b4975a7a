//! The NATS cluster broker: core NATS subjects carry commands between nodes; JetStream KV
//! holds the leases and the copies of every node's connections. Revision-checked KV writes
//! make the claim of a dead node succeed for exactly one survivor. Feature `nats`; needs a
//! NATS server with JetStream enabled (`nats-server -js`).
//!
//! Subjects and buckets, under the configured prefix `P`:
//!
//! | name | kind | holds |
//! |---|---|---|
//! | `P.node.<id>` | subject | envelopes for node `<id>`, shared ones included |
//! | `P.sync.<id>.<n>` | subject | a link's own round-trip markers (see below) |
//! | `P_nodes` | KV bucket | node id → `L\|<expiry ms>\|<record>` (the lease; the record as [`NodeRecord::encode`] writes it), or `C\|<incarnation>\|<claimed at ms>`, the tombstone a claim leaves (removed after an hour) |
//! | `P_conns` | KV bucket | `<node id>.<uniqId>` → copy of the connection (for the node-lost report) |
//!
//! **One subscription per node.** async-nats gives each subscription its own channel, so
//! two subscriptions (a node's own and a shared one) could not be merged in the order they
//! were published. A node therefore subscribes to its own subject only, and
//! [`Publication::All`] is published once to **each other live node's** subject (the same
//! `Bytes`, encoded once), after the node list the link saw at its last renewal. A node
//! that has just joined gets shared commands from the moment the others' next renewal
//! lists it (within one heartbeat), as a Redis subscriber gets only what is published after
//! it subscribed. One connection publishes everything, so every receiver gets each origin's
//! messages in the order they were published.
//!
//! **Delivery.** Core NATS publishing is fire-and-forget, and a flush only hands the bytes
//! to the socket. Each publish batch therefore ends with a marker on the link's own sync
//! subject and waits until it comes back: the server has then read the whole batch, and the
//! KV writes in it are acknowledged. A batch that fails is published again by the runtime
//! after reconnecting (receivers drop the duplicates by sequence). What the server had
//! accepted for a node whose own connection then broke is lost, as with Redis pub/sub.
//!
//! **Registry.** Renewal and claim are revision-checked KV writes: a claim replaces the
//! expired lease with the tombstone only if nobody wrote the key since it was read, so one
//! survivor wins; the renewal of a paused node that finds the tombstone of its own
//! incarnation reports `claimed`. Unlike Redis' Lua script the claim is not one step: the
//! winner then reads and purges the dead node's copies, and a winner that dies in between
//! leaves them unreported. Removed copies are purged (no delete markers pile up). The
//! buckets are file-backed with one replica, created on first connect (tested with
//! nats-server 2.9); raise the replicas of streams `KV_P_nodes` and `KV_P_conns` on a
//! NATS cluster. A node's subscription holds up to 65,536 messages that its inbox has no
//! room for yet; past that NATS drops them, which is logged as an error.
//!
//! **No silent reconnects.** async-nats reconnects by itself and resubscribes, but what
//! was published to this node meanwhile would be lost without the runtime knowing. So a
//! link is broken as soon as its connection reports a disconnection (and the client gives
//! up after one attempt of its own): the runtime then reconnects with a new link and holds
//! its backlog until every node it knew has renewed its lease again.

mod config;
mod registry;
mod store;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event, Subject, Subscriber};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use config::NatsBrokerConfig;

use crate::cluster::{Broker, BrokerError, BrokerLink, Lease, NodeId, NodeRecord, Publication};
use crate::config::ConfigError;
use registry::Registry;
use store::connection;

/// Time allowed to connect, and to each JetStream request or acknowledgement.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the client pings the server to find a dead connection.
const PING_INTERVAL: Duration = Duration::from_secs(5);

fn lost() -> BrokerError {
    BrokerError::Connection("NATS connection lost".into())
}

/// Subject and bucket names under one prefix.
#[derive(Debug, Clone)]
struct Names {
    prefix: String,
}

impl Names {
    fn node(&self, id: &NodeId) -> Subject {
        Subject::from(format!("{}.node.{id}", self.prefix))
    }
    fn sync(&self, id: &NodeId) -> Subject {
        Subject::from(format!(
            "{}.sync.{id}.{:016x}",
            self.prefix,
            rand::random::<u64>()
        ))
    }
    fn nodes_bucket(&self) -> String {
        format!("{}_nodes", self.prefix)
    }
    fn conns_bucket(&self) -> String {
        format!("{}_conns", self.prefix)
    }
}

/// The NATS [`Broker`].
#[derive(Debug, Clone)]
pub struct NatsBroker {
    url: String,
    names: Names,
}

impl NatsBroker {
    /// A broker for `config` (validated; no I/O until a node connects).
    pub fn new(config: &NatsBrokerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            url: config.url.clone(),
            names: Names {
                prefix: config.prefix.clone(),
            },
        })
    }
}

#[async_trait]
impl Broker for NatsBroker {
    fn name(&self) -> &'static str {
        "nats"
    }

    async fn connect(
        &self,
        me: NodeId,
        inbox: mpsc::Sender<Bytes>,
    ) -> Result<Box<dyn BrokerLink>, BrokerError> {
        let (broken_tx, broken) = watch::channel(false);
        let broken_tx = Arc::new(broken_tx);
        let flag = broken_tx.clone();
        let client = ConnectOptions::new()
            .name(format!("netsvr-cluster-{me}"))
            .connection_timeout(OPERATION_TIMEOUT)
            .request_timeout(Some(OPERATION_TIMEOUT))
            .ping_interval(PING_INTERVAL)
            // `Some(0)` would mean "forever"; one attempt is the least async-nats allows. The
            // link is marked broken on the disconnection itself, before that attempt.
            .max_reconnects(Some(1))
            .event_callback(move |event| {
                let flag = flag.clone();
                async move {
                    match event {
                        Event::Disconnected | Event::Closed => {
                            flag.send_replace(true);
                        }
                        Event::SlowConsumer(sid) => {
                            tracing::error!(
                                sid,
                                "NATS dropped cluster messages: this node's subscription is full"
                            );
                        }
                        _ => {}
                    }
                }
            })
            .connect(self.url.as_str())
            .await
            .map_err(connection)?;
        let subscriber = client
            .subscribe(self.names.node(&me))
            .await
            .map_err(connection)?;
        let sync_subject = self.names.sync(&me);
        let sync = client
            .subscribe(sync_subject.clone())
            .await
            .map_err(connection)?;
        let js = store::context(client.clone(), OPERATION_TIMEOUT);
        // JetStream requests are answered after the server has read the subscriptions sent
        // before them on this connection: once the buckets are open, the node is subscribed.
        let registry = Registry::open(&js, &self.names).await?;
        let reader = tokio::spawn(read(subscriber, inbox, broken_tx));
        Ok(Box::new(NatsLink {
            client,
            registry,
            names: self.names.clone(),
            me,
            others: Vec::new(),
            sync,
            sync_subject,
            sync_token: 0,
            broken,
            reader,
        }))
    }
}

/// Feeds the inbox with what arrives on the node's subject, in order, waiting for room.
async fn read(
    mut subscriber: Subscriber,
    inbox: mpsc::Sender<Bytes>,
    broken: Arc<watch::Sender<bool>>,
) {
    while let Some(message) = subscriber.next().await {
        if inbox.send(message.payload).await.is_err() {
            break;
        }
    }
    broken.send_replace(true);
}

/// One node's connection to NATS: a task feeding the inbox from the node's subscription,
/// and the client for publishing and the registry.
struct NatsLink {
    client: Client,
    registry: Registry,
    names: Names,
    me: NodeId,
    /// The subjects of the other live nodes as of the last renewal.
    others: Vec<Subject>,
    /// The link's own round-trip subject, and the last marker sent on it.
    sync: Subscriber,
    sync_subject: Subject,
    sync_token: u64,
    broken: watch::Receiver<bool>,
    reader: JoinHandle<()>,
}

impl Drop for NatsLink {
    fn drop(&mut self) {
        // Ends the subscription; the inbox closes once what it holds is applied. The client
        // closes its connection when its last handle (held here) is gone.
        self.reader.abort();
    }
}

impl NatsLink {
    /// Runs `operation` unless the connection breaks first.
    async fn guarded<T>(
        mut broken: watch::Receiver<bool>,
        operation: impl Future<Output = Result<T, BrokerError>>,
    ) -> Result<T, BrokerError> {
        tokio::select! {
            result = operation => result,
            _ = broken.wait_for(|b| *b) => Err(lost()),
        }
    }

    /// Sends a marker on the link's own sync subject and waits for it to come back: the
    /// server has then read everything published before it on this connection.
    async fn round_trip(&mut self) -> Result<(), BrokerError> {
        self.sync_token += 1;
        let token = Bytes::from(self.sync_token.to_string());
        self.client
            .publish(self.sync_subject.clone(), token.clone())
            .await
            .map_err(connection)?;
        self.client.flush().await.map_err(connection)?;
        while let Some(message) = self.sync.next().await {
            if message.payload == token {
                return Ok(());
            }
        }
        Err(lost())
    }

    async fn publish_batch(&mut self, batch: &[Publication]) -> Result<(), BrokerError> {
        // Connection copies: only the last change of each key matters (one key's changes
        // are Puts and at most one final Remove); they are written after the envelopes.
        let mut copies: Vec<(&str, Option<&Bytes>)> = Vec::new();
        let mut index = std::collections::HashMap::new();
        for publication in batch {
            match publication {
                Publication::To(node, bytes) => {
                    self.client
                        .publish(self.names.node(node), bytes.clone())
                        .await
                        .map_err(connection)?;
                }
                Publication::All(bytes) => {
                    for subject in &self.others {
                        self.client
                            .publish(subject.clone(), bytes.clone())
                            .await
                            .map_err(connection)?;
                    }
                }
                Publication::Put(key, value) => {
                    set(&mut copies, &mut index, key, Some(value));
                }
                Publication::Remove(key) => {
                    set(&mut copies, &mut index, key, None);
                }
            }
        }
        if !copies.is_empty() {
            self.registry.write_copies(&self.me, copies).await?;
        }
        self.round_trip().await
    }
}

/// Records the latest change of one connection copy.
fn set<'a>(
    copies: &mut Vec<(&'a str, Option<&'a Bytes>)>,
    index: &mut std::collections::HashMap<&'a str, usize>,
    key: &'a str,
    value: Option<&'a Bytes>,
) {
    match index.get(key) {
        Some(&i) => copies[i].1 = value,
        None => {
            index.insert(key, copies.len());
            copies.push((key, value));
        }
    }
}

#[async_trait]
impl BrokerLink for NatsLink {
    async fn publish(&mut self, batch: &[Publication]) -> Result<(), BrokerError> {
        if self.is_broken() {
            return Err(lost());
        }
        let broken = self.broken.clone();
        Self::guarded(broken, self.publish_batch(batch)).await
    }

    async fn renew(&mut self, me: &NodeRecord, ttl: Duration) -> Result<Lease, BrokerError> {
        if self.is_broken() {
            return Err(lost());
        }
        let lease = Self::guarded(self.broken.clone(), self.registry.renew(me, ttl)).await?;
        self.others = lease
            .nodes
            .iter()
            .filter(|n| n.id != self.me)
            .map(|n| self.names.node(&n.id))
            .collect();
        Ok(lease)
    }

    async fn claim(
        &mut self,
        node: &NodeId,
        now_ms: u64,
    ) -> Result<Option<Vec<Bytes>>, BrokerError> {
        if self.is_broken() {
            return Err(lost());
        }
        Self::guarded(self.broken.clone(), self.registry.claim(node, now_ms)).await
    }

    async fn leave(&mut self, me: &NodeId) -> Result<(), BrokerError> {
        if self.is_broken() {
            return Err(lost());
        }
        Self::guarded(self.broken.clone(), self.registry.leave(me)).await
    }

    fn is_broken(&self) -> bool {
        // The disconnection event, the connection's state, and (should the event have been
        // missed) a reconnect the client made by itself.
        *self.broken.borrow()
            || self.client.connection_state() != async_nats::connection::State::Connected
            || self.client.statistics().connects.load(Ordering::Relaxed) > 1
    }
}
