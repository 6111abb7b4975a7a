//! Sending: to one connection, a customer, many, a topic, everyone, and the bulk forms.
//! Every payload is encoded into a frame once; all recipients share the same bytes.

use std::sync::Arc;
use std::time::Instant;

use super::{Gateway, Shared};
use crate::conn::{Conn, Frame};
use crate::event::MessageKind;
use crate::id::UniqId;
use crate::metrics::FanoutKind;
use crate::table::{Members, Striped, index_members};
use crate::wire::OpCode;

#[cfg(feature = "cluster")]
use crate::cluster::{Opcode, copy, opcode, texts};
#[cfg(feature = "cluster")]
use netsvr_protocol::{ToGateway, pb};

/// A bulk call's targets and payloads do not pair up: it must be one target with any number
/// of payloads, or as many targets as payloads. Nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bulk shape mismatch: {targets} targets, {payloads} payloads")]
#[non_exhaustive]
pub struct BulkShapeError {
    /// Targets given.
    pub targets: usize,
    /// Payloads given.
    pub payloads: usize,
}

fn opcode_of(kind: MessageKind) -> OpCode {
    match kind {
        MessageKind::Text => OpCode::Text,
        MessageKind::Binary => OpCode::Binary,
    }
}

/// How a bulk call pairs targets and payloads.
enum Pairing {
    OneTarget,
    ByIndex,
}

fn pairing(targets: usize, payloads: usize) -> Result<Pairing, BulkShapeError> {
    match (targets, payloads) {
        (1, _) => Ok(Pairing::OneTarget),
        (t, p) if t == p => Ok(Pairing::ByIndex),
        (targets, payloads) => Err(BulkShapeError { targets, payloads }),
    }
}

impl Shared {
    /// Queues `frame` to each connection; returns how many took it.
    fn enqueue_each(&self, conns: &[Arc<Conn>], frame: &Frame) -> usize {
        conns.iter().filter(|c| self.enqueue(c, frame)).count()
    }

    fn members_of_keys<S: AsRef<str>>(
        &self,
        table: &Striped<String, Members>,
        keys: &[S],
    ) -> Vec<Arc<Conn>> {
        let mut out = Vec::new();
        for key in keys {
            out.extend(index_members(table, key.as_ref()));
        }
        out
    }

    fn bulk_error(&self, e: BulkShapeError) -> BulkShapeError {
        self.metrics.drop_bulk_shape.increment(1);
        tracing::warn!(
            targets = e.targets,
            payloads = e.payloads,
            "bulk send refused"
        );
        e
    }
}

impl Gateway {
    /// Sends `data` to one connection. Returns whether it was queued (false when the
    /// connection is unknown, closing, or its queue is full). With a cluster, a connection
    /// of another node gets it through the broker: true means the broker took it.
    pub fn send(&self, uniq_id: &UniqId, data: impl AsRef<[u8]>) -> bool {
        let s = &self.shared;
        #[cfg(feature = "cluster")]
        if let Some(taken) = self.forward_owner(uniq_id, Opcode::Default, || {
            ToGateway::SingleCast(pb::SingleCast {
                uniq_id: uniq_id.to_string(),
                data: copy(data.as_ref()),
            })
        }) {
            return taken;
        }
        let Some(conn) = s.tables.get(uniq_id) else {
            return false;
        };
        let sent = s.enqueue(&conn, &s.frame(data.as_ref()));
        s.count_fanout(FanoutKind::Single, usize::from(sent), None);
        sent
    }

    /// Sends `data` to one connection as a text or binary frame, whatever the configured
    /// downstream opcode (an echo keeps the client's opcode this way).
    pub fn send_as(&self, uniq_id: &UniqId, kind: MessageKind, data: impl AsRef<[u8]>) -> bool {
        let s = &self.shared;
        #[cfg(feature = "cluster")]
        if let Some(taken) = self.forward_owner(uniq_id, opcode(kind), || {
            ToGateway::SingleCast(pb::SingleCast {
                uniq_id: uniq_id.to_string(),
                data: copy(data.as_ref()),
            })
        }) {
            return taken;
        }
        let Some(conn) = s.tables.get(uniq_id) else {
            return false;
        };
        let sent = s.enqueue(&conn, &s.frame_as(opcode_of(kind), data.as_ref()));
        s.count_fanout(FanoutKind::Single, usize::from(sent), None);
        sent
    }

    /// Sends `data` to every connection of a customer; returns how many were queued.
    pub fn send_to_customer(&self, customer_id: &str, data: impl AsRef<[u8]>) -> usize {
        self.multicast_customers(&[customer_id], data)
    }

    /// Sends one payload to many connections (the frame is encoded once). With a cluster,
    /// other nodes' connections get it through the broker and are not counted here.
    pub fn multicast(&self, uniq_ids: &[UniqId], data: impl AsRef<[u8]>) -> usize {
        let s = &self.shared;
        #[cfg(feature = "cluster")]
        let local = self.forward_ids(uniq_ids, |ids| {
            ToGateway::Multicast(pb::Multicast {
                uniq_ids: texts(ids),
                data: copy(data.as_ref()),
            })
        });
        #[cfg(feature = "cluster")]
        let uniq_ids: &[UniqId] = &local;
        let started = Instant::now();
        let conns: Vec<Arc<Conn>> = uniq_ids.iter().filter_map(|id| s.tables.get(id)).collect();
        let n = s.enqueue_each(&conns, &s.frame(data.as_ref()));
        s.count_fanout(FanoutKind::Multicast, n, Some(started));
        n
    }

    /// Sends one payload to every connection of each customer. With a cluster, every other
    /// node does the same for its connections (counted there).
    pub fn multicast_customers<S: AsRef<str>>(
        &self,
        customer_ids: &[S],
        data: impl AsRef<[u8]>,
    ) -> usize {
        let s = &self.shared;
        #[cfg(feature = "cluster")]
        self.forward_all(Opcode::Default, || {
            ToGateway::MulticastByCustomerId(pb::MulticastByCustomerId {
                customer_ids: customer_ids.iter().map(|c| c.as_ref().to_owned()).collect(),
                data: copy(data.as_ref()),
            })
        });
        let started = Instant::now();
        let conns = s.members_of_keys(&s.tables.customers, customer_ids);
        let n = s.enqueue_each(&conns, &s.frame(data.as_ref()));
        s.count_fanout(FanoutKind::Customer, n, Some(started));
        n
    }

    /// Sends to subscribers of each topic. A member of two listed topics gets it twice, as
    /// in netsvr.
    pub fn publish<S: AsRef<str>>(&self, topics: &[S], data: impl AsRef<[u8]>) -> usize {
        let s = &self.shared;
        #[cfg(feature = "cluster")]
        self.forward_all(Opcode::Default, || {
            ToGateway::TopicPublish(pb::TopicPublish {
                topics: topics.iter().map(|t| t.as_ref().to_owned()).collect(),
                data: copy(data.as_ref()),
            })
        });
        let started = Instant::now();
        let conns = s.members_of_keys(&s.tables.topics, topics);
        let n = s.enqueue_each(&conns, &s.frame(data.as_ref()));
        s.count_fanout(FanoutKind::Topic, n, Some(started));
        n
    }

    /// Sends to every connection. Recipients are resolved shard by shard under a read lock;
    /// the lock is released before queuing.
    pub fn broadcast(&self, data: impl AsRef<[u8]>) -> usize {
        #[cfg(feature = "cluster")]
        self.forward_all(Opcode::Default, || {
            ToGateway::Broadcast(pb::Broadcast {
                data: copy(data.as_ref()),
            })
        });
        self.broadcast_frame(self.shared.frame(data.as_ref()))
    }

    /// As [`Gateway::broadcast`], as a text or binary frame whatever the configured
    /// downstream opcode.
    pub fn broadcast_as(&self, kind: MessageKind, data: impl AsRef<[u8]>) -> usize {
        #[cfg(feature = "cluster")]
        self.forward_all(opcode(kind), || {
            ToGateway::Broadcast(pb::Broadcast {
                data: copy(data.as_ref()),
            })
        });
        let frame = self.shared.frame_as(opcode_of(kind), data.as_ref());
        self.broadcast_frame(frame)
    }

    fn broadcast_frame(&self, frame: Frame) -> usize {
        let s = &self.shared;
        let started = Instant::now();
        let mut batch: Vec<Arc<Conn>> = Vec::new();
        let mut n = 0;
        for shard in s.tables.conns.shards() {
            batch.extend(shard.read().values().cloned());
            n += s.enqueue_each(&batch, &frame);
            batch.clear();
        }
        s.count_fanout(FanoutKind::Broadcast, n, Some(started));
        n
    }

    /// SingleCastBulk: one connection with N payloads (all, in order), or N connections with
    /// N payloads paired by index. Returns frames queued.
    pub fn send_bulk<D: AsRef<[u8]>>(
        &self,
        uniq_ids: &[UniqId],
        data: &[D],
    ) -> Result<usize, BulkShapeError> {
        let s = &self.shared;
        let pairs = pairing(uniq_ids.len(), data.len()).map_err(|e| s.bulk_error(e))?;
        #[cfg(feature = "cluster")]
        match pairs {
            Pairing::OneTarget => {
                let owner = uniq_ids.first().and_then(|id| {
                    self.forward_owner(id, Opcode::Default, || {
                        ToGateway::SingleCastBulk(pb::SingleCastBulk {
                            uniq_ids: texts(&uniq_ids[..1]),
                            data: data.iter().map(|d| copy(d.as_ref())).collect(),
                        })
                    })
                });
                if let Some(taken) = owner {
                    return Ok(if taken { data.len() } else { 0 });
                }
            }
            Pairing::ByIndex => {
                if let Some((ids, local)) = self.forward_pairs(uniq_ids, data) {
                    return Ok(self.node_only().send_bulk(&ids, &local).unwrap_or(0));
                }
            }
        }
        let n = match pairs {
            Pairing::OneTarget => {
                let frames: Vec<Frame> = data.iter().map(|d| s.frame(d.as_ref())).collect();
                let conn = uniq_ids.first().and_then(|id| s.tables.get(id));
                match conn {
                    Some(conn) if s.enqueue_all(&conn, &frames) => frames.len(),
                    _ => 0,
                }
            }
            Pairing::ByIndex => uniq_ids
                .iter()
                .zip(data)
                .filter(|(id, d)| {
                    s.tables
                        .get(id)
                        .is_some_and(|c| s.enqueue(&c, &s.frame(d.as_ref())))
                })
                .count(),
        };
        s.count_fanout(FanoutKind::Single, n, None);
        Ok(n)
    }

    /// SingleCastBulkByCustomerId: as [`Gateway::send_bulk`], per customer (each payload goes
    /// to every connection of its customer).
    pub fn send_bulk_to_customers<S: AsRef<str>, D: AsRef<[u8]>>(
        &self,
        customer_ids: &[S],
        data: &[D],
    ) -> Result<usize, BulkShapeError> {
        let s = &self.shared;
        let tables = &s.tables;
        #[cfg(feature = "cluster")]
        if pairing(customer_ids.len(), data.len()).is_ok() {
            self.forward_all(Opcode::Default, || {
                ToGateway::SingleCastBulkByCustomerId(pb::SingleCastBulkByCustomerId {
                    customer_ids: customer_ids.iter().map(|c| c.as_ref().to_owned()).collect(),
                    data: data.iter().map(|d| copy(d.as_ref())).collect(),
                })
            });
        }
        self.bulk_by_key(&tables.customers, customer_ids, data, FanoutKind::Customer)
    }

    /// TopicPublishBulk: one topic with N payloads (all, in order), or N topics with N
    /// payloads paired by index.
    pub fn publish_bulk<S: AsRef<str>, D: AsRef<[u8]>>(
        &self,
        topics: &[S],
        data: &[D],
    ) -> Result<usize, BulkShapeError> {
        let s = &self.shared;
        #[cfg(feature = "cluster")]
        if pairing(topics.len(), data.len()).is_ok() {
            self.forward_all(Opcode::Default, || {
                ToGateway::TopicPublishBulk(pb::TopicPublishBulk {
                    topics: topics.iter().map(|t| t.as_ref().to_owned()).collect(),
                    data: data.iter().map(|d| copy(d.as_ref())).collect(),
                })
            });
        }
        self.bulk_by_key(&s.tables.topics, topics, data, FanoutKind::Topic)
    }

    fn bulk_by_key<S: AsRef<str>, D: AsRef<[u8]>>(
        &self,
        table: &Striped<String, Members>,
        keys: &[S],
        data: &[D],
        kind: FanoutKind,
    ) -> Result<usize, BulkShapeError> {
        let s = &self.shared;
        let pairs = pairing(keys.len(), data.len()).map_err(|e| s.bulk_error(e))?;
        let started = Instant::now();
        let n = match pairs {
            Pairing::OneTarget => {
                let frames: Vec<Frame> = data.iter().map(|d| s.frame(d.as_ref())).collect();
                let conns = s.members_of_keys(table, keys);
                conns.iter().filter(|c| s.enqueue_all(c, &frames)).count() * frames.len()
            }
            Pairing::ByIndex => keys
                .iter()
                .zip(data)
                .map(|(key, d)| {
                    let conns = index_members(table, key.as_ref());
                    s.enqueue_each(&conns, &s.frame(d.as_ref()))
                })
                .sum(),
        };
        s.count_fanout(kind, n, Some(started));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_pairing_rules() {
        assert!(matches!(pairing(1, 5), Ok(Pairing::OneTarget)));
        assert!(matches!(pairing(1, 1), Ok(Pairing::OneTarget)));
        assert!(matches!(pairing(3, 3), Ok(Pairing::ByIndex)));
        assert_eq!(
            pairing(2, 3).err(),
            Some(BulkShapeError {
                targets: 2,
                payloads: 3
            })
        );
        assert!(pairing(0, 1).is_err());
        assert!(pairing(0, 0).is_ok());
    }
}
