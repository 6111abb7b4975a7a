//! `[cluster]`, `[cluster.redis]` and `[cluster.nats]`: several `netsvr` nodes acting as one
//! through a shared broker (Redis or NATS), mirroring netsvr-core's [`ClusterConfig`],
//! [`RedisBrokerConfig`] and [`NatsBrokerConfig`] field by field, plus the broker's name and
//! the scope of the task port. Present and `enabled` (the default) turns clustering on.

use std::time::Duration;

use netsvr_core::cluster::ClusterConfig;
use netsvr_core::nats_broker::NatsBrokerConfig;
use netsvr_core::redis_broker::RedisBrokerConfig;
use serde::{Deserialize, Serialize, Serializer};

use super::redact_url;

fn serialize_url<S: Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url))
}

fn enabled() -> bool {
    true
}

/// `broker`: the engine the nodes meet through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BrokerKind {
    /// Redis pub/sub and keys (`[cluster.redis]`).
    #[default]
    Redis,
    /// NATS subjects and JetStream KV buckets (`[cluster.nats]`).
    Nats,
}

impl BrokerKind {
    /// The name as written in the file (and as the `broker` metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Nats => "nats",
        }
    }
}

/// `task_port`: what a command or query given to this node's task port acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TaskPortScope {
    /// The whole cluster: commands are routed to the nodes holding the connections and
    /// queries are answered by every node, merged. A business can talk to any one node.
    #[default]
    Cluster,
    /// This node only (netsvr's own way: the business SDK talks to every node itself).
    Node,
}

impl TaskPortScope {
    /// The name as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cluster => "cluster",
            Self::Node => "node",
        }
    }
}

/// `[cluster.redis]`: where the nodes meet in Redis.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterRedisSection {
    /// `redis://[user:password@]host:port[/db]`.
    #[serde(serialize_with = "serialize_url")]
    pub url: String,
    /// Prefix of every channel and key the cluster uses; nodes with the same prefix (on the
    /// same Redis) form one cluster.
    pub prefix: String,
}

impl Default for ClusterRedisSection {
    fn default() -> Self {
        let c = RedisBrokerConfig::default();
        Self {
            url: c.url,
            prefix: c.prefix,
        }
    }
}

impl ClusterRedisSection {
    /// The core config.
    pub fn to_core(&self) -> RedisBrokerConfig {
        let mut c = RedisBrokerConfig::default();
        c.url.clone_from(&self.url);
        c.prefix.clone_from(&self.prefix);
        c
    }
}

/// `[cluster.nats]`: where the nodes meet in NATS (a server with JetStream enabled).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterNatsSection {
    /// `nats://[user:password@]host:port`, or `tls://...` for TLS.
    #[serde(serialize_with = "serialize_url")]
    pub url: String,
    /// Names every subject and KV bucket the cluster uses; nodes with the same prefix (on the
    /// same NATS) form one cluster. ASCII letters, digits, `_` and `-`, at most 64.
    pub prefix: String,
}

impl Default for ClusterNatsSection {
    fn default() -> Self {
        let c = NatsBrokerConfig::default();
        Self {
            url: c.url,
            prefix: c.prefix,
        }
    }
}

impl ClusterNatsSection {
    /// The core config.
    pub fn to_core(&self) -> NatsBrokerConfig {
        let mut c = NatsBrokerConfig::default();
        c.url.clone_from(&self.url);
        c.prefix.clone_from(&self.prefix);
        c
    }
}

/// `[cluster]`: scale-out. Every node of a cluster needs a distinct uniqId prefix, i.e. a
/// distinct `worker.advertise` (or `gateway.node_addr`) address.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSection {
    /// Join the cluster. Default true when the section is present.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// The engine: `redis` (`[cluster.redis]`) or `nats` (`[cluster.nats]`).
    pub broker: BrokerKind,
    /// `cluster` (the task port acts cluster-wide) or `node` (this node only).
    pub task_port: TaskPortScope,
    /// How long a lease lasts without renewal; a node silent for longer is declared dead and
    /// a survivor reports its connections closed (reason `node_lost`).
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// How often the lease is renewed and dead nodes are looked for; at most half of
    /// `lease_ttl`.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// Cross-node messages held while the broker is slow or down; past it they are dropped
    /// and counted.
    pub buffer: usize,
    /// Most messages per publish round trip.
    pub batch: usize,
    /// Messages from other nodes waiting to be applied here.
    pub inbox: usize,
    /// How long a cluster-wide query waits for the other nodes' answers.
    #[serde(with = "humantime_serde")]
    pub query_timeout: Duration,
    /// Time allowed for one broker operation.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// First reconnect delay.
    #[serde(with = "humantime_serde")]
    pub retry_min: Duration,
    /// Longest reconnect delay.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// The Redis broker (`broker = "redis"`).
    pub redis: ClusterRedisSection,
    /// The NATS broker (`broker = "nats"`).
    pub nats: ClusterNatsSection,
}

impl Default for ClusterSection {
    fn default() -> Self {
        let c = ClusterConfig::default();
        Self {
            enabled: true,
            broker: BrokerKind::default(),
            task_port: TaskPortScope::default(),
            lease_ttl: c.lease_ttl,
            heartbeat: c.heartbeat,
            buffer: c.buffer,
            batch: c.batch,
            inbox: c.inbox,
            query_timeout: c.query_timeout,
            timeout: c.timeout,
            retry_min: c.retry_min,
            retry_max: c.retry_max,
            redis: ClusterRedisSection::default(),
            nats: ClusterNatsSection::default(),
        }
    }
}

impl ClusterSection {
    /// The core runtime config (whether or not `enabled`).
    pub fn to_core(&self) -> ClusterConfig {
        let mut c = ClusterConfig::default();
        c.lease_ttl = self.lease_ttl;
        c.heartbeat = self.heartbeat;
        c.buffer = self.buffer;
        c.batch = self.batch;
        c.inbox = self.inbox;
        c.query_timeout = self.query_timeout;
        c.timeout = self.timeout;
        c.retry_min = self.retry_min;
        c.retry_max = self.retry_max;
        c
    }

    /// The chosen broker's URL, password hidden (for logs).
    pub fn broker_url(&self) -> String {
        redact_url(match self.broker {
            BrokerKind::Redis => &self.redis.url,
            BrokerKind::Nats => &self.nats.url,
        })
    }

    /// The chosen broker's prefix.
    pub fn broker_prefix(&self) -> &str {
        match self.broker {
            BrokerKind::Redis => &self.redis.prefix,
            BrokerKind::Nats => &self.nats.prefix,
        }
    }

    /// Checks the runtime keys and the chosen broker's (the other broker's sub-section is
    /// not used and not checked); the error names the dotted key (`cluster.heartbeat`,
    /// `cluster.redis.url`, `cluster.nats.prefix`, ...).
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.to_core()
            .validate()
            .map_err(|e| (e.key.to_owned(), e.reason))?;
        let checked = match self.broker {
            BrokerKind::Redis => self.redis.to_core().validate(),
            BrokerKind::Nats => self.nats.to_core().validate(),
        };
        checked.map_err(|e| (e.key.to_owned(), e.reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_mirror_the_core_and_validate() {
        let s = ClusterSection::default();
        assert_eq!(s.to_core(), ClusterConfig::default());
        assert_eq!(s.redis.to_core(), RedisBrokerConfig::default());
        assert_eq!(s.nats.to_core(), NatsBrokerConfig::default());
        assert_eq!(s.validate(), Ok(()));
        let s = ClusterSection {
            broker: BrokerKind::Nats,
            ..ClusterSection::default()
        };
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn errors_name_the_key() {
        let s = ClusterSection {
            heartbeat: Duration::from_secs(5),
            ..ClusterSection::default()
        };
        assert_eq!(s.validate().unwrap_err().0, "cluster.heartbeat");
        let mut s = ClusterSection::default();
        s.redis.url = "http://x".into();
        assert_eq!(s.validate().unwrap_err().0, "cluster.redis.url");
        let mut s = ClusterSection::default();
        s.redis.prefix = String::new();
        assert_eq!(s.validate().unwrap_err().0, "cluster.redis.prefix");
        let mut s = ClusterSection {
            broker: BrokerKind::Nats,
            ..ClusterSection::default()
        };
        s.nats.url = "redis://x".into();
        assert_eq!(s.validate().unwrap_err().0, "cluster.nats.url");
        s.nats.url = "nats://h:4222".into();
        s.nats.prefix = "a.b".into();
        assert_eq!(s.validate().unwrap_err().0, "cluster.nats.prefix");
        // Only the chosen broker's sub-section is checked.
        s.broker = BrokerKind::Redis;
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn the_log_shows_the_chosen_broker_without_its_password() {
        let mut s = ClusterSection::default();
        s.redis.url = "redis://:redispw@r:6379".into();
        s.nats.url = "nats://u:natspw@n:4222".into();
        s.nats.prefix = "np".into();
        assert_eq!(s.broker_url(), "redis://:***@r:6379");
        assert_eq!(s.broker_prefix(), "netsvr:cluster");
        s.broker = BrokerKind::Nats;
        assert_eq!(s.broker_url(), "nats://u:***@n:4222");
        assert_eq!(s.broker_prefix(), "np");
    }
}
