//! Configuration of the cluster runtime (TOML section `[cluster]` of the binary), whatever
//! the broker.

use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;

/// How a node takes part in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// How long a lease lasts without renewal; a node silent for longer is declared dead
    /// and its connections are reported closed by a survivor. Default 6 s.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// How often the lease is renewed (and dead nodes looked for); at most half of
    /// `lease_ttl`. Default 2 s.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// Cross-node messages (and connection copies) held while the engine is slow or down;
    /// past it they are dropped and counted. Default 65,536.
    pub buffer: usize,
    /// Most messages per publish round trip. Default 512.
    pub batch: usize,
    /// Messages from other nodes waiting to be applied here. Default 65,536.
    pub inbox: usize,
    /// How long a cluster-wide query waits for the other nodes' answers. Default 2 s.
    #[serde(with = "humantime_serde")]
    pub query_timeout: Duration,
    /// Time allowed for one engine operation. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// First reconnect delay. Default 100 ms.
    #[serde(with = "humantime_serde")]
    pub retry_min: Duration,
    /// Longest reconnect delay. Default 2 s.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            lease_ttl: super::default_ttl(),
            heartbeat: Duration::from_secs(2),
            buffer: 65_536,
            batch: 512,
            inbox: 65_536,
            query_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(2),
        }
    }
}

impl ClusterConfig {
    /// Checks every field; the first bad one is reported with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.lease_ttl < Duration::from_millis(500) {
            return Err(ConfigError::new(
                "cluster.lease_ttl",
                "must be at least 500ms",
            ));
        }
        if self.heartbeat.is_zero() || self.heartbeat * 2 > self.lease_ttl {
            return Err(ConfigError::new(
                "cluster.heartbeat",
                "must be above zero and at most half of lease_ttl",
            ));
        }
        for (key, value) in [
            ("cluster.buffer", self.buffer),
            ("cluster.batch", self.batch),
            ("cluster.inbox", self.inbox),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        for (key, value) in [
            ("cluster.query_timeout", self.query_timeout),
            ("cluster.timeout", self.timeout),
            ("cluster.retry_min", self.retry_min),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(key, "must be above zero"));
            }
        }
        if self.retry_max < self.retry_min {
            return Err(ConfigError::new(
                "cluster.retry_max",
                "must be at least retry_min",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        assert_eq!(ClusterConfig::default().validate(), Ok(()));
        let bad = ClusterConfig {
            heartbeat: Duration::from_secs(4),
            ..ClusterConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "cluster.heartbeat");
        let bad = ClusterConfig {
            buffer: 0,
            ..ClusterConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "cluster.buffer");
    }
}
