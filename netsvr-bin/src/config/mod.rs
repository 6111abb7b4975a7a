//! The TOML configuration of the `netsvr` binary: one section per part (`[gateway]` with
//! `[gateway.deflate]`, `[tls]`, `[limits]`, `[worker]`, `[http]`, `[redis]`, `[amqp]`,
//! `[cluster]`, `[client_commands]`, `[admin]`, `[log]`),
//! every key optional with netsvr's defaults, unknown keys refused, durations as humantime
//! strings (`"10s"`, `"250ms"`). Environment variables override the usual deployment keys
//! (see [`ENV_OVERRIDES`]). Every error names its origin, key, value and reason
//! ([`ConfigFileError`]). `netsvr.example.toml` at the repository root documents every key.

mod client_commands;
mod cluster;
mod connectors;
mod deflate;
mod error;
mod sections;
mod tls;

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize, Serializer};

pub use crate::admin::AdminConfig;
pub use client_commands::ClientCommandsSection;
pub use cluster::{
    BrokerKind, ClusterNatsSection, ClusterRedisSection, ClusterSection, TaskPortScope,
};
pub use connectors::{
    AmqpSection, ExchangeType, HttpSection, KeyType, QueueSection, RedisSection, TargetSection,
};
pub use deflate::DeflateSection;
pub use error::{ConfigFileError, Origin};
pub use sections::{
    DispatchMode, GatewaySection, LimitsSection, LogFormat, LogSection, Opcode, SlowConsumer,
    WorkerSection,
};
pub use tls::TlsSection;

/// The whole configuration. `Default` is what `netsvr` runs with no file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The client WebSocket side.
    pub gateway: GatewaySection,
    /// TLS on the client port; absent (or both files empty): plain ws://.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSection>,
    /// Rate limits (reloaded on SIGHUP).
    pub limits: LimitsSection,
    /// netsvr's worker and task ports.
    pub worker: WorkerSection,
    /// HTTP callbacks; absent: off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSection>,
    /// Redis queue sink; absent: off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisSection>,
    /// AMQP queue sink; absent: off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amqp: Option<AmqpSection>,
    /// Scale-out through a shared broker; absent: a single node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterSection>,
    /// JSON commands from clients (subscribe, publish, ...); off by default.
    pub client_commands: ClientCommandsSection,
    /// The admin HTTP port.
    #[serde(serialize_with = "serialize_admin")]
    pub admin: AdminConfig,
    /// Logging.
    pub log: LogSection,
}

fn serialize_admin<S: Serializer>(admin: &AdminConfig, s: S) -> Result<S::Ok, S::Error> {
    let mut shown = admin.clone();
    if !shown.token.is_empty() {
        shown.token = "***".to_owned();
    }
    shown.serialize(s)
}

/// Hides the password of a URL's userinfo and `password=` / `token=` query values:
/// `redis://:pw@h:6379` → `redis://:***@h:6379`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            let redacted = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => "***".to_owned(),
            };
            out.replace_range(rest_start..rest_start + at, &redacted);
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if ["password", "pass", "token"].contains(&k) => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

/// Hides the passwords of the URLs a core validation message quotes in backticks
/// (`` `redis://:pw@h` must start with ... ``).
fn redact_quoted_urls(reason: &str) -> String {
    reason
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 && part.contains("://") {
                redact_url(part)
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

impl Config {
    /// Parses and validates `text` (no environment overrides); errors name `path`.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, ConfigFileError> {
        let config: Self = toml::from_str(text)
            .map_err(|e| ConfigFileError::from_toml(path.to_owned(), text, &e))?;
        config.check(&Origin::File(path.to_owned()), &[])?;
        Ok(config)
    }

    /// Reads `path` (or starts from the defaults when `None`), applies the environment
    /// overrides `env` returns, and validates the result.
    pub fn load_with(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigFileError> {
        let (mut config, origin) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigFileError::io(path.to_owned(), &e))?;
                let config: Self = toml::from_str(&text)
                    .map_err(|e| ConfigFileError::from_toml(path.to_owned(), &text, &e))?;
                (config, Origin::File(path.to_owned()))
            }
            None => (Self::default(), Origin::Defaults),
        };
        let applied = config.apply_env(env)?;
        config.check(&origin, &applied)?;
        Ok(config)
    }

    /// [`Config::load_with`] with the process environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigFileError> {
        Self::load_with(path, |var| std::env::var(var).ok())
    }

    /// Validates every section; the error is attributed to the environment variable that set
    /// the key, if one did, else to `origin`.
    fn check(
        &self,
        origin: &Origin,
        applied: &[(&'static str, &'static str)],
    ) -> Result<(), ConfigFileError> {
        let Err((key, reason)) = self.validate() else {
            return Ok(());
        };
        let origin = applied
            .iter()
            .find(|(_, k)| *k == key)
            .map_or_else(|| origin.clone(), |(var, _)| Origin::Env(var));
        let value = self.value_of(&key);
        Err(ConfigFileError::new(
            origin,
            key,
            value,
            redact_quoted_urls(&reason),
        ))
    }

    /// The first invalid setting: its dotted key and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let scoped = |section: &str, key: &str| {
            if key.contains('.') {
                key.to_owned()
            } else {
                format!("{section}.{key}")
            }
        };
        self.gateway
            .to_core()
            .validate()
            .map_err(|e| (format!("gateway.{}", e.key), e.reason))?;
        if let Some(tls) = &self.tls {
            tls.validate().map_err(|(k, r)| (k.to_owned(), r))?;
        }
        self.limits.validate().map_err(|(k, r)| (k.to_owned(), r))?;
        if self.worker.enabled {
            self.worker
                .check_peers()
                .map_err(|(k, r)| (k.to_owned(), r))?;
            self.worker
                .to_core()
                .validate()
                .map_err(|e| (scoped("worker", e.key), e.reason))?;
            if let (Some(node), Some(advertise)) = (self.gateway.node_addr, self.worker.advertise)
                && node != advertise
            {
                return Err((
                    "gateway.node_addr".into(),
                    format!(
                        "differs from worker.advertise ({advertise}); uniqIds must name the task \
                         port: set only one"
                    ),
                ));
            }
        }
        if let Some(http) = &self.http {
            http.to_core()
                .validate()
                .map_err(|e| (scoped("http", e.key), e.reason))?;
        }
        if let Some(redis) = self.redis.as_ref().filter(|r| r.enabled) {
            redis
                .to_core()
                .validate()
                .map_err(|e| (scoped("redis", e.key), e.reason))?;
        }
        if let Some(amqp) = self.amqp.as_ref().filter(|a| a.enabled) {
            amqp.to_core()
                .validate()
                .map_err(|e| (scoped("amqp", e.key), e.reason))?;
        }
        if let Some(cluster) = self.cluster.as_ref().filter(|c| c.enabled) {
            cluster.validate()?;
        }
        self.client_commands
            .validate()
            .map_err(|(k, r)| (k.to_owned(), r))?;
        self.admin
            .validate()
            .map_err(|e| (scoped("admin", e.key), e.reason))?;
        LogSection::check_level(&self.log.level).map_err(|r| ("log.level".to_owned(), r))?;
        Ok(())
    }

    /// The value at a dotted key, in TOML syntax, secrets hidden.
    pub fn value_of(&self, key: &str) -> Option<String> {
        let table = toml::Table::try_from(self).ok()?;
        let mut parts = key.split('.');
        let mut value = table.get(parts.next()?)?;
        for part in parts {
            value = value.get(part)?;
        }
        Some(value.to_string())
    }

    /// The effective configuration as TOML, secrets shown as `***`.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }
}

// ---- environment overrides ----

/// Every override: the variable and the key it sets.
pub const ENV_OVERRIDES: [(&str, &str); 8] = [
    ("NETSVR_LISTEN", "gateway.listen"),
    ("NETSVR_WORKER_LISTEN", "worker.worker_listen"),
    ("NETSVR_TASK_LISTEN", "worker.task_listen"),
    ("NETSVR_ADMIN_LISTEN", "admin.listen"),
    ("NETSVR_ADMIN_TOKEN", "admin.token"),
    ("NETSVR_REDIS_URL", "redis.url"),
    ("NETSVR_AMQP_URL", "amqp.url"),
    ("NETSVR_LOG", "log.level"),
];

fn quoted(var: &str, raw: &str) -> String {
    match var {
        "NETSVR_ADMIN_TOKEN" => "\"***\"".to_owned(),
        "NETSVR_REDIS_URL" | "NETSVR_AMQP_URL" => format!("{:?}", redact_url(raw)),
        _ => format!("{raw:?}"),
    }
}

fn addr(var: &'static str, key: &'static str, raw: &str) -> Result<SocketAddr, ConfigFileError> {
    raw.trim().parse().map_err(|e: std::net::AddrParseError| {
        ConfigFileError::new(Origin::Env(var), key, Some(quoted(var, raw)), e.to_string())
    })
}

impl Config {
    /// Applies the environment overrides that `lookup` returns values for. `NETSVR_REDIS_URL`
    /// and `NETSVR_AMQP_URL` add their section (enabled, with defaults) when the file has none;
    /// they leave `enabled = false` alone.
    pub fn apply_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<(&'static str, &'static str)>, ConfigFileError> {
        let mut applied = Vec::new();
        for (var, key) in ENV_OVERRIDES {
            let Some(raw) = lookup(var).filter(|v| !v.is_empty()) else {
                continue;
            };
            match var {
                "NETSVR_LISTEN" => self.gateway.listen = addr(var, key, &raw)?,
                "NETSVR_WORKER_LISTEN" => self.worker.worker_listen = addr(var, key, &raw)?,
                "NETSVR_TASK_LISTEN" => self.worker.task_listen = addr(var, key, &raw)?,
                "NETSVR_ADMIN_LISTEN" => self.admin.listen = addr(var, key, &raw)?,
                "NETSVR_ADMIN_TOKEN" => self.admin.token = raw,
                "NETSVR_REDIS_URL" => {
                    self.redis.get_or_insert_with(RedisSection::default).url = raw;
                }
                "NETSVR_AMQP_URL" => {
                    self.amqp.get_or_insert_with(AmqpSection::default).url = raw;
                }
                _ => {
                    LogSection::check_level(&raw).map_err(|reason| {
                        ConfigFileError::new(Origin::Env(var), key, Some(quoted(var, &raw)), reason)
                    })?;
                    self.log.level = raw;
                }
            }
            applied.push((var, key));
        }
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_urls_in_reasons_lose_their_passwords() {
        assert_eq!(
            redact_quoted_urls("`nats://u:pw@h:99999` is not a valid NATS URL: `x`"),
            "`nats://u:***@h:99999` is not a valid NATS URL: `x`"
        );
        assert_eq!(redact_quoted_urls("no `quote"), "no `quote");
    }

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_url("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact_url("redis://:pw@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(redact_url("redis://h:1"), "redis://h:1");
        assert_eq!(
            redact_url("http://h/cb?a=1&token=x"),
            "http://h/cb?a=1&token=***"
        );
    }

    #[test]
    fn errors_name_key_and_value() {
        let path = Path::new("config.toml");
        let err = Config::from_toml(path, "[gateway]\nshards = 3\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "config.toml: gateway.shards = 3: not a power of two between 1 and 65536"
        );
    }
}
