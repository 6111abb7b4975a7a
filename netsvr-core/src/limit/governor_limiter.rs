//! The default `RateLimiter`: governor's GCRA for the global rates, a fixed window per
//! connection, and limits swappable at runtime through arc-swap.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};

use super::{Limits, MessageWindow, RateLimiter, Verdict};

struct Active {
    limits: Limits,
    opens: Option<DefaultDirectRateLimiter>,
    /// Per client address; its state is forgotten by `housekeeping` once idle.
    opens_by_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    messages: Option<DefaultDirectRateLimiter>,
}

impl Active {
    fn new(limits: Limits) -> Self {
        let direct = |per_sec: u32| {
            NonZeroU32::new(per_sec).map(|n| DefaultDirectRateLimiter::direct(Quota::per_second(n)))
        };
        Self {
            limits,
            opens: direct(limits.opens_per_sec),
            opens_by_ip: NonZeroU32::new(limits.opens_per_ip_per_sec)
                .map(|n| DefaultKeyedRateLimiter::keyed(Quota::per_second(n))),
            messages: direct(limits.messages_per_sec),
        }
    }
}

/// Governor-backed limiter. Cheap to share; `set_limits` swaps all limits atomically.
pub struct GovernorLimiter {
    active: ArcSwap<Active>,
}

impl std::fmt::Debug for GovernorLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernorLimiter")
            .field("limits", &self.active.load().limits)
            .finish()
    }
}

impl GovernorLimiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            active: ArcSwap::from_pointee(Active::new(limits)),
        }
    }
}

impl Default for GovernorLimiter {
    fn default() -> Self {
        Self::new(Limits::unlimited())
    }
}

impl RateLimiter for GovernorLimiter {
    fn check_open(&self, peer: IpAddr) -> bool {
        let active = self.active.load();
        // The address's own rate first, so one busy address does not use up the global one.
        active
            .opens_by_ip
            .as_ref()
            .is_none_or(|l| l.check_key(&peer).is_ok())
            && active.opens.as_ref().is_none_or(|l| l.check().is_ok())
    }

    fn housekeeping(&self) {
        if let Some(by_ip) = &self.active.load().opens_by_ip {
            by_ip.retain_recent();
            by_ip.shrink_to_fit();
        }
    }

    fn check_message(&self, window: &mut MessageWindow, now: Instant) -> Verdict {
        let active = self.active.load();
        let limits = &active.limits;
        if limits.conn_messages > 0 {
            let span = if limits.conn_window.is_zero() {
                Duration::from_secs(1)
            } else {
                limits.conn_window
            };
            if !window.admit(now, limits.conn_messages, span) {
                return Verdict::ConnectionLimit;
            }
        }
        if active.messages.as_ref().is_some_and(|l| l.check().is_err()) {
            return Verdict::GlobalLimit;
        }
        Verdict::Allow
    }

    fn limits(&self) -> Option<Limits> {
        Some(self.active.load().limits)
    }

    fn set_limits(&self, limits: Limits) -> bool {
        self.active.store(Arc::new(Active::new(limits)));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn open_rate_is_enforced_and_swappable() {
        let limiter = GovernorLimiter::new(Limits::unlimited().opens_per_sec(2));
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert!(limiter.check_open(ip));
        assert!(limiter.check_open(ip));
        assert!(!limiter.check_open(ip));
        assert!(limiter.set_limits(Limits::unlimited()));
        assert!(limiter.check_open(ip));
        assert_eq!(limiter.limits(), Some(Limits::unlimited()));
    }

    #[test]
    fn per_address_open_rate_leaves_other_addresses_alone() {
        let limiter = GovernorLimiter::new(Limits::unlimited().opens_per_ip_per_sec(2));
        let (a, b) = (
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)),
        );
        assert!(limiter.check_open(a));
        assert!(limiter.check_open(a));
        assert!(!limiter.check_open(a), "a's third open within the second");
        assert!(limiter.check_open(b), "b has its own budget");
        limiter.housekeeping();
    }

    #[test]
    fn per_connection_then_global() {
        let limiter = GovernorLimiter::new(
            Limits::unlimited()
                .messages_per_sec(3)
                .per_connection(2, Duration::from_secs(60)),
        );
        let now = Instant::now();
        let (mut a, mut b) = (MessageWindow::default(), MessageWindow::default());
        assert_eq!(limiter.check_message(&mut a, now), Verdict::Allow);
        assert_eq!(limiter.check_message(&mut a, now), Verdict::Allow);
        assert_eq!(limiter.check_message(&mut a, now), Verdict::ConnectionLimit);
        assert_eq!(limiter.check_message(&mut b, now), Verdict::Allow);
        assert_eq!(limiter.check_message(&mut b, now), Verdict::GlobalLimit);
    }
}
