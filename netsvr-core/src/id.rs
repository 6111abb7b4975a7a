//! Connection identity: netsvr's 28-hex `UniqId` and the per-node generator.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

/// A connection's identity in netsvr's format: 14 bytes shown as 28 lowercase hex characters.
///
/// Layout (PROTOCOL.md §6): the node's IPv4 address (4 bytes), its port (2 bytes, big-endian),
/// unix seconds at creation (4 bytes, big-endian) and a per-node counter (4 bytes, big-endian).
/// The first 12 hex characters name the node that owns the connection.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UniqId([u8; 14]);

impl UniqId {
    /// Length of the textual form.
    pub const TEXT_LEN: usize = 28;

    /// Builds an id from its 14 raw bytes.
    pub const fn from_bytes(bytes: [u8; 14]) -> Self {
        Self(bytes)
    }

    /// The 14 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 14] {
        &self.0
    }

    /// The address of the node that created this id.
    pub fn node_addr(&self) -> SocketAddrV4 {
        let [a, b, c, d, p0, p1, ..] = self.0;
        SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), u16::from_be_bytes([p0, p1]))
    }

    /// The node prefix as netsvr's SDKs route by it: the first 12 hex characters.
    pub fn node_prefix(&self) -> String {
        let mut s = self.to_string();
        s.truncate(12);
        s
    }

    /// Unix seconds at which the id was made.
    pub fn timestamp(&self) -> u32 {
        let [_, _, _, _, _, _, t0, t1, t2, t3, ..] = self.0;
        u32::from_be_bytes([t0, t1, t2, t3])
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl fmt::Display for UniqId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 28];
        for (i, byte) in self.0.iter().enumerate() {
            out[2 * i] = HEX[usize::from(byte >> 4)];
            out[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
        }
        // The buffer holds ASCII hex digits only.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for UniqId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UniqId({self})")
    }
}

/// The text was not 28 hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a uniqId is 28 hex characters")]
#[non_exhaustive]
pub struct ParseUniqIdError;

impl FromStr for UniqId {
    type Err = ParseUniqIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.as_bytes();
        if text.len() != Self::TEXT_LEN {
            return Err(ParseUniqIdError);
        }
        let mut out = [0u8; 14];
        for (slot, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
            let hi = hex_value(pair[0]).ok_or(ParseUniqIdError)?;
            let lo = hex_value(pair[1]).ok_or(ParseUniqIdError)?;
            *slot = (hi << 4) | lo;
        }
        Ok(Self(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Makes unique ids for one node: a fixed prefix, the time, and a counter with a random start.
#[derive(Debug)]
pub(crate) struct UniqIdGenerator {
    prefix: [u8; 6],
    counter: AtomicU32,
}

impl UniqIdGenerator {
    pub(crate) fn new(node: SocketAddrV4) -> Self {
        let mut prefix = [0u8; 6];
        prefix[..4].copy_from_slice(&node.ip().octets());
        prefix[4..].copy_from_slice(&node.port().to_be_bytes());
        Self {
            prefix,
            counter: AtomicU32::new(rand::random()),
        }
    }

    /// The next id, stamped with `unix_secs`.
    pub(crate) fn next(&self, unix_secs: u32) -> UniqId {
        let count = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut out = [0u8; 14];
        out[..6].copy_from_slice(&self.prefix);
        out[6..10].copy_from_slice(&unix_secs.to_be_bytes());
        out[10..].copy_from_slice(&count.to_be_bytes());
        UniqId(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_text_form() {
        let generator = UniqIdGenerator::new(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 6062));
        let id = generator.next(0x6543_2100);
        let text = id.to_string();
        assert_eq!(text.len(), 28);
        assert!(text.starts_with("7f000001"), "{text}");
        assert_eq!(&text[8..12], "17ae"); // 6062 = 0x17ae
        assert_eq!(&text[12..20], "65432100");
        assert_eq!(id.node_prefix(), "7f00000117ae");
        assert_eq!(id.node_addr().port(), 6062);
        assert_eq!(id.timestamp(), 0x6543_2100);
        assert_eq!(text.parse::<UniqId>(), Ok(id));
        assert_eq!(text.to_uppercase().parse::<UniqId>(), Ok(id));
    }

    #[test]
    fn consecutive_ids_differ() {
        let generator = UniqIdGenerator::new(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1));
        let a = generator.next(5);
        let b = generator.next(5);
        assert_ne!(a, b);
    }

    #[test]
    fn rejects_bad_text() {
        assert!("".parse::<UniqId>().is_err());
        assert!("zz000001178e65432100aabbccdd".parse::<UniqId>().is_err());
        assert!("7f000001178e65432100aabbccd".parse::<UniqId>().is_err());
        assert!("7f000001178e65432100aabbccddé".parse::<UniqId>().is_err());
    }
}
