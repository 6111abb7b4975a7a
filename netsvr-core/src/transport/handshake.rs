//! The HTTP side of a client connection: hyper 1 serves the request; path, Origin, upgrade
//! headers, shutdown, connection cap, open rate and the authenticator are checked before the
//! 101; then the raw `TcpStream` is taken back from hyper for the connection task.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fastwebsockets::upgrade::{UpgradeFut, upgrade};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, HeaderValue, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_VERSION};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::net::TcpStream;

use super::link::{IntoLink, Link};
use super::{NoSlot, Slot, request, session};
use crate::auth::{Admission, AuthDecision, HandshakeRequest, Rejection};
use crate::close;
use crate::conn::Conn;
use crate::deflate::{Negotiated, negotiate};
use crate::event::{ConnInfo, ConnMeta};
use crate::gateway::Shared;
use crate::metrics::Refusal;

type Body = Full<Bytes>;

/// What happens once the 101 is sent.
pub(super) enum Outcome {
    Admit {
        slot: Slot,
        meta: ConnMeta,
        admission: Admission,
    },
    Refuse {
        meta: ConnMeta,
        code: u16,
        reason: String,
        message: Option<Bytes>,
    },
}

struct Pending {
    upgrade: UpgradeFut,
    outcome: Outcome,
    started: Instant,
    /// permessage-deflate as agreed in the 101.
    deflate: Option<Negotiated>,
}

/// Serves one accepted TCP connection: the TLS handshake first when TLS is on, then
/// [`serve_http`], all within `handshake_timeout`.
pub(super) async fn accept(shared: Arc<Shared>, stream: TcpStream, remote: SocketAddr) {
    let started = Instant::now();
    #[cfg(feature = "tls")]
    if let Some(config) = shared.tls.as_ref().map(|tls| tls.load_full()) {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        match tokio::time::timeout(shared.config.handshake_timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => serve_http(shared, stream, remote, started).await,
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                refused(&shared, Refusal::Tls);
            }
            Err(_) => refused(&shared, Refusal::Timeout),
        }
        return;
    }
    serve_http(shared, stream, remote, started).await;
}

/// Serves one connection until it upgrades, answers a plain request, or times out (counted
/// from `started`); an upgraded connection continues in its own (small) task.
async fn serve_http<S>(shared: Arc<Shared>, stream: S, remote: SocketAddr, started: Instant)
where
    S: IntoLink + 'static,
{
    let cfg = &shared.config;
    let deadline = tokio::time::Instant::from_std(started + cfg.handshake_timeout);
    let pending: Arc<Mutex<Option<Pending>>> = Arc::default();
    let service = {
        let shared = shared.clone();
        let pending = pending.clone();
        service_fn(move |req| {
            let shared = shared.clone();
            let pending = pending.clone();
            async move { Ok::<_, Infallible>(respond(&shared, &pending, remote, started, req).await) }
        })
    };
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(cfg.handshake_timeout)
        .max_buf_size(cfg.max_header_size.max(8192))
        .keep_alive(true);
    let conn = http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let upgraded = tokio::time::timeout_at(deadline, async {
        if let Err(e) = conn.await {
            tracing::debug!(%remote, error = %e, "http connection ended");
        }
        let Pending {
            upgrade,
            outcome,
            started,
            deflate,
        } = pending.lock().take()?;
        let ws = upgrade.await.ok()?;
        Some((ws.into_inner().into_inner(), outcome, started, deflate))
    })
    .await;
    let (upgraded, outcome, started, deflate) = match upgraded {
        Ok(Some(done)) => done,
        Ok(None) => return,
        Err(_) => {
            refused(&shared, Refusal::Timeout);
            return;
        }
    };
    let parts = match upgraded.downcast::<TokioIo<S>>() {
        Ok(parts) => parts,
        Err(_) => {
            tracing::error!(%remote, "upgraded connection is not the accepted stream");
            return;
        }
    };
    let stream = parts.io.into_inner().into_link();
    let early = parts.read_buf;
    match outcome {
        Outcome::Admit { .. } if shared.is_draining() => {
            let meta = outcome_meta(outcome);
            refused(&shared, Refusal::Shutdown);
            session::refuse(
                shared,
                meta,
                stream,
                close::SERVICE_RESTART,
                "shutting down",
                None,
            )
            .await;
        }
        Outcome::Admit {
            slot,
            meta,
            admission,
        } => {
            shared
                .metrics
                .handshake_seconds
                .record(started.elapsed().as_secs_f64());
            tokio::spawn(admit(slot, meta, admission, stream, early, deflate));
        }
        Outcome::Refuse {
            meta,
            code,
            reason,
            message,
        } => session::refuse(shared, meta, stream, code, &reason, message).await,
    }
}

fn outcome_meta(outcome: Outcome) -> ConnMeta {
    match outcome {
        Outcome::Admit { meta, .. } | Outcome::Refuse { meta, .. } => meta,
    }
}

/// Registers an admitted connection, reports it open, pushes the first message, and runs it.
async fn admit(
    slot: Slot,
    meta: ConnMeta,
    admission: Admission,
    stream: Link,
    early: Bytes,
    deflate: Option<Negotiated>,
) {
    let shared = slot.shared().clone();
    // Counted before the first message is framed, so it can be compressed too.
    let deflate = deflate.map(|agreed| session::DeflateSeat::new(&shared, agreed));
    let Admission {
        customer_id,
        session,
        topics,
        message,
        grants,
    } = admission;
    let info = ConnInfo::new(customer_id, session, topics);
    let conn = Arc::new(Conn::new(meta, info, shared.now_ms()).with_grants(grants));
    // Queue the first message before the connection is visible to anyone else, so it is
    // the first thing the client gets.
    if let Some(message) = message.filter(|m| !m.is_empty()) {
        shared.enqueue(&conn, &shared.frame(&message));
    }
    shared.attach(&conn);
    shared.emit(crate::event::Event::new(
        conn.snapshot(),
        crate::event::EventKind::Open,
    ));
    session::run(slot, conn, stream, early, deflate).await;
}

fn refused(shared: &Shared, reason: Refusal) {
    shared.metrics.refused(reason);
    shared.counters.refused.fetch_add(1, Ordering::Relaxed);
    if matches!(reason, Refusal::RateLimit) {
        shared
            .counters
            .refused_rate_limit
            .fetch_add(1, Ordering::Relaxed);
    }
}

fn answer(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

fn unix_secs() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    u32::try_from(secs).unwrap_or(u32::MAX)
}

fn header_text(req: &Request<Incoming>, name: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

async fn respond(
    shared: &Arc<Shared>,
    pending: &Mutex<Option<Pending>>,
    remote: SocketAddr,
    started: Instant,
    mut req: Request<Incoming>,
) -> Response<Body> {
    if let Err(answer) = request::check(&shared.config, &req, shared.is_draining()) {
        if let Some(refusal) = answer.refusal {
            refused(shared, refusal);
        }
        let mut response = self::answer(answer.status, answer.text);
        if answer.status == StatusCode::METHOD_NOT_ALLOWED {
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        } else if answer.status == StatusCode::UPGRADE_REQUIRED {
            response
                .headers_mut()
                .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        }
        return response;
    }
    let uniq_id = shared.ids.next(unix_secs());
    let meta = ConnMeta {
        uniq_id,
        remote_addr: remote,
        raw_query: req.uri().query().unwrap_or("").to_owned(),
        x_forwarded_for: header_text(&req, "x-forwarded-for"),
        x_real_ip: header_text(&req, "x-real-ip"),
    };
    // The 101 is prepared first so the headers can then be moved, not cloned, into the
    // authenticator's request; a refusal below simply drops it.
    let (mut response, upgrade_fut) = match upgrade(&mut req) {
        Ok(pair) => pair,
        Err(_) => {
            refused(shared, Refusal::BadRequest);
            return answer(StatusCode::BAD_REQUEST, "bad upgrade request\n");
        }
    };
    let deflate = negotiate(
        req.headers()
            .get_all(SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .map(HeaderValue::as_bytes),
        &shared.config.deflate,
    )
    .and_then(|agreed| {
        let value = HeaderValue::from_str(agreed.response()).ok()?;
        response
            .headers_mut()
            .insert(SEC_WEBSOCKET_EXTENSIONS, value);
        Some(agreed)
    });
    let request = HandshakeRequest {
        uniq_id: meta.uniq_id,
        remote_addr: meta.remote_addr,
        path: req.uri().path().to_owned(),
        query: meta.raw_query.clone(),
        headers: std::mem::take(req.headers_mut()),
    };
    let outcome = match admission(shared, request, meta, started).await {
        Ok(outcome) => outcome,
        Err(response) => return response,
    };
    *pending.lock() = Some(Pending {
        upgrade: upgrade_fut,
        outcome,
        started,
        deflate,
    });
    response.map(|_| Full::new(Bytes::new()))
}

/// Connection cap, open rate and the authenticator: admit, refuse after the upgrade with a
/// close code, or answer with an HTTP status now.
async fn admission(
    shared: &Arc<Shared>,
    request: HandshakeRequest,
    meta: ConnMeta,
    started: Instant,
) -> Result<Outcome, Response<Body>> {
    let refuse = |meta, code, reason: &str| Outcome::Refuse {
        meta,
        code,
        reason: reason.to_owned(),
        message: None,
    };
    let slot = match Slot::try_take(shared, meta.remote_addr.ip()) {
        Ok(slot) => slot,
        Err(NoSlot::Full) => {
            refused(shared, Refusal::Full);
            return Ok(refuse(meta, close::TRY_AGAIN_LATER, "server full"));
        }
        Err(NoSlot::PerIp) => {
            refused(shared, Refusal::PerIp);
            let reason = "too many connections from this address";
            return Ok(refuse(meta, close::TRY_AGAIN_LATER, reason));
        }
    };
    if !shared.limiter.check_open(meta.remote_addr.ip()) {
        refused(shared, Refusal::RateLimit);
        return Ok(refuse(meta, close::TRY_AGAIN_LATER, "rate limited"));
    }
    // Leave a little of the handshake time for the upgrade itself.
    let budget = shared.config.handshake_timeout;
    let deadline = started + budget - (budget / 10).min(Duration::from_millis(200));
    let decision =
        tokio::time::timeout_at(deadline.into(), shared.auth.authenticate(&request)).await;
    match decision {
        Ok(AuthDecision::Allow(admission)) => Ok(Outcome::Admit {
            slot,
            meta,
            admission,
        }),
        Ok(AuthDecision::Reject(Rejection::Status(code))) => {
            refused(shared, Refusal::Auth);
            let status = StatusCode::from_u16(code)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(StatusCode::FORBIDDEN);
            Err(answer(status, "refused\n"))
        }
        Ok(AuthDecision::Reject(Rejection::Close {
            code,
            reason,
            message,
        })) => {
            refused(shared, Refusal::Auth);
            Ok(Outcome::Refuse {
                meta,
                code,
                reason,
                message,
            })
        }
        Err(_) => {
            refused(shared, Refusal::Timeout);
            tracing::warn!(uniq_id = %meta.uniq_id, "authenticator timed out");
            Err(answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "authenticator timed out\n",
            ))
        }
    }
}
