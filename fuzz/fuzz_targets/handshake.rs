//! Fuzzes the upgrade request path: arbitrary bytes parsed as an HTTP/1 request head by
//! `httparse` (hyper's parser), then the gateway's checks (path, method, version, key, head
//! size, Origin). Nothing may panic, and a request let through must really be a GET
//! upgrade to the configured path with version 13, a well-formed key and an allowed Origin.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use netsvr_core::GatewayConfig;
use netsvr_core::fuzzing::check_upgrade_head;

const ORIGIN: &str = "https://app.example";

fn config() -> &'static GatewayConfig {
    static CONFIG: OnceLock<GatewayConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let mut cfg = GatewayConfig::default();
        cfg.path = "/ws".into();
        cfg.allowed_origins = vec![ORIGIN.into()];
        cfg.max_header_size = 1024;
        cfg
    })
}

/// The head's lines (httparse takes `\n` as well as `\r\n` line ends).
fn lines(head: &str) -> impl Iterator<Item = &str> {
    head.split('\n').map(|line| line.trim_end_matches('\r'))
}

/// The values of header `name` (case-insensitive) in the raw head.
fn header<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    lines(head)
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim_matches([' ', '\t']))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some(draining) = data.first().map(|b| b & 1 == 1) else {
        return;
    };
    let head = &data[1..];
    let Some(verdict) = check_upgrade_head(config(), head, draining) else {
        return;
    };
    if verdict.is_err() {
        return;
    }
    assert!(!draining, "a draining gateway let a request through");
    // Header values may hold any octet (obs-text): only the checked ones must be ASCII.
    let text = String::from_utf8_lossy(head);
    // httparse skips empty lines before the request line (RFC 9112 §2.2).
    let text = text.trim_start_matches(['\r', '\n']);
    let line = lines(text).next().unwrap_or("");
    let mut parts = line.split(' ');
    assert_eq!(parts.next(), Some("GET"), "{line}");
    let target = parts.next().unwrap_or("");
    // Origin-form `/ws?q`, or absolute-form `scheme://authority/ws?q` (RFC 9112 §3.2.2).
    let origin_form = match target.split_once("://") {
        Some((_, rest)) if !target.starts_with('/') => rest.find('/').map_or("", |at| &rest[at..]),
        _ => target,
    };
    assert_eq!(origin_form.split(['?', '#']).next(), Some("/ws"), "{line}");
    assert_eq!(header(text, "sec-websocket-version").first(), Some(&"13"));
    let key = header(text, "sec-websocket-key");
    assert!(
        key.first()
            .is_some_and(|k| k.len() == 24 && k.ends_with("==")),
        "{key:?}"
    );
    assert_eq!(header(text, "origin").first(), Some(&ORIGIN));
    assert!(head.len() <= 64 * 1024);
});
