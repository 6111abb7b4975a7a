//! The `netsvr` binary: parses the command line, loads the configuration, sets up logging and
//! runs the gateway until SIGINT/SIGTERM. Everything else lives in the library half.
//!
//! Exit codes: 0 after a graceful drain (or `--check-config` / `--version` / `--help`), 1 when
//! the gateway cannot start or a part fails, 2 for a bad command line or configuration.

use std::io::Write;
use std::process::ExitCode;

use netsvr_bin::cli::{self, Command, Signals, USAGE};
use netsvr_bin::config::Config;
use netsvr_bin::{logging, run};

fn stdout(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("netsvr: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let path = match command {
        Command::Version => return stdout(&format!("netsvr {}\n", env!("CARGO_PKG_VERSION"))),
        Command::Help => return stdout(&format!("{USAGE}\n")),
        Command::Check { config } => {
            return match cli::check(&config) {
                Ok(toml) => stdout(&toml),
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            };
        }
        Command::Run { config } => config,
    };
    let config = match Config::load(path.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let log = match logging::init(&config.log) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("netsvr: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let signals = match Signals::install() {
            Ok(signals) => signals,
            Err(e) => {
                tracing::error!(error = %e, "cannot install signal handlers");
                return ExitCode::FAILURE;
            }
        };
        let running = match run::start(config).await {
            Ok(running) => running,
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                return ExitCode::FAILURE;
            }
        };
        match signals.serve(running, path.as_deref(), Some(&log)).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "stopped with an error");
                ExitCode::FAILURE
            }
        }
    })
}
