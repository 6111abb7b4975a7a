//! The TOML configuration: strictness, error messages that name key and value, environment
//! overrides, and secrets hidden in the printed configuration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use netsvr_bin::config::{
    AmqpSection, BrokerKind, Config, ConfigFileError, HttpSection, Origin, RedisSection,
};

fn parse(text: &str) -> Result<Config, ConfigFileError> {
    Config::from_toml(Path::new("config.toml"), text)
}

fn parse_err(text: &str) -> ConfigFileError {
    match parse(text) {
        Ok(c) => panic!("accepted:\n{text}\nas {c:?}"),
        Err(e) => e,
    }
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |var| map.get(var).cloned()
}

/// A configuration with every optional part present, so that serializing it shows every key.
fn full() -> Config {
    let mut c = Config::default();
    c.gateway.node_addr = Some("10.0.0.5:6062".parse().unwrap());
    c.worker.advertise = Some("10.0.0.5:6062".parse().unwrap());
    c.http = Some(HttpSection::default());
    c.redis = Some(RedisSection::default());
    c.amqp = Some(AmqpSection::default());
    c
}

#[test]
fn unknown_keys_are_named() {
    for (text, key) in [
        ("[gateway]\nbogus = 1\n", "gateway.bogus"),
        ("[bogus]\n", "bogus"),
        (
            "[redis.open]\nkey = \"k\"\ncolour = \"red\"\n",
            "redis.open.colour",
        ),
        ("[admin]\ntokn = \"t\"\n", "admin.tokn"),
        ("[cluster]\nnodes = 3\n", "cluster.nodes"),
        ("[cluster.redis]\nhost = \"h\"\n", "cluster.redis.host"),
        ("[cluster.nats]\nurls = \"h\"\n", "cluster.nats.urls"),
        (
            "[log]\nlevel = \"info\"\nformat = \"text\"\nfile = \"x\"\n",
            "log.file",
        ),
    ] {
        let err = parse_err(text);
        assert_eq!(err.key.as_deref(), Some(key), "{err}");
        let shown = err.to_string();
        let leaf = key.rsplit('.').next().unwrap();
        assert!(
            shown.contains(&format!("unknown field `{leaf}`")),
            "{shown}"
        );
        assert!(shown.starts_with("config.toml:"), "{shown}");
    }
}

#[test]
fn bad_values_name_key_and_value() {
    let err = parse_err("[gateway]\nshards = 3\n");
    assert_eq!(
        err.to_string(),
        "config.toml: gateway.shards = 3: not a power of two between 1 and 65536"
    );
    for (text, key, value, words) in [
        (
            "[gateway]\nslow_consumer = \"maybe\"\n",
            "gateway.slow_consumer",
            "\"maybe\"",
            "unknown variant `maybe`",
        ),
        (
            "[gateway]\nlisten = \"nope\"\n",
            "gateway.listen",
            "\"nope\"",
            "invalid socket address",
        ),
        (
            "[gateway]\nheartbeat_interval = \"5 parsecs\"\n",
            "gateway.heartbeat_interval",
            "\"5 parsecs\"",
            "not a duration",
        ),
        (
            "[gateway]\npath = \"netsvr\"\n",
            "gateway.path",
            "\"netsvr\"",
            "must start with `/`",
        ),
        (
            "[worker]\nsecret = \"short\"\n",
            "worker.secret",
            "\"***\"",
            "at least 16 bytes",
        ),
        (
            "[worker]\nallowed_peers = [\"10.0.0.0/40\"]\n",
            "worker.allowed_peers",
            "[\"10.0.0.0/40\"]",
            "the prefix must be 0 to 32",
        ),
        (
            "[worker]\ndispatch = \"random\"\n",
            "worker.dispatch",
            "\"random\"",
            "unknown variant",
        ),
        (
            "[worker]\nread_timeout = \"10ms\"\n",
            "worker.read_timeout",
            "\"10ms\"",
            "at least 1 s",
        ),
        (
            "[limits]\nopens_per_sec = -1\n",
            "limits.opens_per_sec",
            "-1",
            "invalid value",
        ),
        (
            "[redis]\nurl = \"http://127.0.0.1\"\n",
            "redis.url",
            "\"http://127.0.0.1\"",
            "must start with redis://",
        ),
        (
            "[log]\nlevel = \"verbose\"\n",
            "log.level",
            "\"verbose\"",
            "unknown level `verbose`",
        ),
        (
            "[cluster]\nbroker = \"kafka\"\n",
            "cluster.broker",
            "\"kafka\"",
            "unknown variant `kafka`, expected `redis` or `nats`",
        ),
        (
            "[cluster]\ntask_port = \"everywhere\"\n",
            "cluster.task_port",
            "\"everywhere\"",
            "unknown variant `everywhere`",
        ),
        (
            "[cluster]\nheartbeat = \"4s\"\n",
            "cluster.heartbeat",
            "\"4s\"",
            "at most half of lease_ttl",
        ),
        (
            "[cluster]\nlease_ttl = \"soon\"\n",
            "cluster.lease_ttl",
            "\"soon\"",
            "not a duration",
        ),
        ("[cluster]\ninbox = 0\n", "cluster.inbox", "0", "at least 1"),
        (
            "[cluster.redis]\nurl = \"http://127.0.0.1\"\n",
            "cluster.redis.url",
            "\"http://127.0.0.1\"",
            "must start with redis://",
        ),
        (
            "[cluster.redis]\nprefix = \"a b\"\n",
            "cluster.redis.prefix",
            "\"a b\"",
            "no whitespace",
        ),
        (
            "[cluster]\nbroker = \"nats\"\n[cluster.nats]\nurl = \"redis://127.0.0.1\"\n",
            "cluster.nats.url",
            "\"redis://127.0.0.1\"",
            "must start with nats:// or tls://",
        ),
        (
            "[cluster]\nbroker = \"nats\"\n[cluster.nats]\nurl = \"nats://:pw@h:99999\"\n",
            "cluster.nats.url",
            "\"nats://:***@h:99999\"",
            "not a valid NATS URL",
        ),
        (
            "[cluster]\nbroker = \"nats\"\n[cluster.nats]\nprefix = \"a.b\"\n",
            "cluster.nats.prefix",
            "\"a.b\"",
            "ASCII letters, digits",
        ),
        // A core message that quotes the URL does not show its password either.
        (
            "[cluster.redis]\nurl = \"http://:pw@127.0.0.1\"\n",
            "cluster.redis.url",
            "\"http://:***@127.0.0.1\"",
            "must start with redis://",
        ),
        (
            "[client_commands]\nenabled = true\nmax_publish_size = 0\n",
            "client_commands.max_publish_size",
            "0",
            "at least 1",
        ),
        (
            "[client_commands]\nenabled = true\nopen_grants = \"yes\"\n",
            "client_commands.open_grants",
            "\"yes\"",
            "expected a boolean",
        ),
        (
            "[gateway.deflate]\nlevel = 10\n",
            "gateway.deflate.level",
            "10",
            "not between 1 and 9",
        ),
        (
            "[gateway.deflate]\nclient_max_window_bits = 7\n",
            "gateway.deflate.client_max_window_bits",
            "7",
            "not between 8 and 15",
        ),
        (
            "[gateway.deflate]\nmin_size = -1\n",
            "gateway.deflate.min_size",
            "-1",
            "invalid value",
        ),
        (
            "[admin]\nlisten = \"0.0.0.0:6065\"\n",
            "admin.token",
            "\"\"",
            "0.0.0.0:6065",
        ),
    ] {
        let err = parse_err(text);
        assert_eq!(err.key.as_deref(), Some(key), "{err}");
        assert_eq!(err.value.as_deref(), Some(value), "{err}");
        let shown = err.to_string();
        assert!(shown.contains(&format!("{key} = {value}: ")), "{shown}");
        assert!(shown.contains(words), "{shown}");
        assert!(!shown.contains(":pw@"), "password shown: {shown}");
    }
    // A disabled sink is not validated; an enabled one is.
    assert!(parse("[redis]\nenabled = false\nurl = \"http://x\"\n").is_ok());
    assert!(parse("[worker]\nenabled = false\nread_timeout = \"1ms\"\n").is_ok());
    assert!(parse("[cluster]\nenabled = false\nheartbeat = \"9s\"\n").is_ok());
    let err =
        parse_err("[gateway]\nnode_addr = \"10.0.0.1:1\"\n[worker]\nadvertise = \"10.0.0.2:2\"\n");
    assert_eq!(err.key.as_deref(), Some("gateway.node_addr"), "{err}");
}

#[test]
fn deflate_keys_reach_the_core_config() {
    let c = parse(
        "[gateway.deflate]\nenabled = false\nlevel = 9\nmin_size = 0\n\
         client_context_takeover = true\nclient_max_window_bits = 10\n",
    )
    .unwrap();
    let core = c.gateway.to_core().deflate;
    assert!(!core.enabled);
    assert_eq!(core.level, 9);
    assert_eq!(core.min_size, 0);
    assert!(core.client_context_takeover);
    assert_eq!(core.client_max_window_bits, 10);
    // Absent: the core defaults.
    assert_eq!(
        parse("").unwrap().gateway.to_core().deflate,
        netsvr_core::DeflateConfig::default()
    );
    assert_eq!(
        parse_err("[gateway.deflate]\nlevle = 3\n").key.as_deref(),
        Some("gateway.deflate.levle")
    );
}

#[test]
fn client_commands_are_off_by_default_and_checked_when_on() {
    let c = parse("").unwrap();
    assert!(!c.client_commands.enabled);
    assert!(c.client_commands.to_core().is_none());
    let c = parse(
        "[client_commands]\nenabled = true\nsubscribe_prefixes = [\"news.\"]\n\
         publish_prefixes = [\"chat.\"]\nopen_grants = false\nmax_publish_size = 10\n",
    )
    .unwrap();
    assert_eq!(c.client_commands.subscribe_prefixes, ["news."]);
    assert_eq!(c.client_commands.publish_prefixes, ["chat."]);
    assert!(!c.client_commands.open_grants);
    let core = format!("{:?}", c.client_commands.to_core().unwrap());
    assert!(core.contains("max_publish_size: 10"), "{core}");
    // A prefix longer than any topic could match nothing.
    let long = "x".repeat(129);
    let err = parse_err(&format!(
        "[client_commands]\nenabled = true\nsubscribe_prefixes = [\"{long}\"]\n"
    ));
    assert_eq!(
        err.key.as_deref(),
        Some("client_commands.subscribe_prefixes"),
        "{err}"
    );
    assert!(err.to_string().contains("longer than 128 bytes"), "{err}");
    // Off: not checked.
    assert!(parse("[client_commands]\nmax_publish_size = 0\n").is_ok());
    assert_eq!(
        parse_err("[client_commands]\nprefixes = []\n")
            .key
            .as_deref(),
        Some("client_commands.prefixes")
    );
}

#[test]
fn environment_overrides_apply() {
    let path = temp_file("env.toml", "[gateway]\nlisten = \"127.0.0.1:7000\"\n");
    let c = Config::load_with(
        Some(&path),
        env(&[
            ("NETSVR_LISTEN", "127.0.0.1:7100"),
            ("NETSVR_WORKER_LISTEN", "127.0.0.1:7101"),
            ("NETSVR_TASK_LISTEN", "127.0.0.1:7102"),
            ("NETSVR_ADMIN_LISTEN", "0.0.0.0:7105"),
            ("NETSVR_ADMIN_TOKEN", "s3cret"),
            ("NETSVR_REDIS_URL", "redis://:pw@127.0.0.1:6390/2"),
            ("NETSVR_AMQP_URL", "amqp://u:pw@127.0.0.1:5673/%2f"),
            ("NETSVR_LOG", "warn,netsvr_core=debug"),
        ]),
    )
    .unwrap();
    assert_eq!(c.gateway.listen.to_string(), "127.0.0.1:7100");
    assert_eq!(c.worker.worker_listen.to_string(), "127.0.0.1:7101");
    assert_eq!(c.worker.task_listen.to_string(), "127.0.0.1:7102");
    assert_eq!(c.admin.listen.to_string(), "0.0.0.0:7105");
    assert_eq!(c.admin.token, "s3cret");
    let redis = c.redis.as_ref().unwrap();
    assert!(redis.enabled);
    assert_eq!(redis.url, "redis://:pw@127.0.0.1:6390/2");
    assert_eq!(
        c.amqp.as_ref().unwrap().url,
        "amqp://u:pw@127.0.0.1:5673/%2f"
    );
    assert_eq!(c.log.level, "warn,netsvr_core=debug");
    // Unset and empty variables change nothing.
    let c = Config::load_with(Some(&path), env(&[("NETSVR_LISTEN", "")])).unwrap();
    assert_eq!(c.gateway.listen.to_string(), "127.0.0.1:7000");
    assert!(c.redis.is_none());
    // An explicitly disabled section stays disabled.
    let off = temp_file("off.toml", "[redis]\nenabled = false\n");
    let c = Config::load_with(Some(&off), env(&[("NETSVR_REDIS_URL", "redis://h:1")])).unwrap();
    assert!(!c.redis.unwrap().enabled);
}

#[test]
fn bad_environment_values_name_the_variable() {
    let path = temp_file("badenv.toml", "");
    for (var, value, key, words) in [
        (
            "NETSVR_LISTEN",
            "nope",
            "gateway.listen",
            "invalid socket address",
        ),
        (
            "NETSVR_TASK_LISTEN",
            "127.0.0.1",
            "worker.task_listen",
            "invalid socket address",
        ),
        ("NETSVR_LOG", "verbose", "log.level", "unknown level"),
        (
            "NETSVR_REDIS_URL",
            "http://x",
            "redis.url",
            "must start with redis://",
        ),
        (
            "NETSVR_AMQP_URL",
            "http://x",
            "amqp.url",
            "must start with amqp://",
        ),
        (
            "NETSVR_ADMIN_TOKEN",
            "two words",
            "admin.token",
            "visible ASCII",
        ),
    ] {
        let err = Config::load_with(Some(&path), env(&[(var, value)])).unwrap_err();
        assert_eq!(err.origin, Origin::Env(var), "{err}");
        assert_eq!(err.key.as_deref(), Some(key), "{err}");
        let shown = err.to_string();
        assert!(shown.contains(var) && shown.contains(words), "{shown}");
        if var == "NETSVR_ADMIN_TOKEN" {
            assert!(!shown.contains("two words"), "token shown: {shown}");
        } else {
            assert!(shown.contains(value), "{shown}");
        }
    }
}

#[test]
fn the_printed_config_hides_secrets() {
    let path = temp_file(
        "secrets.toml",
        "[admin]\ntoken = \"hunter2\"\n[redis]\nurl = \"redis://user:redispw@127.0.0.1:6379/0\"\n\
         [http]\non_message_url = \"http://127.0.0.1:9/cb?token=httppw\"\n\
         [worker]\nsecret = \"workerpw-workerpw\"\n\
         [cluster.redis]\nurl = \"redis://:clusterpw@127.0.0.1:6379\"\n\
         [cluster.nats]\nurl = \"nats://bob:natspw@127.0.0.1:4222\"\n",
    );
    let c = Config::load_with(
        Some(&path),
        env(&[("NETSVR_AMQP_URL", "amqp://bob:amqppw@127.0.0.1:5672/%2f")]),
    )
    .unwrap();
    let text = c.to_toml();
    for secret in [
        "hunter2",
        "redispw",
        "amqppw",
        "httppw",
        "workerpw",
        "clusterpw",
        "natspw",
    ] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
    assert!(text.contains("token = \"***\""), "{text}");
    assert!(text.contains("redis://user:***@127.0.0.1:6379/0"), "{text}");
    assert!(text.contains("amqp://bob:***@127.0.0.1:5672/%2f"), "{text}");
    assert!(text.contains("redis://:***@127.0.0.1:6379"), "{text}");
    assert!(text.contains("nats://bob:***@127.0.0.1:4222"), "{text}");
    // The default AMQP password too.
    assert!(!full().to_toml().contains("guest:guest"));
    // An empty token stays visibly empty.
    assert!(Config::default().to_toml().contains("token = \"\""));
}

#[test]
fn a_nats_cluster_parses_and_is_validated() {
    let c = parse(
        "[cluster]\nbroker = \"nats\"\n\
         [cluster.nats]\nurl = \"tls://u:pw@nats.example:4443\"\nprefix = \"Team-1_a\"\n",
    )
    .unwrap();
    let cluster = c.cluster.unwrap();
    assert_eq!(cluster.broker, BrokerKind::Nats);
    assert_eq!(cluster.broker.as_str(), "nats");
    assert_eq!(cluster.nats.url, "tls://u:pw@nats.example:4443");
    assert_eq!(cluster.nats.prefix, "Team-1_a");
    let core = cluster.nats.to_core();
    assert_eq!(
        (core.url.as_str(), core.prefix.as_str()),
        (cluster.nats.url.as_str(), "Team-1_a")
    );
    // Defaults; a token URL hides the token when printed.
    let c = parse("[cluster]\nbroker = \"nats\"\n").unwrap();
    let nats = &c.cluster.as_ref().unwrap().nats;
    assert_eq!(nats.url, "nats://127.0.0.1:4222");
    assert_eq!(nats.prefix, "netsvr_cluster");
    let c = parse("[cluster]\nbroker = \"nats\"\n[cluster.nats]\nurl = \"nats://s3cr3t@h:4222\"\n")
        .unwrap();
    let text = c.to_toml();
    assert!(text.contains("url = \"nats://***@h:4222\""), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
    // The unused broker's sub-section is not checked; a disabled cluster is not checked.
    assert!(parse("[cluster]\n[cluster.nats]\nprefix = \"a.b\"\n").is_ok());
    assert!(parse("[cluster]\nbroker = \"nats\"\n[cluster.redis]\nurl = \"x\"\n").is_ok());
    assert!(
        parse("[cluster]\nenabled = false\nbroker = \"nats\"\n[cluster.nats]\nurl = \"x\"\n")
            .is_ok()
    );
    // The prefix is at most 64 characters.
    let long = format!(
        "[cluster]\nbroker = \"nats\"\n[cluster.nats]\nprefix = \"{}\"\n",
        "x".repeat(65)
    );
    assert_eq!(parse_err(&long).key.as_deref(), Some("cluster.nats.prefix"));
}

/// Found by the `config_loader` fuzz target (fuzz/seeds/config_loader/regression-*): the
/// printed config is not the loaded one (secrets are `***`), but it loads and prints the
/// same again.
#[test]
fn the_printed_config_loads_and_prints_the_same() {
    let c = full();
    let printed = c.to_toml();
    let again = parse(&printed).unwrap();
    assert_ne!(again, c, "the AMQP password was printed as ***");
    assert_eq!(again.to_toml(), printed);
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("netsvr-bin-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_missing_file_is_named() {
    let err = Config::load_with(Some(Path::new("/nonexistent/netsvr.toml")), env(&[])).unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.starts_with("/nonexistent/netsvr.toml: cannot read"),
        "{shown}"
    );
}
