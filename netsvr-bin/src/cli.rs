//! The command line of `netsvr`, and what it does before and after the gateway runs:
//! parsing, `--check-config`, and serving until SIGINT/SIGTERM with SIGHUP reloads.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::config::Config;
use crate::logging::LogHandle;
use crate::run::{RunError, Running};

/// The usage text.
pub const USAGE: &str = "\
usage: netsvr [--config FILE]
       netsvr --check-config FILE
       netsvr --version | --help

  --config FILE        run with the TOML configuration FILE (default: built-in defaults:
                       WebSocket 127.0.0.1:6060/netsvr, worker 127.0.0.1:6061,
                       task 127.0.0.1:6062, admin 127.0.0.1:6065)
  --check-config FILE  validate FILE, print the effective configuration (defaults and
                       environment overrides applied, secrets as ***) and exit
  --version, -V        print the version and exit
  --help, -h           print this help and exit

environment overrides: NETSVR_LISTEN, NETSVR_WORKER_LISTEN, NETSVR_TASK_LISTEN,
  NETSVR_ADMIN_LISTEN, NETSVR_ADMIN_TOKEN, NETSVR_REDIS_URL, NETSVR_AMQP_URL, NETSVR_LOG
signals: SIGINT/SIGTERM drain and exit 0; SIGHUP reloads [limits] and log.level";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the gateway, from a file or the built-in defaults.
    Run {
        /// The configuration file.
        config: Option<PathBuf>,
    },
    /// Validate a file and print the effective configuration.
    Check {
        /// The configuration file.
        config: PathBuf,
    },
    /// Print the version.
    Version,
    /// Print the usage.
    Help,
}

/// Parses the arguments (without the program name). The error says what is wrong.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let mut args = args.into_iter();
    let mut config: Option<PathBuf> = None;
    let mut check: Option<PathBuf> = None;
    let mut only: Option<Command> = None;
    let mut count = 0;
    while let Some(arg) = args.next() {
        count += 1;
        let text = arg.to_string_lossy().into_owned();
        let (flag, inline) = match text.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(PathBuf::from(v))),
            _ => (text.clone(), None),
        };
        let mut value = |name: &str| -> Result<PathBuf, String> {
            match inline.clone().or_else(|| args.next().map(PathBuf::from)) {
                Some(v) if !v.as_os_str().is_empty() => Ok(v),
                _ => Err(format!("`{name}` needs a FILE")),
            }
        };
        match flag.as_str() {
            "--config" | "-c" if config.is_none() => config = Some(value("--config")?),
            "--check-config" if check.is_none() => check = Some(value("--check-config")?),
            "--version" | "-V" if inline.is_none() => only = Some(Command::Version),
            "--help" | "-h" if inline.is_none() => only = Some(Command::Help),
            "--config" | "-c" | "--check-config" => return Err(format!("`{flag}` given twice")),
            _ => return Err(format!("unknown argument `{text}`")),
        }
    }
    match (only, check, config) {
        (Some(command), _, _) if count == 1 => Ok(command),
        (Some(_), _, _) => Err("`--version` and `--help` take no other argument".into()),
        (None, Some(_), Some(_)) => Err("give either `--config` or `--check-config`".into()),
        (None, Some(config), None) => Ok(Command::Check { config }),
        (None, None, config) => Ok(Command::Run { config }),
    }
}

/// `--check-config`: the effective configuration as TOML, or the error. The TLS certificate
/// and key files are read too, as at start.
pub fn check(path: &Path) -> Result<String, crate::config::ConfigFileError> {
    let config = Config::load(Some(path))?;
    if let Some(tls) = config.tls.as_ref().filter(|t| t.enabled()) {
        tls.load().map_err(|(key, reason)| {
            let origin = crate::config::Origin::File(path.to_owned());
            crate::config::ConfigFileError::new(origin, key, config.value_of(key), reason)
        })?;
    }
    Ok(config.to_toml())
}

/// The signals the server reacts to, installed before it starts so that none is missed.
#[derive(Debug)]
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl Signals {
    /// Installs the handlers of SIGINT, SIGTERM and SIGHUP (inside a tokio runtime).
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Serves until SIGINT or SIGTERM (then drains gracefully) or until a part fails (then
    /// drains and returns its error). SIGHUP re-reads `path` (or the defaults) with the
    /// environment overrides and applies the new limits and log level; a bad file is logged
    /// and ignored.
    pub async fn serve(
        mut self,
        mut running: Running,
        path: Option<&Path>,
        log: Option<&LogHandle>,
    ) -> Result<(), RunError> {
        let failure = loop {
            tokio::select! {
                _ = self.interrupt.recv() => {
                    tracing::info!("SIGINT: draining connections");
                    break None;
                }
                _ = self.terminate.recv() => {
                    tracing::info!("SIGTERM: draining connections");
                    break None;
                }
                _ = self.hangup.recv() => reload(&mut running, path, log),
                error = running.failed() => {
                    tracing::error!(part = error.part, reason = %error.reason, "stopped; draining");
                    break Some(error);
                }
            }
        };
        let drained = running.shutdown().await;
        tracing::info!("netsvr stopped");
        match failure {
            Some(error) => Err(error),
            None => drained,
        }
    }
}

fn reload(running: &mut Running, path: Option<&Path>, log: Option<&LogHandle>) {
    let source = path.map_or_else(
        || "built-in defaults".to_owned(),
        |p| p.display().to_string(),
    );
    tracing::info!(config = %source, "SIGHUP: reloading the configuration");
    match Config::load(path) {
        Ok(new) => {
            let restart = running.reload(&new, log);
            tracing::info!(needs_restart = ?restart, "configuration reloaded");
        }
        Err(e) => tracing::error!(error = %e, "configuration not reloaded; keeping the old one"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Command, String> {
        parse(list.iter().map(OsString::from))
    }

    #[test]
    fn commands_parse() {
        assert_eq!(args(&[]), Ok(Command::Run { config: None }));
        assert_eq!(
            args(&["--config", "a.toml"]),
            Ok(Command::Run {
                config: Some("a.toml".into())
            })
        );
        assert_eq!(
            args(&["--check-config=b.toml"]),
            Ok(Command::Check {
                config: "b.toml".into()
            })
        );
        assert_eq!(args(&["--version"]), Ok(Command::Version));
        assert_eq!(args(&["-h"]), Ok(Command::Help));
    }

    #[test]
    fn mistakes_are_refused() {
        assert!(args(&["--bogus"]).is_err());
        assert!(args(&["--config"]).is_err());
        assert!(args(&["--config", "a", "--config", "b"]).is_err());
        assert!(args(&["--version", "--config", "a"]).is_err());
        assert!(args(&["--check-config", "a", "--config", "b"]).is_err());
        assert!(args(&["stray"]).is_err());
    }
}
