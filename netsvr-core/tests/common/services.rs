//! Real services the sink tests break: a private `redis-server` killed and restarted, and a
//! TCP proxy to RabbitMQ that cuts its links; plus the rule for a missing service.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// RabbitMQ's address on this machine.
pub const RABBIT: &str = "127.0.0.1:5672";

/// Says a test cannot run: fails under CI, otherwise prints `SKIPPED` (the caller returns).
#[allow(clippy::print_stdout)] // the SKIPPED line is for the person running the tests
pub fn unavailable(why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{why} (required when CI is set)"
    );
    println!("SKIPPED: {why}");
}

/// A TCP proxy to RabbitMQ that can cut every link and refuse new ones until resumed.
pub struct Proxy {
    addr: SocketAddr,
    refusing: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
}

impl Proxy {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let refusing = Arc::new(AtomicBool::new(false));
        let (cuts, _) = watch::channel(0u64);
        let (refuse, cut) = (refusing.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cut_now = cut.subscribe();
                if refuse.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the link close at once
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(RABBIT).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_now.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            refusing,
            cuts,
        }
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    /// Closes every open link; new ones are refused until [`Proxy::resume`].
    pub fn cut(&self) {
        self.refusing.store(true, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    pub fn resume(&self) {
        self.refusing.store(false, Ordering::SeqCst);
    }
}

#[cfg(feature = "redis")]
#[allow(unused_imports)] // not every test binary starts a private Redis
pub use private_redis::{PrivateRedis, try_connect};

#[cfg(feature = "redis")]
mod private_redis {
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use redis::aio::MultiplexedConnection;

    use super::unavailable;

    /// A connection that answers PING, or `None` after a couple of seconds.
    pub async fn try_connect(url: &str) -> Option<MultiplexedConnection> {
        let client = redis::Client::open(url).ok()?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let attempt = async {
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .ok()?;
            let pong: String = redis::cmd("PING").query_async(&mut conn).await.ok()?;
            (pong == "PONG").then_some(conn)
        };
        tokio::time::timeout(Duration::from_secs(2), attempt)
            .await
            .ok()
            .flatten()
    }

    /// A `redis-server` child on a free loopback port, with an append-only file in a
    /// temporary directory so that a SIGKILL keeps what it had acknowledged. Killed on drop.
    pub struct PrivateRedis {
        port: u16,
        dir: PathBuf,
        child: Option<Child>,
    }

    impl PrivateRedis {
        /// Starts one, or returns `None` (after [`unavailable`]) when `redis-server` is
        /// missing.
        pub async fn start(test: &str) -> Option<Self> {
            let port = {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                listener.local_addr().unwrap().port()
            };
            let dir = std::env::temp_dir()
                .join(format!("netsvr-redis-{}-{test}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let mut redis = Self {
                port,
                dir,
                child: None,
            };
            if let Err(e) = redis.spawn() {
                unavailable(&format!("cannot run redis-server: {e}"));
                return None;
            }
            redis.ready().await;
            Some(redis)
        }

        pub fn url(&self) -> String {
            format!("redis://127.0.0.1:{}", self.port)
        }

        fn spawn(&mut self) -> std::io::Result<()> {
            let child = Command::new("redis-server")
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--daemonize", "no"])
                .args(["--appendonly", "yes", "--appendfsync", "no"])
                .arg("--dir")
                .arg(&self.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            self.child = Some(child);
            Ok(())
        }

        /// Waits until it answers PING.
        pub async fn ready(&self) -> MultiplexedConnection {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
            loop {
                if let Some(conn) = try_connect(&self.url()).await {
                    return conn;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "private redis-server on port {} did not start",
                    self.port
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }

        /// SIGKILL, then reap.
        pub fn kill(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }

        /// Starts it again on the same port and data directory.
        pub async fn restart(&mut self) -> MultiplexedConnection {
            self.spawn().unwrap();
            self.ready().await
        }
    }

    impl Drop for PrivateRedis {
        fn drop(&mut self) {
            self.kill();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
