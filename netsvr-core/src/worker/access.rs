//! Who may use the worker and task ports: an allow-list of peer networks and an optional
//! shared secret that must be a business connection's first frame. Both are off by default,
//! as in netsvr.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use netsvr_protocol::Frame;

/// An address block, `10.0.0.0/8` or `::1/128`; a bare address is a block of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerNet {
    addr: IpAddr,
    prefix: u8,
}

impl PeerNet {
    /// Whether `ip` is in this block (an IPv4-mapped IPv6 peer counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for PeerNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an address or address/prefix"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix must be 0 to {max}"))?,
        };
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for PeerNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Whether `frame` (a business connection's first) carries exactly `secret` as its payload.
/// Compared in constant time for equal lengths.
pub(crate) fn secret_matches(frame: &Frame, secret: &[u8]) -> bool {
    let Frame::Command { cmd, body } = frame else {
        return false;
    };
    let given = cmd.to_be_bytes().into_iter().chain(body.iter().copied());
    if 4 + body.len() != secret.len() {
        return false;
    }
    given
        .zip(secret.iter())
        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn blocks_contain_their_addresses_only() {
        let net: PeerNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(
            net.contains("::ffff:10.1.0.9".parse().unwrap()),
            "IPv4-mapped"
        );
        let one: PeerNet = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let all: PeerNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        let v6: PeerNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert_eq!(v6.to_string(), "fd00::/8");
        for bad in ["10.0.0.0/33", "nope", "::/129", "1.2.3.4/x"] {
            assert!(bad.parse::<PeerNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_the_exact_secret_matches() {
        let secret = b"0123456789abcdef";
        let frame = |payload: &[u8]| Frame::Command {
            cmd: u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]),
            body: Bytes::copy_from_slice(&payload[4..]),
        };
        assert!(secret_matches(&frame(secret), secret));
        assert!(!secret_matches(&frame(b"0123456789abcdeX"), secret));
        assert!(!secret_matches(&frame(b"0123456789abcdef0"), secret));
        assert!(!secret_matches(&frame(b"0123456789abcde"), secret));
        assert!(!secret_matches(&Frame::Heartbeat, secret));
    }
}
