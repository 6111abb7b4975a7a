//! Smoke test of the `netsvr-load` binary: in-process gateways on 127.0.0.1:0 (an echo one,
//! a chat one that broadcasts, and one with the worker port), each mode run for about a
//! second with small numbers, and its JSON line checked for non-zero throughput, no
//! failures and no order violations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netsvr_core::worker::{WorkerConfig, WorkerPorts};
use netsvr_core::{ChannelSink, EventKind, Gateway, GatewayBuilder, GatewayConfig};
use serde_json::Value;

/// What the test gateway does with a client message.
#[derive(Clone, Copy)]
enum Reply {
    Echo,
    Broadcast,
}

fn local0() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Serves `builder` on 127.0.0.1:0 at path `/`, answering messages as `reply` says.
fn start(builder: GatewayBuilder, reply: Reply) -> Gateway {
    start_with(builder, reply, true)
}

/// [`start`], negotiating permessage-deflate or not.
fn start_with(builder: GatewayBuilder, reply: Reply, deflate: bool) -> Gateway {
    let mut config = GatewayConfig::default();
    config.deflate.enabled = deflate;
    config.listen = local0();
    config.path = "/".to_owned();
    let (sink, mut events) = ChannelSink::new(65_536);
    let (gateway, serve) = builder.config(config).sink(sink).build().unwrap();
    tokio::spawn(serve);
    let g = gateway.clone();
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(256);
        while events.recv_many(&mut batch, 256).await > 0 {
            for event in batch.drain(..) {
                if let EventKind::Message { kind, payload } = event.kind {
                    match reply {
                        Reply::Echo => g.send_as(&event.conn.meta.uniq_id, kind, &payload),
                        Reply::Broadcast => g.broadcast_as(kind, &payload) > 0,
                    };
                }
            }
        }
    });
    gateway
}

/// Runs the binary with `args` (at most 60 s) and returns its JSON line.
async fn load(args: Vec<String>) -> Value {
    let (ok, out, err) = run_load(args.clone()).await;
    assert!(ok, "{args:?} failed\n{err}");
    let line = out.lines().last().unwrap_or_default();
    let json: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {out}"));
    eprintln!("{args:?}\n{err}{json}");
    json
}

/// Runs the binary with `args` (at most 60 s): whether it succeeded, stdout and stderr.
async fn run_load(args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_netsvr-load"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("netsvr-load {args:?} ran over 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let (mut out, mut err) = (String::new(), String::new());
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status.success(), out, err)
    })
    .await
    .unwrap()
}

fn argv(mode: &str, addr: SocketAddr, rest: &[&str]) -> Vec<String> {
    let mut v = vec![mode.to_owned(), "--addr".into(), addr.to_string()];
    v.extend(rest.iter().map(|s| (*s).to_owned()));
    v
}

fn num(json: &Value, key: &str) -> f64 {
    json[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {json}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_mode() {
    let gw = start(Gateway::builder(), Reply::Echo);
    let rest = [
        "--conns",
        "8",
        "--window",
        "4",
        "--duration",
        "1",
        "--size",
        "64",
    ];
    let json = load(argv("echo", gw.local_addr(), &rest)).await;
    assert_eq!(json["mode"], "echo");
    assert!(num(&json, "round_trips_per_sec") > 0.0, "{json}");
    assert!(num(&json, "p99_ms") > 0.0, "{json}");
    assert_eq!(num(&json, "failures"), 0.0, "{json}");
    assert_eq!(num(&json, "order_violations"), 0.0, "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_mode_with_plot() {
    let gw = start(Gateway::builder(), Reply::Echo);
    let png = std::env::temp_dir().join(format!("netsvr-load-smoke-{}.png", std::process::id()));
    let png_arg = png.display().to_string();
    let rest = ["--conns", "200", "--concurrency", "16", "--sources", "3"];
    let mut args = argv("connect", gw.local_addr(), &rest);
    args.extend(["--duration".into(), "1".into(), "--plot".into(), png_arg]);
    let json = load(args).await;
    assert!(num(&json, "accepts_per_sec") > 0.0, "{json}");
    assert_eq!(num(&json, "accepted"), 200.0, "{json}");
    assert_eq!(num(&json, "failures"), 0.0, "{json}");
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
    std::fs::remove_file(&png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_mode() {
    let gw = start(Gateway::builder(), Reply::Echo);
    let rest = ["--conns", "100", "--concurrency", "16", "--duration", "5"];
    let json = load(argv("storm", gw.local_addr(), &rest)).await;
    assert_eq!(num(&json, "reconnected"), 100.0, "{json}");
    assert!(num(&json, "reaccepts_per_sec") > 0.0, "{json}");
    assert!(num(&json, "worst_ms") >= num(&json, "p99_ms"), "{json}");
    assert_eq!(num(&json, "failed"), 0.0, "{json}");
    assert_eq!(num(&json, "fill_failures"), 0.0, "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_modes() {
    let gw = start(Gateway::builder(), Reply::Broadcast);
    let addr = gw.local_addr();
    for rest in [
        [
            "--conns",
            "20",
            "--publishers",
            "2",
            "--window",
            "4",
            "--duration",
            "1",
        ],
        [
            "--conns",
            "20",
            "--publishers",
            "2",
            "--rate",
            "50",
            "--duration",
            "1",
        ],
    ] {
        let json = load(argv("fanout", addr, &rest)).await;
        assert!(num(&json, "deliveries_per_sec") > 0.0, "{json}");
        assert!(num(&json, "p99_ms") > 0.0, "{json}");
        assert_eq!(num(&json, "failures"), 0.0, "{json}");
        assert_eq!(num(&json, "order_violations"), 0.0, "{json}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_mode_through_the_worker_port() {
    let mut ports = WorkerConfig::default();
    ports.worker_listen = local0();
    ports.task_listen = local0();
    let ports = WorkerPorts::bind(ports).unwrap();
    let worker = ports.worker_addr().unwrap();
    let builder = Gateway::builder()
        .node_addr(ports.node_addr())
        .sink(ports.sink());
    let mut config = GatewayConfig::default();
    config.listen = local0();
    config.path = "/".to_owned();
    let (gw, serve) = builder.config(config).build().unwrap();
    tokio::spawn(serve);
    tokio::spawn(ports.serve(gw.clone()));
    let worker_arg = worker.to_string();
    let rest = ["--sink", "worker", "--worker", &worker_arg, "--conns", "4"];
    let mut args = argv("sink", gw.local_addr(), &rest);
    args.extend(["--rate", "200", "--duration", "1"].map(String::from));
    let json = load(args).await;
    assert!(num(&json, "received_per_sec") > 0.0, "{json}");
    assert_eq!(num(&json, "received"), num(&json, "sent"), "{json}");
    assert_eq!(num(&json, "order_violations"), 0.0, "{json}");
    assert_eq!(num(&json, "gaps"), 0.0, "{json}");
    assert_eq!(num(&json, "foreign"), 0.0, "{json}");
    assert_eq!(num(&json, "failures"), 0.0, "{json}");
}

/// `--deflate` clients negotiate, get compressed JSON messages and inflate them; against a
/// gateway that does not negotiate the extension, the run fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deflate_clients() {
    let gw = start(Gateway::builder(), Reply::Broadcast);
    let rest = [
        "--deflate",
        "--payload",
        "json",
        "--size",
        "1024",
        "--conns",
        "20",
        "--publishers",
        "2",
        "--window",
        "4",
        "--duration",
        "1",
    ];
    let json = load(argv("fanout", gw.local_addr(), &rest)).await;
    assert_eq!(json["deflate"], true, "{json}");
    assert!(num(&json, "deliveries_per_sec") > 0.0, "{json}");
    assert_eq!(num(&json, "failures"), 0.0, "{json}");
    assert_eq!(num(&json, "order_violations"), 0.0, "{json}");
    // Every delivery was compressed, inflated and parsed (its stamp timed).
    assert_eq!(
        num(&json, "rx_compressed"),
        num(&json, "rx_messages"),
        "{json}"
    );
    assert!(
        num(&json, "deliveries") >= num(&json, "rx_messages") - 40.0,
        "{json}"
    );
    assert!(num(&json, "wire_per_payload") < 0.7, "{json}");
    assert!(
        num(&json, "payload_bytes") >= 1024.0 * num(&json, "rx_messages"),
        "{json}"
    );

    // With `--inflate-shared` the load tool inflates each shared frame about once.
    let mut args = argv("fanout", gw.local_addr(), &rest);
    args.push("--inflate-shared".into());
    let json = load(args).await;
    assert_eq!(num(&json, "failures"), 0.0, "{json}");
    assert_eq!(
        num(&json, "rx_compressed"),
        num(&json, "rx_messages"),
        "{json}"
    );
    assert!(
        num(&json, "rx_inflated") * 5.0 < num(&json, "rx_compressed"),
        "{json}"
    );

    let echo = start(Gateway::builder(), Reply::Echo);
    let rest = [
        "--deflate",
        "--payload",
        "json",
        "--size",
        "600",
        "--conns",
        "4",
    ];
    let mut args = argv("echo", echo.local_addr(), &rest);
    args.extend(["--window", "2", "--duration", "1"].map(String::from));
    let json = load(args).await;
    assert!(num(&json, "round_trips_per_sec") > 0.0, "{json}");
    assert!(num(&json, "rx_compressed") > 0.0, "{json}");
    assert_eq!(num(&json, "failures"), 0.0, "{json}");

    let plain = start_with(Gateway::builder(), Reply::Broadcast, false);
    let rest = ["--deflate", "--conns", "4", "--duration", "1"];
    let (ok, _, err) = run_load(argv("fanout", plain.local_addr(), &rest)).await;
    assert!(
        !ok,
        "a gateway without permessage-deflate must fail the run: {err}"
    );
    assert!(err.contains("not accepted"), "{err}");
}
