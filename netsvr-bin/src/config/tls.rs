//! `[tls]`: wss:// on the client port — the PEM certificate chain and key files, read at start
//! and again on every SIGHUP (a renewed certificate needs no restart).

use std::path::PathBuf;
use std::sync::Arc;

use netsvr_core::tls::{self, TlsError, rustls::ServerConfig};
use serde::{Deserialize, Serialize};

/// `[tls]`: both files set serve TLS; both empty (or no section) serve plain ws://.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSection {
    /// The certificate chain, PEM, leaf first. Empty: TLS off.
    pub cert: PathBuf,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1). Empty: TLS off.
    pub key: PathBuf,
}

impl TlsSection {
    /// Whether TLS is on (both files named).
    pub fn enabled(&self) -> bool {
        !self.cert.as_os_str().is_empty() && !self.key.as_os_str().is_empty()
    }

    /// Both files or neither (the files themselves are read by [`TlsSection::load`]).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match (
            self.cert.as_os_str().is_empty(),
            self.key.as_os_str().is_empty(),
        ) {
            (true, false) => Err(("tls.cert", "empty while tls.key is set".into())),
            (false, true) => Err(("tls.key", "empty while tls.cert is set".into())),
            _ => Ok(()),
        }
    }

    /// Reads both files and builds the rustls configuration; an error names the key whose
    /// file is at fault and why.
    pub fn load(&self) -> Result<Arc<ServerConfig>, (&'static str, String)> {
        tls::server_config_from_files(&self.cert, &self.key).map_err(|e| {
            let key = match &e {
                TlsError::Read { path, .. } if *path == self.cert => "tls.cert",
                TlsError::Certificate(_) => "tls.cert",
                _ => "tls.key",
            };
            (key, e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &std::path::Path) -> TlsSection {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let section = TlsSection {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&section.cert, made.cert.pem()).unwrap();
        std::fs::write(&section.key, made.signing_key.serialize_pem()).unwrap();
        section
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("netsvr-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn both_or_neither() {
        assert!(!TlsSection::default().enabled());
        assert_eq!(TlsSection::default().validate(), Ok(()));
        let half = TlsSection {
            cert: "c.pem".into(),
            key: PathBuf::new(),
        };
        assert_eq!(half.validate().unwrap_err().0, "tls.key");
    }

    #[test]
    fn load_errors_name_the_file_at_fault() {
        let dir = temp_dir("errors");
        let good = files(&dir);
        assert!(good.load().is_ok());
        let missing_cert = TlsSection {
            cert: dir.join("nope.pem"),
            ..good.clone()
        };
        let (key, reason) = missing_cert.load().unwrap_err();
        assert_eq!(key, "tls.cert");
        assert!(reason.contains("nope.pem"), "{reason}");
        // The key file holds a certificate, not a key.
        let swapped = TlsSection {
            cert: good.cert.clone(),
            key: good.cert.clone(),
        };
        assert_eq!(swapped.load().unwrap_err().0, "tls.key");
        let not_pem = TlsSection {
            cert: good.key.clone(),
            key: good.key.clone(),
        };
        assert_eq!(not_pem.load().unwrap_err().0, "tls.cert");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
