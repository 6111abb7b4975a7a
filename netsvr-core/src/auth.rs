//! The `Authenticator` seam: who may connect, and what they start with.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use hyper::HeaderMap;

use crate::client_cmd::ClientGrants;
use crate::id::UniqId;

/// The facts of an upgrade request, given to the authenticator before the 101.
#[derive(Debug)]
#[non_exhaustive]
pub struct HandshakeRequest {
    /// The id the connection will have if admitted.
    pub uniq_id: UniqId,
    /// The TCP peer.
    pub remote_addr: SocketAddr,
    /// The request path.
    pub path: String,
    /// The query string, without the `?` (empty when none).
    pub query: String,
    /// All request headers.
    pub headers: HeaderMap,
}

impl HandshakeRequest {
    /// One header as text, or empty when absent or not text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of `key` in the query string (first occurrence, not percent-decoded).
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == key).then_some(v)
        })
    }
}

/// What an admitted connection starts with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Admission {
    /// Bind the connection to this customer.
    pub customer_id: Option<String>,
    /// Initial session text.
    pub session: String,
    /// Initial topics.
    pub topics: Vec<String>,
    /// A first message pushed to the client right after admission.
    pub message: Option<Bytes>,
    /// Topic prefixes the client may use with client commands (see
    /// [`crate::client_cmd`]); `None`: no grants.
    pub grants: Option<Arc<ClientGrants>>,
}

impl Admission {
    /// Admits with nothing bound.
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds a customer.
    pub fn customer(mut self, customer_id: impl Into<String>) -> Self {
        self.customer_id = Some(customer_id.into());
        self
    }

    /// Sets the session.
    pub fn session(mut self, session: impl Into<String>) -> Self {
        self.session = session.into();
        self
    }

    /// Subscribes to topics.
    pub fn topics<I: IntoIterator<Item = S>, S: Into<String>>(mut self, topics: I) -> Self {
        self.topics = topics.into_iter().map(Into::into).collect();
        self
    }

    /// Pushes a first message.
    pub fn message(mut self, message: impl Into<Bytes>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Grants topic prefixes for client commands (checked by the
    /// [`ConnectionGrants`](crate::client_cmd::ConnectionGrants) authoriser and by
    /// [`TopicPrefixes::with_grants`](crate::client_cmd::TopicPrefixes::with_grants)).
    pub fn grants(mut self, grants: ClientGrants) -> Self {
        self.grants = Some(Arc::new(grants));
        self
    }
}

/// How a refused client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// Answer the upgrade request with this HTTP status (4xx or 5xx) and no upgrade.
    Status(u16),
    /// Upgrade, push `message` if any, then close with `code` and `reason`
    /// (netsvr: 1008 for a refusal, 1011 for a callback failure).
    Close {
        /// Close code.
        code: u16,
        /// Close reason (cut to fit a control frame).
        reason: String,
        /// A message pushed before the close.
        message: Option<Bytes>,
    },
}

/// The authenticator's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthDecision {
    /// Admit the connection.
    Allow(Admission),
    /// Refuse it.
    Reject(Rejection),
}

/// Decides at the handshake whether a client may connect. It may call out (async); it runs
/// within the handshake timeout, and a timeout refuses with HTTP 503.
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// Admits or refuses one upgrade request.
    async fn authenticate(&self, request: &HandshakeRequest) -> AuthDecision;
}

/// Admits everyone with nothing bound.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

#[async_trait]
impl Authenticator for AllowAll {
    async fn authenticate(&self, _request: &HandshakeRequest) -> AuthDecision {
        AuthDecision::Allow(Admission::default())
    }
}
