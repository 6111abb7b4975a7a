//! Configuration of the Redis cluster broker (TOML section `[cluster.redis]` of the binary).

use serde::Deserialize;

use crate::config::ConfigError;

/// Where the nodes meet in Redis.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisBrokerConfig {
    /// `redis://[user:password@]host:port[/db]`. Default `redis://127.0.0.1:6379`.
    pub url: String,
    /// Prefix of every channel and key the cluster uses; nodes with the same prefix form one
    /// cluster. Default `netsvr:cluster`.
    pub prefix: String,
}

impl Default for RedisBrokerConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".to_owned(),
            prefix: "netsvr:cluster".to_owned(),
        }
    }
}

impl RedisBrokerConfig {
    /// A config for `url` with the default prefix.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// Checks every field; the first bad one is reported with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.url.starts_with("redis://") {
            return Err(ConfigError::new(
                "cluster.redis.url",
                format!("`{}` must start with redis://", self.url),
            ));
        }
        if redis::Client::open(self.url.as_str()).is_err() {
            return Err(ConfigError::new(
                "cluster.redis.url",
                format!("`{}` is not a valid Redis URL", self.url),
            ));
        }
        if self.prefix.is_empty() || self.prefix.contains(char::is_whitespace) {
            return Err(ConfigError::new(
                "cluster.redis.prefix",
                "must be non-empty and hold no whitespace",
            ));
        }
        Ok(())
    }
}
