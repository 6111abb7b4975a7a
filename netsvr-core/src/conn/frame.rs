//! An outgoing frame as queued: plain bytes, or a data message that every connection which
//! negotiated permessage-deflate gets compressed, compressed once and shared.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::deflate::Deflater;
use crate::wire::{self, OpCode};

/// The window of the shared compressed frame: what every client gets unless it asked the
/// gateway for a smaller one (`server_max_window_bits`).
const SHARED_WINDOW_BITS: u8 = 15;
/// A kept compression buffer larger than this is given back after use.
const KEEP_SCRATCH: usize = 256 * 1024;

thread_local! {
    /// One compressor per worker thread, remade when a message needs other parameters.
    static DEFLATER: RefCell<Option<Deflater>> = const { RefCell::new(None) };
    /// The compressed payload before its header is put in front.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// How one connection's outgoing messages are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Compression {
    /// zlib level, 1-9.
    pub(crate) level: u32,
    /// The LZ77 window the client allows (`server_max_window_bits`), 9-15.
    pub(crate) window_bits: u8,
    /// Send a message plain when compression would not shrink it.
    pub(crate) only_if_smaller: bool,
}

/// A frame in a connection's outbound queue.
#[derive(Debug, Clone)]
pub(crate) enum Frame {
    /// Bytes written as they are (control frames, small or uncompressible messages).
    Plain(Bytes),
    /// A data message shared by a fan-out; compressed on first demand.
    Deflatable(Arc<Deflatable>),
}

impl From<Bytes> for Frame {
    fn from(bytes: Bytes) -> Self {
        Self::Plain(bytes)
    }
}

impl Frame {
    /// The plain frame's length (what the slow-consumer accounting counts).
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Plain(bytes) => bytes.len(),
            Self::Deflatable(message) => message.plain.len(),
        }
    }

    /// The bytes to write to a connection: the plain frame, or (for a connection that
    /// negotiated permessage-deflate) the compressed one. Every connection with the full
    /// window shares one compressed frame, made by the first that needs it.
    pub(crate) fn resolve(self, deflate: Option<Compression>) -> Bytes {
        match (self, deflate) {
            (Self::Plain(bytes), _) => bytes,
            (Self::Deflatable(message), None) => message.plain.clone(),
            (Self::Deflatable(message), Some(how)) if how.window_bits >= SHARED_WINDOW_BITS => {
                let compressed = message
                    .compressed
                    .get_or_init(|| compress(message.opcode, message.payload(), how));
                compressed.clone().unwrap_or_else(|| message.plain.clone())
            }
            (Self::Deflatable(message), Some(how)) => {
                compress(message.opcode, message.payload(), how)
                    .unwrap_or_else(|| message.plain.clone())
            }
        }
    }
}

/// A data message with its plain frame, and its compressed frame once someone needed it.
#[derive(Debug)]
pub(crate) struct Deflatable {
    plain: Bytes,
    header_len: usize,
    opcode: OpCode,
    /// `Some(None)`: compression would not have saved anything.
    compressed: OnceLock<Option<Bytes>>,
}

impl Deflatable {
    /// Wraps a plain frame (FIN set, unmasked) of `payload_len` payload bytes.
    pub(crate) fn new(plain: Bytes, opcode: OpCode, payload_len: usize) -> Self {
        Self {
            header_len: plain.len().saturating_sub(payload_len),
            plain,
            opcode,
            compressed: OnceLock::new(),
        }
    }

    fn payload(&self) -> &[u8] {
        self.plain.get(self.header_len..).unwrap_or_default()
    }
}

/// Compresses one message into a frame with RSV1 set; `None` when it would not be smaller
/// (and `how` says to send such messages plain).
fn compress(opcode: OpCode, payload: &[u8], how: Compression) -> Option<Bytes> {
    DEFLATER.with_borrow_mut(|slot| {
        let deflater = match slot {
            Some(d) if d.params() == (how.level, how.window_bits) => d,
            _ => slot.insert(Deflater::new(how.level, how.window_bits)),
        };
        SCRATCH.with_borrow_mut(|scratch| {
            scratch.clear();
            let frame = deflater
                .compress_into(payload, scratch, how.only_if_smaller)
                .then(|| wire::encode_compressed_frame(opcode, scratch));
            if scratch.capacity() > KEEP_SCRATCH {
                *scratch = Vec::new();
            }
            frame
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::Inflater;

    fn message(payload: &[u8]) -> Frame {
        let plain = wire::encode_frame(OpCode::Text, payload);
        Frame::Deflatable(Arc::new(Deflatable::new(
            plain,
            OpCode::Text,
            payload.len(),
        )))
    }

    fn how(level: u32, window_bits: u8) -> Option<Compression> {
        Some(Compression {
            level,
            window_bits,
            only_if_smaller: true,
        })
    }

    #[test]
    fn compressed_once_and_shared() {
        let payload = "hello netsvr ".repeat(100);
        let frame = message(payload.as_bytes());
        let a = frame.clone().resolve(how(3, 15));
        let b = frame.clone().resolve(how(3, 15));
        assert_eq!(
            a.as_ptr(),
            b.as_ptr(),
            "the same bytes serve every recipient"
        );
        assert_eq!(a[0], 0xC1, "FIN + RSV1 + text");
        let plain = frame.clone().resolve(None);
        assert_eq!(plain[0], 0x81);
        assert_eq!(plain.len(), frame.len());
        let (len, at) = match a[1] {
            126 => (usize::from(u16::from_be_bytes([a[2], a[3]])), 4),
            n => (usize::from(n), 2),
        };
        assert_eq!(a.len(), at + len);
        let back = Inflater::new().inflate(&a[at..], 10_000, true).unwrap();
        assert_eq!(back, payload.as_bytes());
        // A client that asked for a smaller window gets its own compression.
        let small = frame.resolve(how(3, 9));
        assert_ne!(small.as_ptr(), a.as_ptr());
        assert_eq!(small[0], 0xC1);
    }

    #[test]
    fn uncompressible_messages_stay_plain() {
        let payload: Vec<u8> = (0..=255).collect();
        let frame = message(&payload);
        let got = frame.clone().resolve(how(9, 15));
        assert_eq!(got[0], 0x81);
        assert_eq!(got.len(), frame.len());
    }
}
