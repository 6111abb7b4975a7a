//! The only layer that touches sockets: the accept loop, the HTTP upgrade, each
//! connection's read/write task, and the heartbeat sweeper.

mod handshake;
mod link;
mod per_ip;
pub(crate) mod request;
mod session;

pub(crate) use per_ip::PerIp;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::close;
use crate::conn::CloseRequest;
use crate::event::CloseReason;
use crate::gateway::{ServeError, Shared};

/// Listen backlog (the kernel caps it at `somaxconn`).
const BACKLOG: i32 = 4096;

/// Binds a non-blocking-ready TCP listener with address reuse and a deep backlog.
pub(crate) fn bind_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    let listener: std::net::TcpListener = socket.into();
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Runs the gateway: accepts clients and sweeps idle ones until shutdown completes.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
) -> Result<(), ServeError> {
    let listener = TcpListener::from_std(listener).map_err(ServeError::Listener)?;
    shared.tick_clock();
    let mut stopped = shared.stopped.subscribe();
    tokio::select! {
        () = accept_loop(shared.clone(), listener) => {}
        () = sweep_idle(shared.clone()) => {}
        _ = stopped.wait_for(|s| *s) => {}
    }
    Ok(())
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                // Small writes (one frame) must not wait for Nagle.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(%remote, error = %e, "set_nodelay failed");
                }
                let send_buffer = shared.config.socket_send_buffer;
                if send_buffer > 0 {
                    let socket = socket2::SockRef::from(&stream);
                    if let Err(e) = socket.set_send_buffer_size(send_buffer) {
                        tracing::debug!(%remote, error = %e, "setting SO_SNDBUF failed");
                    }
                }
                tokio::spawn(handshake::accept(shared.clone(), stream, remote));
            }
            Err(e) => {
                // Out of file descriptors or a transient error: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// How often the sweeper lets the rate limiter forget idle per-address state.
const LIMITER_HOUSEKEEPING: Duration = Duration::from_secs(10);

/// Closes connections idle past the heartbeat interval with 1001, keeps the coarse clock,
/// and runs the rate limiter's housekeeping.
async fn sweep_idle(shared: Arc<Shared>) {
    let interval = shared.config.heartbeat_interval;
    let tick = (interval / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let idle_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut idle = Vec::new();
    let mut housekept = tokio::time::Instant::now();
    loop {
        ticker.tick().await;
        let now = shared.tick_clock();
        if housekept.elapsed() >= LIMITER_HOUSEKEEPING {
            shared.limiter.housekeeping();
            housekept = tokio::time::Instant::now();
        }
        for shard in shared.tables.conns.shards() {
            idle.extend(
                shard
                    .read()
                    .values()
                    .filter(|c| now.saturating_sub(c.last_active()) > idle_ms)
                    .cloned(),
            );
            for conn in idle.drain(..) {
                conn.outbox.request_close(CloseRequest {
                    code: close::GOING_AWAY,
                    reason: "idle timeout",
                    cause: CloseReason::Idle,
                });
            }
        }
    }
}

/// Holds one place under `max_connections` (and under `max_connections_per_ip` for its
/// address); gives them back on drop.
pub(crate) struct Slot {
    shared: Arc<Shared>,
    /// The address counted against `max_connections_per_ip`, when that limit is on.
    ip: Option<IpAddr>,
}

/// Why no place was free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoSlot {
    /// `max_connections` reached.
    Full,
    /// `max_connections_per_ip` reached for the client's address.
    PerIp,
}

impl Slot {
    pub(crate) fn try_take(shared: &Arc<Shared>, ip: IpAddr) -> Result<Self, NoSlot> {
        let max = shared.config.max_connections;
        shared
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| NoSlot::Full)?;
        let per_ip = shared.config.max_connections_per_ip;
        if per_ip > 0 && !shared.per_ip.try_add(ip, per_ip) {
            shared.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(NoSlot::PerIp);
        }
        Ok(Self {
            shared: shared.clone(),
            ip: (per_ip > 0).then_some(ip),
        })
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            self.shared.per_ip.remove(ip);
        }
        self.shared.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}
