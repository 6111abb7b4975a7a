//! permessage-deflate (RFC 7692): negotiation, per-message compression and bounded inflation.

mod config;

pub use config::DeflateConfig;
