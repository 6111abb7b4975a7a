//! `[gateway.deflate]`: permessage-deflate (RFC 7692) negotiation and compression, mirroring
//! netsvr-core's [`DeflateConfig`] field by field, with its defaults.

use netsvr_core::DeflateConfig;
use serde::{Deserialize, Serialize};

/// `[gateway.deflate]`: how the gateway negotiates and uses permessage-deflate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeflateSection {
    /// Negotiate the extension when a client offers it. Default true.
    pub enabled: bool,
    /// Compression level, 1 (fastest) to 9 (smallest). Default 3.
    pub level: u32,
    /// Outgoing messages shorter than this many bytes are sent uncompressed. Default 256.
    pub min_size: usize,
    /// Send a message plain when compression would not shrink it. Default true.
    pub skip_incompressible: bool,
    /// Let clients keep their compression context between messages. Default false.
    pub client_context_takeover: bool,
    /// With `client_context_takeover`: the largest window (8 to 15 bits) asked of clients.
    /// Default 15.
    pub client_max_window_bits: u8,
}

impl Default for DeflateSection {
    fn default() -> Self {
        let c = DeflateConfig::default();
        Self {
            enabled: c.enabled,
            level: c.level,
            min_size: c.min_size,
            skip_incompressible: c.skip_incompressible,
            client_context_takeover: c.client_context_takeover,
            client_max_window_bits: c.client_max_window_bits,
        }
    }
}

impl DeflateSection {
    /// The core settings these keys describe (checked by `GatewayConfig::validate`).
    pub fn to_core(&self) -> DeflateConfig {
        let mut c = DeflateConfig::default();
        c.enabled = self.enabled;
        c.level = self.level;
        c.min_size = self.min_size;
        c.skip_incompressible = self.skip_incompressible;
        c.client_context_takeover = self.client_context_takeover;
        c.client_max_window_bits = self.client_max_window_bits;
        c
    }
}
