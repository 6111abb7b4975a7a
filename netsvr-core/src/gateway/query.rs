//! Queries: who is online, the lists and counts netsvr answers on its task port.

use std::collections::HashMap;
use std::sync::Arc;

use super::Gateway;
use crate::event::{ConnInfo, ConnMeta};
use crate::id::UniqId;
use crate::table::{index_count, index_members};

/// A connection's identity with its current business state.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnDetails {
    /// Identity and handshake facts.
    pub meta: Arc<ConnMeta>,
    /// Customer, session, topics now.
    pub info: Arc<ConnInfo>,
}

impl Gateway {
    /// Is this connection open here?
    pub fn is_online(&self, uniq_id: &UniqId) -> bool {
        self.shared.tables.get(uniq_id).is_some()
    }

    /// The subset of `uniq_ids` that is online, in the given order.
    pub fn check_online(&self, uniq_ids: &[UniqId]) -> Vec<UniqId> {
        uniq_ids
            .iter()
            .copied()
            .filter(|id| self.is_online(id))
            .collect()
    }

    /// Every open connection's id.
    pub fn uniq_ids(&self) -> Vec<UniqId> {
        self.shared.tables.conns.keys()
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        self.shared.tables.conns.len()
    }

    /// Every customer with at least one connection.
    pub fn customer_ids(&self) -> Vec<String> {
        self.shared.tables.customers.keys()
    }

    /// How many customers have at least one connection.
    pub fn customer_count(&self) -> usize {
        self.shared.tables.customers.len()
    }

    /// Every topic with at least one subscriber.
    pub fn topics(&self) -> Vec<String> {
        self.shared.tables.topics.keys()
    }

    /// How many topics have at least one subscriber.
    pub fn topic_count(&self) -> usize {
        self.shared.tables.topics.len()
    }

    /// A topic's subscribers.
    pub fn topic_members(&self, topic: &str) -> Vec<UniqId> {
        index_members(&self.shared.tables.topics, topic)
            .iter()
            .map(|c| c.meta.uniq_id)
            .collect()
    }

    /// How many connections a topic has.
    pub fn topic_member_count(&self, topic: &str) -> usize {
        index_count(&self.shared.tables.topics, topic)
    }

    /// The distinct customers among a topic's subscribers.
    pub fn topic_customers(&self, topic: &str) -> Vec<String> {
        let mut out: Vec<String> = index_members(&self.shared.tables.topics, topic)
            .iter()
            .filter_map(|c| c.info().customer_id.clone())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// How many distinct customers a topic's subscribers belong to.
    pub fn topic_customer_count(&self, topic: &str) -> usize {
        self.topic_customers(topic).len()
    }

    /// For a topic: each subscribed customer → all of that customer's connections (also
    /// those not subscribed to the topic, as netsvr answers it).
    pub fn topic_customer_uniq_ids(&self, topic: &str) -> HashMap<String, Vec<UniqId>> {
        self.topic_customers(topic)
            .into_iter()
            .map(|customer| {
                let ids = self.customer_uniq_ids(&customer);
                (customer, ids)
            })
            .collect()
    }

    /// A customer's connections.
    pub fn customer_uniq_ids(&self, customer_id: &str) -> Vec<UniqId> {
        index_members(&self.shared.tables.customers, customer_id)
            .iter()
            .map(|c| c.meta.uniq_id)
            .collect()
    }

    /// One connection's details, if it is open here.
    pub fn conn_info(&self, uniq_id: &UniqId) -> Option<ConnDetails> {
        self.shared.tables.get(uniq_id).map(|c| ConnDetails {
            meta: c.meta.clone(),
            info: c.info(),
        })
    }

    /// The details of every connection of a customer.
    pub fn conn_info_by_customer(&self, customer_id: &str) -> Vec<ConnDetails> {
        index_members(&self.shared.tables.customers, customer_id)
            .iter()
            .map(|c| ConnDetails {
                meta: c.meta.clone(),
                info: c.info(),
            })
            .collect()
    }
}
