//! Recognising a client command in a text message (pure: bytes in, command or error out),
//! and encoding the JSON replies.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{BAD_REQUEST, MAX_TOPIC_LEN, MAX_TOPICS};

/// Which command a message names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    /// `{"cmd":"subscribe"}`.
    Subscribe,
    /// `{"cmd":"unsubscribe"}`.
    Unsubscribe,
    /// `{"cmd":"publish"}`.
    Publish,
    /// `{"cmd":"ping"}`.
    Ping,
}

impl CommandKind {
    /// Every kind, in the order of their metric handles.
    pub const ALL: [CommandKind; 4] = [
        CommandKind::Subscribe,
        CommandKind::Unsubscribe,
        CommandKind::Publish,
        CommandKind::Ping,
    ];

    /// The `cmd` value (also the `cmd` metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe",
            Self::Unsubscribe => "unsubscribe",
            Self::Publish => "publish",
            Self::Ping => "ping",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// The `id` of a command: a JSON number or string, echoed in the reply as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Value);

impl RequestId {
    /// A numeric id.
    pub fn number(n: u64) -> Self {
        Self(Value::from(n))
    }

    /// A text id.
    pub fn text(s: impl Into<String>) -> Self {
        Self(Value::String(s.into()))
    }

    /// The id as JSON text (`7`, `"a"`).
    pub fn to_json(&self) -> String {
        self.0.to_string()
    }
}

/// A well-formed client command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientCommand {
    /// Subscribe this connection to topics (1 to [`MAX_TOPICS`], de-duplicated, in order).
    Subscribe {
        /// The topics.
        topics: Vec<String>,
    },
    /// Unsubscribe this connection from topics (1 to [`MAX_TOPICS`], de-duplicated).
    Unsubscribe {
        /// The topics.
        topics: Vec<String>,
    },
    /// Deliver `data` to every subscriber of `topic`.
    Publish {
        /// The topic.
        topic: String,
        /// A JSON string's content, or the compact JSON text of any other value.
        data: Bytes,
    },
    /// Answer with a pong.
    Ping,
}

impl ClientCommand {
    /// Which command this is.
    pub fn kind(&self) -> CommandKind {
        match self {
            Self::Subscribe { .. } => CommandKind::Subscribe,
            Self::Unsubscribe { .. } => CommandKind::Unsubscribe,
            Self::Publish { .. } => CommandKind::Publish,
            Self::Ping => CommandKind::Ping,
        }
    }

    /// The topics the command names (none for `ping`).
    pub fn topics(&self) -> &[String] {
        match self {
            Self::Subscribe { topics } | Self::Unsubscribe { topics } => topics,
            Self::Publish { topic, .. } => std::slice::from_ref(topic),
            Self::Ping => &[],
        }
    }
}

/// A command with the id its reply carries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandRequest {
    /// The `id` given, if any.
    pub id: Option<RequestId>,
    /// The command.
    pub command: ClientCommand,
}

/// A message that names a known command but is malformed: answered with code 400.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandError {
    /// The `id` given, if it was a number or a string.
    pub id: Option<RequestId>,
    /// The command it named.
    pub kind: CommandKind,
    /// The error code ([`BAD_REQUEST`]).
    pub code: u16,
    /// What is wrong, for the client.
    pub message: String,
}

/// Whether `payload` may hold a `"cmd"` key at all: a JSON object, and the key spelled out
/// (`cmd`) or escaped (`\u`). Most other messages are passed on without being parsed.
fn may_be_command(payload: &[u8]) -> bool {
    let start = payload
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    start.is_some_and(|i| payload[i] == b'{')
        && payload
            .windows(3)
            .any(|w| w == b"cmd" || (w[0] == b'\\' && w[1] == b'u'))
}

/// Parses a client text message. `None`: not a command (deliver it as a message);
/// `Some(Ok)`: a well-formed command; `Some(Err)`: a known command that is malformed.
pub fn parse(payload: &[u8]) -> Option<Result<CommandRequest, CommandError>> {
    if !may_be_command(payload) {
        return None;
    }
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(payload) else {
        return None;
    };
    let kind = match map.get("cmd") {
        Some(Value::String(name)) => CommandKind::from_name(name)?,
        _ => return None,
    };
    let bad = |id: Option<RequestId>, message: String| CommandError {
        id,
        kind,
        code: BAD_REQUEST,
        message,
    };
    let id = match map.remove("id") {
        None | Some(Value::Null) => None,
        Some(v @ (Value::Number(_) | Value::String(_))) => Some(RequestId(v)),
        Some(_) => return Some(Err(bad(None, "`id` must be a number or a string".into()))),
    };
    let command = match kind {
        CommandKind::Subscribe => {
            topics(&mut map).map(|topics| ClientCommand::Subscribe { topics })
        }
        CommandKind::Unsubscribe => {
            topics(&mut map).map(|topics| ClientCommand::Unsubscribe { topics })
        }
        CommandKind::Publish => publish(&mut map),
        CommandKind::Ping => Ok(ClientCommand::Ping),
    };
    Some(match command {
        Ok(command) => Ok(CommandRequest { id, command }),
        Err(message) => Err(bad(id, message)),
    })
}

fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("a topic is empty".into());
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Err(format!("a topic is longer than {MAX_TOPIC_LEN} bytes"));
    }
    Ok(())
}

fn topics(map: &mut Map<String, Value>) -> Result<Vec<String>, String> {
    let shape = || format!("`topics` must be an array of 1 to {MAX_TOPICS} strings");
    let Some(Value::Array(items)) = map.remove("topics") else {
        return Err(shape());
    };
    if items.is_empty() {
        return Err(shape());
    }
    if items.len() > MAX_TOPICS {
        return Err(format!("more than {MAX_TOPICS} topics"));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(topic) = item else {
            return Err(shape());
        };
        check_topic(&topic)?;
        if !out.contains(&topic) {
            out.push(topic);
        }
    }
    Ok(out)
}

fn publish(map: &mut Map<String, Value>) -> Result<ClientCommand, String> {
    let Some(Value::String(topic)) = map.remove("topic") else {
        return Err("`topic` must be a string".into());
    };
    check_topic(&topic)?;
    let data = match map.remove("data") {
        None => return Err("`data` is missing".into()),
        Some(Value::String(text)) => Bytes::from(text),
        Some(other) => Bytes::from(other.to_string()),
    };
    Ok(ClientCommand::Publish { topic, data })
}

// ---- replies ----

/// `s` as a JSON string literal.
fn quote(s: &str) -> String {
    Value::from(s).to_string()
}

fn open_reply(id: Option<&RequestId>) -> String {
    let mut out = String::with_capacity(64);
    out.push('{');
    if let Some(id) = id {
        out.push_str("\"id\":");
        out.push_str(&id.to_json());
        out.push(',');
    }
    out
}

/// A success reply: `{"id":..,"ok":true}`, with `"pong":true` or the `"topics"` affected.
pub(crate) fn ok_reply(id: Option<&RequestId>, topics: Option<&[String]>, pong: bool) -> String {
    let mut out = open_reply(id);
    out.push_str("\"ok\":true");
    if pong {
        out.push_str(",\"pong\":true");
    }
    if let Some(topics) = topics {
        out.push_str(",\"topics\":[");
        for (i, topic) in topics.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&quote(topic));
        }
        out.push(']');
    }
    out.push('}');
    out
}

/// A failure reply: `{"id":..,"ok":false,"error":{"code":..,"message":".."}}`.
pub(crate) fn error_reply(id: Option<&RequestId>, code: u16, message: &str) -> String {
    let mut out = open_reply(id);
    out.push_str("\"ok\":false,\"error\":{\"code\":");
    out.push_str(&code.to_string());
    out.push_str(",\"message\":");
    out.push_str(&quote(message));
    out.push_str("}}");
    out
}
