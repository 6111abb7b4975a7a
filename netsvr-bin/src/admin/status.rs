//! The read side of the admin API: readiness, the status document, connection and topic
//! listings. Everything is read through the `Gateway` handle; with a cluster, the listings
//! answer for the whole cluster unless `scope=node` is given (see [`super::cluster`]).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use hyper::StatusCode;
use netsvr_core::{ConnDetails, Gateway, UniqId};
use serde_json::{Value, json};

use super::AdminState;
use super::http::{Resp, error, json, query_pairs};

/// Page size when `limit` is not given.
const DEFAULT_LIMIT: usize = 100;
/// Largest `limit` accepted.
pub const MAX_LIMIT: usize = 1000;

/// The address the gateway writes into uniqIds, decided as netsvr-core decides it: the
/// configured `node_addr`, else the bound address when it is a specific IPv4 address, else
/// `127.0.0.1` with the bound port.
pub fn node_addr(gateway: &Gateway) -> SocketAddrV4 {
    if let Some(addr) = gateway.config().node_addr {
        return addr;
    }
    match gateway.local_addr() {
        SocketAddr::V4(v4) if !v4.ip().is_unspecified() => v4,
        other => SocketAddrV4::new(Ipv4Addr::LOCALHOST, other.port()),
    }
}

/// The node id: the first 12 hex characters of every uniqId this gateway makes.
pub fn node_id(gateway: &Gateway) -> String {
    let addr = node_addr(gateway);
    let mut bytes = [0u8; 14];
    bytes[..4].copy_from_slice(&addr.ip().octets());
    bytes[4..6].copy_from_slice(&addr.port().to_be_bytes());
    UniqId::from_bytes(bytes).node_prefix()
}

/// `/readyz`: 200 while serving with every sink healthy, else 503 saying why.
pub(crate) fn readyz(state: &AdminState) -> Resp {
    if state.gateway.is_shutting_down() {
        let body = json!({ "ready": false, "reason": "shutting down" });
        return json(StatusCode::SERVICE_UNAVAILABLE, &body);
    }
    let unhealthy: Vec<String> = state
        .gateway
        .sink_status()
        .into_iter()
        .filter(|s| !s.healthy)
        .map(|s| s.name)
        .collect();
    if unhealthy.is_empty() {
        json(StatusCode::OK, &json!({ "ready": true }))
    } else {
        let reason = format!("sink unhealthy: {}", unhealthy.join(", "));
        let body = json!({ "ready": false, "reason": reason, "unhealthy_sinks": unhealthy });
        json(StatusCode::SERVICE_UNAVAILABLE, &body)
    }
}

/// `/api/v1/status`: identity, sizes, counters, sinks and limits.
pub(crate) fn status(state: &AdminState) -> Resp {
    let gw = &state.gateway;
    let s = gw.stats();
    let sinks: Vec<Value> = gw
        .sink_status()
        .into_iter()
        .map(|k| {
            json!({
                "name": k.name, "healthy": k.healthy, "queued": k.queued,
                "capacity": k.capacity, "delivered": k.delivered, "retried": k.retried,
                "dropped": k.dropped,
            })
        })
        .collect();
    let limits = gw.limiter().limits().map(|l| {
        json!({
            "opens_per_sec": l.opens_per_sec,
            "messages_per_sec": l.messages_per_sec,
            "conn_messages": l.conn_messages,
            "conn_window_ms": u64::try_from(l.conn_window.as_millis()).unwrap_or(u64::MAX),
        })
    });
    let body = json!({
        "node": node_id(gw),
        "node_addr": node_addr(gw).to_string(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": state.started.elapsed().as_secs(),
        "shutting_down": gw.is_shutting_down(),
        "websocket": { "listen": gw.local_addr().to_string(), "path": gw.config().path },
        "connections": s.connections,
        "deflate_connections": s.deflate_connections,
        "customers": s.customers,
        "topics": s.topics,
        "counters": {
            "opened": s.opened, "closed": s.closed, "refused": s.refused,
            "refused_rate_limit": s.refused_rate_limit,
            "messages_in": s.messages_in, "bytes_in": s.bytes_in, "heartbeats": s.heartbeats,
            "messages_out": s.messages_out, "bytes_out": s.bytes_out,
            "drops_rate_limited": s.drops_rate_limited,
            "drops_rate_global": s.drops_rate_global, "drops_rate_conn": s.drops_rate_conn,
            "drops_slow_consumer": s.drops_slow_consumer,
            "drops_slow_consumer_bytes": s.drops_slow_consumer_bytes,
            "drops_sink": s.drops_sink,
        },
        "sinks": sinks,
        "limits": limits,
        "cluster": super::cluster::status(gw),
    });
    json(StatusCode::OK, &body)
}

/// A connection as the API shows it.
pub(super) fn conn_json(d: &ConnDetails) -> Value {
    json!({
        "uniq_id": d.meta.uniq_id.to_string(),
        "node": d.meta.uniq_id.node_prefix(),
        "remote_addr": d.meta.remote_addr.to_string(),
        "customer_id": d.info.customer_id,
        "session": d.info.session,
        "topics": d.info.topics,
        "raw_query": d.meta.raw_query,
        "x_forwarded_for": d.meta.x_forwarded_for,
        "x_real_ip": d.meta.x_real_ip,
    })
}

/// Which connections a read answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// This node's connections only.
    Node,
    /// Every node's (the default with a cluster; without one, the node is the cluster).
    Cluster,
}

/// The query parameters of a listing.
#[derive(Debug, Default)]
pub(super) struct ListQuery {
    pub(super) customer_id: Option<String>,
    pub(super) topic: Option<String>,
    pub(super) offset: usize,
    pub(super) limit: usize,
    pub(super) scope: Option<Scope>,
}

fn parse_scope(value: &str) -> Result<Scope, String> {
    match value {
        "node" => Ok(Scope::Node),
        "cluster" => Ok(Scope::Cluster),
        _ => Err("`scope` must be `node` or `cluster`".to_owned()),
    }
}

/// The `scope` of a read that takes no other parameter.
pub(super) fn parse_scope_query(query: Option<&str>) -> Result<Option<Scope>, String> {
    let pairs = query_pairs(query).ok_or_else(|| "malformed query string".to_owned())?;
    let mut scope = None;
    for (key, value) in pairs {
        match key.as_str() {
            "scope" => scope = Some(parse_scope(&value)?),
            "token" => {}
            _ => return Err(format!("unknown query parameter `{key}`")),
        }
    }
    Ok(scope)
}

/// The listing's parameters; the error says what is wrong with them.
pub(super) fn parse_list_query(query: Option<&str>, filters: bool) -> Result<ListQuery, String> {
    let pairs = query_pairs(query).ok_or_else(|| "malformed query string".to_owned())?;
    let mut q = ListQuery {
        limit: DEFAULT_LIMIT,
        ..ListQuery::default()
    };
    for (key, value) in pairs {
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("`{key}` must be a non-negative integer"))
        };
        match key.as_str() {
            "offset" => q.offset = number()?,
            "limit" => q.limit = number()?,
            "customer_id" if filters => q.customer_id = Some(value),
            "topic" if filters => q.topic = Some(value),
            "scope" => q.scope = Some(parse_scope(&value)?),
            "token" => {} // the status page's own token parameter
            _ => return Err(format!("unknown query parameter `{key}`")),
        }
    }
    if q.limit > MAX_LIMIT {
        return Err(format!("`limit` must be at most {MAX_LIMIT}"));
    }
    Ok(q)
}

/// The `offset..offset+limit` window of `items`.
pub(super) fn page<T>(items: &[T], offset: usize, limit: usize) -> &[T] {
    let start = offset.min(items.len());
    let end = start.saturating_add(limit).min(items.len());
    &items[start..end]
}

/// `/api/v1/connections`: filtered by customer and/or topic, ordered by uniqId, paginated.
pub(crate) async fn connections(state: &AdminState, query: Option<&str>) -> Resp {
    let q = match parse_list_query(query, true) {
        Ok(q) => q,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let gw = &state.gateway;
    if let Some(cluster) = super::cluster::scoped(gw, q.scope) {
        return super::cluster::connections(gw, &cluster, &q).await;
    }
    let mut ids = match (&q.customer_id, &q.topic) {
        (Some(customer), None) => gw.customer_uniq_ids(customer),
        (None, Some(topic)) => gw.topic_members(topic),
        (Some(customer), Some(topic)) => {
            let mut of_topic = gw.topic_members(topic);
            of_topic.sort_unstable();
            let mut ids = gw.customer_uniq_ids(customer);
            ids.retain(|id| of_topic.binary_search(id).is_ok());
            ids
        }
        (None, None) => gw.uniq_ids(),
    };
    ids.sort_unstable();
    ids.dedup();
    let items: Vec<Value> = page(&ids, q.offset, q.limit)
        .iter()
        .filter_map(|id| gw.conn_info(id))
        .map(|d| conn_json(&d))
        .collect();
    let body = json!({
        "scope": "node", "total": ids.len(), "offset": q.offset, "limit": q.limit,
        "connections": items,
    });
    json(StatusCode::OK, &body)
}

/// `/api/v1/connections/{uniqId}`: one connection, or 404.
pub(crate) async fn connection(state: &AdminState, id: &str, query: Option<&str>) -> Resp {
    let scope = match parse_scope_query(query) {
        Ok(scope) => scope,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let Ok(id) = id.parse::<UniqId>() else {
        return error(StatusCode::BAD_REQUEST, "a uniqId is 28 hex characters");
    };
    if let Some(cluster) = super::cluster::scoped(&state.gateway, scope) {
        return super::cluster::connection(&state.gateway, &cluster, &id).await;
    }
    match state.gateway.conn_info(&id) {
        Some(d) => json(StatusCode::OK, &conn_json(&d)),
        None => error(
            StatusCode::NOT_FOUND,
            format!("connection {id} is not open here"),
        ),
    }
}

/// `/api/v1/topics`: topics ordered by name, paginated, with their member counts.
pub(crate) async fn topics(state: &AdminState, query: Option<&str>) -> Resp {
    let q = match parse_list_query(query, false) {
        Ok(q) => q,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let gw = &state.gateway;
    if let Some(cluster) = super::cluster::scoped(gw, q.scope) {
        return super::cluster::topics(&cluster, &q).await;
    }
    let mut names = gw.topics();
    names.sort_unstable();
    let items: Vec<Value> = page(&names, q.offset, q.limit)
        .iter()
        .map(|t| json!({ "topic": t, "connections": gw.topic_member_count(t) }))
        .collect();
    let body = json!({
        "scope": "node", "total": names.len(), "offset": q.offset, "limit": q.limit,
        "topics": items,
    });
    json(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_clamp_to_the_slice() {
        let v = [1, 2, 3, 4, 5];
        assert_eq!(page(&v, 0, 2), &[1, 2]);
        assert_eq!(page(&v, 3, 10), &[4, 5]);
        assert_eq!(page(&v, 5, 10), &[] as &[i32]);
        assert_eq!(page(&v, 99, usize::MAX), &[] as &[i32]);
        assert_eq!(page(&v, 1, 0), &[] as &[i32]);
    }

    #[test]
    fn list_query_parsing() {
        let q = parse_list_query(Some("customer_id=a%20b&topic=t&offset=5&limit=7"), true).unwrap();
        assert_eq!(q.customer_id.as_deref(), Some("a b"));
        assert_eq!(q.topic.as_deref(), Some("t"));
        assert_eq!((q.offset, q.limit), (5, 7));
        let q = parse_list_query(None, true).unwrap();
        assert_eq!((q.offset, q.limit), (0, DEFAULT_LIMIT));
        assert!(parse_list_query(Some("limit=-1"), true).is_err());
        assert!(parse_list_query(Some("limit=1001"), true).is_err());
        assert!(parse_list_query(Some("offset=x"), true).is_err());
        assert!(parse_list_query(Some("bogus=1"), true).is_err());
        assert!(parse_list_query(Some("topic=t"), false).is_err());
        let q = parse_list_query(Some("scope=node"), false).unwrap();
        assert_eq!(q.scope, Some(Scope::Node));
        assert!(parse_list_query(Some("scope=all"), false).is_err());
        assert_eq!(parse_scope_query(None), Ok(None));
        assert_eq!(
            parse_scope_query(Some("scope=cluster")),
            Ok(Some(Scope::Cluster))
        );
        assert!(parse_scope_query(Some("limit=1")).is_err());
    }
}
