//! The configuration schema: `netsvr.example.toml` parses to the defaults and documents every
//! key, the defaults are the documented ones, the printed configuration parses back, and the
//! sections mirror every field of netsvr-core's config types.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use netsvr_bin::config::{
    AmqpSection, BrokerKind, ClusterSection, Config, ConfigFileError, GatewaySection, HttpSection,
    LimitsSection, LogFormat, LogSection, RedisSection, TaskPortScope, TlsSection, WorkerSection,
};

const EXAMPLE: &str = include_str!("../../netsvr.example.toml");

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../netsvr.example.toml")
}

fn parse(text: &str) -> Result<Config, ConfigFileError> {
    Config::from_toml(Path::new("config.toml"), text)
}

/// A configuration with every optional part present, so that serializing it shows every key.
fn full() -> Config {
    let mut c = Config::default();
    c.gateway.node_addr = Some("10.0.0.5:6062".parse().unwrap());
    c.worker.advertise = Some("10.0.0.5:6062".parse().unwrap());
    c.http = Some(HttpSection::default());
    c.redis = Some(RedisSection::default());
    c.amqp = Some(AmqpSection::default());
    c.tls = Some(TlsSection::default());
    c.cluster = Some(ClusterSection::default());
    c
}

#[test]
fn the_example_parses_to_the_defaults() {
    let c = Config::from_toml(&example_path(), EXAMPLE).unwrap();
    assert_eq!(c.gateway, GatewaySection::default());
    assert_eq!(c.limits, LimitsSection::default());
    assert_eq!(c.worker, WorkerSection::default());
    assert_eq!(c.admin, Config::default().admin);
    assert_eq!(c.log, LogSection::default());
    // The example documents the optional sections with everything off.
    assert_eq!(c.http, Some(HttpSection::default()));
    assert_eq!(c.tls, Some(TlsSection::default()));
    let redis = c.redis.unwrap();
    assert!(!redis.enabled);
    assert_eq!(
        RedisSection {
            enabled: true,
            ..redis
        },
        RedisSection::default()
    );
    let amqp = c.amqp.unwrap();
    assert!(!amqp.enabled);
    assert_eq!(
        AmqpSection {
            enabled: true,
            ..amqp
        },
        AmqpSection::default()
    );
    let cluster = c.cluster.unwrap();
    assert!(!cluster.enabled);
    assert_eq!(
        ClusterSection {
            enabled: true,
            ..cluster
        },
        ClusterSection::default()
    );
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = Config::default();
    assert_eq!(c.gateway.listen.to_string(), "127.0.0.1:6060");
    assert_eq!(c.gateway.path, "/netsvr");
    assert_eq!(c.gateway.heartbeat_interval, Duration::from_secs(120));
    assert_eq!(c.gateway.heartbeat_message, "~6YOt5rW35piO~");
    assert_eq!(c.gateway.max_message_size, 2 * 1024 * 1024);
    assert_eq!(c.gateway.shards, 64);
    assert_eq!(c.gateway.shutdown_timeout, Duration::from_secs(10));
    assert_eq!(c.gateway.node_addr, None);
    assert!(c.worker.enabled);
    assert_eq!(c.worker.worker_listen.to_string(), "127.0.0.1:6061");
    assert_eq!(c.worker.task_listen.to_string(), "127.0.0.1:6062");
    assert_eq!(c.admin.listen.to_string(), "127.0.0.1:6065");
    assert_eq!(c.admin.token, "");
    assert_eq!(c.limits.opens_per_sec, 0);
    assert_eq!(c.limits.conn_window, Duration::from_secs(1));
    assert_eq!(c.log.level, "info");
    assert_eq!(c.log.format, LogFormat::Text);
    assert!(c.http.is_none() && c.redis.is_none() && c.amqp.is_none() && c.tls.is_none());
    assert!(c.cluster.is_none());
    let cluster = ClusterSection::default();
    assert_eq!(cluster.broker, BrokerKind::Redis);
    assert_eq!(cluster.task_port, TaskPortScope::Cluster);
    assert_eq!(cluster.lease_ttl, Duration::from_secs(6));
    assert_eq!(cluster.heartbeat, Duration::from_secs(2));
    assert_eq!(cluster.query_timeout, Duration::from_secs(2));
    assert_eq!(cluster.redis.url, "redis://127.0.0.1:6379");
    assert_eq!(cluster.redis.prefix, "netsvr:cluster");
    assert_eq!(cluster.nats.url, "nats://127.0.0.1:4222");
    assert_eq!(cluster.nats.prefix, "netsvr_cluster");
    assert_eq!(parse("").unwrap(), c);
    assert_eq!(c.validate(), Ok(()));
    // A present queue section is on by default.
    assert!(parse("[redis]\n").unwrap().redis.unwrap().enabled);
    assert!(parse("[amqp]\n").unwrap().amqp.unwrap().enabled);
    assert!(parse("[cluster]\n").unwrap().cluster.unwrap().enabled);
}

/// Every `section.key` of the full configuration is documented in its section of the example.
#[test]
fn the_example_documents_every_key() {
    fn walk(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
        for (key, value) in table {
            match value {
                toml::Value::Table(t) => walk(&format!("{prefix}{key}."), t, out),
                _ => out.push((prefix.trim_end_matches('.').to_owned(), key.clone())),
            }
        }
    }
    let table = toml::Table::try_from(full()).unwrap();
    let mut keys = Vec::new();
    walk("", &table, &mut keys);
    assert!(keys.len() > 60, "only {} keys", keys.len());
    let mut missing = Vec::new();
    for (section, key) in &keys {
        let header = format!("[{section}]");
        let Some(start) = EXAMPLE.find(&format!("\n{header}\n")) else {
            missing.push(header);
            continue;
        };
        let body = &EXAMPLE[start + header.len() + 1..];
        let body = body.find("\n[").map_or(body, |end| &body[..end]);
        let documented = body.lines().any(|l| {
            let l = l.trim_start_matches(['#', ' ']);
            l.starts_with(&format!("{key} = "))
        });
        if !documented {
            missing.push(format!("{section}.{key}"));
        }
    }
    assert!(
        missing.is_empty(),
        "not in netsvr.example.toml: {missing:?}"
    );
}

#[test]
fn the_effective_config_round_trips() {
    let mut c = full();
    c.gateway.shards = 128;
    c.limits.opens_per_sec = 7;
    // Secrets are printed as `***`, so only a configuration without any round-trips.
    c.amqp.as_mut().unwrap().url = "amqp://127.0.0.1:5672/%2f".to_owned();
    let text = c.to_toml();
    assert_eq!(parse(&text).unwrap(), c, "{text}");
}

/// netsvr-core's config types and the sections mirror each other: every core field has a key.
#[test]
fn sections_cover_every_core_field() {
    use netsvr_core::amqp_queue::{AmqpConfig, QueueBinding};
    use netsvr_core::callbacks::CallbackConfig;
    use netsvr_core::cluster::ClusterConfig;
    use netsvr_core::nats_broker::NatsBrokerConfig;
    use netsvr_core::redis_broker::RedisBrokerConfig;
    use netsvr_core::redis_queue::{RedisConfig, Target};
    use netsvr_core::worker::WorkerConfig;
    use netsvr_core::{GatewayConfig, Limits};

    let table = toml::Table::try_from(full()).unwrap();
    let keys = |path: &str| -> Vec<String> {
        let mut v = &toml::Value::Table(table.clone());
        for part in path.split('.') {
            v = v.get(part).unwrap_or_else(|| panic!("no {path}"));
        }
        v.as_table().unwrap().keys().cloned().collect()
    };
    let check = |section: &str, fields: Vec<String>| {
        assert!(!fields.is_empty(), "{section}: no fields found");
        let have = keys(section);
        for field in fields {
            let field = if field == "kind" {
                "type".to_owned()
            } else {
                field
            };
            assert!(
                have.contains(&field),
                "[{section}] has no `{field}`: {have:?}"
            );
        }
    };
    check("gateway", debug_fields(&GatewayConfig::default()));
    check("limits", debug_fields(&Limits::default()));
    check("worker", debug_fields(&WorkerConfig::default()));
    check("http", serde_fields::<CallbackConfig>());
    check("redis", serde_fields::<RedisConfig>());
    check("redis.message", serde_fields::<Target>());
    check("amqp", serde_fields::<AmqpConfig>());
    check("amqp.queue", serde_fields::<QueueBinding>());
    check("cluster", serde_fields::<ClusterConfig>());
    check("cluster.redis", serde_fields::<RedisBrokerConfig>());
    check("cluster.nats", serde_fields::<NatsBrokerConfig>());
    // And the conversions keep every value.
    assert_eq!(RedisSection::default().to_core(), RedisConfig::default());
    assert_eq!(AmqpSection::default().to_core(), AmqpConfig::default());
    assert_eq!(HttpSection::default().to_core(), CallbackConfig::default());
    assert_eq!(
        ClusterSection::default().to_core(),
        ClusterConfig::default()
    );
    let redis_broker = ClusterSection::default().redis.to_core();
    assert_eq!(redis_broker, RedisBrokerConfig::default());
    let nats_broker = ClusterSection::default().nats.to_core();
    assert_eq!(nats_broker, NatsBrokerConfig::default());
}

/// Field names of a `#[derive(Debug)]` struct, from its pretty output.
fn debug_fields(value: &dyn std::fmt::Debug) -> Vec<String> {
    format!("{value:#?}")
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("    ")?;
            if rest.starts_with(' ') {
                return None;
            }
            rest.split_once(':').map(|(name, _)| name.to_owned())
        })
        .collect()
}

/// Field names a `Deserialize` struct asks for (serde passes them to `deserialize_struct`).
fn serde_fields<T: serde::de::DeserializeOwned>() -> Vec<String> {
    use serde::de::{Error, Visitor};

    struct Probe<'a>(&'a mut Vec<String>);

    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = serde::de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(Self::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.extend(fields.iter().map(|f| (*f).to_owned()));
            Err(Self::Error::custom("probed"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut out = Vec::new();
    let _ = T::deserialize(Probe(&mut out));
    out
}
