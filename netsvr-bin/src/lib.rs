//! The `netsvr` binary's library half: configuration, wiring of the gateway and its
//! connectors, and the admin HTTP port. `main.rs` only parses the command line and calls in.
//!
//! - [`config`]: the TOML file (every section and key, defaults, environment overrides,
//!   errors that name the key and value).
//! - [`run`]: [`run::start`] builds and serves everything a [`config::Config`] describes.
//! - [`cli`]: the command line, `--check-config`, signals (drain, reload).
//! - [`logging`]: structured logs with a reloadable level.
//! - [`admin`]: the admin HTTP port.

pub mod admin;
pub mod cli;
pub mod config;
pub mod logging;
pub mod run;
