//! The `worker_client` example binary against an in-process gateway serving its worker and
//! task ports: a WebSocket client's `ping` comes back as `ping` (to it alone), and the example
//! logs the open and the close.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use netsvr_core::Gateway;
use netsvr_core::worker::{WorkerConfig, WorkerPorts};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(5);

/// Kills the example however the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The example binary, built first so that a run of this test alone (which builds no
/// examples) never finds it missing or stale.
fn example_binary() -> PathBuf {
    // target/<profile>/deps/worker_client-<hash> → target/<profile>/examples/worker_client
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let profile = profile_dir.file_name().unwrap().to_str().unwrap();
    let target_dir = profile_dir.parent().unwrap();
    let profile_arg = match profile {
        "debug" => "dev",
        other => other,
    };
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "-p",
            "netsvr-examples",
            "--example",
            "worker_client",
        ])
        .args(["--profile", profile_arg])
        .arg("--target-dir")
        .arg(target_dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "building the worker_client example failed"
    );
    let binary = profile_dir.join("examples").join("worker_client");
    assert!(binary.exists(), "{} missing", binary.display());
    binary
}

/// Waits for a stderr line of the example that satisfies `want`; panics with everything
/// seen when it does not come (or the example exits).
async fn wait_line(
    lines: &mut mpsc::UnboundedReceiver<String>,
    seen: &mut Vec<String>,
    what: &str,
    want: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, lines.recv()).await {
            Ok(Some(line)) => {
                seen.push(line.clone());
                if want(&line) {
                    return line;
                }
            }
            Ok(None) => panic!("the example exited before {what}; its stderr: {seen:#?}"),
            Err(_) => panic!("timed out waiting for {what}; its stderr: {seen:#?}"),
        }
    }
}

async fn recv_text(client: &mut Client) -> String {
    loop {
        let msg = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("timed out waiting for the echo")
            .expect("connection ended")
            .expect("websocket error");
        match msg {
            Message::Text(t) => return t.to_string(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoes_each_message_to_its_sender() {
    let binary = example_binary();

    // A gateway with its worker and task ports on ephemeral loopback ports.
    let mut wcfg = WorkerConfig::default();
    wcfg.worker_listen = "127.0.0.1:0".parse().unwrap();
    wcfg.task_listen = "127.0.0.1:0".parse().unwrap();
    let ports = WorkerPorts::bind(wcfg).unwrap();
    let (worker_addr, task_addr) = (ports.worker_addr().unwrap(), ports.task_addr().unwrap());
    let mut gcfg = netsvr_core::GatewayConfig::default();
    gcfg.listen = "127.0.0.1:0".parse().unwrap();
    gcfg.path = "/netsvr".into();
    let (gateway, serve) = Gateway::builder()
        .config(gcfg)
        .node_addr(ports.node_addr())
        .sink(ports.sink())
        .build()
        .unwrap();
    tokio::spawn(serve);
    tokio::spawn(ports.serve(gateway.clone()));

    let mut child = Running(
        Command::new(&binary)
            .arg("--worker")
            .arg(worker_addr.to_string())
            .arg("--task")
            .arg(task_addr.to_string())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, mut lines) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    wait_line(&mut lines, &mut seen, "the registration", |l| {
        l.starts_with("registered on ")
    })
    .await;

    let url = format!("ws://{}/netsvr", gateway.local_addr());
    let (mut a, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let line = wait_line(&mut lines, &mut seen, "the open", |l| {
        l.starts_with("open ")
    })
    .await;
    let ids = gateway.uniq_ids();
    assert_eq!(ids.len(), 1);
    let ida = ids[0].to_string();
    assert!(
        line.starts_with(&format!("open {ida} from 127.0.0.1:")),
        "{line}"
    );

    a.send(Message::text("ping")).await.unwrap();
    assert_eq!(recv_text(&mut a).await, "ping");
    a.send(Message::text("second")).await.unwrap();
    assert_eq!(recv_text(&mut a).await, "second");

    // A second client gets its own echo only.
    let (mut b, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    wait_line(&mut lines, &mut seen, "the second open", |l| {
        l.starts_with("open ")
    })
    .await;
    b.send(Message::text("from b")).await.unwrap();
    assert_eq!(recv_text(&mut b).await, "from b");
    if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(200), a.next()).await {
        panic!("a got b's echo: {msg:?}");
    }

    a.close(None).await.unwrap();
    let line = wait_line(&mut lines, &mut seen, "the close", |l| {
        l.starts_with("close ")
    })
    .await;
    assert!(line.starts_with(&format!("close {ida} ")), "{line}");
    // Still running: nothing made it exit.
    assert!(child.0.try_wait().unwrap().is_none(), "{seen:#?}");
}
