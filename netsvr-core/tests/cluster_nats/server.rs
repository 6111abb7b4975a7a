//! NATS for the cluster tests: whether a server with JetStream answers, a private
//! `nats-server -js` child that can be killed and restarted, and bucket clean-up.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::common::services::unavailable;

/// The machine's NATS (with JetStream).
pub(crate) const SHARED_URL: &str = "nats://127.0.0.1:4222";

/// Whether a NATS server with JetStream answers at `url` within a couple of seconds.
pub(crate) async fn jetstream_up(url: &str) -> bool {
    let attempt = async {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(1))
            .max_reconnects(Some(1))
            .connect(url)
            .await
            .ok()?;
        // The account info request, read as text (async-nats cannot parse the answer of
        // servers before 2.10).
        let reply = client
            .request("$JS.API.INFO", bytes::Bytes::new())
            .await
            .ok()?;
        let text = String::from_utf8_lossy(&reply.payload).into_owned();
        (text.contains("account_info_response") && !text.contains("\"error\"")).then_some(())
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
        .is_some()
}

/// The machine's NATS is up, or the test must not run (after [`unavailable`]).
pub(crate) async fn shared_nats_up() -> bool {
    if jetstream_up(SHARED_URL).await {
        return true;
    }
    unavailable("NATS with JetStream is not reachable at 127.0.0.1:4222");
    false
}

/// Deletes the buckets of a cluster prefix (best effort: tests share the machine's NATS).
pub(crate) async fn delete_buckets(url: &str, prefix: &str) {
    let Ok(client) = async_nats::connect(url).await else {
        return;
    };
    let js = async_nats::jetstream::new(client);
    for bucket in [format!("{prefix}_nodes"), format!("{prefix}_conns")] {
        let _ = js.delete_key_value(bucket).await;
    }
}

/// A `nats-server -js` child on a free loopback port, storing JetStream data in a temporary
/// directory so that a SIGKILL keeps what it had acknowledged. Killed on drop.
pub(crate) struct PrivateNats {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateNats {
    /// Starts one, or returns `None` (after [`unavailable`]) when `nats-server` is missing.
    pub(crate) async fn start(test: &str) -> Option<Self> {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let dir =
            std::env::temp_dir().join(format!("netsvr-nats-{}-{test}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut nats = Self {
            port,
            dir,
            child: None,
        };
        if let Err(e) = nats.spawn() {
            unavailable(&format!("cannot run nats-server: {e}"));
            return None;
        }
        nats.ready().await;
        Some(nats)
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js"])
            .arg("-sd")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until JetStream answers.
    pub(crate) async fn ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while !jetstream_up(&self.url()).await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "private nats-server on port {} did not start",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, then reap.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and storage directory.
    pub(crate) async fn restart(&mut self) {
        self.spawn().unwrap();
        self.ready().await;
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
