//! Running a client command on its connection's task: parse, authorise, apply through the
//! [`Gateway`] handle's own methods (so cluster routing and connection copies stay right),
//! reply to the connection, count.

use std::sync::{Arc, Weak};

use metrics::{Counter, counter};

use super::parse::{self, ClientCommand, CommandKind};
use super::{
    BAD_REQUEST, ClientCommands, CommandAuthorizer, CommandContext, FORBIDDEN, RATE_LIMITED,
    TOO_LARGE, UNAVAILABLE,
};
use crate::event::{ConnSnapshot, Event, EventKind, MessageKind};
use crate::gateway::{Gateway, Shared};
use crate::metrics::CLIENT_COMMANDS_TOTAL;

/// The `result` labels of [`CLIENT_COMMANDS_TOTAL`], in the order of the handles.
const RESULTS: [&str; 7] = [
    "ok",
    "bad_request",
    "forbidden",
    "too_large",
    "rate_limited",
    "unavailable",
    "other",
];

fn result_index(code: Option<u16>) -> usize {
    match code {
        None => 0,
        Some(BAD_REQUEST) => 1,
        Some(FORBIDDEN) => 2,
        Some(TOO_LARGE) => 3,
        Some(RATE_LIMITED) => 4,
        Some(UNAVAILABLE) => 5,
        Some(_) => 6,
    }
}

/// What a command that succeeded adds to its reply.
enum Done {
    Plain,
    Topics(Vec<String>),
    Pong,
}

/// Client commands as a running gateway holds them.
pub(crate) struct CommandRuntime {
    authorizer: Arc<dyn CommandAuthorizer>,
    max_publish_size: usize,
    /// The gateway itself, to act through its handle.
    gateway: Weak<Shared>,
    /// Per command kind, per result.
    counters: [[Counter; RESULTS.len()]; CommandKind::ALL.len()],
}

impl std::fmt::Debug for CommandRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandRuntime")
            .field("max_publish_size", &self.max_publish_size)
            .finish_non_exhaustive()
    }
}

impl CommandRuntime {
    pub(crate) fn new(commands: ClientCommands, gateway: Weak<Shared>) -> Self {
        Self {
            authorizer: commands.authorizer,
            max_publish_size: commands.max_publish_size,
            gateway,
            counters: CommandKind::ALL.map(|kind| {
                RESULTS.map(|result| {
                    counter!(CLIENT_COMMANDS_TOTAL, "cmd" => kind.as_str(), "result" => result)
                })
            }),
        }
    }

    /// When `event` is a client text message holding a command, runs it, replies, and
    /// returns `None`; otherwise gives the event back untouched.
    pub(crate) fn intercept(&self, event: Event) -> Option<Event> {
        let EventKind::Message {
            kind: MessageKind::Text,
            payload,
        } = &event.kind
        else {
            return Some(event);
        };
        let Some(parsed) = parse::parse(payload) else {
            return Some(event);
        };
        // The gateway is going away: nobody would get the reply.
        let shared = self.gateway.upgrade()?;
        let gateway = Gateway {
            shared,
            node_only: false,
        };
        let (id, kind, outcome) = match parsed {
            Ok(request) => {
                let kind = request.command.kind();
                let outcome = self.run(&gateway, &event.conn, &request.command);
                (request.id, kind, outcome)
            }
            Err(error) => (error.id, error.kind, Err((error.code, error.message))),
        };
        let code = outcome.as_ref().err().map(|(code, _)| *code);
        self.counters[kind as usize][result_index(code)].increment(1);
        let reply = match &outcome {
            Ok(Done::Plain) => parse::ok_reply(id.as_ref(), None, false),
            Ok(Done::Topics(topics)) => parse::ok_reply(id.as_ref(), Some(topics), false),
            Ok(Done::Pong) => parse::ok_reply(id.as_ref(), None, true),
            Err((code, message)) => parse::error_reply(id.as_ref(), *code, message),
        };
        gateway.send_as(&event.conn.meta.uniq_id, MessageKind::Text, reply);
        None
    }

    /// Authorises and applies one well-formed command.
    fn run(
        &self,
        gateway: &Gateway,
        snapshot: &ConnSnapshot,
        command: &ClientCommand,
    ) -> Result<Done, (u16, String)> {
        let uniq_id = snapshot.meta.uniq_id;
        let closing = || (UNAVAILABLE, "the connection is closing".to_owned());
        let Some(conn) = gateway.shared.tables.get(&uniq_id) else {
            return Err(closing());
        };
        if let ClientCommand::Publish { data, .. } = command
            && data.len() > self.max_publish_size
        {
            return Err((
                TOO_LARGE,
                format!("`data` is larger than {} bytes", self.max_publish_size),
            ));
        }
        let context = CommandContext::new(snapshot, conn.grants.as_deref());
        self.authorizer
            .authorize(&context, command)
            .map_err(|refusal| (refusal.code, refusal.message))?;
        match command {
            ClientCommand::Subscribe { topics } => gateway
                .subscribe(&uniq_id, topics, None)
                .then(|| Done::Topics(topics.clone()))
                .ok_or_else(closing),
            ClientCommand::Unsubscribe { topics } => gateway
                .unsubscribe(&uniq_id, topics, None)
                .then(|| Done::Topics(topics.clone()))
                .ok_or_else(closing),
            ClientCommand::Publish { topic, data } => {
                if gateway.is_shutting_down() {
                    return Err((UNAVAILABLE, "the gateway is shutting down".to_owned()));
                }
                gateway.publish(std::slice::from_ref(topic), data);
                Ok(Done::Plain)
            }
            ClientCommand::Ping => Ok(Done::Pong),
        }
    }
}
