//! Merging the answers of several nodes to one netsvr query: lists are joined (customerIds
//! and topics de-duplicated, sorted), counts summed, per-topic and per-customer maps joined.
//! Pure.

use std::collections::BTreeMap;

use netsvr_protocol::{ToBusiness, pb};

fn dedup(mut items: Vec<String>) -> Vec<String> {
    items.sort_unstable();
    items.dedup();
    items
}

/// Joins `answers` (all of the same kind) into one; `None` when there are none.
pub(crate) fn merge(answers: Vec<ToBusiness>) -> Option<ToBusiness> {
    use ToBusiness as R;
    let mut answers = answers.into_iter();
    let first = answers.next()?;
    Some(answers.fold(first, |acc, next| match (acc, next) {
        (R::CheckOnline(mut a), R::CheckOnline(b)) => {
            a.uniq_ids.extend(b.uniq_ids);
            R::CheckOnline(a)
        }
        (R::CustomerIdList(mut a), R::CustomerIdList(b)) => {
            a.customer_ids.extend(b.customer_ids);
            a.customer_ids = dedup(a.customer_ids);
            R::CustomerIdList(a)
        }
        (R::UniqIdList(mut a), R::UniqIdList(b)) => {
            a.uniq_ids.extend(b.uniq_ids);
            R::UniqIdList(a)
        }
        (R::UniqIdCount(a), R::UniqIdCount(b)) => R::UniqIdCount(pb::UniqIdCountResp {
            count: a.count.saturating_add(b.count),
        }),
        (R::TopicList(mut a), R::TopicList(b)) => {
            a.topics.extend(b.topics);
            a.topics = dedup(a.topics);
            R::TopicList(a)
        }
        (R::TopicUniqIdList(mut a), R::TopicUniqIdList(b)) => {
            for (topic, item) in b.items {
                a.items
                    .entry(topic)
                    .or_default()
                    .uniq_ids
                    .extend(item.uniq_ids);
            }
            R::TopicUniqIdList(a)
        }
        (R::TopicUniqIdCount(mut a), R::TopicUniqIdCount(b)) => {
            for (topic, n) in b.items {
                let slot = a.items.entry(topic).or_default();
                *slot = slot.saturating_add(n);
            }
            R::TopicUniqIdCount(a)
        }
        (R::TopicCustomerIdList(mut a), R::TopicCustomerIdList(b)) => {
            for (topic, item) in b.items {
                let slot = a.items.entry(topic).or_default();
                slot.customer_ids.extend(item.customer_ids);
                slot.customer_ids = dedup(std::mem::take(&mut slot.customer_ids));
            }
            R::TopicCustomerIdList(a)
        }
        (R::TopicCustomerIdToUniqIdsList(mut a), R::TopicCustomerIdToUniqIdsList(b)) => {
            for (topic, item) in b.items {
                let slot = a.items.entry(topic).or_default();
                for (customer, ids) in item.items {
                    slot.items
                        .entry(customer)
                        .or_default()
                        .uniq_ids
                        .extend(ids.uniq_ids);
                }
            }
            R::TopicCustomerIdToUniqIdsList(a)
        }
        (R::ConnInfo(mut a), R::ConnInfo(b)) => {
            a.items.extend(b.items);
            R::ConnInfo(a)
        }
        (R::ConnInfoByCustomerId(mut a), R::ConnInfoByCustomerId(b)) => {
            for (customer, items) in b.items {
                a.items
                    .entry(customer)
                    .or_default()
                    .items
                    .extend(items.items);
            }
            R::ConnInfoByCustomerId(a)
        }
        (R::Metrics(mut a), R::Metrics(b)) => {
            for (id, item) in b.items {
                let slot = a.items.entry(id).or_insert_with(|| pb::MetricsRespItem {
                    item: id,
                    ..Default::default()
                });
                slot.count = slot.count.saturating_add(item.count);
                slot.mean_rate += item.mean_rate;
                slot.rate1 += item.rate1;
                slot.rate5 += item.rate5;
                slot.rate15 += item.rate15;
            }
            R::Metrics(a)
        }
        // Counts of distinct customers or topics are answered from merged lists (see
        // `Cluster::query`); limits are per node: the asking node's answer stands.
        (acc, _) => acc,
    }))
}

/// A count of distinct items per topic, from a merged per-topic list.
pub(crate) fn topic_counts(list: &pb::TopicCustomerIdListResp) -> BTreeMap<String, i32> {
    list.items
        .iter()
        .map(|(topic, item)| (topic.clone(), count(item.customer_ids.len())))
        .collect()
}

/// A count as netsvr's int32.
pub(crate) fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn lists_join_and_distinct_lists_dedup() {
        let merged = merge(vec![
            ToBusiness::CustomerIdList(pb::CustomerIdListResp {
                customer_ids: s(&["b", "a"]),
            }),
            ToBusiness::CustomerIdList(pb::CustomerIdListResp {
                customer_ids: s(&["a", "c"]),
            }),
        ]);
        assert_eq!(
            merged,
            Some(ToBusiness::CustomerIdList(pb::CustomerIdListResp {
                customer_ids: s(&["a", "b", "c"]),
            }))
        );
        let merged = merge(vec![
            ToBusiness::UniqIdCount(pb::UniqIdCountResp { count: 2 }),
            ToBusiness::UniqIdCount(pb::UniqIdCountResp { count: 3 }),
        ]);
        assert_eq!(
            merged,
            Some(ToBusiness::UniqIdCount(pb::UniqIdCountResp { count: 5 }))
        );
        assert_eq!(merge(Vec::new()), None);
    }

    #[test]
    fn per_topic_maps_join() {
        let one = |topic: &str, customers: &[&str]| {
            let mut items = BTreeMap::new();
            items.insert(
                topic.to_owned(),
                pb::TopicCustomerIdListRespItem {
                    customer_ids: s(customers),
                },
            );
            ToBusiness::TopicCustomerIdList(pb::TopicCustomerIdListResp { items })
        };
        let Some(ToBusiness::TopicCustomerIdList(merged)) = merge(vec![
            one("t", &["x", "y"]),
            one("t", &["y", "z"]),
            one("u", &["x"]),
        ]) else {
            panic!("wrong kind");
        };
        assert_eq!(merged.items["t"].customer_ids, s(&["x", "y", "z"]));
        let counts = topic_counts(&merged);
        assert_eq!((counts["t"], counts["u"]), (3, 1));
    }
}
