//! Sans-IO RFC 6455 WebSocket frame codec, server role: a validating frame decoder and frame encoders.
//!
//! The codec never touches a socket, a clock or an async runtime. The caller
//! reads bytes into its own buffer, hands them to [`FrameDecoder::decode`],
//! drops the `consumed` prefix and calls again; outgoing frames are built with
//! [`encode_frame`] / [`encode_frame_into`] / [`encode_close`].
//!
//! [`encode_client_frame`] and [`encode_client_frame_raw`] build masked
//! (client-to-server) frames, for tests, fuzzing and load generation.

use core::fmt;

mod decoder;
mod encoder;
mod utf8;

#[cfg(test)]
mod tests;

/// Bit masks and limits of the RFC 6455 frame header, shared by decoder and encoder.
mod frame_bits {
    /// FIN bit of the first header byte.
    pub(super) const FIN_BIT: u8 = 0x80;
    /// RSV1, RSV2 and RSV3 bits of the first header byte.
    pub(super) const RSV_BITS: u8 = 0x70;
    /// RSV1: "this message is compressed" under permessage-deflate (RFC 7692).
    pub(super) const RSV1_BIT: u8 = 0x40;
    /// Opcode bits of the first header byte.
    pub(super) const OPCODE_BITS: u8 = 0x0F;
    /// MASK bit of the second header byte.
    pub(super) const MASK_BIT: u8 = 0x80;
    /// 7-bit payload length bits of the second header byte.
    pub(super) const LEN_BITS: u8 = 0x7F;
    /// 7-bit length value announcing a 16-bit extended length.
    pub(super) const LEN_16: u8 = 126;
    /// 7-bit length value announcing a 64-bit extended length.
    pub(super) const LEN_64: u8 = 127;
    /// The largest payload a control frame may carry.
    pub(super) const MAX_CONTROL_PAYLOAD: usize = 125;
    /// Base header (2) + 64-bit extended length (8) + masking key (4).
    pub(super) const MAX_HEADER_LEN: usize = 14;
    /// The size of a close frame's status code.
    pub(super) const CLOSE_CODE_LEN: usize = 2;
    /// Payloads at least this long are unmasked with a fused copy+XOR pass.
    pub(super) const FUSED_UNMASK_MIN: usize = 1024;
    /// Bytes masked per step: whole key periods, so each block starts at key offset 0.
    pub(super) const MASK_BLOCK: usize = 32;
}

pub use decoder::{Decoded, DecoderConfig, FrameDecoder, Message};
pub use encoder::{
    encode_client_frame, encode_client_frame_raw, encode_close, encode_compressed_frame,
    encode_frame, encode_frame_into, max_header_len,
};

/// A frame opcode (RFC 6455 section 5.2). Reserved opcodes (3-7, 11-15) have no variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// `0x0`: a continuation fragment of a fragmented data message.
    Continuation = 0x0,
    /// `0x1`: the first (or only) frame of a UTF-8 text message.
    Text = 0x1,
    /// `0x2`: the first (or only) frame of a binary message.
    Binary = 0x2,
    /// `0x8`: a close control frame.
    Close = 0x8,
    /// `0x9`: a ping control frame.
    Ping = 0x9,
    /// `0xA`: a pong control frame.
    Pong = 0xA,
}

impl OpCode {
    /// Parses the low four bits of a frame's first byte; `None` for a reserved opcode.
    ///
    /// Bits above the low nibble must already be masked off: `from_u8(0x81)` is `None`.
    #[must_use]
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            0x0 => Some(Self::Continuation),
            0x1 => Some(Self::Text),
            0x2 => Some(Self::Binary),
            0x8 => Some(Self::Close),
            0x9 => Some(Self::Ping),
            0xA => Some(Self::Pong),
            _ => None,
        }
    }

    /// True for control opcodes (Close, Ping, Pong), which must not be fragmented
    /// and carry at most 125 payload bytes.
    #[must_use]
    pub const fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// The payload of a close frame that carried a status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The close status code (RFC 6455 section 7.4); always passes [`is_valid_close_code`]
    /// when produced by the decoder.
    pub code: u16,
    /// The UTF-8 close reason, possibly empty.
    pub reason: String,
}

/// Whether `code` may appear in a close frame received from a peer.
///
/// Accepts 1000-1003, 1007-1014 and the registered/private range 3000-4999.
/// Rejects codes below 1000, the "must not be sent" codes 1004, 1005, 1006 and
/// 1015, the unassigned 1016-2999, and everything from 5000 up.
#[must_use]
pub const fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A violation of RFC 6455 by the peer. The connection must be failed, with
/// a close frame carrying [`ProtocolError::close_code`] where possible.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// An unmasked frame while masking is required (1002).
    UnmaskedFrame,
    /// RSV1, RSV2 or RSV3 set without a negotiated extension (1002).
    ReservedBitsSet,
    /// A reserved opcode, 3-7 or 11-15 (1002).
    ReservedOpCode(u8),
    /// A control frame without FIN (1002).
    FragmentedControlFrame,
    /// A control frame whose payload exceeds 125 bytes (1002).
    ControlFrameTooLarge,
    /// A continuation frame with no fragmented message in progress (1002).
    UnexpectedContinuation,
    /// A new Text or Binary frame while a fragmented message is in progress (1002).
    ExpectedContinuation,
    /// A 64-bit payload length with its most significant bit set (1002).
    InvalidLength,
    /// The message would exceed [`DecoderConfig::max_message_size`] (1009).
    MessageTooBig {
        /// The message size so far plus the offending frame's payload length.
        size: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A text message that is not valid UTF-8 (1007).
    InvalidUtf8,
    /// A close frame with a 1-byte payload (1002).
    InvalidClosePayload,
    /// A close frame with a status code that may not be sent (1002).
    InvalidCloseCode(u16),
    /// A close frame whose reason is not valid UTF-8 (1007).
    InvalidCloseReason,
}

impl ProtocolError {
    /// The close status code to fail the connection with: 1002 (protocol
    /// error), 1007 (invalid UTF-8 in a text message or close reason) or 1009
    /// (message too big).
    #[must_use]
    pub const fn close_code(&self) -> u16 {
        match self {
            Self::MessageTooBig { .. } => 1009,
            Self::InvalidUtf8 | Self::InvalidCloseReason => 1007,
            Self::UnmaskedFrame
            | Self::ReservedBitsSet
            | Self::ReservedOpCode(_)
            | Self::FragmentedControlFrame
            | Self::ControlFrameTooLarge
            | Self::UnexpectedContinuation
            | Self::ExpectedContinuation
            | Self::InvalidLength
            | Self::InvalidClosePayload
            | Self::InvalidCloseCode(_) => 1002,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnmaskedFrame => f.write_str("client frame is not masked"),
            Self::ReservedBitsSet => f.write_str("reserved bits RSV1-3 are set"),
            Self::ReservedOpCode(op) => write!(f, "reserved opcode {op:#x}"),
            Self::FragmentedControlFrame => f.write_str("control frame without FIN"),
            Self::ControlFrameTooLarge => f.write_str("control frame payload exceeds 125 bytes"),
            Self::UnexpectedContinuation => {
                f.write_str("continuation frame without a message in progress")
            }
            Self::ExpectedContinuation => {
                f.write_str("new data frame while a fragmented message is in progress")
            }
            Self::InvalidLength => f.write_str("64-bit payload length has its top bit set"),
            Self::MessageTooBig { size, limit } => {
                write!(f, "message of {size} bytes exceeds the {limit}-byte limit")
            }
            Self::InvalidUtf8 => f.write_str("text message is not valid UTF-8"),
            Self::InvalidClosePayload => f.write_str("close frame payload of 1 byte"),
            Self::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            Self::InvalidCloseReason => f.write_str("close reason is not valid UTF-8"),
        }
    }
}

impl std::error::Error for ProtocolError {}
