//! The HTTP/1.1 client every callback shares: one keep-alive pool, protobuf POSTs, each
//! request bounded by the configured timeout and each response body by a size cap.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Instant;

use super::CallbackConfig;

/// The content type of every callback request (PROTOCOL.md §7).
pub(crate) const PROTOBUF: HeaderValue = HeaderValue::from_static("application/x-protobuf");

/// The `User-Agent` of every callback request.
const AGENT: HeaderValue =
    HeaderValue::from_static(concat!("netsvr-rs/", env!("CARGO_PKG_VERSION")));

/// Most bytes of an ignored response body read (and thrown away) so its connection can be
/// reused; a longer body just costs that connection.
const DRAIN_LIMIT: usize = 64 * 1024;

/// Why a callback request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// No complete answer within the timeout (connect included).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connect, write or read failed.
    #[error("request failed: {0}")]
    Transport(String),
    /// The endpoint answered with a status the callback does not accept.
    #[error("answered HTTP {0}")]
    Status(StatusCode),
    /// The response body could not be read, or was longer than allowed.
    #[error("response body: {0}")]
    Body(String),
    /// The response body is not the expected protobuf message.
    #[error("response body is not a valid {what}: {source}")]
    Decode {
        /// The message expected.
        what: &'static str,
        /// The decoder's complaint.
        source: prost::DecodeError,
    },
}

/// A cheap-to-clone handle on the shared connection pool.
#[derive(Clone)]
pub(crate) struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A pool with the config's keep-alive settings. Needs no runtime until the first call.
    pub(crate) fn new(config: &CallbackConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(config.pool_max_idle)
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Self {
            client,
            timeout: config.timeout,
        }
    }

    /// POSTs `body` and reads the whole answer, at most `limit` bytes of body. The request,
    /// connect included, and the body read share one deadline.
    pub(crate) async fn call(
        &self,
        uri: &Uri,
        body: Bytes,
        limit: usize,
    ) -> Result<(StatusCode, Bytes), CallError> {
        let work = async {
            let response = self.send(uri, body).await?;
            let status = response.status();
            let body = read_limited(response.into_body(), limit).await?;
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| CallError::Timeout(self.timeout))?
    }

    /// POSTs `body` and checks for a 2xx answer; the body is drained (up to a small limit,
    /// within what is left of the timeout) and ignored. Once the status is in, the request
    /// counts as delivered whatever happens to the body.
    pub(crate) async fn notify(&self, uri: &Uri, body: Bytes) -> Result<StatusCode, CallError> {
        let deadline = Instant::now() + self.timeout;
        let response = tokio::time::timeout_at(deadline, self.send(uri, body))
            .await
            .map_err(|_| CallError::Timeout(self.timeout))??;
        let status = response.status();
        // Reading the rest lets the pool reuse the connection; failing to only closes it.
        let _ = tokio::time::timeout_at(deadline, drain(response.into_body(), DRAIN_LIMIT)).await;
        if status.is_success() {
            Ok(status)
        } else {
            Err(CallError::Status(status))
        }
    }

    async fn send(&self, uri: &Uri, body: Bytes) -> Result<hyper::Response<Incoming>, CallError> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = hyper::Method::POST;
        *request.uri_mut() = uri.clone();
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, PROTOBUF);
        headers.insert(USER_AGENT, AGENT);
        self.client
            .request(request)
            .await
            .map_err(|e| CallError::Transport(chain(&e)))
    }
}

/// Collects a body, failing past `limit` bytes.
async fn read_limited(mut body: Incoming, limit: usize) -> Result<Bytes, CallError> {
    let mut out = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| CallError::Body(chain(&e)))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(CallError::Body(format!("longer than {limit} bytes")));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

/// Reads and discards a body; gives up (closing the connection) past `limit` bytes.
async fn drain(mut body: Incoming, limit: usize) -> bool {
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return false };
        if let Some(data) = frame.data_ref() {
            seen += data.len();
            if seen > limit {
                return false;
            }
        }
    }
    true
}

/// An error with its causes, `outer: inner: innermost` (hyper's own text is terse).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chain_lists_every_cause() {
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        ));
        assert_eq!(chain(&e), "outer: refused");
    }

    #[test]
    fn call_error_texts_name_the_problem() {
        assert_eq!(
            CallError::Status(StatusCode::SERVICE_UNAVAILABLE).to_string(),
            "answered HTTP 503 Service Unavailable"
        );
        assert_eq!(
            CallError::Timeout(Duration::from_millis(300)).to_string(),
            "no answer within 300ms"
        );
    }

    #[tokio::test]
    async fn refused_connection_is_a_transport_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let client = HttpClient::new(&CallbackConfig::default());
        let uri: Uri = format!("http://127.0.0.1:{port}/x").parse().unwrap();
        let result = client.call(&uri, Bytes::new(), 16).await;
        assert!(matches!(result, Err(CallError::Transport(_))), "{result:?}");
        let result = client.notify(&uri, Bytes::new()).await;
        assert!(matches!(result, Err(CallError::Transport(_))), "{result:?}");
    }
}
