//! Open connections per client IP address, for `max_connections_per_ip`: striped counters
//! that hold an entry only while an address has connections.

use std::collections::HashMap;
use std::net::IpAddr;

use parking_lot::Mutex;

/// Stripes of the counter map (a power of two).
const STRIPES: usize = 64;

/// Connections per IP address.
pub(crate) struct PerIp {
    stripes: Box<[Mutex<HashMap<IpAddr, u32, ahash::RandomState>>]>,
    hasher: ahash::RandomState,
}

impl PerIp {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::default()).collect(),
            hasher: ahash::RandomState::new(),
        }
    }

    fn stripe(&self, ip: &IpAddr) -> &Mutex<HashMap<IpAddr, u32, ahash::RandomState>> {
        let at = usize::try_from(self.hasher.hash_one(ip)).unwrap_or(0) & (STRIPES - 1);
        &self.stripes[at]
    }

    /// Counts one more connection of `ip` unless it already has `max`.
    pub(crate) fn try_add(&self, ip: IpAddr, max: u32) -> bool {
        let mut map = self.stripe(&ip).lock();
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            if *n == 0 {
                map.remove(&ip);
            }
            return false;
        }
        *n += 1;
        true
    }

    /// Counts one connection of `ip` less; forgets the address at zero.
    pub(crate) fn remove(&self, ip: IpAddr) {
        let mut map = self.stripe(&ip).lock();
        if let Some(n) = map.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }

    /// Addresses with at least one connection (for tests).
    #[cfg(test)]
    pub(crate) fn addresses(&self) -> usize {
        self.stripes.iter().map(|s| s.lock().len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_up_to_the_limit_and_forgets_idle_addresses() {
        let per_ip = PerIp::new();
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "::1".parse().unwrap();
        assert!(per_ip.try_add(a, 2));
        assert!(per_ip.try_add(a, 2));
        assert!(!per_ip.try_add(a, 2), "a third connection of a is refused");
        assert!(per_ip.try_add(b, 2), "b has its own count");
        per_ip.remove(a);
        assert!(per_ip.try_add(a, 2), "a place came free");
        for _ in 0..2 {
            per_ip.remove(a);
        }
        per_ip.remove(b);
        assert_eq!(per_ip.addresses(), 0, "no entry is kept at zero");
        per_ip.remove(b);
        assert_eq!(per_ip.addresses(), 0, "a stray remove does not underflow");
        assert!(!per_ip.try_add(a, 0));
        assert_eq!(
            per_ip.addresses(),
            0,
            "a refused first connection leaves nothing"
        );
    }
}
