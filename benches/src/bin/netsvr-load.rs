//! `netsvr-load`: a WebSocket load generator for netsvr (raw sockets, hand-rolled client).
//!
//! Modes (`netsvr-load MODE --flag value ...`, see `Args::USAGE`):
//! - `idle`: open `--conns` connections, report the server's RSS growth per connection.
//! - `echo`: round trips per second and latency against the `echo` example.
//! - `fanout`: broadcast deliveries per second and latency against the `chat` example,
//!   closed-loop (`--window`) or paced (`--rate`).
//! - `connect`: completed upgrades per second and handshake times.
//! - `storm`: drop every connection at once, reconnect all at once; time to be accepted.
//! - `sink`: events per second through the gateway's worker, Redis or AMQP sink, counted
//!   at the consumer, with per-connection order checks.
//!
//! A progress line per second goes to stderr; the final line on stdout is one JSON object.
//! `--plot FILE.png` draws the per-second series.
#![allow(clippy::print_stdout)]

use netsvr_benches::Args;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    if matches!(std::env::args().nth(1).as_deref(), Some("-h" | "--help")) {
        eprintln!("{}", Args::USAGE);
        return std::process::ExitCode::SUCCESS;
    }
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{}", Args::USAGE);
            return std::process::ExitCode::from(2);
        }
    };
    match netsvr_benches::load::run(&args).await {
        Ok(json) => {
            println!("{json}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
