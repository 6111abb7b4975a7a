//! Routing of the admin port: which path answers which method, and which need the token
//! (the table is in the module docs of [`crate::admin`]).
//!
//! `/healthz` and `/readyz` never need the token. Every other path does when one is set,
//! and the token is checked before the path is resolved, so nothing about the API is
//! revealed without it. The status page (`/`) and the demo page (`/demo`) also accept the
//! token as `?token=`.

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use super::AdminState;
use super::http::{
    Resp, bearer, constant_time_eq, error, is_json, method_not_allowed, query_pairs, read_body,
    respond, unauthorized,
};
use super::{cluster, commands, demo, page, status};

/// The Prometheus text exposition format's content type.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether the request carries the configured token (always true when none is set). The
/// status and demo pages (`/`, `/demo`) may carry it as `?token=` instead of a header.
fn authorized(state: &AdminState, req: &Request<Incoming>) -> bool {
    let Some(expected) = state.token.as_deref() else {
        return true;
    };
    let matches = |given: &str| constant_time_eq(given.as_bytes(), expected.as_bytes());
    if bearer(req.headers()).is_some_and(matches) {
        return true;
    }
    matches!(req.uri().path(), "/" | "/demo")
        && query_pairs(req.uri().query())
            .unwrap_or_default()
            .iter()
            .any(|(k, v)| k == "token" && matches(v))
}

/// What a path accepts.
enum Route<'a> {
    Page,
    Demo,
    Metrics,
    Status,
    Connections,
    Connection(&'a str),
    Topics,
    ClusterNodes,
    ClusterConnections,
    Command,
}

fn route(path: &str) -> Option<Route<'_>> {
    Some(match path {
        "/" => Route::Page,
        "/demo" => Route::Demo,
        "/metrics" => Route::Metrics,
        "/api/v1/status" => Route::Status,
        "/api/v1/connections" => Route::Connections,
        "/api/v1/topics" => Route::Topics,
        "/api/v1/cluster/nodes" => Route::ClusterNodes,
        "/api/v1/cluster/connections" => Route::ClusterConnections,
        p if commands::PATHS.contains(&p) => Route::Command,
        p => match p.strip_prefix("/api/v1/connections/") {
            Some(id) if !id.is_empty() && !id.contains('/') => Route::Connection(id),
            _ => return None,
        },
    })
}

/// Answers one request.
pub(crate) async fn handle(state: &AdminState, req: Request<Incoming>) -> Resp {
    let get = req.method() == Method::GET;
    match req.uri().path() {
        "/healthz" if get => return respond(StatusCode::OK, "text/plain; charset=utf-8", "ok"),
        "/readyz" if get => return status::readyz(state),
        "/healthz" | "/readyz" => return method_not_allowed("GET"),
        _ => {}
    }
    if !authorized(state, &req) {
        return unauthorized();
    }
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let query = query.as_deref();
    let Some(route) = route(&path) else {
        return error(StatusCode::NOT_FOUND, format!("no such endpoint: {path}"));
    };
    if let Route::Command = route {
        if req.method() != Method::POST {
            return method_not_allowed("POST");
        }
        if !is_json(req.headers()) {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "commands take a JSON body with `Content-Type: application/json`",
            );
        }
        return match read_body(req).await {
            Ok(body) => commands::run(&state.gateway, &path, &body),
            Err(resp) => resp,
        };
    }
    if !get {
        return method_not_allowed("GET");
    }
    match route {
        Route::Page => page::page(),
        Route::Demo => demo::page(state, query),
        Route::Metrics => {
            super::record_runtime();
            respond(
                StatusCode::OK,
                METRICS_CONTENT_TYPE,
                state.prometheus.render(),
            )
        }
        Route::Status => status::status(state),
        Route::Connections => status::connections(state, query).await,
        Route::Connection(id) => status::connection(state, id, query).await,
        Route::Topics => status::topics(state, query).await,
        Route::ClusterNodes => cluster::nodes(state),
        Route::ClusterConnections => cluster::summary(state).await,
        Route::Command => error(StatusCode::INTERNAL_SERVER_ERROR, "unrouted command"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_resolve() {
        assert!(matches!(route("/"), Some(Route::Page)));
        assert!(matches!(route("/demo"), Some(Route::Demo)));
        assert!(matches!(route("/metrics"), Some(Route::Metrics)));
        assert!(matches!(route("/api/v1/status"), Some(Route::Status)));
        assert!(matches!(
            route("/api/v1/connections"),
            Some(Route::Connections)
        ));
        assert!(matches!(route("/api/v1/topics"), Some(Route::Topics)));
        assert!(matches!(
            route("/api/v1/cluster/nodes"),
            Some(Route::ClusterNodes)
        ));
        assert!(matches!(
            route("/api/v1/cluster/connections"),
            Some(Route::ClusterConnections)
        ));
        assert!(route("/api/v1/cluster").is_none());
        assert!(matches!(route("/api/v1/kick"), Some(Route::Command)));
        assert!(matches!(route("/api/v1/broadcast"), Some(Route::Command)));
        assert!(matches!(
            route("/api/v1/connections/abc"),
            Some(Route::Connection("abc"))
        ));
        assert!(route("/api/v1/connections/").is_none());
        assert!(route("/api/v1/connections/a/b").is_none());
        assert!(route("/api/v1/nope").is_none());
        assert!(route("/metrics/").is_none());
        assert!(route("").is_none());
    }
}
