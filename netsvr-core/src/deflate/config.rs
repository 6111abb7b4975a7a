//! permessage-deflate (RFC 7692) settings: off switch, level, minimum size, context takeover.

use crate::config::ConfigError;

/// How the gateway negotiates and uses permessage-deflate (RFC 7692).
///
/// The gateway always answers with `server_no_context_takeover`: every message it sends is
/// compressed on its own, so a fan-out compresses a payload once and every recipient that
/// negotiated the extension shares the same compressed frame.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Negotiate the extension when a client offers it. Default `true`.
    pub enabled: bool,
    /// Compression level, 1 (fastest) to 9 (smallest). Default 3.
    pub level: u32,
    /// Outgoing messages shorter than this many bytes are sent uncompressed. Default 256.
    pub min_size: usize,
    /// A message that compression would not make smaller is sent uncompressed (RSV1 unset,
    /// which RFC 7692 allows). Turn off only for peers that mishandle uncompressed messages
    /// on a compressed connection (some test clients do). Default `true`.
    pub skip_incompressible: bool,
    /// Let clients keep their compression context between messages (better ratio for
    /// them, but the gateway then keeps an inflate window of up to 32 KiB per connection).
    /// When `false` the gateway answers `client_no_context_takeover`. Default `false`.
    pub client_context_takeover: bool,
    /// With `client_context_takeover`: the largest LZ77 window (8 to 15 bits) asked of
    /// clients that offer `client_max_window_bits`; smaller windows cost the gateway less
    /// memory per connection. Default 15.
    pub client_max_window_bits: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            level: 3,
            min_size: 256,
            skip_incompressible: true,
            client_context_takeover: false,
            client_max_window_bits: 15,
        }
    }
}

impl DeflateConfig {
    /// Checks every field; the first bad one is reported (keys are prefixed `deflate.`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=9).contains(&self.level) {
            return Err(ConfigError::new(
                "deflate.level",
                format!("{} is not between 1 and 9", self.level),
            ));
        }
        if !(8..=15).contains(&self.client_max_window_bits) {
            return Err(ConfigError::new(
                "deflate.client_max_window_bits",
                format!("{} is not between 8 and 15", self.client_max_window_bits),
            ));
        }
        Ok(())
    }
}
