//! Flattening replies into plain maps, and merging the answers of several gateways.

use std::collections::{BTreeMap, HashSet};

use crate::pb;

/// customerId → that customer's uniqIds (one topic's entry of
/// `TopicCustomerIdToUniqIdsList`).
pub type CustomerUniqIds = BTreeMap<String, Vec<String>>;

/// A gateway count as a `u64` (a negative count, which no gateway sends, counts as 0).
pub(crate) fn count(n: i32) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Concatenates lists, keeping the first occurrence of each string, in order.
pub(crate) fn dedup(lists: impl IntoIterator<Item = Vec<String>>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for s in lists.into_iter().flatten() {
        if !seen.contains(&s) {
            seen.insert(s.clone());
            out.push(s);
        }
    }
    out
}

/// Merges per-key lists: concatenated, or deduplicated when `unique`.
pub(crate) fn merge_lists(
    maps: impl IntoIterator<Item = BTreeMap<String, Vec<String>>>,
    unique: bool,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for map in maps {
        for (key, list) in map {
            out.entry(key).or_default().extend(list);
        }
    }
    if unique {
        for list in out.values_mut() {
            *list = dedup([std::mem::take(list)]);
        }
    }
    out
}

/// Sums per-key counts.
pub(crate) fn sum_counts(
    maps: impl IntoIterator<Item = BTreeMap<String, i32>>,
) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for map in maps {
        for (key, n) in map {
            let slot = out.entry(key).or_default();
            *slot = slot.saturating_add(count(n));
        }
    }
    out
}

/// Merges topic → customer → uniqIds maps (uniqIds of one customer concatenated).
pub(crate) fn merge_nested(
    maps: impl IntoIterator<Item = BTreeMap<String, CustomerUniqIds>>,
) -> BTreeMap<String, CustomerUniqIds> {
    let mut out: BTreeMap<String, CustomerUniqIds> = BTreeMap::new();
    for map in maps {
        for (topic, customers) in map {
            let slot = out.entry(topic).or_default();
            for (customer, ids) in customers {
                slot.entry(customer).or_default().extend(ids);
            }
        }
    }
    out
}

/// `TopicUniqIdListResp` as topic → uniqIds.
pub(crate) fn topic_uniq_ids(resp: pb::TopicUniqIdListResp) -> BTreeMap<String, Vec<String>> {
    resp.items
        .into_iter()
        .map(|(topic, item)| (topic, item.uniq_ids))
        .collect()
}

/// `TopicCustomerIdListResp` as topic → customerIds.
pub(crate) fn topic_customer_ids(
    resp: pb::TopicCustomerIdListResp,
) -> BTreeMap<String, Vec<String>> {
    resp.items
        .into_iter()
        .map(|(topic, item)| (topic, item.customer_ids))
        .collect()
}

/// `TopicCustomerIdToUniqIdsListResp` as topic → customerId → uniqIds.
pub(crate) fn topic_customer_uniq_ids(
    resp: pb::TopicCustomerIdToUniqIdsListResp,
) -> BTreeMap<String, CustomerUniqIds> {
    resp.items
        .into_iter()
        .map(|(topic, item)| {
            let customers = item
                .items
                .into_iter()
                .map(|(customer, ids)| (customer, ids.uniq_ids))
                .collect();
            (topic, customers)
        })
        .collect()
}

/// `ConnInfoByCustomerIdResp` as customerId → its connections.
pub(crate) fn conn_info_by_customer(
    resp: pb::ConnInfoByCustomerIdResp,
) -> BTreeMap<String, Vec<pb::ConnInfoByCustomerIdRespItem>> {
    resp.items
        .into_iter()
        .map(|(customer, items)| (customer, items.items))
        .collect()
}

/// Merges customerId → connections maps (connections concatenated).
pub(crate) fn merge_conn_info_by_customer(
    maps: impl IntoIterator<Item = BTreeMap<String, Vec<pb::ConnInfoByCustomerIdRespItem>>>,
) -> BTreeMap<String, Vec<pb::ConnInfoByCustomerIdRespItem>> {
    let mut out: BTreeMap<String, Vec<pb::ConnInfoByCustomerIdRespItem>> = BTreeMap::new();
    for map in maps {
        for (customer, items) in map {
            out.entry(customer).or_default().extend(items);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn dedup_keeps_first_order() {
        let out = dedup([strings(&["b", "a"]), strings(&["a", "c", "b"])]);
        assert_eq!(out, strings(&["b", "a", "c"]));
    }

    #[test]
    fn counts_sum_per_key_and_clamp_negatives() {
        let a = BTreeMap::from([("t".to_owned(), 2), ("u".to_owned(), -1)]);
        let b = BTreeMap::from([("t".to_owned(), 3)]);
        let out = sum_counts([a, b]);
        assert_eq!(out.get("t"), Some(&5));
        assert_eq!(out.get("u"), Some(&0));
    }

    #[test]
    fn lists_merge_with_and_without_dedup() {
        let a = BTreeMap::from([("t".to_owned(), strings(&["x", "y"]))]);
        let b = BTreeMap::from([("t".to_owned(), strings(&["y", "z"]))]);
        let all = merge_lists([a.clone(), b.clone()], false);
        assert_eq!(all["t"], strings(&["x", "y", "y", "z"]));
        let unique = merge_lists([a, b], true);
        assert_eq!(unique["t"], strings(&["x", "y", "z"]));
    }
}
