//! WebSocket close codes the gateway sends (RFC 6455 §7.4 and PROTOCOL.md §9).

/// Normal closure.
pub const NORMAL: u16 = 1000;
/// Going away: idle past the heartbeat interval, or the gateway is draining.
pub const GOING_AWAY: u16 = 1001;
/// Protocol error in a client frame.
pub const PROTOCOL_ERROR: u16 = 1002;
/// Text or close reason that is not valid UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// Refused by the authenticator, or forced offline by the business.
pub const POLICY_VIOLATION: u16 = 1008;
/// A message over the size limit.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// The authenticator failed (callback error).
pub const INTERNAL_ERROR: u16 = 1011;
/// The gateway is shutting down and takes no new connections.
pub const SERVICE_RESTART: u16 = 1012;
/// Full (connection cap, slow consumer) or rate-limited.
pub const TRY_AGAIN_LATER: u16 = 1013;
