//! The demo page at `/demo`: one self-contained HTML document (inline CSS and JS, no
//! external assets) that is a WebSocket client of this gateway — connect and disconnect,
//! send text, a message log, the client commands (subscribe, unsubscribe, publish, ping)
//! when they are enabled, the negotiated extensions, and live counters read from
//! `/api/v1/status` every 2 seconds.
//!
//! The page is told the client port, path and scheme (`wss://` with TLS) of the running
//! gateway; the host is the page's own `location.hostname`, so the page works behind a
//! port forward of both ports. `?ws=<url>` names another client URL instead (a `ws://` or
//! `wss://` URL; its origin is added to the page's Content-Security-Policy). The token, when
//! one is set, is given as `?token=` as for the status page. Text from the network is
//! inserted with `textContent` only; the CSP allows fetches to the admin origin and
//! WebSocket connections to the client port only. `[admin] demo = false` answers 404.

use hyper::StatusCode;
use hyper::header::HeaderValue;
use serde_json::json;

use super::AdminState;
use super::http::{Resp, error, query_pairs};

/// The document; `__DEMO_CONFIG__` is replaced by the page's settings as JSON.
const PAGE: &str = include_str!("demo.html");
/// The placeholder in [`PAGE`].
const PLACEHOLDER: &str = "__DEMO_CONFIG__";
/// Longest `?ws=` URL accepted, in bytes.
const MAX_WS_URL: usize = 2048;

/// What the demo page needs to know besides the gateway itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemoSettings {
    /// Whether clients may send commands (`[client_commands] enabled`): the page then shows
    /// the subscribe / unsubscribe / publish form.
    pub client_commands: bool,
}

/// The demo page response, or 404 when the page is off, or 400 for a bad `?ws=`.
pub(crate) fn page(state: &AdminState, query: Option<&str>) -> Resp {
    let Some(settings) = state.demo else {
        return error(
            StatusCode::NOT_FOUND,
            "the demo page is off (`[admin] demo = false`)",
        );
    };
    let Some(pairs) = query_pairs(query) else {
        return error(StatusCode::BAD_REQUEST, "malformed query string");
    };
    let ws = match pairs.iter().rev().find(|(k, _)| k == "ws") {
        Some((_, url)) => match ws_origin(url) {
            Ok(origin) => Some((url.as_str(), origin)),
            Err(reason) => return error(StatusCode::BAD_REQUEST, format!("`ws`: {reason}")),
        },
        None => None,
    };
    let gw = &state.gateway;
    let tls = gw.is_tls();
    let port = gw.local_addr().port();
    let config = json!({
        "tls": tls,
        "port": port,
        "path": gw.config().path,
        "ws": ws.as_ref().map(|(url, _)| url),
        "client_commands": settings.client_commands,
    });
    let scheme = if tls { "wss" } else { "ws" };
    let mut connect = format!("'self' {scheme}://*:{port}");
    if let Some((_, origin)) = &ws {
        connect.push(' ');
        connect.push_str(origin);
    }
    let csp = format!(
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
         connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    let Ok(csp) = HeaderValue::from_str(&csp) else {
        return error(StatusCode::BAD_REQUEST, "`ws`: not usable in a header");
    };
    let body = PAGE.replacen(PLACEHOLDER, &script_safe_json(&config), 1);
    super::page::html(body, csp)
}

/// JSON that cannot end the `<script>` element it sits in: `<`, `>` and `&` are escaped
/// (`\u003c` …), which JSON reads back as the same characters.
fn script_safe_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The CSP source (`scheme://host[:port]`) of a `?ws=` URL, or why the URL is refused: it
/// must be `ws://` or `wss://`, at most [`MAX_WS_URL`] bytes of visible ASCII, with a host
/// of letters, digits, `.`, `-`, `:` and brackets (no user info).
fn ws_origin(url: &str) -> Result<String, String> {
    if url.len() > MAX_WS_URL {
        return Err(format!("longer than {MAX_WS_URL} bytes"));
    }
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be visible ASCII (percent-encode the rest)".to_owned());
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "must be a ws:// or wss:// URL".to_owned())?;
    if !matches!(scheme, "ws" | "wss") {
        return Err("must be a ws:// or wss:// URL".to_owned());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    if authority.is_empty() || !authority.chars().all(host_char) {
        return Err(
            "needs a host (letters, digits, `.`, `-`; IPv6 in brackets) and an optional port"
                .to_owned(),
        );
    }
    Ok(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_override_origins() {
        assert_eq!(ws_origin("ws://h:1/netsvr").unwrap(), "ws://h:1");
        assert_eq!(
            ws_origin("wss://a.b-c.example").unwrap(),
            "wss://a.b-c.example"
        );
        assert_eq!(
            ws_origin("ws://[::1]:6060/x?y=1").unwrap(),
            "ws://[::1]:6060"
        );
        assert_eq!(ws_origin("ws://h#frag").unwrap(), "ws://h");
        for bad in [
            "http://h/",
            "h:1/netsvr",
            "ws://",
            "ws:///path",
            "ws://user:pw@h/",
            "ws://h;script-src */",
            "ws://h *",
            "ws://h'/",
            "wss://hé/",
        ] {
            assert!(ws_origin(bad).is_err(), "{bad}");
        }
        let long = format!("ws://h/{}", "a".repeat(MAX_WS_URL));
        assert!(ws_origin(&long).unwrap_err().contains("longer"));
    }

    #[test]
    fn config_cannot_close_the_script_element() {
        let v = json!({ "ws": "ws://h/</script><script>alert(1)</script>&" });
        let text = script_safe_json(&v);
        assert!(
            !text.contains('<') && !text.contains('>') && !text.contains('&'),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn the_page_has_its_placeholder_and_stable_ids() {
        assert_eq!(PAGE.matches(PLACEHOLDER).count(), 1);
        for id in [
            "connect",
            "send-text",
            "send",
            "log",
            "state",
            "extensions",
            "topic",
            "subscribe",
            "unsubscribe",
            "publish",
            "publish-text",
            "commands",
            "count-connections",
            "count-messages-in",
            "count-messages-out",
        ] {
            assert!(PAGE.contains(&format!("id=\"{id}\"")), "#{id}");
        }
        // Network text goes through textContent only.
        assert!(!PAGE.contains("innerHTML") && !PAGE.contains("insertAdjacentHTML"));
    }
}
