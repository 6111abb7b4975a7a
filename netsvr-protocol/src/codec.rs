//! The sans-IO frame codec of the worker and task ports: a `u32` big-endian length, then
//! either the heartbeat literal or a `u32` big-endian command id and a protobuf body.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// netsvr's default frame size limit: 2 MiB.
pub const DEFAULT_MAX_FRAME: usize = 2 * 1024 * 1024;

/// Bytes of the length prefix.
pub const LEN_PREFIX: usize = 4;
/// Bytes of the command id.
pub const CMD_LEN: usize = 4;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The heartbeat literal. The gateway never answers it.
    Heartbeat,
    /// A command id and its protobuf body (possibly empty).
    Command {
        /// The command id (see [`crate::cmd`]).
        cmd: u32,
        /// The protobuf body.
        body: Bytes,
    },
}

/// A frame that cannot be accepted; the connection that sent it should be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The declared length is over the limit (checked before buffering the body).
    TooLarge {
        /// Declared frame length.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The frame is shorter than a command id and is not the heartbeat.
    TooShort {
        /// Declared frame length.
        len: usize,
    },
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge { len, limit } => {
                write!(f, "frame of {len} bytes is over the {limit}-byte limit")
            }
            Self::TooShort { len } => {
                write!(
                    f,
                    "frame of {len} bytes is neither a heartbeat nor a command"
                )
            }
        }
    }
}

impl std::error::Error for CodecError {}

/// Decoder and encoder settings shared by both ends.
#[derive(Debug, Clone)]
pub struct Codec {
    max_frame: usize,
    heartbeat: Bytes,
}

impl Default for Codec {
    fn default() -> Self {
        Self::new(
            DEFAULT_MAX_FRAME,
            Bytes::from_static(crate::DEFAULT_HEARTBEAT),
        )
    }
}

impl Codec {
    /// A codec with a frame size limit (length prefix excluded) and a heartbeat literal.
    pub fn new(max_frame: usize, heartbeat: Bytes) -> Self {
        Self {
            max_frame,
            heartbeat,
        }
    }

    /// The frame size limit.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// The heartbeat literal.
    pub fn heartbeat(&self) -> &Bytes {
        &self.heartbeat
    }

    /// Takes one frame off the front of `buf`, or `Ok(None)` when more bytes are needed
    /// (nothing is consumed then). The declared length is checked before any body is
    /// buffered, so a huge length fails at once. Never panics.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        let Some(prefix) = buf.get(..LEN_PREFIX) else {
            return Ok(None);
        };
        let mut len_bytes = [0u8; LEN_PREFIX];
        len_bytes.copy_from_slice(prefix);
        let len = usize::try_from(u32::from_be_bytes(len_bytes)).unwrap_or(usize::MAX);
        if len > self.max_frame {
            return Err(CodecError::TooLarge {
                len,
                limit: self.max_frame,
            });
        }
        let Some(total) = LEN_PREFIX.checked_add(len) else {
            return Err(CodecError::TooLarge {
                len,
                limit: self.max_frame,
            });
        };
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        buf.advance(LEN_PREFIX);
        let mut frame = buf.split_to(len);
        if frame[..] == self.heartbeat[..] {
            return Ok(Some(Frame::Heartbeat));
        }
        if len < CMD_LEN {
            return Err(CodecError::TooShort { len });
        }
        let cmd = frame.get_u32();
        Ok(Some(Frame::Command {
            cmd,
            body: frame.freeze(),
        }))
    }

    /// Appends the heartbeat frame.
    pub fn encode_heartbeat(&self, out: &mut BytesMut) {
        put_len(out, self.heartbeat.len());
        out.put_slice(&self.heartbeat);
    }
}

fn put_len(out: &mut BytesMut, len: usize) {
    // Frames are bounded far below 4 GiB by every limit in use; saturate rather than wrap.
    out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
}

/// Appends a command frame: length, command id, the message's protobuf encoding.
pub fn encode(cmd: u32, message: &impl prost::Message, out: &mut BytesMut) {
    let body = message.encoded_len();
    out.reserve(LEN_PREFIX + CMD_LEN + body);
    put_len(out, CMD_LEN + body);
    out.put_u32(cmd);
    // Cannot fail: capacity was reserved above.
    let _ = message.encode(out);
}

/// Appends a command frame whose body is already encoded.
pub fn encode_raw(cmd: u32, body: &[u8], out: &mut BytesMut) {
    out.reserve(LEN_PREFIX + CMD_LEN + body.len());
    put_len(out, CMD_LEN + body.len());
    out.put_u32(cmd);
    out.put_slice(body);
}

/// A command frame as its own buffer.
pub fn encode_to_bytes(cmd: u32, message: &impl prost::Message) -> Bytes {
    let mut out = BytesMut::new();
    encode(cmd, message, &mut out);
    out.freeze()
}

/// The payload a queue sink stores for an event: command id + protobuf body, no length
/// prefix (PROTOCOL.md §8).
pub fn encode_unframed(cmd: u32, message: &impl prost::Message) -> Bytes {
    let mut out = BytesMut::with_capacity(CMD_LEN + message.encoded_len());
    out.put_u32(cmd);
    let _ = message.encode(&mut out);
    out.freeze()
}
