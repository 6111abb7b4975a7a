//! `ConfigFileError`: one error type for everything wrong with a configuration, naming where
//! the value came from (file or environment variable), the key, the value and the reason:
//! `config.toml: gateway.shards = 3: not a power of two between 1 and 65536`.

use std::fmt;
use std::path::PathBuf;

/// Where a bad value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A configuration file.
    File(PathBuf),
    /// An environment variable (the override of a key).
    Env(&'static str),
    /// The built-in defaults (no file).
    Defaults,
}

/// A configuration that cannot be used: says where, which key, which value and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFileError {
    /// Where the value came from.
    pub origin: Origin,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// The dotted key (`gateway.shards`), when known.
    pub key: Option<String>,
    /// The value as written (TOML syntax, secrets as `***`), when known.
    pub value: Option<String>,
    /// Why it was refused.
    pub reason: String,
}

impl ConfigFileError {
    /// An error about `key` (whose value is `value`) from `origin`.
    pub fn new(
        origin: Origin,
        key: impl Into<String>,
        value: Option<String>,
        reason: impl Into<String>,
    ) -> Self {
        let reason = reason.into();
        let reason = match &value {
            Some(v) => tidy_reason(&reason, v),
            None => reason,
        };
        Self {
            origin,
            line: None,
            key: Some(key.into()),
            value,
            reason,
        }
    }

    /// The file could not be read.
    pub fn io(path: PathBuf, error: &std::io::Error) -> Self {
        Self {
            origin: Origin::File(path),
            line: None,
            key: None,
            value: None,
            reason: format!("cannot read: {error}"),
        }
    }

    /// Maps a TOML (syntax or type) error to the key and value at its span.
    pub fn from_toml(path: PathBuf, text: &str, error: &toml::de::Error) -> Self {
        let message = error.message().trim().to_owned();
        let Some(span) = error.span() else {
            return Self {
                origin: Origin::File(path),
                line: None,
                key: None,
                value: None,
                reason: message,
            };
        };
        let start = span.start.min(text.len());
        let line_no = text[..start].matches('\n').count() + 1;
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line = text[line_start..].lines().next().unwrap_or("").trim();
        let section = text[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('[') && !l.starts_with("[["))
            .map(header_name);
        let (key, value) = if line.starts_with('[') {
            (Some(header_name(line)), None)
        } else if let Some((k, v)) = line.split_once('=') {
            let k = k.trim().trim_matches('"');
            let key = match &section {
                Some(s) => format!("{s}.{k}"),
                None => k.to_owned(),
            };
            (Some(key), Some(strip_comment(v.trim()).to_owned()))
        } else {
            (None, None)
        };
        let reason = match &value {
            Some(v) if message.ends_with("expected a duration") => duration_reason(v),
            Some(v) => tidy_reason(&message, v),
            None => message,
        };
        let value = value
            .filter(|v| !v.is_empty())
            .map(|v| redact_value(key.as_deref().unwrap_or(""), v));
        Self {
            origin: Origin::File(path),
            line: Some(line_no),
            key,
            value,
            reason,
        }
    }

    /// Same error, now said to come from `origin`.
    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }
}

/// Secret-bearing keys have their value hidden in messages.
fn redact_value(key: &str, value: String) -> String {
    if key.ends_with("token") || key.ends_with("password") {
        "\"***\"".to_owned()
    } else if key.ends_with("url") {
        super::redact_url(&value)
    } else {
        value
    }
}

/// Why a TOML value is not a humantime duration.
fn duration_reason(value: &str) -> String {
    let text = value.trim().trim_matches('"');
    let why = match humantime_serde::re::humantime::parse_duration(text) {
        Err(e) => format!(" ({e})"),
        Ok(_) => String::new(),
    };
    format!("not a duration{why}; write e.g. \"10s\", \"250ms\" or \"2m\"")
}

/// `[redis.open]` → `redis.open`.
fn header_name(line: &str) -> String {
    let inner = line.trim_start_matches('[');
    let inner = inner.split(']').next().unwrap_or(inner);
    inner
        .split('.')
        .map(|p| p.trim().trim_matches('"'))
        .collect::<Vec<_>>()
        .join(".")
}

/// Drops a trailing `# comment` that is outside quotes.
fn strip_comment(value: &str) -> &str {
    let mut quote: Option<char> = None;
    for (i, c) in value.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '#') => return value[..i].trim_end(),
            _ => {}
        }
    }
    value
}

/// Core validation messages often restate the value (`3 is not a power of two`,
/// `` `netsvr` must start with `/` ``); the value is already printed, so drop it.
fn tidy_reason(reason: &str, value: &str) -> String {
    let bare = value.trim_matches('"');
    for prefix in [format!("`{bare}`"), bare.to_owned(), value.to_owned()] {
        if prefix.is_empty() {
            continue;
        }
        if let Some(rest) = reason.strip_prefix(prefix.as_str()) {
            let rest = rest.trim_start_matches(':').trim_start();
            let rest = rest.strip_prefix("is ").unwrap_or(rest);
            if !rest.is_empty() {
                return rest.to_owned();
            }
        }
    }
    reason.to_owned()
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::File(path) => {
                write!(f, "{}", path.display())?;
                if let Some(line) = self.line {
                    write!(f, ":{line}")?;
                }
                f.write_str(": ")?;
                write_key_value(f, self.key.as_deref(), self.value.as_deref())?;
            }
            Origin::Env(var) => {
                write!(f, "environment variable {var}")?;
                if let Some(value) = &self.value {
                    write!(f, " = {value}")?;
                }
                if let Some(key) = &self.key {
                    write!(f, " (sets {key})")?;
                }
                f.write_str(": ")?;
            }
            Origin::Defaults => {
                f.write_str("built-in defaults: ")?;
                write_key_value(f, self.key.as_deref(), self.value.as_deref())?;
            }
        }
        f.write_str(&self.reason)
    }
}

fn write_key_value(
    f: &mut fmt::Formatter<'_>,
    key: Option<&str>,
    value: Option<&str>,
) -> fmt::Result {
    match (key, value) {
        (Some(k), Some(v)) => write!(f, "{k} = {v}: "),
        (Some(k), None) => write!(f, "{k}: "),
        _ => Ok(()),
    }
}

impl std::error::Error for ConfigFileError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_lose_the_restated_value() {
        assert_eq!(
            tidy_reason("3 is not a power of two between 1 and 65536", "3"),
            "not a power of two between 1 and 65536"
        );
        assert_eq!(
            tidy_reason("`netsvr` must start with `/`", "\"netsvr\""),
            "must start with `/`"
        );
        assert_eq!(tidy_reason("must be at least 1", "0"), "must be at least 1");
    }

    #[test]
    fn comments_are_not_values() {
        assert_eq!(strip_comment("3 # four"), "3");
        assert_eq!(strip_comment("\"a#b\" # c"), "\"a#b\"");
        assert_eq!(header_name("[ redis . \"open\" ] # x"), "redis.open");
    }
}
