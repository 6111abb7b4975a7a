//! The real `netsvr` binary as a child process: started on a config file, its JSON log
//! followed, signalled, killed when dropped.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::port_zero_config;

pub const BIN: &str = env!("CARGO_BIN_EXE_netsvr");
pub const ENV_VARS: [&str; 9] = [
    "NETSVR_LISTEN",
    "NETSVR_WORKER_LISTEN",
    "NETSVR_TASK_LISTEN",
    "NETSVR_ADMIN_LISTEN",
    "NETSVR_ADMIN_TOKEN",
    "NETSVR_REDIS_URL",
    "NETSVR_AMQP_URL",
    "NETSVR_LOG",
    "RUST_LOG",
];

/// A running `netsvr`, killed when dropped.
pub struct Server {
    pub child: Child,
    log: Arc<Mutex<Vec<String>>>,
    lines: mpsc::UnboundedReceiver<String>,
    pub ws: SocketAddr,
    pub admin: SocketAddr,
    /// The worker port, when enabled.
    pub worker: Option<SocketAddr>,
    /// The task port, when enabled.
    pub task: Option<SocketAddr>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Server {
    /// Starts the binary on `config` and waits for its "listening" log line.
    pub async fn start(config: &Path) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config").arg(config);
        for var in ENV_VARS {
            cmd.env_remove(var);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("cannot start netsvr");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut lines) = mpsc::unbounded_channel();
        let keep = log.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let listening = tokio::time::timeout(Duration::from_secs(15), async {
            while let Some(line) = lines.recv().await {
                let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if json["fields"]["message"] == "netsvr listening" {
                    return Some(json["fields"].clone());
                }
            }
            None
        })
        .await;
        let fields = match listening {
            Ok(Some(fields)) => fields,
            _ => panic!(
                "no listening line; log:\n{}",
                log.lock().unwrap().join("\n")
            ),
        };
        let addr = |name: &str| fields[name].as_str().unwrap().parse().unwrap();
        let worker = fields["worker"].as_str().and_then(|w| w.parse().ok());
        let task = fields["task"].as_str().and_then(|t| t.parse().ok());
        Self {
            ws: addr("websocket"),
            admin: addr("admin"),
            worker,
            task,
            child,
            log,
            lines,
        }
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("already exited").to_string();
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} {pid} failed");
    }

    /// Waits for a log line containing `needle`.
    pub async fn wait_log(&mut self, needle: &str) {
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(line) = self.lines.recv().await {
                if line.contains(needle) {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(found, Ok(true), "no `{needle}` in:\n{}", self.log_text());
    }

    /// Waits (up to `within`) for the process to exit and for the last of its log; returns
    /// the exit status and the whole log.
    pub async fn exited(&mut self, within: Duration) -> (std::process::ExitStatus, String) {
        let exit = tokio::time::timeout(within, self.child.wait())
            .await
            .expect("netsvr did not exit")
            .unwrap();
        // The log reader ends at the end of stderr, closing the channel.
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while self.lines.recv().await.is_some() {}
        })
        .await;
        (exit, self.log_text())
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

pub fn json_config(extra: &str) -> String {
    leveled_config("info", extra)
}

pub fn leveled_config(level: &str, extra: &str) -> String {
    port_zero_config(&format!(
        "[log]\nformat = \"json\"\nlevel = \"{level}\"\n{extra}"
    ))
}
