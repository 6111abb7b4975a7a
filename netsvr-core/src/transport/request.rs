//! The checks an upgrade request passes before anything is spent on it: path, method,
//! WebSocket version and key, head size, shutdown and Origin. Pure: a parsed request in,
//! a verdict out (the fuzz target `handshake` drives it with parsed arbitrary bytes).

use hyper::header::{HeaderValue, ORIGIN, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION};
use hyper::{Method, Request, StatusCode};

use crate::config::GatewayConfig;
use crate::metrics::Refusal;

/// An answer instead of an upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) text: &'static str,
    /// How the refusal is counted; `None` for answers that are not refusals (a probe).
    pub(crate) refusal: Option<Refusal>,
}

impl Answer {
    const fn refuse(status: StatusCode, text: &'static str, refusal: Refusal) -> Self {
        Self {
            status,
            text,
            refusal: Some(refusal),
        }
    }
}

/// Whether `req` may go on to admission (`Ok`) or gets `Answer` instead.
pub(crate) fn check<B>(
    cfg: &GatewayConfig,
    req: &Request<B>,
    draining: bool,
) -> Result<(), Answer> {
    if req.uri().path() != cfg.path {
        return Err(Answer::refuse(
            StatusCode::NOT_FOUND,
            "not found\n",
            Refusal::Path,
        ));
    }
    if !fastwebsockets::upgrade::is_upgrade_request(req) {
        if req.method() == Method::GET || req.method() == Method::HEAD {
            // A liveness probe on the WebSocket path.
            return Err(Answer {
                status: StatusCode::OK,
                text: "ok\n",
                refusal: None,
            });
        }
        return Err(Answer {
            status: StatusCode::METHOD_NOT_ALLOWED,
            text: "use GET\n",
            refusal: None,
        });
    }
    if req.method() != Method::GET {
        return Err(Answer::refuse(
            StatusCode::BAD_REQUEST,
            "an upgrade must be a GET\n",
            Refusal::BadRequest,
        ));
    }
    let version = req.headers().get(SEC_WEBSOCKET_VERSION);
    if version.map(HeaderValue::as_bytes) != Some(b"13") {
        return Err(Answer::refuse(
            StatusCode::UPGRADE_REQUIRED,
            "websocket version 13 only\n",
            Refusal::BadRequest,
        ));
    }
    if !valid_key(req.headers().get(SEC_WEBSOCKET_KEY)) {
        return Err(Answer::refuse(
            StatusCode::BAD_REQUEST,
            "bad Sec-WebSocket-Key\n",
            Refusal::BadRequest,
        ));
    }
    if head_size(req) > cfg.max_header_size {
        return Err(Answer::refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request head too large\n",
            Refusal::BadRequest,
        ));
    }
    if draining {
        return Err(Answer::refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down\n",
            Refusal::Shutdown,
        ));
    }
    if !origin_allowed(cfg, req.headers().get(ORIGIN)) {
        return Err(Answer::refuse(
            StatusCode::FORBIDDEN,
            "origin not allowed\n",
            Refusal::Origin,
        ));
    }
    Ok(())
}

/// A `Sec-WebSocket-Key` must be base64 of 16 bytes: 24 characters ending in `==`.
pub(crate) fn valid_key(key: Option<&HeaderValue>) -> bool {
    key.map(HeaderValue::as_bytes).is_some_and(|k| {
        k.len() == 24
            && k.ends_with(b"==")
            && k.get(..22).is_some_and(|head| {
                head.iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
            })
    })
}

/// The Origin allow-list, compared exactly (byte for byte); an empty list allows any.
pub(crate) fn origin_allowed(cfg: &GatewayConfig, origin: Option<&HeaderValue>) -> bool {
    cfg.allowed_origins.is_empty()
        || origin
            .map(HeaderValue::as_bytes)
            .is_some_and(|o| cfg.allowed_origins.iter().any(|a| a.as_bytes() == o))
}

/// The request head's size as received, near enough: request line and header lines.
pub(crate) fn head_size<B>(req: &Request<B>) -> usize {
    let line = req.uri().to_string().len() + 16;
    line + req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GatewayConfig {
        GatewayConfig {
            path: "/ws".into(),
            allowed_origins: vec!["https://app.example".into()],
            ..GatewayConfig::default()
        }
    }

    fn upgrade(path: &str, extra: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::get(path)
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
        for (name, value) in extra {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn an_exact_origin_passes_and_a_lookalike_does_not() {
        let cfg = config();
        let ok = upgrade("/ws", &[("origin", "https://app.example")]);
        assert_eq!(check(&cfg, &ok, false), Ok(()));
        for origin in [
            "https://app.example.evil",
            "https://evil.app.example",
            "http://app.example",
            "https://APP.example",
        ] {
            let req = upgrade("/ws", &[("origin", origin)]);
            let answer = check(&cfg, &req, false).unwrap_err();
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{origin}");
        }
        let none = upgrade("/ws", &[]);
        assert_eq!(
            check(&cfg, &none, false).unwrap_err().refusal,
            Some(Refusal::Origin)
        );
    }

    #[test]
    fn the_order_of_checks_decides_the_answer() {
        let cfg = config();
        let origin = [("origin", "https://app.example")];
        let wrong_path = upgrade("/other", &origin);
        assert_eq!(
            check(&cfg, &wrong_path, false).unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        let probe = Request::get("/ws").body(()).unwrap();
        assert_eq!(check(&cfg, &probe, false).unwrap_err().refusal, None);
        let draining = upgrade("/ws", &origin);
        let answer = check(&cfg, &draining, true).unwrap_err();
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        let mut small = config();
        small.max_header_size = 64;
        let big = upgrade("/ws", &origin);
        let answer = check(&small, &big, false).unwrap_err();
        assert_eq!(answer.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }

    /// Found by the `handshake` fuzz target (fuzz/seeds/handshake/regression-*): header
    /// values may carry any octet (obs-text); only the checked headers matter.
    #[test]
    fn obs_text_in_other_headers_does_not_matter() {
        let cfg = config();
        let host = HeaderValue::from_bytes(b"\x88\xeb").unwrap();
        let mut req = upgrade("/ws", &[("origin", "https://app.example")]);
        req.headers_mut().insert("host", host.clone());
        assert_eq!(check(&cfg, &req, false), Ok(()));
        req.headers_mut().insert("origin", host);
        assert_eq!(
            check(&cfg, &req, false).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
    }

    /// Found by the `handshake` fuzz target: an absolute-form target (which HTTP/1.1 servers
    /// must accept) is judged by its path like any other.
    #[test]
    fn an_absolute_form_target_is_judged_by_its_path() {
        let cfg = config();
        let origin = [("origin", "https://app.example")];
        let req = upgrade("http://gw.example/ws?token=1", &origin);
        assert_eq!(check(&cfg, &req, false), Ok(()));
        let req = upgrade("http://gw.example/other", &origin);
        assert_eq!(
            check(&cfg, &req, false).unwrap_err().status,
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn keys_must_be_24_base64_characters_of_16_bytes() {
        let key = |k: &str| valid_key(Some(&HeaderValue::from_str(k).unwrap()));
        assert!(key("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!key("dGhlIHNhbXBsZSBub25jZQ="));
        assert!(!key("dGhlIHNhbXBsZSBub25jZQ=a"));
        assert!(!key("dGhlIHNhbXBsZSBub25j*Q=="));
        assert!(!valid_key(None));
    }
}
