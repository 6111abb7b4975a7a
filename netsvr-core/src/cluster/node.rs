//! Node identity (the 12-hex prefix every uniqId of a node starts with) and the lease record
//! a node keeps in the engine.

use std::fmt;
use std::str::FromStr;

use crate::id::{ParseUniqIdError, UniqId};

/// A node's identity: the address part of the uniqIds it makes (IPv4 + port, 6 bytes),
/// shown as 12 lowercase hex characters, exactly netsvr's node prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId([u8; 6]);

impl NodeId {
    /// The node that made `id`.
    pub fn of(id: &UniqId) -> Self {
        let mut out = [0u8; 6];
        out.copy_from_slice(&id.as_bytes()[..6]);
        Self(out)
    }

    /// From the 6 raw bytes.
    pub const fn from_bytes(bytes: [u8; 6]) -> Self {
        Self(bytes)
    }

    /// The 6 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl FromStr for NodeId {
    type Err = ParseUniqIdError;

    /// Parses 12 hex characters (a uniqId's prefix).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 12 {
            return Err(ParseUniqIdError);
        }
        let padded = format!("{s}0000000000000000");
        let id: UniqId = padded.parse()?;
        Ok(Self::of(&id))
    }
}

/// A node's lease record as the engine keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeRecord {
    /// The node.
    pub id: NodeId,
    /// Where its clients connect (for operators; free text).
    pub addr: String,
    /// Unix milliseconds at which the node started.
    pub started_ms: u64,
    /// Unix milliseconds of its last renewal.
    pub heartbeat_ms: u64,
    /// A random number drawn at start: a restarted node with the same id is a new
    /// incarnation, so receivers reset what they remember of its sequence numbers.
    pub incarnation: u64,
}

impl NodeRecord {
    /// A record from its parts.
    pub fn new(id: NodeId, addr: String, started_ms: u64, incarnation: u64) -> Self {
        Self {
            id,
            addr,
            started_ms,
            heartbeat_ms: started_ms,
            incarnation,
        }
    }

    /// The stored text form: `id|started|heartbeat|incarnation|addr`.
    pub fn encode(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            self.id, self.started_ms, self.heartbeat_ms, self.incarnation, self.addr
        )
    }

    /// Parses [`NodeRecord::encode`]'s form; `None` when it is not one.
    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.splitn(5, '|');
        let id = parts.next()?.parse().ok()?;
        let started_ms = parts.next()?.parse().ok()?;
        let heartbeat_ms = parts.next()?.parse().ok()?;
        let incarnation = parts.next()?.parse().ok()?;
        let addr = parts.next()?.to_owned();
        Some(Self {
            id,
            addr,
            started_ms,
            heartbeat_ms,
            incarnation,
        })
    }
}

/// Unix milliseconds now.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_is_the_uniq_id_prefix() {
        let id: UniqId = "7f00000117ae65432100aabbccdd".parse().unwrap();
        let node = NodeId::of(&id);
        assert_eq!(node.to_string(), "7f00000117ae");
        assert_eq!(node.to_string(), id.node_prefix());
        assert_eq!("7f00000117ae".parse::<NodeId>(), Ok(node));
        assert!("7f00000117a".parse::<NodeId>().is_err());
        assert!("7f00000117aeff".parse::<NodeId>().is_err());
        assert!("zz00000117ae".parse::<NodeId>().is_err());
    }

    #[test]
    fn record_round_trips() {
        let node = "7f00000117ae".parse().unwrap();
        let mut record = NodeRecord::new(node, "127.0.0.1:6060|x".into(), 17, 99);
        record.heartbeat_ms = 21;
        assert_eq!(NodeRecord::decode(&record.encode()), Some(record));
        assert_eq!(NodeRecord::decode("7f00000117ae|1|2"), None);
        assert_eq!(NodeRecord::decode("nothex000000|1|2|3|a"), None);
    }
}
