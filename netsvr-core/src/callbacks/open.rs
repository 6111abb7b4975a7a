//! OnOpen as the [`Authenticator`]: POST a `ConnOpen`, admit or refuse by the `ConnOpenResp`.

use async_trait::async_trait;
use bytes::Bytes;
use hyper::{StatusCode, Uri};
use netsvr_protocol::pb;
use prost::Message as _;

use super::client::{CallError, HttpClient};
use crate::auth::{Admission, AuthDecision, Authenticator, HandshakeRequest, Rejection};
use crate::client_cmd::ClientGrants;
use crate::close;

/// Largest `ConnOpenResp` body accepted; a longer one is a callback failure.
pub const OPEN_RESPONSE_LIMIT: usize = 1024 * 1024;

/// The close reason sent with 1008 when the OnOpen endpoint refuses a client.
pub const REFUSED_REASON: &str = "refused";

/// The close reason sent with 1011 when the OnOpen callback fails.
pub const FAILED_REASON: &str = "callback failed";

/// netsvr's OnOpen callback as an [`Authenticator`]. Made by
/// [`Callbacks::authenticator`](super::Callbacks::authenticator).
///
/// Each upgrade request is POSTed to the OnOpen URL as a `ConnOpen` (uniqId, raw query,
/// `X-Forwarded-For`, `X-Real-IP`, remote address). The answer must be HTTP 200 with a
/// `ConnOpenResp` body:
///
/// - `allow = true` admits the client: a non-empty `newSession`, `newCustomerId` and
///   `newTopics` are applied, and a non-empty `data` is the first message it receives;
///   the netsvr-rs extensions `subscribeTopics` and `publishTopics` (topic prefixes), when
///   either is non-empty, become the connection's [`ClientGrants`] for client commands
///   (absent, as from netsvr's own SDKs: no grants);
/// - `allow = false` upgrades, pushes `data` (when set) and closes with 1008 `refused`;
/// - a connect or transport error, the timeout, another status, a body over
///   [`OPEN_RESPONSE_LIMIT`] or one that does not decode closes with 1011
///   `callback failed` (and logs a warning).
///
/// The gateway's own handshake timeout still applies around the call: if it is shorter than
/// the callback timeout, a slow endpoint gets the client an HTTP 503 instead of a 1011.
#[derive(Debug, Clone)]
pub struct HttpAuthenticator {
    client: HttpClient,
    url: Uri,
}

impl HttpAuthenticator {
    pub(crate) fn new(client: HttpClient, url: Uri) -> Self {
        Self { client, url }
    }

    /// The OnOpen URL.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    async fn ask(&self, open: &pb::ConnOpen) -> Result<pb::ConnOpenResp, CallError> {
        let body = Bytes::from(open.encode_to_vec());
        let (status, body) = self
            .client
            .call(&self.url, body, OPEN_RESPONSE_LIMIT)
            .await?;
        if status != StatusCode::OK {
            return Err(CallError::Status(status));
        }
        pb::ConnOpenResp::decode(body).map_err(|source| CallError::Decode {
            what: "ConnOpenResp",
            source,
        })
    }
}

#[async_trait]
impl Authenticator for HttpAuthenticator {
    async fn authenticate(&self, request: &HandshakeRequest) -> AuthDecision {
        let open = conn_open(request);
        match self.ask(&open).await {
            Ok(answer) => decide(answer),
            Err(error) => {
                tracing::warn!(
                    uniq_id = %request.uniq_id,
                    url = %self.url,
                    %error,
                    "OnOpen callback failed; closing the client with 1011"
                );
                failed()
            }
        }
    }
}

/// The `ConnOpen` of an upgrade request (the same fields as the Open event's).
pub(crate) fn conn_open(request: &HandshakeRequest) -> pb::ConnOpen {
    pb::ConnOpen {
        uniq_id: request.uniq_id.to_string(),
        raw_query: request.query.clone(),
        x_forwarded_for: request.header("x-forwarded-for").to_owned(),
        x_real_ip: request.header("x-real-ip").to_owned(),
        remote_addr: request.remote_addr.to_string(),
    }
}

/// What a decoded `ConnOpenResp` means.
pub(crate) fn decide(answer: pb::ConnOpenResp) -> AuthDecision {
    let message = (!answer.data.is_empty()).then_some(answer.data);
    if !answer.allow {
        return AuthDecision::Reject(Rejection::Close {
            code: close::POLICY_VIOLATION,
            reason: REFUSED_REASON.to_owned(),
            message,
        });
    }
    let mut admission = Admission::new();
    if !answer.new_session.is_empty() {
        admission = admission.session(answer.new_session);
    }
    if !answer.new_customer_id.is_empty() {
        admission = admission.customer(answer.new_customer_id);
    }
    if !answer.new_topics.is_empty() {
        admission = admission.topics(answer.new_topics);
    }
    if let Some(message) = message {
        admission = admission.message(message);
    }
    if !answer.subscribe_topics.is_empty() || !answer.publish_topics.is_empty() {
        admission = admission.grants(
            ClientGrants::new()
                .subscribe(answer.subscribe_topics)
                .publish(answer.publish_topics),
        );
    }
    AuthDecision::Allow(admission)
}

/// The refusal for a failed callback.
fn failed() -> AuthDecision {
    AuthDecision::Reject(Rejection::Close {
        code: close::INTERNAL_ERROR,
        reason: FAILED_REASON.to_owned(),
        message: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::UniqId;

    #[test]
    fn allow_applies_only_what_is_set() {
        let full = pb::ConnOpenResp {
            allow: true,
            new_session: "s".into(),
            new_customer_id: "c".into(),
            new_topics: vec!["a".into(), "b".into()],
            data: Bytes::from_static(b"hi"),
            subscribe_topics: vec!["news.".into()],
            publish_topics: vec!["chat.".into(), "".into()],
        };
        let expected = Admission::new()
            .session("s")
            .customer("c")
            .topics(["a", "b"])
            .message(Bytes::from_static(b"hi"))
            .grants(
                ClientGrants::new()
                    .subscribe(["news."])
                    .publish(["chat.", ""]),
            );
        assert_eq!(decide(full), AuthDecision::Allow(expected));
        let bare = pb::ConnOpenResp {
            allow: true,
            ..Default::default()
        };
        assert_eq!(decide(bare), AuthDecision::Allow(Admission::new()));
        // One list alone is a grant too.
        let publish_only = pb::ConnOpenResp {
            allow: true,
            publish_topics: vec!["room.".into()],
            ..Default::default()
        };
        assert_eq!(
            decide(publish_only),
            AuthDecision::Allow(Admission::new().grants(ClientGrants::new().publish(["room."])))
        );
    }

    #[test]
    fn deny_closes_1008_with_data_when_set() {
        let deny = |data: &'static [u8]| {
            decide(pb::ConnOpenResp {
                allow: false,
                new_customer_id: "ignored".into(),
                data: Bytes::from_static(data),
                ..Default::default()
            })
        };
        let close = |message: Option<Bytes>| {
            AuthDecision::Reject(Rejection::Close {
                code: 1008,
                reason: "refused".into(),
                message,
            })
        };
        assert_eq!(deny(b"bye"), close(Some(Bytes::from_static(b"bye"))));
        assert_eq!(deny(b""), close(None));
    }

    #[test]
    fn failure_closes_1011_without_message() {
        assert_eq!(
            failed(),
            AuthDecision::Reject(Rejection::Close {
                code: 1011,
                reason: "callback failed".into(),
                message: None,
            })
        );
    }

    #[test]
    fn conn_open_copies_the_request() {
        let mut headers = hyper::HeaderMap::new();
        headers.insert("x-forwarded-for", "1.2.3.4, 5.6.7.8".parse().unwrap());
        headers.insert("x-real-ip", "1.2.3.4".parse().unwrap());
        let request = HandshakeRequest {
            uniq_id: UniqId::from_bytes([7; 14]),
            remote_addr: "127.0.0.1:4321".parse().unwrap(),
            path: "/netsvr".into(),
            query: "a=1&b=2".into(),
            headers,
        };
        let open = conn_open(&request);
        assert_eq!(open.uniq_id, UniqId::from_bytes([7; 14]).to_string());
        assert_eq!(open.raw_query, "a=1&b=2");
        assert_eq!(open.x_forwarded_for, "1.2.3.4, 5.6.7.8");
        assert_eq!(open.x_real_ip, "1.2.3.4");
        assert_eq!(open.remote_addr, "127.0.0.1:4321");
    }
}
