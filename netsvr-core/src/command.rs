//! Applies netsvr commands and queries to the `Gateway` and builds the responses (for the
//! task port, and for commands and queries that arrive from other cluster nodes).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use netsvr_protocol::{ToBusiness, ToGateway, pb};

use crate::gateway::{Gateway, InfoDelete, InfoUpdate};
use crate::id::UniqId;
use crate::limit::Limits;

/// Parses the uniqIds that are well formed; the others cannot be connected here.
fn ids(texts: &[String]) -> Vec<UniqId> {
    texts.iter().filter_map(|t| t.parse().ok()).collect()
}

fn data(d: &Bytes) -> Option<&[u8]> {
    (!d.is_empty()).then_some(&d[..])
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Carries out one command. Returns the response for queries, `None` for commands.
/// Register and Unregister are handled by the connection itself, not here.
/// `metrics` answers netsvr's Metrics query (the worker ports' meters).
pub(crate) fn apply(
    gateway: &Gateway,
    message: ToGateway,
    metrics: impl FnOnce() -> pb::MetricsResp,
) -> Option<ToBusiness> {
    use ToGateway as M;
    match message {
        M::ConnInfoUpdate(m) => {
            if let Ok(id) = m.uniq_id.parse() {
                let mut update = InfoUpdate::new();
                if !m.new_session.is_empty() {
                    update = update.session(m.new_session);
                }
                if !m.new_customer_id.is_empty() {
                    update = update.customer(m.new_customer_id);
                }
                if !m.new_topics.is_empty() {
                    update = update.topics(m.new_topics);
                }
                if !m.data.is_empty() {
                    update = update.data(m.data);
                }
                gateway.update_info(&id, update);
            }
            None
        }
        M::ConnInfoDelete(m) => {
            if let Ok(id) = m.uniq_id.parse() {
                let delete = InfoDelete {
                    session: m.del_session,
                    customer_id: m.del_customer_id,
                    topics: m.del_topic,
                    data: (!m.data.is_empty()).then_some(m.data),
                };
                gateway.delete_info(&id, delete);
            }
            None
        }
        M::Broadcast(m) => {
            gateway.broadcast(&m.data);
            None
        }
        M::Multicast(m) => {
            gateway.multicast(&ids(&m.uniq_ids), &m.data);
            None
        }
        M::MulticastByCustomerId(m) => {
            gateway.multicast_customers(&m.customer_ids, &m.data);
            None
        }
        M::SingleCast(m) => {
            if let Ok(id) = m.uniq_id.parse() {
                gateway.send(&id, &m.data);
            }
            None
        }
        M::SingleCastBulk(m) => {
            // Unparsable ids still hold their place so pairs by index stay aligned.
            let targets: Vec<UniqId> = m
                .uniq_ids
                .iter()
                .map(|t| t.parse().unwrap_or(UniqId::from_bytes([0; 14])))
                .collect();
            let _ = gateway.send_bulk(&targets, &m.data);
            None
        }
        M::SingleCastByCustomerId(m) => {
            gateway.send_to_customer(&m.customer_id, &m.data);
            None
        }
        M::SingleCastBulkByCustomerId(m) => {
            let _ = gateway.send_bulk_to_customers(&m.customer_ids, &m.data);
            None
        }
        M::TopicSubscribe(m) => {
            if let Ok(id) = m.uniq_id.parse() {
                gateway.subscribe(&id, &m.topics, data(&m.data));
            }
            None
        }
        M::TopicUnsubscribe(m) => {
            if let Ok(id) = m.uniq_id.parse() {
                gateway.unsubscribe(&id, &m.topics, data(&m.data));
            }
            None
        }
        M::TopicDelete(m) => {
            gateway.delete_topics(&m.topics, data(&m.data));
            None
        }
        M::TopicPublish(m) => {
            gateway.publish(&m.topics, &m.data);
            None
        }
        M::TopicPublishBulk(m) => {
            let _ = gateway.publish_bulk(&m.topics, &m.data);
            None
        }
        M::ForceOffline(m) => {
            gateway.force_offline(&ids(&m.uniq_ids), data(&m.data));
            None
        }
        M::ForceOfflineByCustomerId(m) => {
            gateway.force_offline_customers(&m.customer_ids, data(&m.data));
            None
        }
        M::ForceOfflineGuest(m) => {
            let delay = Duration::from_secs(u64::try_from(m.delay).unwrap_or(0));
            let farewell = (!m.data.is_empty()).then_some(m.data);
            gateway.force_offline_guests(ids(&m.uniq_ids), delay, farewell);
            None
        }
        other => Some(query(gateway, other, metrics)),
    }
}

fn query(
    gateway: &Gateway,
    message: ToGateway,
    metrics: impl FnOnce() -> pb::MetricsResp,
) -> ToBusiness {
    use ToBusiness as R;
    use ToGateway as M;
    match message {
        M::CheckOnline(m) => R::CheckOnline(pb::CheckOnlineResp {
            uniq_ids: m
                .uniq_ids
                .into_iter()
                .filter(|t| t.parse().is_ok_and(|id| gateway.is_online(&id)))
                .collect(),
        }),
        M::CustomerIdList => R::CustomerIdList(pb::CustomerIdListResp {
            customer_ids: gateway.customer_ids(),
        }),
        M::CustomerIdCount => R::CustomerIdCount(pb::CustomerIdCountResp {
            count: count(gateway.customer_count()),
        }),
        M::UniqIdList => R::UniqIdList(pb::UniqIdListResp {
            uniq_ids: gateway.uniq_ids().iter().map(ToString::to_string).collect(),
        }),
        M::UniqIdCount => R::UniqIdCount(pb::UniqIdCountResp {
            count: count(gateway.connection_count()),
        }),
        M::TopicList => R::TopicList(pb::TopicListResp {
            topics: gateway.topics(),
        }),
        M::TopicCount => R::TopicCount(pb::TopicCountResp {
            count: count(gateway.topic_count()),
        }),
        M::TopicUniqIdList(m) => R::TopicUniqIdList(pb::TopicUniqIdListResp {
            items: per_topic(&m.topics, |t| {
                let members = gateway.topic_members(t);
                (!members.is_empty()).then(|| pb::TopicUniqIdListRespItem {
                    uniq_ids: members.iter().map(ToString::to_string).collect(),
                })
            }),
        }),
        M::TopicUniqIdCount(m) => {
            let topics = if m.count_all {
                gateway.topics()
            } else {
                m.topics
            };
            R::TopicUniqIdCount(pb::TopicUniqIdCountResp {
                items: per_topic(&topics, |t| Some(count(gateway.topic_member_count(t)))),
            })
        }
        M::TopicCustomerIdList(m) => R::TopicCustomerIdList(pb::TopicCustomerIdListResp {
            items: per_topic(&m.topics, |t| {
                let customers = gateway.topic_customers(t);
                (!customers.is_empty()).then_some(pb::TopicCustomerIdListRespItem {
                    customer_ids: customers,
                })
            }),
        }),
        M::TopicCustomerIdToUniqIdsList(m) => {
            R::TopicCustomerIdToUniqIdsList(pb::TopicCustomerIdToUniqIdsListResp {
                items: per_topic(&m.topics, |t| {
                    let map = gateway.topic_customer_uniq_ids(t);
                    (!map.is_empty()).then(|| pb::TopicCustomerIdToUniqIdsListRespItem {
                        items: map
                            .into_iter()
                            .map(|(customer, ids)| {
                                let uniq_ids = ids.iter().map(ToString::to_string).collect();
                                (customer, pb::CustomerIdToUniqIdsRespItem { uniq_ids })
                            })
                            .collect(),
                    })
                }),
            })
        }
        M::TopicCustomerIdCount(m) => {
            let topics = if m.count_all {
                gateway.topics()
            } else {
                m.topics
            };
            R::TopicCustomerIdCount(pb::TopicCustomerIdCountResp {
                items: per_topic(&topics, |t| Some(count(gateway.topic_customer_count(t)))),
            })
        }
        M::ConnInfo(m) => R::ConnInfo(pb::ConnInfoResp {
            items: m
                .uniq_ids
                .iter()
                .filter_map(|text| {
                    let details = gateway.conn_info(&text.parse().ok()?)?;
                    let info = &details.info;
                    Some((
                        text.clone(),
                        pb::ConnInfoRespItem {
                            session: pick(m.req_session, || info.session.clone()),
                            customer_id: pick(m.req_customer_id, || {
                                info.customer_id.clone().unwrap_or_default()
                            }),
                            topics: pick(m.req_topic, || info.topics.clone()),
                        },
                    ))
                })
                .collect(),
        }),
        M::ConnInfoByCustomerId(m) => R::ConnInfoByCustomerId(pb::ConnInfoByCustomerIdResp {
            items: m
                .customer_ids
                .iter()
                .filter_map(|customer| {
                    let conns = gateway.conn_info_by_customer(customer);
                    let items: Vec<_> = conns
                        .iter()
                        .map(|d| pb::ConnInfoByCustomerIdRespItem {
                            session: pick(m.req_session, || d.info.session.clone()),
                            uniq_id: pick(m.req_uniq_id, || d.meta.uniq_id.to_string()),
                            topics: pick(m.req_topic, || d.info.topics.clone()),
                        })
                        .collect();
                    (!items.is_empty()).then(|| {
                        (
                            customer.clone(),
                            pb::ConnInfoByCustomerIdRespItems { items },
                        )
                    })
                })
                .collect(),
        }),
        M::Metrics => R::Metrics(metrics()),
        M::Limit(m) => R::Limit(limit(gateway, &m)),
        // Register / Unregister never reach here; answer an empty limit so the business
        // gets a reply of the same id rather than a hang.
        _ => R::Limit(pb::LimitResp::default()),
    }
}

fn pick<T: Default>(wanted: bool, value: impl FnOnce() -> T) -> T {
    if wanted { value() } else { T::default() }
}

fn per_topic<T>(topics: &[String], f: impl Fn(&str) -> Option<T>) -> BTreeMap<String, T> {
    topics
        .iter()
        .filter_map(|t| f(t).map(|v| (t.clone(), v)))
        .collect()
}

/// Sets the global limits that are > 0, then reports the ones in force.
fn limit(gateway: &Gateway, request: &pb::LimitReq) -> pb::LimitResp {
    let limiter = gateway.limiter();
    let mut limits = limiter.limits().unwrap_or_else(Limits::unlimited);
    if let Ok(n @ 1..) = u32::try_from(request.on_open) {
        limits.opens_per_sec = n;
    }
    if let Ok(n @ 1..) = u32::try_from(request.on_message) {
        limits.messages_per_sec = n;
    }
    if request.on_open > 0 || request.on_message > 0 {
        limiter.set_limits(limits);
    }
    let now = limiter.limits().unwrap_or_else(Limits::unlimited);
    pb::LimitResp {
        on_open: i32::try_from(now.opens_per_sec).unwrap_or(i32::MAX),
        on_message: i32::try_from(now.messages_per_sec).unwrap_or(i32::MAX),
    }
}
