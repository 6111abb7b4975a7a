//! Structured logs with tracing-subscriber: text or JSON lines on stderr, the level an
//! `EnvFilter` directive string that can be swapped at runtime (SIGHUP) through [`LogHandle`].

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

use crate::config::{LogFormat, LogSection};

/// Swaps the level filter of the installed subscriber.
#[derive(Clone)]
pub struct LogHandle {
    filter: reload::Handle<EnvFilter, Registry>,
}

impl std::fmt::Debug for LogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHandle").finish_non_exhaustive()
    }
}

/// Why logging could not be set up or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The level string is not a valid filter.
    #[error("log.level `{level}`: {reason}")]
    Level {
        /// The refused directive string.
        level: String,
        /// Why.
        reason: String,
    },
    /// A global subscriber is already installed, or the reload failed.
    #[error("cannot install or change the log subscriber: {0}")]
    Subscriber(String),
}

fn filter(level: &str) -> Result<EnvFilter, LogError> {
    LogSection::check_level(level)
        .and_then(|()| EnvFilter::try_new(level).map_err(|e| e.to_string()))
        .map_err(|reason| LogError::Level {
            level: level.to_owned(),
            reason,
        })
}

/// Installs the global subscriber described by `log`. Call once, before anything logs.
pub fn init(log: &LogSection) -> Result<LogHandle, LogError> {
    let (filter_layer, handle) = reload::Layer::new(filter(&log.level)?);
    let ansi = std::io::stderr().is_terminal();
    let text = (log.format == LogFormat::Text)
        .then(|| fmt::layer().with_writer(std::io::stderr).with_ansi(ansi));
    let json = (log.format == LogFormat::Json).then(|| {
        fmt::layer()
            .json()
            .with_current_span(false)
            .with_writer(std::io::stderr)
    });
    tracing_subscriber::registry()
        .with(filter_layer)
        .with(text)
        .with(json)
        .try_init()
        .map_err(|e| LogError::Subscriber(e.to_string()))?;
    Ok(LogHandle { filter: handle })
}

impl LogHandle {
    /// Applies a new level directive string; the old one stays on error.
    pub fn set_level(&self, level: &str) -> Result<(), LogError> {
        let new = filter(level)?;
        self.filter
            .reload(new)
            .map_err(|e| LogError::Subscriber(e.to_string()))
    }

    /// The filter in force, as a directive string.
    pub fn level(&self) -> Option<String> {
        self.filter.with_current(|f| f.to_string()).ok()
    }
}
