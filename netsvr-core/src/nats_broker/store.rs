//! Reading and creating the cluster's JetStream KV buckets below async-nats' KV API: bucket
//! creation that works with servers before 2.10, and two ways to read every current key.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::kv::{self, Operation};
use async_nats::jetstream::stream::{self, DirectGetErrorKind, DiscardPolicy, StorageType, Stream};
use async_nats::jetstream::{self, Context};
use bytes::Bytes;
use futures_util::StreamExt as _;

use crate::cluster::BrokerError;

/// Messages asked for per fetch while scanning a bucket.
const SCAN_BATCH: usize = 1024;

/// Most direct gets one listing of the leases makes (keys, and rewrites chased meanwhile).
const MAX_LEASE_READS: usize = 10_000;

/// The header a KV delete or purge marker carries.
const KV_OPERATION: &str = "KV-Operation";

/// An engine failure as the runtime sees it (it reconnects after any).
pub(super) fn connection(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Connection(e.to_string())
}

/// Whether a stored message is a value (not a delete or purge marker).
fn is_put(headers: Option<&HeaderMap>) -> bool {
    headers
        .and_then(|h| h.get(KV_OPERATION))
        .and_then(|v| v.as_str().parse::<Operation>().ok())
        .is_none_or(|op| op == Operation::Put)
}

/// One stored message, as [`scan`] and [`entries`] find them.
pub(super) struct Item {
    /// The key (the subject less the bucket's prefix).
    pub(super) key: String,
    /// The stored value (empty for a marker).
    pub(super) value: Bytes,
    /// The message's stream sequence: the key's revision.
    pub(super) revision: u64,
    /// False for delete and purge markers.
    pub(super) put: bool,
}

/// Items read in stream order, one per key: a later message of a key replaces the earlier.
#[derive(Default)]
struct Latest {
    items: Vec<Item>,
    index: HashMap<String, usize>,
}

impl Latest {
    fn keep(&mut self, item: Item) {
        match self.index.get(&item.key) {
            Some(&i) => self.items[i] = item,
            None => {
                self.index.insert(item.key.clone(), self.items.len());
                self.items.push(item);
            }
        }
    }
}

/// Opens a bucket, creating it when it is missing (idempotent; nodes may race to create).
///
/// The bucket's stream is created directly with the settings of a KV bucket (one value per
/// key, rollups and purges allowed, deletes through markers only): async-nats'
/// `create_key_value` first reads the account info, which it cannot parse from servers
/// before 2.10.
pub(super) async fn bucket(
    js: &Context,
    name: String,
    description: &str,
) -> Result<kv::Store, BrokerError> {
    if let Ok(store) = js.get_key_value(name.as_str()).await {
        return Ok(store);
    }
    let config = stream::Config {
        name: format!("KV_{name}"),
        description: Some(description.to_owned()),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        storage: StorageType::File,
        num_replicas: 1,
        discard: DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
        ..stream::Config::default()
    };
    let created = js.create_stream(config).await.err();
    // Another node may have created it meanwhile.
    js.get_key_value(name.as_str())
        .await
        .map_err(|e| match created {
            Some(created) => connection(format!("KV bucket {name}: {created}; {e}")),
            None => connection(format!("KV bucket {name}: {e}")),
        })
}

/// The current message of every subject of `stream` under `filter` (a subject with
/// wildcards), one per key, through an ephemeral pull consumer that starts at the last
/// message of each subject and is read until it has nothing more.
///
/// A key rewritten during the scan loses its old message, maybe before the consumer reaches
/// it, and the server may not count the new one yet when a fetch comes back empty: the key
/// would be missed. So this serves only where nobody writes: the copies of a node that has
/// been claimed.
pub(super) async fn scan(
    stream: &Stream,
    prefix: &str,
    filter: String,
) -> Result<Vec<Item>, BrokerError> {
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: filter,
            deliver_policy: DeliverPolicy::LastPerSubject,
            ack_policy: AckPolicy::None,
            memory_storage: true,
            // Removed by the server if this node goes away before deleting it.
            inactive_threshold: Duration::from_secs(30),
            ..pull::Config::default()
        })
        .await
        .map_err(connection)?;
    let name = consumer.cached_info().name.clone();
    let read = async {
        let mut latest = Latest::default();
        loop {
            // No wait: what is there now, then the end of the batch.
            let mut batch = consumer
                .fetch()
                .max_messages(SCAN_BATCH)
                .messages()
                .await
                .map_err(connection)?;
            let mut got = 0usize;
            while let Some(message) = batch.next().await {
                let message = message.map_err(connection)?;
                got += 1;
                let revision = message.info().map_err(connection)?.stream_sequence;
                let put = is_put(message.headers.as_ref());
                let Some(key) = message.subject.strip_prefix(prefix) else {
                    continue;
                };
                latest.keep(Item {
                    key: key.to_owned(),
                    value: message.payload.clone(),
                    revision,
                    put,
                });
            }
            if got == 0 {
                return Ok(latest.items);
            }
        }
    };
    let items = read.await;
    let _ = stream.delete_consumer(&name).await;
    items
}

/// The current entry of every key of `store`, one direct get at a time: each asks for the
/// first message at or after a sequence under the bucket's subjects. Messages are read in
/// stream order and a rewrite always lands later in the stream, so a key that exists while
/// the scan runs is found (at its latest value, kept once); a key removed meanwhile may be
/// left out. Meant for the small lease bucket: one request per key.
///
/// (The subject list of a stream info request is not used: servers before 2.10 page it in
/// no fixed order, and async-nats then repeats some keys and misses others.)
pub(super) async fn entries(store: &kv::Store) -> Result<Vec<Item>, BrokerError> {
    let filter = format!("{}>", store.prefix);
    let mut latest = Latest::default();
    let mut next = 1u64;
    for _ in 0..MAX_LEASE_READS {
        let message = match store
            .stream
            .direct_get_next_for_subject(filter.as_str(), Some(next))
            .await
        {
            Ok(message) => message,
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => return Ok(latest.items),
            Err(e) => return Err(connection(e)),
        };
        next = message.sequence + 1;
        let Some(key) = message.subject.strip_prefix(store.prefix.as_str()) else {
            continue;
        };
        let put = is_put(Some(&message.headers));
        latest.keep(Item {
            key: key.to_owned(),
            value: message.payload,
            revision: message.sequence,
            put,
        });
    }
    Err(BrokerError::Protocol(format!(
        "{} keeps changing faster than it can be read",
        store.name
    )))
}

/// A JetStream context whose API requests and publish acks wait at most `timeout`.
pub(super) fn context(client: async_nats::Client, timeout: Duration) -> Context {
    jetstream::ContextBuilder::new()
        .timeout(timeout)
        .build(client)
}
