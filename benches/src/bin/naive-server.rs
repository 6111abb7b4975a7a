//! `naive-server`: the naive WebSocket server that BENCHMARKS.md compares netsvr against.
//!
//! It is how a careful developer would write a chat or echo server with
//! `tokio-tungstenite` without designing for fan-out:
//! - one tokio task reading each connection, plus one task writing it;
//! - a bounded per-connection `mpsc` channel of 1024 messages between them (a full channel
//!   drops the message for that recipient and counts it, like netsvr's default
//!   slow-consumer policy, rather than stalling the sender);
//! - a shared `Arc<Mutex<HashMap<id, Sender>>>` registry of every connection;
//! - in `--mode chat` every text or binary message is broadcast to every connection,
//!   sender included, by `try_send` to each registered channel under the registry lock;
//!   each recipient's writer then has tungstenite frame the message again for its own
//!   socket: the per-recipient encoding is the naive part (netsvr encodes once);
//! - in `--mode echo` each message goes back to its sender only (the reader awaits room in
//!   its own channel);
//! - writers feed every message already queued before flushing, so a burst costs one
//!   write, not one per message.
//!
//! It speaks to `netsvr-load` (any upgrade path, masked client frames, binary messages are
//! sent back as binary). Flags: `--mode chat|echo` (default chat), `--listen ADDR`
//! (default 127.0.0.1:9100). Progress and errors go to stderr.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Messages queued per connection before a broadcast drops for it.
const QUEUE: usize = 1024;
/// Time allowed for the WebSocket upgrade.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const USAGE: &str = "usage: naive-server [--mode chat|echo] [--listen ADDR]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Chat,
    Echo,
}

#[derive(Debug)]
struct Args {
    mode: Mode,
    listen: SocketAddr,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        mode: Mode::Chat,
        listen: SocketAddr::from(([127, 0, 0, 1], 9100)),
    };
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--mode" => {
                args.mode = match value.as_str() {
                    "chat" => Mode::Chat,
                    "echo" => Mode::Echo,
                    other => return Err(format!("unknown mode {other}")),
                }
            }
            "--listen" => {
                args.listen = value
                    .parse()
                    .map_err(|e| format!("--listen {value}: {e}"))?;
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(args)
}

/// Every open connection's channel, by connection id.
#[derive(Default)]
struct Registry {
    senders: Mutex<HashMap<u64, mpsc::Sender<Message>>>,
    /// Messages a full channel refused.
    dropped: AtomicU64,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, mpsc::Sender<Message>>> {
        // Nothing panics while holding the lock; if it ever did, the map is still usable.
        self.senders.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `message` to every connection; a full channel drops it for that one.
    fn broadcast(&self, message: &Message) {
        let senders = self.lock();
        let mut dropped = 0;
        for sender in senders.values() {
            if sender.try_send(message.clone()).is_err() {
                dropped += 1;
            }
        }
        drop(senders);
        if dropped > 0 {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            if e.is_empty() {
                eprintln!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("naive-server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("naive-server: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("naive-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

async fn serve(args: Args) -> Result<(), String> {
    let listener = bind(args.listen).map_err(|e| format!("listen {}: {e}", args.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!("naive-server: {:?} mode, listening on {local}", args.mode);
    let registry = Arc::new(Registry::default());
    tokio::spawn(report_drops(registry.clone()));
    let mut next_id = 0_u64;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                next_id += 1;
                tokio::spawn(connection(stream, next_id, args.mode, registry.clone()));
            }
            Err(e) => {
                // Out of descriptors, usually: back off instead of spinning.
                eprintln!("naive-server: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Prints the drop count every 5 s while it grows.
async fn report_drops(registry: Arc<Registry>) {
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let now = registry.dropped.load(Ordering::Relaxed);
        if now != last {
            let conns = registry.lock().len();
            eprintln!("naive-server: {conns} connections, {now} messages dropped (full queue)");
            last = now;
        }
    }
}

/// Serves one client: upgrade, register, read until it goes, deregister.
async fn connection(stream: TcpStream, id: u64, mode: Mode, registry: Arc<Registry>) {
    // Small messages must not wait for Nagle; a failure only costs latency.
    let _ = stream.set_nodelay(true);
    let ws = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tokio_tungstenite::accept_async(stream))
        .await
    {
        Ok(Ok(ws)) => ws,
        Ok(Err(_)) | Err(_) => return,
    };
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(QUEUE);
    registry.lock().insert(id, tx.clone());

    let writer = tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            if sink.feed(message).await.is_err() {
                return;
            }
            while let Ok(message) = rx.try_recv() {
                if sink.feed(message).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });

    // Pings are answered and close replies sent by tungstenite while reading; after a close
    // the stream ends on its own.
    while let Some(Ok(message)) = source.next().await {
        if !(message.is_binary() || message.is_text()) {
            continue;
        }
        match mode {
            Mode::Chat => registry.broadcast(&message),
            Mode::Echo => {
                if tx.send(message).await.is_err() {
                    break;
                }
            }
        }
    }
    registry.lock().remove(&id);
    writer.abort();
}
