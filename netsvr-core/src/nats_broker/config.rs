//! Configuration of the NATS cluster broker (TOML section `[cluster.nats]` of the binary).

use async_nats::ServerAddr;
use serde::Deserialize;

use crate::config::ConfigError;

/// Longest prefix: it names two JetStream streams (`KV_<prefix>_nodes`, `KV_<prefix>_conns`).
const MAX_PREFIX: usize = 64;

/// Where the nodes meet in NATS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct NatsBrokerConfig {
    /// One NATS server with JetStream enabled: `nats://[user:password@]host:port`, or
    /// `tls://...` for TLS. Default `nats://127.0.0.1:4222`.
    pub url: String,
    /// Names every subject and KV bucket the cluster uses; nodes with the same prefix form
    /// one cluster. ASCII letters, digits, `_` and `-` only (it is a subject token and part
    /// of bucket names), at most 64 characters. Default `netsvr_cluster`.
    pub prefix: String,
}

impl Default for NatsBrokerConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_owned(),
            prefix: "netsvr_cluster".to_owned(),
        }
    }
}

impl NatsBrokerConfig {
    /// A config for `url` with the default prefix.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// Checks every field; the first bad one is reported with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.url.starts_with("nats://") || self.url.starts_with("tls://")) {
            return Err(ConfigError::new(
                "cluster.nats.url",
                format!("`{}` must start with nats:// or tls://", self.url),
            ));
        }
        if let Err(e) = self.url.parse::<ServerAddr>() {
            return Err(ConfigError::new(
                "cluster.nats.url",
                format!("`{}` is not a valid NATS URL: {e}", self.url),
            ));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if self.prefix.is_empty()
            || self.prefix.len() > MAX_PREFIX
            || !self.prefix.chars().all(allowed)
        {
            return Err(ConfigError::new(
                "cluster.nats.prefix",
                format!(
                    "`{}` must be 1 to {MAX_PREFIX} ASCII letters, digits, `_` or `-`",
                    self.prefix
                ),
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
        assert_eq!(NatsBrokerConfig::default().validate(), Ok(()));
        assert_eq!(
            NatsBrokerConfig::new("tls://user:pw@nats.example:4443").validate(),
            Ok(())
        );
        for url in [
            "redis://127.0.0.1",
            "127.0.0.1:4222",
            "nats://[::1",
            "nats://h:99999",
        ] {
            let bad = NatsBrokerConfig::new(url);
            assert_eq!(bad.validate().unwrap_err().key, "cluster.nats.url", "{url}");
        }
        for prefix in ["", "a.b", "a b", "a*", "a>", "é", &"x".repeat(65)] {
            let bad = NatsBrokerConfig {
                prefix: prefix.to_owned(),
                ..NatsBrokerConfig::default()
            };
            assert_eq!(
                bad.validate().unwrap_err().key,
                "cluster.nats.prefix",
                "{prefix}"
            );
        }
        let good = NatsBrokerConfig {
            prefix: "Team-1_a".into(),
            ..NatsBrokerConfig::default()
        };
        assert_eq!(good.validate(), Ok(()));
    }

    #[test]
    fn deserializes_with_defaults_and_rejects_unknown_keys() {
        let config: NatsBrokerConfig = serde_json::from_str(r#"{"prefix":"p"}"#).unwrap();
        assert_eq!(config.url, "nats://127.0.0.1:4222");
        assert_eq!(config.prefix, "p");
        assert!(serde_json::from_str::<NatsBrokerConfig>(r#"{"urls":"x"}"#).is_err());
    }
}
