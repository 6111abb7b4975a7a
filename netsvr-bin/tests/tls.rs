//! wss:// with the real binary: certificate and key from `[tls]`, swapped on SIGHUP while
//! connections stay up, bad files refused at start (naming the key) and on reload (old
//! certificate kept); clients are rustls (tokio-rustls) and OpenSSL (curl).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::server::{BIN, Server, json_config};
use common::{status, temp_file};
use futures_util::{SinkExt, StreamExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types};
use tokio_tungstenite::tungstenite::Message;

/// A self-signed certificate for `localhost`, as PEM, and the DER a client trusts.
struct Cert {
    der: pki_types::CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

impl Cert {
    fn new() -> Self {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        Self {
            der: made.cert.der().clone(),
            cert_pem: made.cert.pem(),
            key_pem: made.signing_key.serialize_pem(),
        }
    }

    /// Writes the pair to `cert.pem` / `key.pem` in `dir`.
    fn install(&self, dir: &Path) {
        std::fs::write(dir.join("cert.pem"), &self.cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), &self.key_pem).unwrap();
    }

    fn connector(&self) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }
}

type Wss =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// TLS (trusting only `cert`, verifying `localhost`) then the WebSocket upgrade.
async fn connect(addr: SocketAddr, cert: &Cert) -> Result<Wss, String> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio::time::timeout(Duration::from_secs(5), cert.connector().connect(name, tcp))
        .await
        .expect("TLS handshake timed out")
        .map_err(|e| e.to_string())?;
    let url = format!("wss://localhost:{}/netsvr", addr.port());
    let (ws, _) = tokio_tungstenite::client_async(url, tls)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// A ping answered by a pong: the connection is alive.
async fn assert_alive(ws: &mut Wss) {
    ws.send(Message::Ping(b"alive?".to_vec().into()))
        .await
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("no pong")
        .expect("connection ended")
        .expect("websocket error");
    assert_eq!(reply, Message::Pong(b"alive?".to_vec().into()));
}

/// A config serving TLS from `cert.pem` / `key.pem` in a fresh directory.
fn tls_config(name: &str, cert: &Cert) -> (PathBuf, PathBuf) {
    let dir = temp_file(name, "").parent().unwrap().to_owned();
    cert.install(&dir);
    let extra = format!(
        "[tls]\ncert = {:?}\nkey = {:?}\n",
        dir.join("cert.pem"),
        dir.join("key.pem")
    );
    (
        temp_file(&format!("{name}.toml"), &json_config(&extra)),
        dir,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_certificate_without_dropping_connections() {
    let (old, new) = (Cert::new(), Cert::new());
    let (config, dir) = tls_config("swap", &old);
    let mut server = Server::start(&config).await;
    let mut kept = connect(server.ws, &old).await.unwrap();
    assert_alive(&mut kept).await;

    new.install(&dir);
    server.signal("HUP");
    server.wait_log("TLS certificate reloaded").await;
    let refused = connect(server.ws, &old).await.unwrap_err();
    assert!(refused.contains("certificate"), "{refused}");
    let mut fresh = connect(server.ws, &new).await.unwrap();
    assert_alive(&mut fresh).await;
    assert_alive(&mut kept).await;
    assert_eq!(status(server.admin, None).await["connections"], 2);

    // A broken key on the next SIGHUP is logged; the current certificate stays in force.
    std::fs::write(dir.join("key.pem"), "not a key").unwrap();
    server.signal("HUP");
    server.wait_log("TLS certificate not reloaded").await;
    assert!(
        server.log_text().contains("tls.key"),
        "{}",
        server.log_text()
    );
    let mut again = connect(server.ws, &new).await.unwrap();
    assert_alive(&mut again).await;
    assert_alive(&mut kept).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_tls_client_is_refused_and_counted() {
    let cert = Cert::new();
    let (config, _) = tls_config("plain", &cert);
    let server = Server::start(&config).await;
    let plain = tokio_tungstenite::connect_async(format!("ws://{}/netsvr", server.ws)).await;
    assert!(plain.is_err(), "a plain ws:// client was upgraded");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, metrics) = common::http_get(server.admin, "/metrics", None).await;
        if metrics.contains("netsvr_handshakes_refused_total{reason=\"tls\"} 1") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not counted:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// curl (OpenSSL) upgrades over TLS with ALPN (it offers h2 first) and the certificate
/// verified against the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_upgrades_over_tls() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(std::env::var_os("CI").is_none(), "curl is needed under CI");
        eprintln!("skipped: curl is not installed");
        return;
    }
    let cert = Cert::new();
    let (config, dir) = tls_config("curl", &cert);
    let server = Server::start(&config).await;
    let port = server.ws.port();
    let out = tokio::process::Command::new("curl")
        .args(["--silent", "--show-error", "--include", "--max-time", "2"])
        .arg("--cacert")
        .arg(dir.join("cert.pem"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args([
            "-H",
            "Connection: Upgrade",
            "-H",
            "Upgrade: websocket",
            "-H",
            "Sec-WebSocket-Version: 13",
            "-H",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        ])
        .arg(format!("https://localhost:{port}/netsvr"))
        .output()
        .await
        .unwrap();
    // curl waits for more after the 101 and gives up at --max-time (exit 28).
    let head = String::from_utf8_lossy(&out.stdout);
    assert!(
        head.starts_with("HTTP/1.1 101"),
        "stdout: {head}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
}

#[test]
fn unreadable_certificate_fails_check_and_start_naming_the_key() {
    let cert = Cert::new();
    let (config, dir) = tls_config("bad", &cert);
    std::fs::remove_file(dir.join("cert.pem")).unwrap();
    for flag in ["--check-config", "--config"] {
        let out = std::process::Command::new(BIN)
            .arg(flag)
            .arg(&config)
            .env_remove("NETSVR_LISTEN")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag}: {stderr}");
        assert!(stderr.contains("tls.cert"), "{flag}: {stderr}");
        assert!(stderr.contains("cert.pem"), "{flag}: {stderr}");
    }
}
