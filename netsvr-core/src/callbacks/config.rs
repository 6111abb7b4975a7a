//! Configuration of the HTTP callbacks (TOML section `[http]` of the binary).

use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;

/// netsvr's HTTP callbacks. A URL left empty turns that callback off.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CallbackConfig {
    /// OnOpen: POSTed a `ConnOpen`; answers a `ConnOpenResp` that admits or refuses the
    /// client (the authenticator). Empty: everyone is admitted.
    pub on_open_url: String,
    /// OnMessage: POSTed each `Transfer`; the answer is ignored. Empty: off.
    pub on_message_url: String,
    /// OnClose: POSTed each `ConnClose`; the answer is ignored. Empty: off.
    pub on_close_url: String,
    /// Time allowed for one callback request, connect included. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Requests in flight at once for OnMessage / OnClose (ordered lanes; one client's
    /// events always share a lane). Default 64.
    pub max_concurrency: usize,
    /// Events buffered for OnMessage / OnClose while the endpoint is slow or down; past it
    /// events are dropped and counted. Default 65,536.
    pub buffer: usize,
    /// Idle keep-alive connections kept per host. Default 64.
    pub pool_max_idle: usize,
    /// How long an idle keep-alive connection is kept. Default 90 s.
    #[serde(with = "humantime_serde")]
    pub pool_idle_timeout: Duration,
    /// First retry delay of a failed OnMessage / OnClose delivery. Default 100 ms.
    #[serde(with = "humantime_serde")]
    pub retry_min: Duration,
    /// Longest retry delay. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        Self {
            on_open_url: String::new(),
            on_message_url: String::new(),
            on_close_url: String::new(),
            timeout: Duration::from_secs(5),
            max_concurrency: 64,
            buffer: 65_536,
            pool_max_idle: 64,
            pool_idle_timeout: Duration::from_secs(90),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
        }
    }
}

impl CallbackConfig {
    /// Checks every field; the first bad one is reported with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, url) in [
            ("http.on_open_url", &self.on_open_url),
            ("http.on_message_url", &self.on_message_url),
            ("http.on_close_url", &self.on_close_url),
        ] {
            if !url.is_empty() && !url.starts_with("http://") {
                return Err(ConfigError::new(
                    key,
                    format!("`{url}` must be an http:// URL (or empty to turn it off)"),
                ));
            }
            if !url.is_empty() && url.parse::<hyper::Uri>().is_err() {
                return Err(ConfigError::new(key, format!("`{url}` is not a valid URL")));
            }
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::new("http.timeout", "must be above zero"));
        }
        if self.max_concurrency == 0 || self.max_concurrency > 4096 {
            return Err(ConfigError::new(
                "http.max_concurrency",
                "must be 1 to 4096",
            ));
        }
        if self.buffer < self.max_concurrency {
            return Err(ConfigError::new(
                "http.buffer",
                "must be at least max_concurrency",
            ));
        }
        if self.retry_min.is_zero() || self.retry_max < self.retry_min {
            return Err(ConfigError::new(
                "http.retry_max",
                "retry_min must be above zero and retry_max at least retry_min",
            ));
        }
        Ok(())
    }
}
