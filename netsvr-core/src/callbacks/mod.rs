//! HTTP callbacks (feature `http`): OnOpen as the authenticator, OnMessage and OnClose as sinks.
//!
//! netsvr's third way to reach the business (PROTOCOL.md §7): every callback is an HTTP/1.1
//! `POST` with `Content-Type: application/x-protobuf` and the bare protobuf message as its
//! body. One keep-alive pool serves all three callbacks.
//!
//! - **OnOpen** ([`HttpAuthenticator`]): `ConnOpen` in, `ConnOpenResp` out; admits with the
//!   customer, session, topics and first message it names, or refuses (1008). A failed call
//!   closes the client with 1011.
//! - **OnMessage / OnClose** ([`HttpSink`]): each `Transfer` and `ConnClose`, in order per
//!   connection, through a bounded buffer with retries; what does not fit is dropped and
//!   counted.
//!
//! ```no_run
//! use netsvr_core::callbacks::{CallbackConfig, Callbacks};
//! use netsvr_core::{AllowAll, Gateway};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = CallbackConfig::default();
//! config.on_open_url = "http://127.0.0.1:8080/open".into();
//! config.on_message_url = "http://127.0.0.1:8080/message".into();
//! config.on_close_url = "http://127.0.0.1:8080/close".into();
//! let callbacks = Callbacks::new(config)?;
//! let mut builder = Gateway::builder();
//! builder = match callbacks.authenticator() {
//!     Some(auth) => builder.authenticator(auth),
//!     None => builder.authenticator(AllowAll),
//! };
//! if let Some(sink) = callbacks.sink() {
//!     builder = builder.sink(sink);
//! }
//! let (_gateway, serve) = builder.build()?;
//! serve.await?;
//! # Ok(()) }
//! ```

mod client;
mod config;
mod open;
mod sink;

use hyper::Uri;

pub use config::CallbackConfig;
pub use open::{FAILED_REASON, HttpAuthenticator, OPEN_RESPONSE_LIMIT, REFUSED_REASON};
pub use sink::{HttpSink, SINK_NAME};

use crate::config::ConfigError;
use client::HttpClient;

/// The configured callbacks: makes the authenticator and the sink, sharing one HTTP client.
#[derive(Debug, Clone)]
pub struct Callbacks {
    config: CallbackConfig,
    client: HttpClient,
    on_open: Option<Uri>,
    on_message: Option<Uri>,
    on_close: Option<Uri>,
}

impl Callbacks {
    /// Validates `config` and prepares the client (no runtime needed, nothing connects yet).
    pub fn new(config: CallbackConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let on_open = parse(&config.on_open_url, "http.on_open_url")?;
        let on_message = parse(&config.on_message_url, "http.on_message_url")?;
        let on_close = parse(&config.on_close_url, "http.on_close_url")?;
        Ok(Self {
            client: HttpClient::new(&config),
            config,
            on_open,
            on_message,
            on_close,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CallbackConfig {
        &self.config
    }

    /// The OnOpen authenticator, or `None` when `on_open_url` is empty (admit everyone then,
    /// e.g. with [`AllowAll`](crate::AllowAll)).
    pub fn authenticator(&self) -> Option<HttpAuthenticator> {
        let url = self.on_open.clone()?;
        Some(HttpAuthenticator::new(self.client.clone(), url))
    }

    /// The OnMessage / OnClose sink, or `None` when both URLs are empty. Starts its lanes,
    /// so call it inside a tokio runtime, and once: every call starts another sink.
    pub fn sink(&self) -> Option<HttpSink> {
        if self.on_message.is_none() && self.on_close.is_none() {
            return None;
        }
        Some(HttpSink::start(
            &self.config,
            self.client.clone(),
            self.on_message.clone(),
            self.on_close.clone(),
        ))
    }
}

/// An optional URL: empty is off.
fn parse(url: &str, key: &'static str) -> Result<Option<Uri>, ConfigError> {
    if url.is_empty() {
        return Ok(None);
    }
    url.parse()
        .map(Some)
        .map_err(|e| ConfigError::new(key, format!("`{url}` is not a valid URL: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_urls_make_nothing() {
        let callbacks = Callbacks::new(CallbackConfig::default()).unwrap();
        assert!(callbacks.authenticator().is_none());
        assert!(callbacks.sink().is_none());
    }

    #[test]
    fn bad_config_is_refused_with_its_key() {
        let config = CallbackConfig {
            on_message_url: "https://example.invalid/".into(),
            ..Default::default()
        };
        let error = Callbacks::new(config).unwrap_err();
        assert!(error.to_string().contains("http.on_message_url"), "{error}");
        let config = CallbackConfig {
            max_concurrency: 0,
            ..Default::default()
        };
        assert!(Callbacks::new(config).is_err());
    }

    #[test]
    fn open_url_makes_an_authenticator() {
        let config = CallbackConfig {
            on_open_url: "http://127.0.0.1:1/open".into(),
            ..Default::default()
        };
        let callbacks = Callbacks::new(config).unwrap();
        let auth = callbacks.authenticator().unwrap();
        assert_eq!(auth.url().path(), "/open");
        assert!(callbacks.sink().is_none());
    }
}
