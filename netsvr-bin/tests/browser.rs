//! The admin demo page (`/demo`) of the real `netsvr` binary: what it is told about the
//! gateway, its switch, and an end-to-end run in headless Chromium — two tabs connect, a
//! broadcast through the JSON command API reaches both (a 4 KiB one intact), a message typed
//! in a tab reaches the gateway, and a screenshot is saved under `target/browser-e2e/`; with
//! client commands on, a tab subscribes through the page's form (a refused topic shows a 403
//! reply) and only it gets the topic's publish, until it unsubscribes.
//!
//! The browser part runs `tests/browser/demo.mjs` with Node.js and playwright-core on the
//! system Chromium (`/usr/bin/chromium`, or `NETSVR_CHROMIUM`). Without node, Chromium or
//! `tests/browser/node_modules` it is skipped with the reason printed, and fails when `CI`
//! is set (`.ci/run` installs them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::server::Server;
use common::temp_file;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Whether the tabs must have negotiated permessage-deflate: netsvr-core negotiates it with
/// clients that offer it (Chromium does) under the default `[gateway.deflate] enabled = true`.
const EXPECT_PERMESSAGE_DEFLATE: bool = true;
/// The admin token of these tests' gateways.
const TOKEN: &str = "demo-test-token";
/// Longest run of the browser script.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

fn config(admin_extra: &str) -> PathBuf {
    config_with(admin_extra, "")
}

/// A configuration on port 0 with `admin_extra` in `[admin]`, followed by `sections`.
fn config_with(admin_extra: &str, sections: &str) -> PathBuf {
    let text = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nshutdown_timeout = \"3s\"\n\
         [worker]\nworker_listen = \"127.0.0.1:0\"\ntask_listen = \"127.0.0.1:0\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n{admin_extra}\n\
         [log]\nformat = \"json\"\nlevel = \"info\"\n{sections}"
    );
    temp_file("netsvr.toml", &text)
}

/// `GET path` on the admin port; returns (status, head, body).
async fn get(admin: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(admin).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
        .await
        .expect("admin answer timed out")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// The settings the page was given (its `demo-config` element).
fn page_config(body: &str) -> Value {
    let start = body.find("id=\"demo-config\">").unwrap() + "id=\"demo-config\">".len();
    let end = start + body[start..].find("</script>").unwrap();
    serde_json::from_str(&body[start..end]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_page_knows_the_gateway_and_needs_the_token() {
    let server = Server::start(&config("")).await;
    let (code, _, _) = get(server.admin, "/demo").await;
    assert_eq!(code, 401, "no token");
    let (code, _, _) = get(server.admin, "/demo?token=wrong").await;
    assert_eq!(code, 401, "wrong token");

    let (code, head, body) = get(server.admin, &format!("/demo?token={TOKEN}")).await;
    assert_eq!(code, 200, "{body}");
    assert!(head.contains("content-type: text/html"), "{head}");
    let port = server.ws.port();
    let csp = format!("connect-src 'self' ws://*:{port};");
    assert!(head.contains(&csp), "{csp} in {head}");
    assert!(head.contains("default-src 'none'"), "{head}");
    let cfg = page_config(&body);
    assert_eq!(cfg["port"], port);
    assert_eq!(cfg["path"], "/netsvr");
    assert_eq!(cfg["tls"], false);
    assert_eq!(cfg["ws"], Value::Null);
    assert_eq!(cfg["client_commands"], false);

    // `?ws=` names another gateway URL, which the CSP then allows.
    let path = format!("/demo?token={TOKEN}&ws=wss%3A%2F%2Fgw.example%3A8443%2Fnetsvr");
    let (code, head, body) = get(server.admin, &path).await;
    assert_eq!(code, 200, "{body}");
    assert!(
        head.contains(&format!("ws://*:{port} wss://gw.example:8443;")),
        "{head}"
    );
    assert_eq!(page_config(&body)["ws"], "wss://gw.example:8443/netsvr");
    for bad in [
        "http%3A%2F%2Fh%2F",
        "ws%3A%2F%2Fh%3Bscript-src",
        "ws%3A%2F%2Fu%40h%2F",
    ] {
        let (code, _, body) = get(server.admin, &format!("/demo?token={TOKEN}&ws={bad}")).await;
        assert_eq!(code, 400, "{bad}: {body}");
        assert!(body.contains("`ws`"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_page_can_be_switched_off() {
    let server = Server::start(&config("demo = false")).await;
    let (code, _, body) = get(server.admin, &format!("/demo?token={TOKEN}")).await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("admin] demo = false"), "{body}");
    // The status page is unaffected.
    let (code, _, _) = get(server.admin, &format!("/?token={TOKEN}")).await;
    assert_eq!(code, 200);
}

/// `target/browser-e2e/<name>`, the directory created and any old file removed.
fn screenshot_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("browser-e2e");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// The browser script's folder.
fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("NETSVR_CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from)
}

/// What the browser test needs and is missing, if anything.
fn missing_prerequisite() -> Option<String> {
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Some("`node` (Node.js 20 or later) is not on PATH".to_owned());
    }
    let browser = chromium();
    if !browser.is_file() {
        return Some(format!(
            "{} is missing (apt-get install chromium chromium-driver, or set NETSVR_CHROMIUM)",
            browser.display()
        ));
    }
    let module = script_dir().join("node_modules/playwright-core/package.json");
    if !module.is_file() {
        return Some(
            "playwright-core is not installed (npm ci --prefix netsvr-bin/tests/browser)"
                .to_owned(),
        );
    }
    None
}

/// True when the browser test can run; false after printing why not (a panic under `CI`).
fn browser_available() -> bool {
    let Some(reason) = missing_prerequisite() else {
        return true;
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "browser test: {reason} (required when CI is set; .ci/run installs it)"
    );
    println!("skipping the browser test: {reason}");
    false
}

/// Runs `demo.mjs` against `server` in `scenario`; returns its `RESULT` object after
/// checking that it succeeded.
async fn run_script(server: &Server, scenario: &str, screenshot: Option<&Path>) -> Value {
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(script_dir().join("demo.mjs"))
        .current_dir(script_dir())
        .env("NETSVR_DEMO_ADMIN", format!("http://{}", server.admin))
        .env("NETSVR_DEMO_TOKEN", TOKEN)
        .env("NETSVR_DEMO_SCENARIO", scenario)
        .env("NETSVR_DEMO_CHROMIUM", chromium())
        .env(
            "NETSVR_DEMO_EXPECT_DEFLATE",
            if EXPECT_PERMESSAGE_DEFLATE { "1" } else { "0" },
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(path) = screenshot {
        cmd.env("NETSVR_DEMO_SCREENSHOT", path);
    }
    let child = cmd.spawn().expect("cannot start node");
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .expect("the browser script timed out")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}{stderr}");
    assert!(
        out.status.success(),
        "the browser script failed ({}):\n{stdout}\n{stderr}\nnetsvr log:\n{}",
        out.status,
        server.log_text()
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .expect("no RESULT line");
    serde_json::from_str(line).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_receive_a_broadcast_from_the_command_api() {
    if !browser_available() {
        return;
    }
    let server = Server::start(&config("")).await;
    let shot = screenshot_path("demo.png");

    let result = run_script(&server, "broadcast", Some(&shot)).await;
    assert_eq!(result["broadcast"], true, "{result}");
    assert!(result["large_bytes"].as_u64().unwrap() > 1024, "{result}");
    // Exactly the typed message reached the gateway, and the page's counter showed it.
    assert_eq!(result["messages_in_delta"], 1, "{result}");
    assert_eq!(result["bytes_in_delta"], result["typed_bytes"], "{result}");
    assert_eq!(result["page_counter_updated"], true, "{result}");
    let extensions: Vec<&str> = result["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(extensions.len(), 2, "{result}");
    println!("negotiated extensions: {extensions:?}");
    if EXPECT_PERMESSAGE_DEFLATE {
        assert!(
            extensions.iter().all(|e| e.contains("permessage-deflate")),
            "{result}"
        );
    }
    let png = std::fs::read(&shot).expect("no screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000,
        "not a PNG"
    );
    println!("screenshot: {}", shot.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_publish_reaches_only_the_tab_that_subscribed_on_the_page() {
    if !browser_available() {
        return;
    }
    let server = Server::start(&config_with(
        "",
        "[client_commands]\nenabled = true\nsubscribe_prefixes = [\"demo-\"]\n",
    ))
    .await;
    let (_, _, body) = get(server.admin, &format!("/demo?token={TOKEN}")).await;
    assert_eq!(page_config(&body)["client_commands"], true);

    let shot = screenshot_path("demo-topics.png");
    let result = run_script(&server, "topics", Some(&shot)).await;
    let refused = result["refused_reply"].as_str().unwrap();
    assert!(
        refused.contains("\"ok\":false") && refused.contains("403"),
        "{result}"
    );
    let reply = result["subscribe_reply"].as_str().unwrap();
    assert!(reply.contains("\"ok\":true"), "{result}");
    assert_eq!(result["topic_only_subscriber"], true, "{result}");
    assert_eq!(result["unsubscribed"], true, "{result}");
    let png = std::fs::read(&shot).expect("no screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    println!("screenshot: {}", shot.display());
}
