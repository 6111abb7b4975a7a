//! TLS (wss://) on the client port: building a rustls server configuration from PEM.
//!
//! The gateway serves TLS when its builder is given a configuration
//! ([`crate::GatewayBuilder::tls`]); the certificate can then be swapped while it runs
//! ([`crate::Gateway::reload_tls`]) — connections already open keep the old one, the next
//! handshake uses the new one.
//!
//! ```no_run
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use netsvr_core::{Gateway, tls};
//!
//! let config = tls::server_config_from_files("cert.pem".as_ref(), "key.pem".as_ref())?;
//! let (gateway, serve) = Gateway::builder().tls(config).build()?;
//! // ... later, after the files were renewed:
//! gateway.reload_tls(tls::server_config_from_files("cert.pem".as_ref(), "key.pem".as_ref())?)?;
//! # drop(serve); Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Re-exported so callers build configurations with the same rustls version.
pub use rustls;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS configuration could not be built or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The certificate chain is not PEM, or holds no certificate.
    #[error("certificate chain: {0}")]
    Certificate(String),
    /// The private key is not PEM (PKCS#8, PKCS#1 or SEC1), or there is none.
    #[error("private key: {0}")]
    Key(String),
    /// rustls refused the pair (for example, the key does not match the certificate).
    #[error("certificate and key rejected: {0}")]
    Rejected(#[from] rustls::Error),
    /// The gateway was built without TLS, so there is nothing to reload.
    #[error("the gateway was built without TLS; enabling it needs a restart")]
    NotEnabled,
}

/// Builds a server configuration from a PEM certificate chain (leaf first) and a PEM
/// private key, with rustls' safe default protocol versions and ciphers (ring), no client
/// authentication, and ALPN `http/1.1` (a browser offering `h2` falls back to it).
pub fn server_config_from_pem(
    cert_chain: &[u8],
    key: &[u8],
) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(cert_chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Certificate("no CERTIFICATE block found".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| TlsError::Key(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reads `cert` and `key` (PEM files) and builds a configuration as
/// [`server_config_from_pem`] does.
pub fn server_config_from_files(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    server_config_from_pem(&read(cert)?, &read(key)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (String, String) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    }

    #[test]
    fn a_generated_pair_builds_with_http1_alpn() {
        let (cert, key) = pair();
        let config = server_config_from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn bad_input_names_what_is_wrong() {
        let (cert, key) = pair();
        let (other_cert, _) = pair();
        let err = |c: &str, k: &str| {
            server_config_from_pem(c.as_bytes(), k.as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert!(
            err("", &key).contains("no CERTIFICATE"),
            "{}",
            err("", &key)
        );
        assert!(
            err(&cert, "").starts_with("private key"),
            "{}",
            err(&cert, "")
        );
        assert!(err(&cert, &cert).starts_with("private key"));
        // A key that is not the certificate's.
        assert!(err(&other_cert, &key).starts_with("certificate and key rejected"));
        let missing = server_config_from_files("/nonexistent/c.pem".as_ref(), "k.pem".as_ref());
        assert!(matches!(missing, Err(TlsError::Read { .. })));
    }
}
