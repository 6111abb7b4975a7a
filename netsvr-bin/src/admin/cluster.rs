//! The cluster side of the admin API: the live nodes, a per-node connection count, and the
//! cluster-wide variants of the listings (`scope=cluster`, the default when the node belongs
//! to a cluster). Cluster-wide reads ask every live node through
//! [`netsvr_core::cluster::Cluster`]; when a node does not answer within the cluster's
//! `query_timeout`, a listing answers 503 naming the silent nodes (`scope=node` still
//! answers for this node).

use std::collections::BTreeMap;

use hyper::StatusCode;
use netsvr_core::cluster::{Cluster, NodeId, QueryError};
use netsvr_core::{ConnInfo, Gateway, UniqId};
use netsvr_protocol::{ToBusiness, ToGateway, pb};
use serde_json::{Value, json};

use super::AdminState;
use super::http::{Resp, error, json};
use super::status::{ListQuery, Scope, conn_json, page};

/// The cluster to answer a read from: `None` for this node only (asked for, or no cluster).
pub(super) fn scoped(gateway: &Gateway, scope: Option<Scope>) -> Option<Cluster> {
    match scope {
        Some(Scope::Node) => None,
        Some(Scope::Cluster) | None => gateway.cluster(),
    }
}

/// The `cluster` part of `/api/v1/status`: `null` without a cluster.
pub(super) fn status(gateway: &Gateway) -> Value {
    match gateway.cluster() {
        Some(c) => json!({
            "node": c.node_id().to_string(),
            "nodes": c.nodes().len(),
            "connected": c.is_connected(),
            "buffered": c.buffered(),
            "dropped": c.dropped(),
        }),
        None => Value::Null,
    }
}

fn off() -> Resp {
    error(
        StatusCode::NOT_FOUND,
        "clustering is off: this node has no enabled [cluster] section",
    )
}

fn ids_text(ids: &[NodeId]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}

/// 503 naming the nodes that did not answer (or 503 for a full buffer).
fn unavailable(e: &QueryError) -> Resp {
    let missing = match e {
        QueryError::NoAnswer(ids) => ids_text(ids),
        _ => Vec::new(),
    };
    let body = json!({
        "error": format!("{e}; retry, or ask with scope=node"),
        "missing": missing,
    });
    json(StatusCode::SERVICE_UNAVAILABLE, &body)
}

/// `/api/v1/cluster/nodes`: the live nodes as of the last lease renewal, or 404.
pub(super) fn nodes(state: &AdminState) -> Resp {
    let Some(cluster) = state.gateway.cluster() else {
        return off();
    };
    let me = cluster.node_id();
    let mut nodes = cluster.nodes();
    nodes.sort_by_key(|n| n.id);
    let items: Vec<Value> = nodes
        .iter()
        .map(|n| {
            json!({
                "id": n.id.to_string(), "addr": n.addr, "started_ms": n.started_ms,
                "heartbeat_ms": n.heartbeat_ms, "local": n.id == me,
            })
        })
        .collect();
    json(
        StatusCode::OK,
        &json!({ "node": me.to_string(), "nodes": items }),
    )
}

/// `/api/v1/cluster/connections`: connections, customers and topics of the whole cluster
/// and each node's connection count. Nodes that do not answer are listed in `missing` (the
/// totals leave them out) and shown with `"connections": null`.
pub(super) async fn summary(state: &AdminState) -> Resp {
    let Some(cluster) = state.gateway.cluster() else {
        return off();
    };
    let per_node = match cluster.per_node(ToGateway::UniqIdCount).await {
        Ok(answers) => answers,
        Err(e) => return unavailable(&e),
    };
    let mut total = 0i64;
    let mut missing = Vec::new();
    let mut nodes = Vec::new();
    for answer in per_node {
        let count = match answer.answer {
            Ok(ToBusiness::UniqIdCount(r)) => Some(r.count),
            _ => None,
        };
        match count {
            Some(n) => total += i64::from(n),
            None => missing.push(answer.node),
        }
        nodes.push(json!({ "node": answer.node.to_string(), "connections": count }));
    }
    let distinct = |answer: Result<ToBusiness, QueryError>, missing: &mut Vec<NodeId>| match answer
    {
        Ok(ToBusiness::CustomerIdCount(r)) => Some(r.count),
        Ok(ToBusiness::TopicCount(r)) => Some(r.count),
        Ok(_) => None,
        Err(QueryError::NoAnswer(ids)) => {
            missing.extend(ids);
            None
        }
        Err(_) => None,
    };
    let merged = |m: netsvr_core::cluster::Merged| {
        if m.missing.is_empty() {
            Ok(m.answer)
        } else {
            Err(QueryError::NoAnswer(m.missing))
        }
    };
    let customers = cluster
        .query(ToGateway::CustomerIdCount)
        .await
        .and_then(merged);
    let customers = distinct(customers, &mut missing);
    let topics = cluster.query(ToGateway::TopicCount).await.and_then(merged);
    let topics = distinct(topics, &mut missing);
    missing.sort_unstable();
    missing.dedup();
    let body = json!({
        "node": cluster.node_id().to_string(),
        "connections": total,
        "customers": customers,
        "topics": topics,
        "complete": missing.is_empty(),
        "missing": ids_text(&missing),
        "nodes": nodes,
    });
    json(StatusCode::OK, &body)
}

/// The uniqIds of `customer` on every node.
async fn customer_uniq_ids(cluster: &Cluster, customer: &str) -> Result<Vec<UniqId>, QueryError> {
    let req = pb::ConnInfoByCustomerIdReq {
        customer_ids: vec![customer.to_owned()],
        req_session: false,
        req_uniq_id: true,
        req_topic: false,
    };
    let merged = cluster.query(ToGateway::ConnInfoByCustomerId(req)).await?;
    if !merged.missing.is_empty() {
        return Err(QueryError::NoAnswer(merged.missing));
    }
    let ToBusiness::ConnInfoByCustomerId(mut resp) = merged.answer else {
        return Ok(Vec::new());
    };
    let items = resp
        .items
        .remove(customer)
        .map(|i| i.items)
        .unwrap_or_default();
    Ok(items
        .iter()
        .filter_map(|i| i.uniq_id.parse().ok())
        .collect())
}

/// The uniqIds a listing selects, cluster-wide.
async fn selected(cluster: &Cluster, q: &ListQuery) -> Result<Vec<UniqId>, QueryError> {
    Ok(match (&q.customer_id, &q.topic) {
        (Some(customer), None) => customer_uniq_ids(cluster, customer).await?,
        (None, Some(topic)) => cluster.topic_members(topic).await?,
        (Some(customer), Some(topic)) => {
            let mut of_topic = cluster.topic_members(topic).await?;
            of_topic.sort_unstable();
            let mut ids = customer_uniq_ids(cluster, customer).await?;
            ids.retain(|id| of_topic.binary_search(id).is_ok());
            ids
        }
        (None, None) => cluster.uniq_ids().await?,
    })
}

/// A connection held by another node: what its owner reports (no handshake facts).
fn remote_json(id: &UniqId, info: &ConnInfo) -> Value {
    json!({
        "uniq_id": id.to_string(),
        "node": id.node_prefix(),
        "remote_addr": null,
        "customer_id": info.customer_id,
        "session": info.session,
        "topics": info.topics,
        "raw_query": null,
        "x_forwarded_for": null,
        "x_real_ip": null,
    })
}

/// Details of `ids` (in order): this node's from its tables, the others' in one
/// cluster-wide query. Connections that closed meanwhile are left out.
async fn details(
    gw: &Gateway,
    cluster: &Cluster,
    ids: &[UniqId],
) -> Result<Vec<Value>, QueryError> {
    let me = cluster.node_id();
    let remote: Vec<String> = ids
        .iter()
        .filter(|id| NodeId::of(id) != me)
        .map(ToString::to_string)
        .collect();
    let mut infos = BTreeMap::new();
    if !remote.is_empty() {
        let req = pb::ConnInfoReq {
            uniq_ids: remote,
            req_session: true,
            req_customer_id: true,
            req_topic: true,
        };
        let merged = cluster.query(ToGateway::ConnInfo(req)).await?;
        if !merged.missing.is_empty() {
            return Err(QueryError::NoAnswer(merged.missing));
        }
        if let ToBusiness::ConnInfo(resp) = merged.answer {
            infos = resp.items;
        }
    }
    Ok(ids
        .iter()
        .filter_map(|id| {
            if NodeId::of(id) == me {
                return gw.conn_info(id).map(|d| conn_json(&d));
            }
            let item = infos.remove(&id.to_string())?;
            let info = ConnInfo::new(Some(item.customer_id), item.session, item.topics);
            Some(remote_json(id, &info))
        })
        .collect())
}

/// `/api/v1/connections`, cluster-wide.
pub(super) async fn connections(gw: &Gateway, cluster: &Cluster, q: &ListQuery) -> Resp {
    let mut ids = match selected(cluster, q).await {
        Ok(ids) => ids,
        Err(e) => return unavailable(&e),
    };
    ids.sort_unstable();
    ids.dedup();
    let items = match details(gw, cluster, page(&ids, q.offset, q.limit)).await {
        Ok(items) => items,
        Err(e) => return unavailable(&e),
    };
    let body = json!({
        "scope": "cluster", "total": ids.len(), "offset": q.offset, "limit": q.limit,
        "connections": items,
    });
    json(StatusCode::OK, &body)
}

/// `/api/v1/connections/{uniqId}`, cluster-wide: asked of its owner's answer, or 404.
pub(super) async fn connection(gw: &Gateway, cluster: &Cluster, id: &UniqId) -> Resp {
    match details(gw, cluster, std::slice::from_ref(id)).await {
        Ok(mut items) if !items.is_empty() => json(StatusCode::OK, &items.swap_remove(0)),
        Ok(_) => error(
            StatusCode::NOT_FOUND,
            format!("connection {id} is not open on any node"),
        ),
        Err(e) => unavailable(&e),
    }
}

/// `/api/v1/topics`, cluster-wide: member counts summed over the nodes.
pub(super) async fn topics(cluster: &Cluster, q: &ListQuery) -> Resp {
    let names = match cluster.topics().await {
        Ok(names) => names,
        Err(e) => return unavailable(&e),
    };
    let shown = page(&names, q.offset, q.limit).to_vec();
    let mut counts = BTreeMap::new();
    if !shown.is_empty() {
        let req = pb::TopicUniqIdCountReq {
            topics: shown.clone(),
            count_all: false,
        };
        match cluster.query(ToGateway::TopicUniqIdCount(req)).await {
            Ok(m) if m.missing.is_empty() => {
                if let ToBusiness::TopicUniqIdCount(resp) = m.answer {
                    counts = resp.items;
                }
            }
            Ok(m) => return unavailable(&QueryError::NoAnswer(m.missing)),
            Err(e) => return unavailable(&e),
        }
    }
    let items: Vec<Value> = shown
        .iter()
        .map(|t| json!({ "topic": t, "connections": counts.get(t).copied().unwrap_or(0) }))
        .collect();
    let body = json!({
        "scope": "cluster", "total": names.len(), "offset": q.offset, "limit": q.limit,
        "topics": items,
    });
    json(StatusCode::OK, &body)
}
