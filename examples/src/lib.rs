//! Shared helpers for the netsvr examples: `--listen ADDR` parsing and logging set-up.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// Default listen address of every example.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:6060";

/// Command-line options common to the examples.
#[derive(Debug, Clone)]
pub struct Args {
    /// `--listen ADDR`.
    pub listen: SocketAddr,
    /// `--max-message-size BYTES` (default: the gateway's).
    pub max_message_size: Option<usize>,
    /// `--compress-all`: with permessage-deflate, compress every message, however small
    /// or incompressible (for test clients that mishandle uncompressed messages).
    pub compress_all: bool,
}

/// Parses `--listen ADDR`, `--max-message-size BYTES` and `--compress-all`; anything else
/// is an error.
pub fn parse_args() -> Result<Args, String> {
    parse_from(std::env::args().skip(1))
}

fn parse_from(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut out = Args {
        listen: DEFAULT_LISTEN
            .parse()
            .map_err(|e| format!("default listen address: {e}"))?,
        max_message_size: None,
        compress_all: false,
    };
    while let Some(flag) = args.next() {
        if flag == "--compress-all" {
            out.compress_all = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => {
                out.listen = value
                    .parse()
                    .map_err(|e| format!("--listen {value}: {e}"))?;
            }
            "--max-message-size" => {
                out.max_message_size = Some(
                    value
                        .parse()
                        .map_err(|e| format!("--max-message-size {value}: {e}"))?,
                );
            }
            other => return Err(format!("unknown option {other} (use --listen ADDR)")),
        }
    }
    Ok(out)
}

/// The gateway config the examples share: `/` as the path, and the parsed options.
pub fn config(args: &Args) -> netsvr_core::GatewayConfig {
    let mut config = netsvr_core::GatewayConfig::default();
    config.listen = args.listen;
    config.path = "/".to_owned();
    if let Some(max) = args.max_message_size {
        config.max_message_size = max;
    }
    if args.compress_all {
        config.deflate.min_size = 0;
        config.deflate.skip_incompressible = false;
    }
    config
}

/// Builds the gateway from `builder` (with the example config from `args`) and serves it
/// until it stops or Ctrl-C (which shuts it down gracefully). Every event is handed to
/// `on_event` inline, on the connection's own task ([`netsvr_core::FnSink`]): the handler
/// only enqueues, so there is no channel hop and no extra task wake-up.
pub async fn run<F>(
    name: &str,
    args: &Args,
    builder: netsvr_core::GatewayBuilder,
    on_event: F,
) -> Result<(), Box<dyn std::error::Error>>
where
    F: Fn(&netsvr_core::Gateway, netsvr_core::Event) + Send + Sync + 'static,
{
    // The sink reaches the gateway through a weak handle set after `build()`, so the sink
    // does not keep the gateway alive.
    let slot: Arc<OnceLock<netsvr_core::WeakGateway>> = Arc::default();
    let sink = netsvr_core::FnSink::named(name, {
        let slot = slot.clone();
        move |event| {
            if let Some(gateway) = slot.get().and_then(netsvr_core::WeakGateway::upgrade) {
                on_event(&gateway, event);
            }
        }
    });
    let (gateway, serve) = builder.config(config(args)).sink(sink).build()?;
    let _ = slot.set(gateway.downgrade());
    eprintln!("{name} listening on ws://{}/", gateway.local_addr());
    let server = tokio::spawn(serve);
    tokio::select! {
        result = server => result??,
        _ = tokio::signal::ctrl_c() => gateway.shutdown().await,
    }
    Ok(())
}

/// Logs to stderr at `info` unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// `docs/embedding.md`, whose Rust blocks are compiled (and the runnable ones run) as
/// doctests of this crate, so the guide's code keeps up with the API.
#[cfg(doctest)]
#[doc = include_str!("../../docs/embedding.md")]
pub struct EmbeddingGuide;

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_from(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn parses_listen_and_rejects_unknown() {
        let a = args(&["--listen", "127.0.0.1:9000"]).unwrap();
        assert_eq!(a.listen.port(), 9000);
        assert!(args(&["--bogus", "1"]).is_err());
        assert!(args(&["--listen"]).is_err());
        assert!(args(&["--listen", "nope"]).is_err());
        assert_eq!(args(&[]).unwrap().listen.to_string(), DEFAULT_LISTEN);
    }
}
