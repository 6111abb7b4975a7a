//! The `netsvr` binary's library half: configuration, wiring of the gateway and its
//! connectors, and the admin HTTP port. `main.rs` only parses the command line and calls in.

pub mod admin;
