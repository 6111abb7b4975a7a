//! permessage-deflate (RFC 7692): negotiation, per-message compression and bounded inflation.
//!
//! The gateway always answers `server_no_context_takeover`: each outgoing message is
//! compressed on its own, so one compressed frame serves every recipient that negotiated
//! the extension (see [`DeflateConfig`]). Inbound messages are inflated with the size limit
//! applied to the inflated bytes while inflating.

mod codec;
mod config;
mod negotiate;

pub use codec::{Deflater, InflateError, Inflater};
pub use config::DeflateConfig;
pub use negotiate::{Negotiated, negotiate};
