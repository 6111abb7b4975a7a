//! `[client_commands]`: opt-in JSON commands from clients (subscribe, unsubscribe, publish,
//! ping), allowed by topic prefix and by the grants of the HTTP OnOpen answer.

use netsvr_core::ClientCommands;
use netsvr_core::client_cmd::{DEFAULT_MAX_PUBLISH_SIZE, MAX_TOPIC_LEN, TopicPrefixes};
use serde::{Deserialize, Serialize};

/// `[client_commands]`: see `docs/client-commands.md`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientCommandsSection {
    /// Run client commands. Default false: every client message is forwarded as in netsvr.
    pub enabled: bool,
    /// Prefixes of the topics any client may subscribe to (and unsubscribe from); `""`
    /// allows every topic. Default none.
    pub subscribe_prefixes: Vec<String>,
    /// Prefixes of the topics any client may publish to; `""` allows every topic. Default
    /// none.
    pub publish_prefixes: Vec<String>,
    /// The `subscribeTopics` / `publishTopics` prefixes of the HTTP OnOpen answer allow
    /// topics too, for that connection. Default true.
    pub open_grants: bool,
    /// Largest `data` of a `publish`, bytes. Default 64 KiB.
    pub max_publish_size: usize,
}

impl Default for ClientCommandsSection {
    fn default() -> Self {
        Self {
            enabled: false,
            subscribe_prefixes: Vec::new(),
            publish_prefixes: Vec::new(),
            open_grants: true,
            max_publish_size: DEFAULT_MAX_PUBLISH_SIZE,
        }
    }
}

impl ClientCommandsSection {
    /// What the gateway runs, when `enabled`.
    pub fn to_core(&self) -> Option<ClientCommands> {
        self.enabled.then(|| {
            let rule = TopicPrefixes::new()
                .subscribe(self.subscribe_prefixes.iter().cloned())
                .publish(self.publish_prefixes.iter().cloned())
                .with_grants(self.open_grants);
            ClientCommands::new(rule).max_publish_size(self.max_publish_size)
        })
    }

    /// Checks the keys (only when `enabled`).
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.enabled {
            return Ok(());
        }
        for (key, prefixes) in [
            (
                "client_commands.subscribe_prefixes",
                &self.subscribe_prefixes,
            ),
            ("client_commands.publish_prefixes", &self.publish_prefixes),
        ] {
            if let Some(long) = prefixes.iter().find(|p| p.len() > MAX_TOPIC_LEN) {
                return Err((
                    key,
                    format!(
                        "`{long}` is longer than {MAX_TOPIC_LEN} bytes, the longest topic: it \
                         would match nothing"
                    ),
                ));
            }
        }
        if self.max_publish_size == 0 {
            return Err((
                "client_commands.max_publish_size",
                "must be at least 1".into(),
            ));
        }
        Ok(())
    }
}
