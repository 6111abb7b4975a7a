//! The cross-node envelope: a fixed 45-byte header, then a netsvr command id and its protobuf
//! body, exactly as the task port carries them. Pure: bytes in, envelope or error out.
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version (1) |
//! | 1 | kind: 1 command, 2 query, 3 reply |
//! | 1 | flags: bits 0–1 the frame opcode a send forces (0 the node's default, 1 text, 2 binary) |
//! | 6 | origin node id |
//! | 8 | origin incarnation (BE) |
//! | 8 | sequence number, per origin incarnation (BE) |
//! | 8 | request id (queries and replies; 0 for commands) (BE) |
//! | 8 | unix milliseconds at publish (BE) |
//! | 4 | netsvr command id (BE) |
//! | … | protobuf body |

use bytes::{BufMut, Bytes, BytesMut};

use super::node::NodeId;

/// The envelope format version this code writes and reads.
pub const VERSION: u8 = 1;
/// Header length before the command id.
const FIXED: usize = 1 + 1 + 1 + 6 + 8 + 8 + 8 + 8;
/// Header length including the command id.
pub const HEADER_LEN: usize = FIXED + 4;

/// What an envelope carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A command to apply.
    Command = 1,
    /// A query to answer (reply to the origin's channel).
    Query = 2,
    /// The answer to a query this node asked.
    Reply = 3,
}

/// The frame opcode a forwarded send forces (netsvr's commands have no such field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// The receiving node's configured downstream opcode.
    Default = 0,
    /// A text frame.
    Text = 1,
    /// A binary frame.
    Binary = 2,
}

/// A decoded envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Command, query or reply.
    pub kind: Kind,
    /// The opcode a send forces.
    pub opcode: Opcode,
    /// The node that published it.
    pub origin: NodeId,
    /// The origin's incarnation.
    pub incarnation: u64,
    /// Its sequence number within that incarnation.
    pub seq: u64,
    /// The query it asks or answers (0 for commands).
    pub request: u64,
    /// Unix milliseconds at publish.
    pub sent_ms: u64,
    /// The netsvr command id.
    pub cmd: u32,
    /// The protobuf body.
    pub body: Bytes,
}

/// Why bytes are not an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Shorter than the header.
    #[error("envelope of {0} bytes is shorter than its {HEADER_LEN}-byte header")]
    Short(usize),
    /// A version this code does not read.
    #[error("envelope version {0} is not supported")]
    Version(u8),
    /// An unknown kind.
    #[error("unknown envelope kind {0}")]
    Kind(u8),
    /// Unknown flag bits.
    #[error("unknown envelope flags {0:#04x}")]
    Flags(u8),
}

impl Envelope {
    /// Encodes the header and body into one buffer (done once per message).
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(HEADER_LEN + self.body.len());
        out.put_u8(VERSION);
        out.put_u8(self.kind as u8);
        out.put_u8(self.opcode as u8);
        out.put_slice(self.origin.as_bytes());
        out.put_u64(self.incarnation);
        out.put_u64(self.seq);
        out.put_u64(self.request);
        out.put_u64(self.sent_ms);
        out.put_u32(self.cmd);
        out.put_slice(&self.body);
        out.freeze()
    }

    /// Decodes an envelope; the body shares `bytes`.
    pub fn decode(bytes: &Bytes) -> Result<Self, EnvelopeError> {
        if bytes.len() < HEADER_LEN {
            return Err(EnvelopeError::Short(bytes.len()));
        }
        let b = &bytes[..];
        if b[0] != VERSION {
            return Err(EnvelopeError::Version(b[0]));
        }
        let kind = match b[1] {
            1 => Kind::Command,
            2 => Kind::Query,
            3 => Kind::Reply,
            other => return Err(EnvelopeError::Kind(other)),
        };
        let opcode = match b[2] {
            0 => Opcode::Default,
            1 => Opcode::Text,
            2 => Opcode::Binary,
            other => return Err(EnvelopeError::Flags(other)),
        };
        let mut origin = [0u8; 6];
        origin.copy_from_slice(&b[3..9]);
        let u64_at = |at: usize| {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&b[at..at + 8]);
            u64::from_be_bytes(raw)
        };
        let mut cmd = [0u8; 4];
        cmd.copy_from_slice(&b[FIXED..HEADER_LEN]);
        Ok(Self {
            kind,
            opcode,
            origin: NodeId::from_bytes(origin),
            incarnation: u64_at(9),
            seq: u64_at(17),
            request: u64_at(25),
            sent_ms: u64_at(33),
            cmd: u32::from_be_bytes(cmd),
            body: bytes.slice(HEADER_LEN..),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            kind: Kind::Query,
            opcode: Opcode::Binary,
            origin: NodeId::from_bytes([127, 0, 0, 1, 0x17, 0xae]),
            incarnation: u64::MAX - 3,
            seq: 42,
            request: 7,
            sent_ms: 1_700_000_000_000,
            cmd: 900_003_003,
            body: Bytes::from_static(b"\x0a\x02hi"),
        }
    }

    #[test]
    fn round_trips() {
        let envelope = sample();
        let bytes = envelope.encode();
        assert_eq!(bytes.len(), HEADER_LEN + 4);
        assert_eq!(Envelope::decode(&bytes), Ok(envelope));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let bytes = sample().encode();
        assert_eq!(
            Envelope::decode(&bytes.slice(..HEADER_LEN - 1)),
            Err(EnvelopeError::Short(HEADER_LEN - 1))
        );
        let mut bad = bytes.to_vec();
        bad[0] = 2;
        assert_eq!(
            Envelope::decode(&Bytes::from(bad)),
            Err(EnvelopeError::Version(2))
        );
        let mut bad = bytes.to_vec();
        bad[1] = 9;
        assert_eq!(
            Envelope::decode(&Bytes::from(bad)),
            Err(EnvelopeError::Kind(9))
        );
        let mut bad = bytes.to_vec();
        bad[2] = 4;
        assert_eq!(
            Envelope::decode(&Bytes::from(bad)),
            Err(EnvelopeError::Flags(4))
        );
    }
}
