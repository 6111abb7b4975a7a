//! The cluster's registry in JetStream KV: node leases (with the "claimed" tombstone that
//! tells a paused node it was declared dead) and the connection copies of every node.
//!
//! Every change that must happen once (renewing over a claim, claiming a dead node) is a
//! revision-checked write (`Nats-Expected-Last-Subject-Sequence`): of two racing writers on
//! one key, exactly one succeeds.

use std::time::Duration;

use async_nats::jetstream::Context;
use async_nats::jetstream::kv::{self, Operation, UpdateErrorKind};
use bytes::Bytes;
use futures_util::StreamExt as _;

use super::Names;
use super::store::{bucket, connection, entries, scan};
use crate::cluster::{BrokerError, Lease, NodeId, NodeRecord, unix_ms};

/// How long a "claimed" tombstone waits for a paused node to come back and see it (as the
/// Redis broker's marker); older ones are removed by any node's renewal.
const CLAIMED_TOMBSTONE_MS: u64 = 3_600_000;

/// Renewal attempts when the lease key changes between reading and writing it.
const RENEW_ATTEMPTS: usize = 8;

/// Connection copies removed concurrently (one stream purge request each).
const PURGES_IN_FLIGHT: usize = 64;

/// What a node's lease key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    /// A lease: valid until `expiry_ms` (unix ms). Stored as `L|<expiry>|<record>`.
    Lease { expiry_ms: u64, record: NodeRecord },
    /// The node (this incarnation) was claimed dead at `at_ms`. Stored as `C|<inc>|<at>`.
    Claimed { incarnation: u64, at_ms: u64 },
}

impl Slot {
    fn encode(&self) -> Bytes {
        match self {
            Self::Lease { expiry_ms, record } => {
                Bytes::from(format!("L|{expiry_ms}|{}", record.encode()))
            }
            Self::Claimed { incarnation, at_ms } => Bytes::from(format!("C|{incarnation}|{at_ms}")),
        }
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(3, '|');
        let kind = parts.next()?;
        let first: u64 = parts.next()?.parse().ok()?;
        let rest = parts.next()?;
        match kind {
            "L" => Some(Self::Lease {
                expiry_ms: first,
                record: NodeRecord::decode(rest)?,
            }),
            "C" => Some(Self::Claimed {
                incarnation: first,
                at_ms: rest.parse().ok()?,
            }),
            _ => None,
        }
    }
}

/// The two buckets of one cluster.
pub(super) struct Registry {
    js: Context,
    /// Node id → [`Slot`].
    nodes: kv::Store,
    /// `<node id>.<uniqId>` → copy of the connection.
    conns: kv::Store,
}

impl Registry {
    /// Opens (or creates) the cluster's buckets.
    pub(super) async fn open(js: &Context, names: &Names) -> Result<Self, BrokerError> {
        let nodes = bucket(js, names.nodes_bucket(), "netsvr cluster: node leases").await?;
        let conns = bucket(
            js,
            names.conns_bucket(),
            "netsvr cluster: connection copies",
        )
        .await?;
        Ok(Self {
            js: js.clone(),
            nodes,
            conns,
        })
    }

    fn conn_key(node: &NodeId, uniq_id: &str) -> String {
        format!("{node}.{uniq_id}")
    }

    /// Applies connection-copy changes of node `me` (already reduced to the last change per
    /// key): puts are pipelined, removals purge the key's subject (no marker is left).
    pub(super) async fn write_copies(
        &self,
        me: &NodeId,
        changes: Vec<(&str, Option<&Bytes>)>,
    ) -> Result<(), BrokerError> {
        let mut acks = Vec::new();
        let mut purges = Vec::new();
        for (uniq_id, value) in changes {
            // A uniqId is hex; anything else would make an invalid subject and fail the batch.
            if uniq_id.is_empty() || !uniq_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                tracing::warn!(uniq_id, "connection copy with an unusable key skipped");
                continue;
            }
            let subject = format!("{}{}", self.conns.prefix, Self::conn_key(me, uniq_id));
            match value {
                Some(value) => acks.push(
                    self.js
                        .publish(subject, value.clone())
                        .await
                        .map_err(connection)?,
                ),
                None => purges.push(subject),
            }
        }
        let stream = &self.conns.stream;
        let mut removed = futures_util::stream::iter(purges)
            .map(|subject| async move { stream.purge().filter(subject).await })
            .buffer_unordered(PURGES_IN_FLIGHT);
        while let Some(result) = removed.next().await {
            result.map_err(connection)?;
        }
        for ack in acks {
            ack.await.map_err(connection)?;
        }
        Ok(())
    }

    /// Registers or refreshes `me`'s lease until now + `ttl` and lists every lease.
    pub(super) async fn renew(&self, me: &NodeRecord, ttl: Duration) -> Result<Lease, BrokerError> {
        let key = me.id.to_string();
        let now = unix_ms();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let value = Slot::Lease {
            expiry_ms: now.saturating_add(ttl_ms),
            record: me.clone(),
        }
        .encode();
        let mut found = None;
        for _ in 0..RENEW_ATTEMPTS {
            let entry = self.nodes.entry(key.as_str()).await.map_err(connection)?;
            let (revision, slot) = match entry {
                None => (0, None),
                Some(entry) => {
                    let slot = (entry.operation == Operation::Put)
                        .then(|| Slot::decode(&entry.value))
                        .flatten();
                    (entry.revision, slot)
                }
            };
            let (existed, claimed) = match slot {
                Some(Slot::Lease { .. }) => (true, false),
                Some(Slot::Claimed { incarnation, .. }) => (false, incarnation == me.incarnation),
                None => (false, false),
            };
            match self
                .nodes
                .update(key.as_str(), value.clone(), revision)
                .await
            {
                Ok(_) => {
                    found = Some((existed, claimed));
                    break;
                }
                // Claimed (or renewed by another process with our id) meanwhile: read again.
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {}
                Err(e) => return Err(connection(e)),
            }
        }
        let Some((existed, claimed)) = found else {
            return Err(BrokerError::Protocol(format!(
                "lease {key} kept changing during the renewal"
            )));
        };
        let (live, expired) = self.leases(now).await?;
        Ok(Lease::new(live, expired, existed, claimed))
    }

    /// Lists the leases as (valid at `now`, run out before it); removes old tombstones.
    async fn leases(&self, now: u64) -> Result<(Vec<NodeRecord>, Vec<NodeRecord>), BrokerError> {
        let items = entries(&self.nodes).await?;
        let (mut live, mut expired) = (Vec::new(), Vec::new());
        for item in items.into_iter().filter(|i| i.put) {
            match Slot::decode(&item.value) {
                Some(Slot::Lease { expiry_ms, record }) => {
                    if expiry_ms >= now {
                        live.push(record);
                    } else {
                        expired.push(record);
                    }
                }
                Some(Slot::Claimed { at_ms, .. })
                    if now.saturating_sub(at_ms) > CLAIMED_TOMBSTONE_MS =>
                {
                    // Exactly this message (what is older than the next sequence): a renewal
                    // since has a later sequence and stays.
                    let _ = self
                        .nodes
                        .stream
                        .purge()
                        .filter(format!("{}{}", self.nodes.prefix, item.key))
                        .sequence(item.revision + 1)
                        .await;
                }
                _ => {}
            }
        }
        live.sort_by_key(|r| r.id);
        expired.sort_by_key(|r| r.id);
        Ok((live, expired))
    }

    /// Claims `node` if its lease ended before `now_ms`: replaces the lease with a
    /// tombstone (revision-checked, so one caller wins), then takes and removes its copies.
    pub(super) async fn claim(
        &self,
        node: &NodeId,
        now_ms: u64,
    ) -> Result<Option<Vec<Bytes>>, BrokerError> {
        let key = node.to_string();
        let Some(entry) = self.nodes.entry(key.as_str()).await.map_err(connection)? else {
            return Ok(None);
        };
        if entry.operation != Operation::Put {
            return Ok(None);
        }
        let Some(Slot::Lease { expiry_ms, record }) = Slot::decode(&entry.value) else {
            return Ok(None);
        };
        if expiry_ms >= now_ms {
            return Ok(None);
        }
        let tombstone = Slot::Claimed {
            incarnation: record.incarnation,
            at_ms: unix_ms(),
        };
        match self
            .nodes
            .update(key.as_str(), tombstone.encode(), entry.revision)
            .await
        {
            Ok(_) => {}
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => return Ok(None),
            Err(e) => return Err(connection(e)),
        }
        let filter = format!("{}{node}.>", self.conns.prefix);
        let copies = scan(&self.conns.stream, &self.conns.prefix, filter.clone())
            .await?
            .into_iter()
            .filter(|i| i.put)
            .map(|i| i.value)
            .collect();
        self.conns
            .stream
            .purge()
            .filter(filter)
            .await
            .map_err(connection)?;
        Ok(Some(copies))
    }

    /// Gives up `me`'s lease and copies (nothing is left behind, not even markers).
    pub(super) async fn leave(&self, me: &NodeId) -> Result<(), BrokerError> {
        self.nodes
            .stream
            .purge()
            .filter(format!("{}{me}", self.nodes.prefix))
            .await
            .map_err(connection)?;
        self.conns
            .stream
            .purge()
            .filter(format!("{}{me}.>", self.conns.prefix))
            .await
            .map_err(connection)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip() {
        let id = "7f00000117ae".parse().unwrap();
        let mut record = NodeRecord::new(id, "127.0.0.1:6060|x".into(), 17, 99);
        record.heartbeat_ms = 21;
        let lease = Slot::Lease {
            expiry_ms: 1_000,
            record,
        };
        assert_eq!(Slot::decode(&lease.encode()), Some(lease));
        let claimed = Slot::Claimed {
            incarnation: 99,
            at_ms: 5,
        };
        assert_eq!(&claimed.encode()[..], b"C|99|5");
        assert_eq!(Slot::decode(&claimed.encode()), Some(claimed));
        for bad in [
            &b""[..],
            b"L|x|y",
            b"C|1|z",
            b"X|1|2",
            b"L|1|nothex|1|2|3|a",
            b"\xff",
        ] {
            assert_eq!(Slot::decode(bad), None);
        }
    }
}
