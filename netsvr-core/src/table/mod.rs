//! The gateway's state tables: uniqId → connection, customerId → connections,
//! topic → connections. Each is lock-striped.

mod striped;

use std::sync::Arc;

use crate::conn::Conn;
use crate::id::UniqId;

pub(crate) use striped::{Map, Striped};

/// Connections grouped under one key (a customer or a topic).
pub(crate) type Members = Map<UniqId, Arc<Conn>>;

/// All tables.
#[derive(Debug)]
pub(crate) struct Tables {
    pub(crate) conns: Striped<UniqId, Arc<Conn>>,
    pub(crate) customers: Striped<String, Members>,
    pub(crate) topics: Striped<String, Members>,
}

impl Tables {
    pub(crate) fn new(shards: usize) -> Self {
        Self {
            conns: Striped::new(shards),
            customers: Striped::new(shards),
            topics: Striped::new(shards),
        }
    }

    pub(crate) fn get(&self, id: &UniqId) -> Option<Arc<Conn>> {
        self.conns.read(id).get(id).cloned()
    }
}

/// Adds `conn` under `key` in an index table.
pub(crate) fn index_add(table: &Striped<String, Members>, key: &str, conn: &Arc<Conn>) {
    let mut shard = table.write(key);
    match shard.get_mut(key) {
        Some(members) => {
            members.insert(conn.meta.uniq_id, conn.clone());
        }
        None => {
            let mut members = Members::default();
            members.insert(conn.meta.uniq_id, conn.clone());
            shard.insert(key.to_owned(), members);
        }
    }
}

/// Removes `id` from `key` in an index table, dropping the key when it empties.
pub(crate) fn index_remove(table: &Striped<String, Members>, key: &str, id: &UniqId) {
    let mut shard = table.write(key);
    if let Some(members) = shard.get_mut(key) {
        members.remove(id);
        if members.is_empty() {
            shard.remove(key);
        }
    }
}

/// The members of `key`, cloned out so the shard lock is released before any use.
pub(crate) fn index_members(table: &Striped<String, Members>, key: &str) -> Vec<Arc<Conn>> {
    table
        .read(key)
        .get(key)
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default()
}

/// How many connections `key` holds.
pub(crate) fn index_count(table: &Striped<String, Members>, key: &str) -> usize {
    table.read(key).get(key).map_or(0, |m| m.len())
}

#[cfg(test)]
mod tests;
