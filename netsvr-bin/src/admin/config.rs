//! The `[admin]` section of the configuration: where the admin HTTP port listens, the
//! bearer token that guards it, and whether it serves the browser demo page.
//!
//! ```toml
//! [admin]
//! listen = "127.0.0.1:6065"   # default; a non-loopback address requires a token
//! token = "s3cret"            # empty (default) = no token
//! demo = true                 # default; false answers 404 on /demo
//! ```

use std::fmt;
use std::net::SocketAddr;

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 1024;

/// Settings of the admin HTTP port.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin HTTP port (`/metrics`, `/healthz`, `/readyz`, the JSON API and
    /// the status page). Default `127.0.0.1:6065`.
    pub listen: SocketAddr,
    /// Bearer token required on every endpoint except `/healthz` and `/readyz`
    /// (`Authorization: Bearer <token>`). Empty means no token; a token is required when
    /// `listen` is not a loopback address. Visible ASCII only, at most 1024 bytes.
    pub token: String,
    /// Serve the browser demo page at `/demo` (a WebSocket client of this gateway with live
    /// counters). Default on: it is guarded by the token like every other page and shows
    /// nothing the status page and API do not; `false` answers 404.
    pub demo: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 6065)),
            token: String::new(),
            demo: true,
        }
    }
}

/// An `[admin]` value is refused; says which key and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfigError {
    /// The full key, e.g. `admin.token`.
    pub key: &'static str,
    /// Why it was refused.
    pub reason: String,
}

impl fmt::Display for AdminConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid config `{}`: {}", self.key, self.reason)
    }
}

impl std::error::Error for AdminConfigError {}

impl AdminConfig {
    /// Checks the section: the token's characters and length, and that a non-loopback
    /// `listen` address has a token.
    pub fn validate(&self) -> Result<(), AdminConfigError> {
        let token_error = |reason: String| AdminConfigError {
            key: "admin.token",
            reason,
        };
        if self.token.len() > MAX_TOKEN_LEN {
            return Err(token_error(format!("longer than {MAX_TOKEN_LEN} bytes")));
        }
        if !self.token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(token_error(
                "must be visible ASCII (no spaces or control characters)".to_owned(),
            ));
        }
        if self.token.is_empty() && !self.listen.ip().to_canonical().is_loopback() {
            return Err(token_error(format!(
                "required because admin.listen ({}) is not a loopback address",
                self.listen
            )));
        }
        Ok(())
    }

    /// The token, `None` when empty.
    pub fn token(&self) -> Option<String> {
        Some(self.token.clone()).filter(|t| !t.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(listen: &str, token: &str) -> AdminConfig {
        AdminConfig {
            listen: listen.parse().unwrap(),
            token: token.to_owned(),
            demo: true,
        }
    }

    #[test]
    fn default_is_loopback_without_token_and_valid() {
        let c = AdminConfig::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:6065");
        assert_eq!(c.token(), None);
        assert!(c.demo);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn loopback_needs_no_token() {
        assert_eq!(with("[::1]:6065", "").validate(), Ok(()));
        assert_eq!(with("[::ffff:127.0.0.1]:6065", "").validate(), Ok(()));
    }

    #[test]
    fn non_loopback_requires_a_token() {
        for addr in ["0.0.0.0:6065", "[::]:6065", "10.1.2.3:6065"] {
            let err = with(addr, "").validate().unwrap_err();
            assert_eq!(err.key, "admin.token", "{addr}");
            assert!(err.to_string().contains("admin.token"), "{err}");
            assert_eq!(with(addr, "abc").validate(), Ok(()), "{addr}");
        }
    }

    #[test]
    fn token_characters_and_length_are_checked() {
        assert!(with("127.0.0.1:1", "has space").validate().is_err());
        assert!(with("127.0.0.1:1", "tab\t").validate().is_err());
        assert!(with("127.0.0.1:1", "é").validate().is_err());
        let long = "x".repeat(MAX_TOKEN_LEN + 1);
        assert!(with("127.0.0.1:1", &long).validate().is_err());
        let max = "x".repeat(MAX_TOKEN_LEN);
        assert_eq!(with("127.0.0.1:1", &max).validate(), Ok(()));
        assert_eq!(with("127.0.0.1:1", &max).token(), Some(max));
    }

    #[test]
    fn toml_shape_is_strict() {
        let c: AdminConfig = toml::from_str("token = \"t\"").unwrap();
        assert_eq!(c.listen, AdminConfig::default().listen);
        assert_eq!(c.token, "t");
        let c: AdminConfig = toml::from_str("listen = \"127.0.0.1:7000\"").unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert!(toml::from_str::<AdminConfig>("tokn = \"t\"").is_err());
        assert!(!toml::from_str::<AdminConfig>("demo = false").unwrap().demo);
        assert!(toml::from_str::<AdminConfig>("demo = \"no\"").is_err());
        let back = toml::to_string(&c).unwrap();
        assert_eq!(toml::from_str::<AdminConfig>(&back).unwrap(), c);
    }
}
