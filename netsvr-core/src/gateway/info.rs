//! Changing connections: topics, session and customer binding, and forcing them offline.
//! Each change runs under the connection's own lock, then the table shards it touches.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{Gateway, Shared};
use crate::close;
use crate::conn::{CloseRequest, Conn};
use crate::event::{CloseReason, ConnInfo};
use crate::id::UniqId;
use crate::table::{index_add, index_members, index_remove};

#[cfg(feature = "cluster")]
use crate::cluster::{Opcode, copy, texts};
#[cfg(feature = "cluster")]
use netsvr_protocol::{ToGateway, pb};

#[cfg(feature = "cluster")]
fn strings<S: AsRef<str>>(items: &[S]) -> Vec<String> {
    items.iter().map(|s| s.as_ref().to_owned()).collect()
}

#[cfg(feature = "cluster")]
fn payload(data: Option<&[u8]>) -> Bytes {
    data.map(copy).unwrap_or_default()
}

/// ConnInfoUpdate: each field given replaces the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InfoUpdate {
    /// New session text.
    pub session: Option<String>,
    /// Rebind to this customer.
    pub customer_id: Option<String>,
    /// Replace the whole topic set.
    pub topics: Option<Vec<String>>,
    /// Push this to the client after the change.
    pub data: Option<Bytes>,
}

impl InfoUpdate {
    /// An update that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the session.
    pub fn session(mut self, session: impl Into<String>) -> Self {
        self.session = Some(session.into());
        self
    }
    /// Rebinds the customer.
    pub fn customer(mut self, customer_id: impl Into<String>) -> Self {
        self.customer_id = Some(customer_id.into());
        self
    }
    /// Replaces the topics.
    pub fn topics<I: IntoIterator<Item = S>, S: Into<String>>(mut self, topics: I) -> Self {
        self.topics = Some(topics.into_iter().map(Into::into).collect());
        self
    }
    /// Pushes data after the change.
    pub fn data(mut self, data: impl Into<Bytes>) -> Self {
        self.data = Some(data.into());
        self
    }
}

/// ConnInfoDelete: which parts to clear.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InfoDelete {
    /// Clear the session.
    pub session: bool,
    /// Unbind the customer.
    pub customer_id: bool,
    /// Unsubscribe every topic.
    pub topics: bool,
    /// Push this to the client after the change.
    pub data: Option<Bytes>,
}

impl InfoDelete {
    /// Clears everything.
    pub fn all() -> Self {
        Self {
            session: true,
            customer_id: true,
            topics: true,
            data: None,
        }
    }
}

impl Shared {
    /// Applies `change` to the connection's info under its lock, keeping the indexes in step.
    /// Returns false when the connection is unknown or gone.
    fn change_info(&self, conn: &Arc<Conn>, change: impl FnOnce(&mut ConnInfo)) -> bool {
        let mut state = conn.lock();
        if state.detached {
            return false;
        }
        let old = state.info.clone();
        let mut new = (*old).clone();
        change(&mut new);
        if new == *old {
            return true;
        }
        let id = conn.meta.uniq_id;
        if new.customer_id != old.customer_id {
            if let Some(c) = &old.customer_id {
                index_remove(&self.tables.customers, c, &id);
            }
            if let Some(c) = &new.customer_id {
                index_add(&self.tables.customers, c, conn);
            }
        }
        for topic in old.topics.iter().filter(|t| !new.topics.contains(t)) {
            index_remove(&self.tables.topics, topic, &id);
        }
        for topic in new.topics.iter().filter(|t| !old.topics.contains(t)) {
            index_add(&self.tables.topics, topic, conn);
        }
        state.info = Arc::new(new);
        #[cfg(feature = "cluster")]
        if let Some(cluster) = &self.cluster {
            cluster.put_conn(&conn.meta, &state.info);
        }
        true
    }

    /// Looks a connection up, changes its info, then pushes `data` (if any) to it.
    fn change_and_push(
        &self,
        uniq_id: &UniqId,
        data: Option<&[u8]>,
        change: impl FnOnce(&mut ConnInfo),
    ) -> bool {
        let Some(conn) = self.tables.get(uniq_id) else {
            return false;
        };
        let ok = self.change_info(&conn, change);
        if ok {
            self.push_optional(&conn, data);
        }
        ok
    }

    fn push_optional(&self, conn: &Conn, data: Option<&[u8]>) {
        if let Some(data) = data.filter(|d| !d.is_empty()) {
            let n = usize::from(self.enqueue(conn, &self.frame(data)));
            self.count_fanout(crate::metrics::FanoutKind::Single, n, None);
        }
    }

    fn kick(&self, conns: &[Arc<Conn>], data: Option<&[u8]>) -> usize {
        let frame = data.filter(|d| !d.is_empty()).map(|d| self.frame(d));
        for conn in conns {
            if let Some(frame) = &frame {
                self.enqueue(conn, frame);
            }
            conn.outbox.request_close(CloseRequest {
                code: close::POLICY_VIOLATION,
                reason: "forced offline",
                cause: CloseReason::Kicked,
            });
        }
        conns.len()
    }
}

fn add_topics(info: &mut ConnInfo, topics: &[impl AsRef<str>]) {
    for topic in topics.iter().map(AsRef::as_ref) {
        if !topic.is_empty() && !info.topics.iter().any(|t| t == topic) {
            info.topics.push(topic.to_owned());
        }
    }
}

fn remove_topics(info: &mut ConnInfo, topics: &[impl AsRef<str>]) {
    info.topics
        .retain(|t| !topics.iter().any(|gone| gone.as_ref() == t));
}

impl Gateway {
    /// Subscribes a connection to topics, then pushes `data` if given. False when the
    /// connection is not here.
    pub fn subscribe<S: AsRef<str>>(
        &self,
        uniq_id: &UniqId,
        topics: &[S],
        data: Option<&[u8]>,
    ) -> bool {
        #[cfg(feature = "cluster")]
        if let Some(taken) = self.forward_owner(uniq_id, Opcode::Default, || {
            ToGateway::TopicSubscribe(pb::TopicSubscribe {
                uniq_id: uniq_id.to_string(),
                topics: strings(topics),
                data: payload(data),
            })
        }) {
            return taken;
        }
        self.shared
            .change_and_push(uniq_id, data, |info| add_topics(info, topics))
    }

    /// Unsubscribes a connection from topics, then pushes `data` if given.
    pub fn unsubscribe<S: AsRef<str>>(
        &self,
        uniq_id: &UniqId,
        topics: &[S],
        data: Option<&[u8]>,
    ) -> bool {
        #[cfg(feature = "cluster")]
        if let Some(taken) = self.forward_owner(uniq_id, Opcode::Default, || {
            ToGateway::TopicUnsubscribe(pb::TopicUnsubscribe {
                uniq_id: uniq_id.to_string(),
                topics: strings(topics),
                data: payload(data),
            })
        }) {
            return taken;
        }
        self.shared
            .change_and_push(uniq_id, data, |info| remove_topics(info, topics))
    }

    /// Drops topics: every member is unsubscribed, and each affected connection gets `data`
    /// once (however many of the topics it held). Returns the connections affected.
    pub fn delete_topics<S: AsRef<str>>(&self, topics: &[S], data: Option<&[u8]>) -> usize {
        let s = &self.shared;
        #[cfg(feature = "cluster")]
        self.forward_all(Opcode::Default, || {
            ToGateway::TopicDelete(pb::TopicDelete {
                topics: strings(topics),
                data: payload(data),
            })
        });
        let mut seen = std::collections::HashSet::<UniqId, ahash::RandomState>::default();
        let mut affected: Vec<Arc<Conn>> = Vec::new();
        for topic in topics {
            for conn in index_members(&s.tables.topics, topic.as_ref()) {
                if seen.insert(conn.meta.uniq_id) {
                    affected.push(conn);
                }
            }
        }
        for conn in &affected {
            s.change_info(conn, |info| remove_topics(info, topics));
            s.push_optional(conn, data);
        }
        affected.len()
    }

    /// ConnInfoUpdate. False when the connection is not here. Through the cluster it
    /// travels as netsvr's ConnInfoUpdate, where an empty customer or topic list means
    /// "unchanged" (use [`Gateway::delete_info`] to clear them).
    pub fn update_info(&self, uniq_id: &UniqId, update: InfoUpdate) -> bool {
        #[cfg(feature = "cluster")]
        if let Some(taken) = self.forward_owner(uniq_id, Opcode::Default, || {
            ToGateway::ConnInfoUpdate(pb::ConnInfoUpdate {
                uniq_id: uniq_id.to_string(),
                new_session: update.session.clone().unwrap_or_default(),
                new_customer_id: update.customer_id.clone().unwrap_or_default(),
                new_topics: update.topics.clone().unwrap_or_default(),
                data: update.data.clone().unwrap_or_default(),
            })
        }) {
            return taken;
        }
        let InfoUpdate {
            session,
            customer_id,
            topics,
            data,
        } = update;
        self.shared
            .change_and_push(uniq_id, data.as_deref(), |info| {
                if let Some(session) = session {
                    info.session = session;
                }
                if let Some(customer) = customer_id {
                    info.customer_id = Some(customer).filter(|c| !c.is_empty());
                }
                if let Some(topics) = topics {
                    info.topics.clear();
                    add_topics(info, &topics);
                }
            })
    }

    /// ConnInfoDelete. False when the connection is not here.
    pub fn delete_info(&self, uniq_id: &UniqId, delete: InfoDelete) -> bool {
        #[cfg(feature = "cluster")]
        if let Some(taken) = self.forward_owner(uniq_id, Opcode::Default, || {
            ToGateway::ConnInfoDelete(pb::ConnInfoDelete {
                uniq_id: uniq_id.to_string(),
                del_session: delete.session,
                del_customer_id: delete.customer_id,
                del_topic: delete.topics,
                data: delete.data.clone().unwrap_or_default(),
            })
        }) {
            return taken;
        }
        self.shared
            .change_and_push(uniq_id, delete.data.as_deref(), |info| {
                if delete.session {
                    info.session.clear();
                }
                if delete.customer_id {
                    info.customer_id = None;
                }
                if delete.topics {
                    info.topics.clear();
                }
            })
    }

    /// Pushes the farewell `data` (if any), then closes each connection with 1008.
    /// Returns how many were found.
    pub fn force_offline(&self, uniq_ids: &[UniqId], data: Option<&[u8]>) -> usize {
        let s = &self.shared;
        #[cfg(feature = "cluster")]
        let local = self.forward_ids(uniq_ids, |ids| {
            ToGateway::ForceOffline(pb::ForceOffline {
                uniq_ids: texts(ids),
                data: payload(data),
            })
        });
        #[cfg(feature = "cluster")]
        let uniq_ids: &[UniqId] = &local;
        let conns: Vec<Arc<Conn>> = uniq_ids.iter().filter_map(|id| s.tables.get(id)).collect();
        s.kick(&conns, data)
    }

    /// As [`Gateway::force_offline`], for every connection of each customer.
    pub fn force_offline_customers<S: AsRef<str>>(
        &self,
        customer_ids: &[S],
        data: Option<&[u8]>,
    ) -> usize {
        let s = &self.shared;
        #[cfg(feature = "cluster")]
        self.forward_all(Opcode::Default, || {
            ToGateway::ForceOfflineByCustomerId(pb::ForceOfflineByCustomerId {
                customer_ids: strings(customer_ids),
                data: payload(data),
            })
        });
        let mut conns = Vec::new();
        for customer in customer_ids {
            conns.extend(index_members(&s.tables.customers, customer.as_ref()));
        }
        s.kick(&conns, data)
    }

    /// After `delay`, forces offline those of `uniq_ids` that still have no session and no
    /// customer (guests). Needs a tokio runtime; returns at once.
    pub fn force_offline_guests(
        &self,
        uniq_ids: Vec<UniqId>,
        delay: Duration,
        data: Option<Bytes>,
    ) {
        #[cfg(feature = "cluster")]
        let uniq_ids = self
            .forward_ids(&uniq_ids, |ids| {
                ToGateway::ForceOfflineGuest(pb::ForceOfflineGuest {
                    uniq_ids: texts(ids),
                    delay: i32::try_from(delay.as_secs()).unwrap_or(i32::MAX),
                    data: data.clone().unwrap_or_default(),
                })
            })
            .into_owned();
        let gateway = self.clone();
        let run = move || {
            let s = &gateway.shared;
            let guests: Vec<Arc<Conn>> = uniq_ids
                .iter()
                .filter_map(|id| s.tables.get(id))
                .filter(|c| c.info().is_guest())
                .collect();
            s.kick(&guests, data.as_deref());
        };
        if delay.is_zero() {
            run();
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                run();
            });
        }
    }
}
