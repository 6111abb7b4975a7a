//! The `RateLimiter` seam: synchronous O(1) checks on opens and messages.

mod governor_limiter;

use std::net::IpAddr;
use std::time::{Duration, Instant};

pub use governor_limiter::GovernorLimiter;

/// Limits of the default limiter. Zero means "no limit" for each field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Limits {
    /// Connections admitted per second, gateway-wide.
    pub opens_per_sec: u32,
    /// Connections admitted per second from one client IP address.
    pub opens_per_ip_per_sec: u32,
    /// Client messages accepted per second, gateway-wide.
    pub messages_per_sec: u32,
    /// Client messages accepted per connection per `conn_window`.
    pub conn_messages: u32,
    /// The per-connection window (default 1 s when zero).
    pub conn_window: Duration,
}

impl Limits {
    /// No limits at all.
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// Sets the gateway-wide open rate.
    pub fn opens_per_sec(mut self, n: u32) -> Self {
        self.opens_per_sec = n;
        self
    }

    /// Sets the open rate allowed to each client IP address.
    pub fn opens_per_ip_per_sec(mut self, n: u32) -> Self {
        self.opens_per_ip_per_sec = n;
        self
    }

    /// Sets the gateway-wide message rate.
    pub fn messages_per_sec(mut self, n: u32) -> Self {
        self.messages_per_sec = n;
        self
    }

    /// Sets the per-connection limit: `n` messages per `window`.
    pub fn per_connection(mut self, n: u32, window: Duration) -> Self {
        self.conn_messages = n;
        self.conn_window = window;
        self
    }
}

/// A connection's own message-counting window; the connection task owns it.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessageWindow {
    start: Option<Instant>,
    count: u32,
}

impl MessageWindow {
    /// Counts one message at `now` against `limit` per `window`; false when over.
    pub fn admit(&mut self, now: Instant, limit: u32, window: Duration) -> bool {
        match self.start {
            Some(start) if now.saturating_duration_since(start) < window => {}
            _ => {
                self.start = Some(now);
                self.count = 0;
            }
        }
        if self.count >= limit {
            return false;
        }
        self.count += 1;
        true
    }
}

/// The result of a message check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Go ahead.
    Allow,
    /// Over the gateway-wide message rate.
    GlobalLimit,
    /// Over this connection's limit.
    ConnectionLimit,
}

/// Rate checks. Called on hot paths: must be synchronous and O(1).
///
/// A message over a limit is dropped and counted; an open over the limit is closed with 1013.
pub trait RateLimiter: Send + Sync + 'static {
    /// May a new connection from `peer` be admitted now?
    fn check_open(&self, peer: IpAddr) -> bool;

    /// May this message (of the connection that owns `window`) go on, at `now`?
    fn check_message(&self, window: &mut MessageWindow, now: Instant) -> Verdict;

    /// The limits in force, if this limiter has any to report.
    fn limits(&self) -> Option<Limits> {
        None
    }

    /// Periodic clean-up (forgetting idle per-address state); the gateway calls it every
    /// few seconds. Default: nothing.
    fn housekeeping(&self) {}

    /// Replaces the limits at runtime; false if this limiter cannot.
    fn set_limits(&self, limits: Limits) -> bool {
        let _ = limits;
        false
    }
}

/// A limiter that allows everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLimits;

impl RateLimiter for NoLimits {
    fn check_open(&self, _peer: IpAddr) -> bool {
        true
    }

    fn check_message(&self, _window: &mut MessageWindow, _now: Instant) -> Verdict {
        Verdict::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_resets_after_it_passes() {
        let mut w = MessageWindow::default();
        let t0 = Instant::now();
        let win = Duration::from_secs(1);
        assert!(w.admit(t0, 2, win));
        assert!(w.admit(t0, 2, win));
        assert!(!w.admit(t0 + Duration::from_millis(999), 2, win));
        assert!(w.admit(t0 + Duration::from_secs(1), 2, win));
    }
}
