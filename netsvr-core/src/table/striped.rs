//! A hash map split into a power-of-two number of independently locked shards.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

use ahash::RandomState;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The map type inside a shard.
pub(crate) type Map<K, V> = HashMap<K, V, RandomState>;

/// Lock-striped map. Locks are synchronous and never held across `.await`.
#[derive(Debug)]
pub(crate) struct Striped<K, V> {
    shards: Box<[RwLock<Map<K, V>>]>,
    hasher: RandomState,
    mask: usize,
}

impl<K: Hash + Eq, V> Striped<K, V> {
    /// `shards` must be a power of two (checked by config validation).
    pub(crate) fn new(shards: usize) -> Self {
        let shards = shards.max(1).next_power_of_two();
        Self {
            shards: (0..shards)
                .map(|_| RwLock::new(Map::with_hasher(RandomState::new())))
                .collect(),
            hasher: RandomState::new(),
            mask: shards - 1,
        }
    }

    fn index<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        // usize is at most 64 bits on supported targets; the mask keeps the low bits.
        (self.hasher.hash_one(key) as usize) & self.mask
    }

    pub(crate) fn read<Q>(&self, key: &Q) -> RwLockReadGuard<'_, Map<K, V>>
    where
        K: Borrow<Q>,
        Q: Hash + ?Sized,
    {
        self.shards[self.index(key)].read()
    }

    pub(crate) fn write<Q>(&self, key: &Q) -> RwLockWriteGuard<'_, Map<K, V>>
    where
        K: Borrow<Q>,
        Q: Hash + ?Sized,
    {
        self.shards[self.index(key)].write()
    }

    /// Every shard, for scans (one lock at a time).
    pub(crate) fn shards(&self) -> impl Iterator<Item = &RwLock<Map<K, V>>> {
        self.shards.iter()
    }

    /// Entries across all shards (a moment-by-moment sum, not a snapshot).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// Keys across all shards.
    pub(crate) fn keys(&self) -> Vec<K>
    where
        K: Clone,
    {
        let mut out = Vec::new();
        for shard in self.shards() {
            out.extend(shard.read().keys().cloned());
        }
        out
    }
}
