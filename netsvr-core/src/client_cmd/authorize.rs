//! The [`CommandAuthorizer`] hook that every client command passes before it takes effect,
//! the per-connection [`ClientGrants`], and the ready authorisers.

use super::{ClientCommand, FORBIDDEN};
use crate::event::ConnSnapshot;

/// Topic prefixes one connection may use with client commands, granted by the
/// authenticator ([`Admission::grants`](crate::Admission::grants); with the HTTP
/// callbacks, the OnOpen answer's `subscribeTopics` / `publishTopics`). A topic is allowed
/// when it starts with one of the prefixes; the empty prefix allows every topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientGrants {
    /// Prefixes of the topics the connection may subscribe to (and unsubscribe from).
    pub subscribe: Vec<String>,
    /// Prefixes of the topics the connection may publish to.
    pub publish: Vec<String>,
}

impl ClientGrants {
    /// Grants nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the subscribe prefixes.
    pub fn subscribe<I: IntoIterator<Item = S>, S: Into<String>>(mut self, prefixes: I) -> Self {
        self.subscribe = prefixes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the publish prefixes.
    pub fn publish<I: IntoIterator<Item = S>, S: Into<String>>(mut self, prefixes: I) -> Self {
        self.publish = prefixes.into_iter().map(Into::into).collect();
        self
    }

    /// True when neither list grants anything.
    pub fn is_empty(&self) -> bool {
        self.subscribe.is_empty() && self.publish.is_empty()
    }

    /// Whether `topic` may be published to (`publish`) or subscribed to.
    fn allows(&self, publish: bool, topic: &str) -> bool {
        let prefixes = if publish {
            &self.publish
        } else {
            &self.subscribe
        };
        prefixes.iter().any(|p| topic.starts_with(p.as_str()))
    }
}

/// What an authoriser knows about the connection that sent a command.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CommandContext<'a> {
    /// The connection as it is now (earlier commands' subscriptions included).
    pub conn: &'a ConnSnapshot,
    /// What its authenticator granted, if anything.
    pub grants: Option<&'a ClientGrants>,
}

impl<'a> CommandContext<'a> {
    /// A context from its parts (for testing authorisers).
    pub fn new(conn: &'a ConnSnapshot, grants: Option<&'a ClientGrants>) -> Self {
        Self { conn, grants }
    }
}

/// Why an authoriser refused a command: the error code and message of the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandRefusal {
    /// The error code (403 unless said otherwise; 429 for a rate limit).
    pub code: u16,
    /// The message, for the client.
    pub message: String,
}

impl CommandRefusal {
    /// A refusal with any code (use the codes of [`crate::client_cmd`]).
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// 403 with `message`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(FORBIDDEN, message)
    }

    /// 403 ``topic `x` not allowed``.
    pub fn topic(topic: &str) -> Self {
        Self::forbidden(format!("topic `{topic}` not allowed"))
    }
}

/// Decides whether a client command may take effect. Runs on the connection's own task, in
/// message order, before the command does anything, so it must not block: what it needs
/// per connection comes with the [`CommandContext`] (the connection's snapshot and grants).
///
/// Closures `Fn(&CommandContext, &ClientCommand) -> Result<(), CommandRefusal>` are
/// authorisers too.
pub trait CommandAuthorizer: Send + Sync + 'static {
    /// `Ok` lets `command` run; `Err` answers with the refusal's code and message.
    fn authorize(
        &self,
        context: &CommandContext<'_>,
        command: &ClientCommand,
    ) -> Result<(), CommandRefusal>;
}

impl<F> CommandAuthorizer for F
where
    F: Fn(&CommandContext<'_>, &ClientCommand) -> Result<(), CommandRefusal>
        + Send
        + Sync
        + 'static,
{
    fn authorize(
        &self,
        context: &CommandContext<'_>,
        command: &ClientCommand,
    ) -> Result<(), CommandRefusal> {
        self(context, command)
    }
}

/// Allows every command on every topic. Only for trusted clients: with it any client can
/// publish to any topic, that is talk to every other client.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAllCommands;

impl CommandAuthorizer for AllowAllCommands {
    fn authorize(&self, _: &CommandContext<'_>, _: &ClientCommand) -> Result<(), CommandRefusal> {
        Ok(())
    }
}

/// Allows topics by prefix, separately for subscribing and for publishing, and optionally
/// also what each connection's [`ClientGrants`] allow. `unsubscribe` is checked against the
/// subscribe prefixes (a client cannot leave a topic the business put it in unless it could
/// have joined it); `ping` is always allowed. A command naming several topics is refused
/// as a whole when one of them is not allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicPrefixes {
    /// The prefixes this rule allows, in the shape of a connection's grants.
    allowed: ClientGrants,
    grants: bool,
}

impl TopicPrefixes {
    /// Allows no topic yet (ping only).
    pub fn new() -> Self {
        Self::default()
    }

    /// Topics starting with one of these may be subscribed to (`""` allows all).
    pub fn subscribe<I: IntoIterator<Item = S>, S: Into<String>>(mut self, prefixes: I) -> Self {
        self.allowed = self.allowed.subscribe(prefixes);
        self
    }

    /// Topics starting with one of these may be published to (`""` allows all).
    pub fn publish<I: IntoIterator<Item = S>, S: Into<String>>(mut self, prefixes: I) -> Self {
        self.allowed = self.allowed.publish(prefixes);
        self
    }

    /// Whether each connection's [`ClientGrants`] allow topics too (in addition to these
    /// prefixes). Default false.
    pub fn with_grants(mut self, grants: bool) -> Self {
        self.grants = grants;
        self
    }

    fn allows(&self, grants: Option<&ClientGrants>, publish: bool, topic: &str) -> bool {
        self.allowed.allows(publish, topic)
            || (self.grants && grants.is_some_and(|g| g.allows(publish, topic)))
    }
}

impl CommandAuthorizer for TopicPrefixes {
    fn authorize(
        &self,
        context: &CommandContext<'_>,
        command: &ClientCommand,
    ) -> Result<(), CommandRefusal> {
        let publish = matches!(command, ClientCommand::Publish { .. });
        match command
            .topics()
            .iter()
            .find(|t| !self.allows(context.grants, publish, t))
        {
            Some(topic) => Err(CommandRefusal::topic(topic)),
            None => Ok(()),
        }
    }
}

/// Allows only what each connection's [`ClientGrants`] allow (a connection without grants
/// may only ping). The same as `TopicPrefixes::new().with_grants(true)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectionGrants;

impl CommandAuthorizer for ConnectionGrants {
    fn authorize(
        &self,
        context: &CommandContext<'_>,
        command: &ClientCommand,
    ) -> Result<(), CommandRefusal> {
        TopicPrefixes::new()
            .with_grants(true)
            .authorize(context, command)
    }
}
