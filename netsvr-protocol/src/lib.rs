//! netsvr's business wire protocol (placeholder until the business-ports work lands).
//!
//! This crate will hold the prost messages, the command ids and the sans-IO length-prefixed
//! frame codec of netsvr's worker and task ports (see `PROTOCOL.md`). For now it only
//! exports the constants the gateway core already shares with it.

/// netsvr's default heartbeat literal, sent as a text frame by clients and as a frame body by
/// business processes.
pub const DEFAULT_HEARTBEAT: &[u8] = b"~6YOt5rW35piO~";
