//! Client commands: opt-in JSON commands a client sends over its WebSocket to subscribe to
//! topics, unsubscribe, publish to a topic, or ping, each checked by a [`CommandAuthorizer`]
//! before it takes effect and answered with a JSON reply (gpush / Centrifugo style).
//!
//! Off unless [`GatewayBuilder::client_commands`](crate::GatewayBuilder::client_commands) is
//! called; then a client **text** message that is a JSON object whose `"cmd"` is
//! `subscribe`, `unsubscribe`, `publish` or `ping` is executed by the gateway and not
//! delivered to the sink. Every other message (other JSON, unknown `cmd` values, binary,
//! non-JSON) is delivered exactly as without the feature.
//!
//! ```json
//! {"cmd":"subscribe","id":1,"topics":["news","sport"]}   -> {"id":1,"ok":true,"topics":["news","sport"]}
//! {"cmd":"unsubscribe","id":2,"topics":["news"]}         -> {"id":2,"ok":true,"topics":["news"]}
//! {"cmd":"publish","id":3,"topic":"news","data":"hello"} -> {"id":3,"ok":true}
//! {"cmd":"ping","id":4}                                  -> {"id":4,"ok":true,"pong":true}
//! {"cmd":"subscribe","id":5,"topics":["x"]}              -> {"id":5,"ok":false,"error":{"code":403,"message":"topic `x` not allowed"}}
//! ```
//!
//! The protocol, the error codes and the security notes are in `docs/client-commands.md`.

mod authorize;
mod exec;
mod parse;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use authorize::{
    AllowAllCommands, ClientGrants, CommandAuthorizer, CommandContext, CommandRefusal,
    ConnectionGrants, TopicPrefixes,
};
pub(crate) use exec::CommandRuntime;
pub use parse::{ClientCommand, CommandError, CommandKind, CommandRequest, RequestId, parse};
#[cfg(feature = "fuzzing")]
pub(crate) use parse::{error_reply, ok_reply};

/// Most topics one `subscribe` or `unsubscribe` may name.
pub const MAX_TOPICS: usize = 64;

/// Longest topic a command may name, in bytes.
pub const MAX_TOPIC_LEN: usize = 128;

/// The default of [`ClientCommands::max_publish_size`]: 64 KiB.
pub const DEFAULT_MAX_PUBLISH_SIZE: usize = 64 * 1024;

/// Error code: the command is malformed (bad shape for a known `cmd`, missing or empty
/// topic, too many topics, a topic too long).
pub const BAD_REQUEST: u16 = 400;
/// Error code: the authoriser refused the command.
pub const FORBIDDEN: u16 = 403;
/// Error code: the `data` of a `publish` is larger than the limit.
pub const TOO_LARGE: u16 = 413;
/// Error code: rate limited (returned by authorisers that limit commands).
pub const RATE_LIMITED: u16 = 429;
/// Error code: not available now (a `publish` while the gateway shuts down, a command of a
/// connection that is closing).
pub const UNAVAILABLE: u16 = 503;

/// Client commands as a gateway runs them: who authorises them and how large a publish may
/// be. Give it to [`GatewayBuilder::client_commands_with`](crate::GatewayBuilder::client_commands_with).
#[derive(Clone)]
pub struct ClientCommands {
    pub(crate) authorizer: Arc<dyn CommandAuthorizer>,
    pub(crate) max_publish_size: usize,
}

impl std::fmt::Debug for ClientCommands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCommands")
            .field("max_publish_size", &self.max_publish_size)
            .finish_non_exhaustive()
    }
}

impl ClientCommands {
    /// Commands checked by `authorizer`, with the default limits.
    pub fn new(authorizer: impl CommandAuthorizer) -> Self {
        Self::from_arc(Arc::new(authorizer))
    }

    /// Same, for an authoriser shared elsewhere.
    pub fn from_arc(authorizer: Arc<dyn CommandAuthorizer>) -> Self {
        Self {
            authorizer,
            max_publish_size: DEFAULT_MAX_PUBLISH_SIZE,
        }
    }

    /// Largest `data` of a `publish`, in bytes (at least 1; the whole command is also
    /// bounded by `max_message_size`). Larger ones are answered with 413. Default 64 KiB.
    pub fn max_publish_size(mut self, bytes: usize) -> Self {
        self.max_publish_size = bytes;
        self
    }

    /// Checks the limits (the key is prefixed `client_commands.`).
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        if self.max_publish_size == 0 {
            return Err(crate::config::ConfigError::new(
                "client_commands.max_publish_size",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
