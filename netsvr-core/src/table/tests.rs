//! Unit tests of the striped tables and the index helpers.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use super::*;
use crate::event::{ConnInfo, ConnMeta};
use crate::id::UniqIdGenerator;

fn conn(generator: &UniqIdGenerator) -> Arc<Conn> {
    let meta = ConnMeta::new(generator.next(1), SocketAddr::from(([127, 0, 0, 1], 1)));
    Arc::new(Conn::new(meta, ConnInfo::default(), 0))
}

fn generator() -> UniqIdGenerator {
    UniqIdGenerator::new(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9))
}

#[test]
fn index_add_remove_drops_empty_keys() {
    let ids = generator();
    let tables = Tables::new(4);
    let (a, b) = (conn(&ids), conn(&ids));
    index_add(&tables.topics, "news", &a);
    index_add(&tables.topics, "news", &b);
    index_add(&tables.topics, "news", &b);
    assert_eq!(index_count(&tables.topics, "news"), 2);
    assert_eq!(tables.topics.len(), 1);
    index_remove(&tables.topics, "news", &a.meta.uniq_id);
    assert_eq!(index_members(&tables.topics, "news").len(), 1);
    index_remove(&tables.topics, "news", &b.meta.uniq_id);
    assert_eq!(tables.topics.len(), 0);
    assert!(index_members(&tables.topics, "news").is_empty());
    // Removing what is not there is harmless.
    index_remove(&tables.topics, "news", &b.meta.uniq_id);
}

#[test]
fn keys_spread_over_shards_and_are_all_listed() {
    let ids = generator();
    let tables = Tables::new(8);
    let conns: Vec<_> = (0..200).map(|_| conn(&ids)).collect();
    for c in &conns {
        tables
            .conns
            .write(&c.meta.uniq_id)
            .insert(c.meta.uniq_id, c.clone());
    }
    assert_eq!(tables.conns.len(), 200);
    let used = tables
        .conns
        .shards()
        .filter(|s| !s.read().is_empty())
        .count();
    assert!(used > 4, "only {used} of 8 shards used");
    let mut keys = tables.conns.keys();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 200);
    assert!(tables.get(&conns[7].meta.uniq_id).is_some());
}

#[test]
fn concurrent_writers_on_shared_keys_lose_nothing() {
    let ids = Arc::new(generator());
    let tables = Arc::new(Tables::new(16));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (ids, tables) = (ids.clone(), tables.clone());
            std::thread::spawn(move || {
                let mine: Vec<_> = (0..500).map(|_| conn(&ids)).collect();
                for (i, c) in mine.iter().enumerate() {
                    index_add(&tables.topics, &format!("t{}", i % 10), c);
                    index_add(&tables.customers, &format!("c{t}"), c);
                }
                for c in mine.iter().step_by(2) {
                    for k in 0..10 {
                        index_remove(&tables.topics, &format!("t{k}"), &c.meta.uniq_id);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer thread panicked");
    }
    let total: usize = (0..10)
        .map(|k| index_count(&tables.topics, &format!("t{k}")))
        .sum();
    assert_eq!(total, 4 * 250);
    for t in 0..4 {
        assert_eq!(index_count(&tables.customers, &format!("c{t}")), 500);
    }
}
