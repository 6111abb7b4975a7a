//! The command line of `netsvr-load`: one mode, then `--flag value` pairs, validated so that
//! every address is in 127.0.0.0/8 and every count and duration is bounded.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::payload::PayloadKind;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Server RSS growth per idle connection.
    Idle,
    /// Broadcast deliveries per second and delivery latency (against `chat`).
    Fanout,
    /// Round trips per second and latency (against `echo`).
    Echo,
    /// Completed upgrades per second and handshake time.
    Connect,
    /// Drop every connection at once, reconnect all at once: time to be accepted again.
    Storm,
    /// Events per second through the gateway's sinks, counted at the consumer.
    Sink,
}

impl Mode {
    /// The mode's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Fanout => "fanout",
            Self::Echo => "echo",
            Self::Connect => "connect",
            Self::Storm => "storm",
            Self::Sink => "sink",
        }
    }
}

/// Where `sink` mode counts the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    /// A business process on the worker port (`WorkerClient`).
    Worker,
    /// A Redis list, drained.
    Redis,
    /// A RabbitMQ queue, consumed.
    Amqp,
}

/// Parsed and validated command line of `netsvr-load`.
#[derive(Debug, Clone)]
pub struct Args {
    /// What to measure.
    pub mode: Mode,
    /// Gateway WebSocket address.
    pub addr: SocketAddr,
    /// WebSocket path.
    pub path: String,
    /// Connections to open.
    pub conns: usize,
    /// Source addresses (127.0.0.1 ..= 127.0.0.N).
    pub sources: usize,
    /// Server pid (idle: for RSS).
    pub pid: Option<u32>,
    /// Publishing connections (fanout).
    pub publishers: usize,
    /// Messages each connection keeps in flight (echo, fanout without `--rate`).
    pub window: usize,
    /// Payload size in bytes (at least the 24-byte stamp).
    pub size: usize,
    /// Seconds to run (or to settle, for idle).
    pub duration: u64,
    /// Seconds at the start of the run whose latencies the summary leaves out (fanout, echo).
    pub warmup: u64,
    /// Connection attempts in flight at once while opening.
    pub concurrency: usize,
    /// Messages per second per sending connection; 0 = as fast as the window allows.
    pub rate: u64,
    /// Where `sink` mode counts.
    pub sink: SinkKind,
    /// Worker port of the gateway (sink worker).
    pub worker: SocketAddr,
    /// Redis server (sink redis).
    pub redis: SocketAddr,
    /// Redis list key (sink redis).
    pub key: String,
    /// AMQP URL (sink amqp).
    pub amqp: String,
    /// Queue to consume (sink amqp); declared and bound if it does not exist.
    pub queue: String,
    /// Exchange the queue is bound to when this tool declares it (sink amqp).
    pub exchange: String,
    /// Binding key used when this tool declares the queue (sink amqp).
    pub routing_key: String,
    /// Consume with automatic acknowledgement (`--ack auto`), sparing the broker the ack
    /// work; `--ack manual` (default) acks every 128 messages.
    pub auto_ack: bool,
    /// Draw the per-second series into this PNG.
    pub plot: Option<PathBuf>,
    /// Offer permessage-deflate in every upgrade, require it accepted, and inflate
    /// compressed messages (every mode but sink).
    pub deflate: bool,
    /// With `deflate`: a compressed message equal to one inflated lately on the same
    /// thread is not inflated again (the gateway sends every recipient the same bytes).
    pub inflate_shared: bool,
    /// What the messages carry (fanout, echo).
    pub payload: PayloadKind,
}

/// Upper bounds of the counts.
const MAX_CONNS: usize = 1_000_000;
const MAX_DURATION: u64 = 3600;
const MAX_SIZE: usize = 1 << 20;
/// Receiver × publisher pairs whose order fanout tracks.
const MAX_PAIRS: usize = 20_000_000;

impl Args {
    /// Usage text.
    pub const USAGE: &'static str = "usage: netsvr-load MODE [--flag value]...
modes: idle | fanout | echo | connect | storm | sink
common:  --addr 127.0.0.1:9000 --path / --conns N --sources N (127.0.0.1..N) --concurrency C
         --duration SECS --plot FILE.png
         --deflate (no value; not sink): offer permessage-deflate, require it, inflate
         --inflate-shared (no value, with --deflate): inflate each distinct compressed
           message once per load thread (the gateway sends all recipients the same bytes)
echo, fanout: --payload filler|json (json: a chat message of --size bytes, text frames)
idle:    --pid PID
echo:    --window W --size BYTES --warmup SECS
fanout:  --publishers N --window W --size BYTES --rate MSG_PER_SEC (0 = closed loop)
         --warmup SECS (the summary's latencies leave out the first SECS of --duration)
connect: (common only)      storm: (common only)
sink:    --sink worker|redis|amqp --rate MSG_PER_SEC --size BYTES
         --worker 127.0.0.1:6061 | --redis 127.0.0.1:6379 --key netsvr:message
         | --amqp amqp://guest:guest@127.0.0.1:5672/%2f --queue Q --exchange netsvr
           --routing-key netsvr.message --ack manual|auto";

    /// The defaults of `mode`.
    pub fn defaults(mode: Mode) -> Self {
        let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
        Self {
            mode,
            addr: local(9000),
            path: "/".into(),
            conns: if mode == Mode::Sink { 16 } else { 1000 },
            sources: 4,
            pid: None,
            publishers: 1,
            window: 16,
            size: 100,
            duration: 10,
            warmup: 0,
            concurrency: 64,
            rate: 0,
            sink: SinkKind::Worker,
            worker: local(6061),
            redis: local(6379),
            key: "netsvr:message".into(),
            amqp: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            queue: "netsvr.load".into(),
            exchange: "netsvr".into(),
            routing_key: "netsvr.message".into(),
            auto_ack: false,
            plot: None,
            deflate: false,
            inflate_shared: false,
            payload: PayloadKind::Filler,
        }
    }

    /// Parses and validates the arguments after the program name.
    pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Self, String> {
        let mode = match it.next().as_deref() {
            Some("idle") => Mode::Idle,
            Some("fanout") => Mode::Fanout,
            Some("echo") => Mode::Echo,
            Some("connect") => Mode::Connect,
            Some("storm") => Mode::Storm,
            Some("sink") => Mode::Sink,
            Some(other) => return Err(format!("unknown mode {other}")),
            None => return Err("missing mode".into()),
        };
        let mut a = Self::defaults(mode);
        while let Some(flag) = it.next() {
            // Flags without a value.
            match flag.as_str() {
                "--deflate" => {
                    a.deflate = true;
                    continue;
                }
                "--inflate-shared" => {
                    a.inflate_shared = true;
                    continue;
                }
                _ => {}
            }
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
            match flag.as_str() {
                "--addr" => a.addr = value.parse().map_err(|e| bad(&e))?,
                "--path" => a.path = value.clone(),
                "--conns" => a.conns = value.parse().map_err(|e| bad(&e))?,
                "--sources" => a.sources = value.parse().map_err(|e| bad(&e))?,
                "--pid" => a.pid = Some(value.parse().map_err(|e| bad(&e))?),
                "--publishers" => a.publishers = value.parse().map_err(|e| bad(&e))?,
                "--window" => a.window = value.parse().map_err(|e| bad(&e))?,
                "--size" => a.size = value.parse().map_err(|e| bad(&e))?,
                "--duration" => a.duration = value.parse().map_err(|e| bad(&e))?,
                "--warmup" => a.warmup = value.parse().map_err(|e| bad(&e))?,
                "--concurrency" => a.concurrency = value.parse().map_err(|e| bad(&e))?,
                "--rate" => a.rate = value.parse().map_err(|e| bad(&e))?,
                "--sink" => {
                    a.sink = match value.as_str() {
                        "worker" => SinkKind::Worker,
                        "redis" => SinkKind::Redis,
                        "amqp" => SinkKind::Amqp,
                        _ => return Err(bad(&"expected worker, redis or amqp")),
                    }
                }
                "--worker" => a.worker = value.parse().map_err(|e| bad(&e))?,
                "--redis" => a.redis = value.parse().map_err(|e| bad(&e))?,
                "--key" => a.key = value.clone(),
                "--amqp" => a.amqp = value.clone(),
                "--queue" => a.queue = value.clone(),
                "--exchange" => a.exchange = value.clone(),
                "--routing-key" => a.routing_key = value.clone(),
                "--ack" => {
                    a.auto_ack = match value.as_str() {
                        "auto" => true,
                        "manual" => false,
                        _ => return Err(format!("--ack {value}: auto or manual")),
                    }
                }
                "--plot" => a.plot = Some(PathBuf::from(&value)),
                "--payload" => {
                    a.payload = PayloadKind::parse(&value)
                        .ok_or_else(|| bad(&"expected filler or json"))?;
                }
                other => return Err(format!("unknown option {other}")),
            }
        }
        a.validate()?;
        Ok(a)
    }

    fn validate(&self) -> Result<(), String> {
        for (flag, addr) in [
            ("--addr", self.addr),
            ("--worker", self.worker),
            ("--redis", self.redis),
        ] {
            if !is_local(addr.ip()) {
                return Err(format!("{flag} {addr}: only 127.0.0.0/8 is allowed"));
            }
        }
        if !url_host_is_local(&self.amqp) {
            return Err(format!("--amqp {}: only 127.0.0.0/8 is allowed", self.amqp));
        }
        let range = |flag: &str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!("{flag} {v}: must be {lo}..={hi}"))
            }
        };
        let max_conns = MAX_CONNS as u64;
        range("--conns", self.conns as u64, 1, max_conns)?;
        range("--sources", self.sources as u64, 1, 254)?;
        range("--publishers", self.publishers as u64, 1, self.conns as u64)?;
        range("--window", self.window as u64, 1, 100_000)?;
        range(
            "--size",
            self.size as u64,
            self.payload.min_size() as u64,
            MAX_SIZE as u64,
        )?;
        let echo_or_fanout = matches!(self.mode, Mode::Echo | Mode::Fanout);
        if self.payload != PayloadKind::Filler && !echo_or_fanout {
            return Err("--payload is for echo and fanout".into());
        }
        if self.deflate && self.mode == Mode::Sink {
            return Err("--deflate is not for sink".into());
        }
        if self.inflate_shared && !self.deflate {
            return Err("--inflate-shared needs --deflate".into());
        }
        range("--duration", self.duration, 1, MAX_DURATION)?;
        if self.warmup >= self.duration {
            return Err(format!(
                "--warmup {} must be shorter than --duration {}",
                self.warmup, self.duration
            ));
        }
        range("--concurrency", self.concurrency as u64, 1, 10_000)?;
        range("--rate", self.rate, 0, 1_000_000)?;
        if self.mode == Mode::Fanout && self.conns.saturating_mul(self.publishers) > MAX_PAIRS {
            return Err(format!("--conns × --publishers over {MAX_PAIRS}"));
        }
        if self.mode == Mode::Idle && self.pid.is_none() {
            return Err("idle needs --pid of the server".into());
        }
        if !self.path.starts_with('/') || self.path.chars().any(char::is_whitespace) {
            return Err(format!(
                "--path {}: must start with / and hold no space",
                self.path
            ));
        }
        Ok(())
    }

    /// Source address of connection `i`: 127.0.0.1 ..= 127.0.0.`sources`.
    pub fn source(&self, i: usize) -> IpAddr {
        let last = u8::try_from(1 + i % self.sources.max(1)).unwrap_or(1);
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    /// The measuring time.
    pub fn run_time(&self) -> Duration {
        Duration::from_secs(self.duration)
    }

    /// A hard limit on the whole run: setup, measuring, draining and closing.
    pub fn time_limit(&self) -> Duration {
        Duration::from_secs(self.duration * 3 + 240)
    }
}

/// Whether `ip` is in 127.0.0.0/8.
pub fn is_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_loopback())
}

/// Whether the host of `url` (`scheme://[user:pass@]host[:port][/...]`) is `localhost` or in
/// 127.0.0.0/8.
pub fn url_host_is_local(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host_port.split(':').next().unwrap_or_default();
    host == "localhost" || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> Result<Args, String> {
        Args::parse(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn every_mode_parses_with_its_flags() {
        let a = parse(&["idle", "--pid", "42", "--conns", "10", "--sources", "2"]).unwrap();
        assert_eq!(
            (a.mode, a.pid, a.conns, a.sources),
            (Mode::Idle, Some(42), 10, 2)
        );
        let a = parse(&["echo", "--window", "4", "--size", "64", "--duration", "2"]).unwrap();
        assert_eq!(
            (a.mode, a.window, a.size, a.duration),
            (Mode::Echo, 4, 64, 2)
        );
        let a = parse(&[
            "fanout",
            "--publishers",
            "3",
            "--rate",
            "100",
            "--conns",
            "5",
        ])
        .unwrap();
        assert_eq!((a.mode, a.publishers, a.rate), (Mode::Fanout, 3, 100));
        let a = parse(&["connect", "--concurrency", "8", "--addr", "127.0.0.2:1"]).unwrap();
        assert_eq!(
            (a.mode, a.concurrency, a.addr.port()),
            (Mode::Connect, 8, 1)
        );
        let a = parse(&["storm", "--conns", "50", "--plot", "/tmp/x.png"]).unwrap();
        assert_eq!(a.mode, Mode::Storm);
        assert_eq!(a.plot.as_deref(), Some(std::path::Path::new("/tmp/x.png")));
        let a = parse(&[
            "sink",
            "--sink",
            "redis",
            "--key",
            "k",
            "--redis",
            "127.0.0.1:7",
        ])
        .unwrap();
        assert_eq!(
            (a.mode, a.sink, a.key.as_str()),
            (Mode::Sink, SinkKind::Redis, "k")
        );
        assert_eq!(a.conns, 16);
        let a = parse(&[
            "sink",
            "--sink",
            "amqp",
            "--queue",
            "q",
            "--routing-key",
            "r",
            "--ack",
            "auto",
        ])
        .unwrap();
        assert_eq!(
            (a.sink, a.queue.as_str(), a.routing_key.as_str(), a.auto_ack),
            (SinkKind::Amqp, "q", "r", true)
        );
        assert!(parse(&["sink", "--ack", "sometimes"]).is_err());
        let a = parse(&["sink", "--worker", "127.0.0.1:16061", "--rate", "5"]).unwrap();
        assert_eq!(
            (a.sink, a.worker.port(), a.rate),
            (SinkKind::Worker, 16061, 5)
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["nope"]).is_err());
        assert!(parse(&["echo", "--bogus", "1"]).is_err());
        assert!(parse(&["echo", "--conns"]).is_err());
        assert!(parse(&["echo", "--conns", "x"]).is_err());
        assert!(parse(&["echo", "--conns", "0"]).is_err());
        assert!(parse(&["echo", "--size", "8"]).is_err());
        assert!(parse(&["echo", "--duration", "0"]).is_err());
        assert!(parse(&["echo", "--duration", "2", "--warmup", "2"]).is_err());
        assert_eq!(
            parse(&["fanout", "--duration", "3", "--warmup", "1"]).map(|a| a.warmup),
            Ok(1)
        );
        assert!(parse(&["echo", "--sources", "255"]).is_err());
        assert!(parse(&["idle"]).is_err());
        assert!(parse(&["fanout", "--conns", "2", "--publishers", "3"]).is_err());
        assert!(parse(&["sink", "--sink", "kafka"]).is_err());
        assert!(parse(&["echo", "--path", "x"]).is_err());
        assert!(parse(&["echo", "--payload", "xml"]).is_err());
        assert!(parse(&["echo", "--payload", "json", "--size", "100"]).is_err());
        assert!(parse(&["connect", "--payload", "json", "--size", "1024"]).is_err());
        assert!(parse(&["sink", "--deflate"]).is_err());
        assert!(parse(&["fanout", "--inflate-shared"]).is_err());
    }

    #[test]
    fn deflate_is_a_flag_and_json_a_payload() {
        let a = parse(&["fanout", "--deflate", "--payload", "json", "--size", "1024"]).unwrap();
        assert_eq!(
            (a.deflate, a.payload, a.size),
            (true, PayloadKind::Json, 1024)
        );
        let a = parse(&["echo", "--size", "64", "--deflate"]).unwrap();
        assert_eq!(
            (a.deflate, a.payload, a.size),
            (true, PayloadKind::Filler, 64)
        );
        assert!(!parse(&["echo"]).unwrap().deflate);
        let a = parse(&["fanout", "--inflate-shared", "--deflate"]).unwrap();
        assert!(a.deflate && a.inflate_shared);
    }

    #[test]
    fn only_loopback_targets() {
        assert!(parse(&["echo", "--addr", "10.0.0.1:80"]).is_err());
        assert!(parse(&["echo", "--addr", "[::1]:80"]).is_err());
        assert!(parse(&["sink", "--worker", "192.168.1.1:6061"]).is_err());
        assert!(parse(&["sink", "--redis", "8.8.8.8:6379"]).is_err());
        assert!(parse(&["sink", "--amqp", "amqp://u:p@10.1.1.1:5672/%2f"]).is_err());
        assert!(url_host_is_local("amqp://guest:guest@127.0.0.1:5672/%2f"));
        assert!(url_host_is_local("amqp://localhost"));
        assert!(url_host_is_local("amqp://127.9.0.1/vh"));
        assert!(!url_host_is_local("amqp://example.com:5672"));
        assert!(!url_host_is_local("127.0.0.1:5672"));
    }

    #[test]
    fn sources_cycle() {
        let a = parse(&["connect", "--sources", "3"]).unwrap();
        let got: Vec<_> = (0..4).map(|i| a.source(i).to_string()).collect();
        assert_eq!(got, ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.1"]);
    }
}
