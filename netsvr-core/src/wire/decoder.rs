//! Frame decoding: parses and validates one frame at a time from the front of
//! a byte slice, reassembling fragmented data messages.

use core::str::from_utf8;

use bytes::Bytes;

use super::encoder::{append_unmasked, apply_mask, unmask};
use super::frame_bits::{
    FIN_BIT, LEN_16, LEN_64, LEN_BITS, MASK_BIT, MAX_CONTROL_PAYLOAD, OPCODE_BITS, RSV_BITS,
    RSV1_BIT,
};
use super::utf8::Utf8Validator;
use super::{CloseFrame, OpCode, ProtocolError, is_valid_close_code};

/// Limits and role of a [`FrameDecoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderConfig {
    /// The largest data message accepted, in payload bytes summed over all of
    /// its fragments; a message of exactly this size is allowed. Larger ones
    /// fail with [`ProtocolError::MessageTooBig`] (close code 1009) as soon as
    /// the offending frame's length is readable, before its payload arrives.
    pub max_message_size: usize,
    /// Reject unmasked frames (close code 1002). A server must set this: RFC
    /// 6455 requires every client-to-server frame to be masked.
    pub require_mask: bool,
    /// permessage-deflate was negotiated: RSV1 may be set on the first frame of a data
    /// message, which then completes as [`Message::Compressed`]. RSV1 on a continuation
    /// or control frame, and RSV2/RSV3 always, still fail with 1002.
    pub compressed: bool,
}

/// A complete message: an unfragmented data frame, a reassembled fragmented
/// data message, or a control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message; the bytes are guaranteed to be valid UTF-8.
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping (at most 125 bytes), to be answered with a pong carrying the same payload.
    Ping(Bytes),
    /// A pong (at most 125 bytes).
    Pong(Bytes),
    /// A close frame; `None` when its payload was empty (no status code).
    Close(Option<CloseFrame>),
    /// A permessage-deflate compressed data message (RSV1 set), still compressed; with
    /// `text` the inflated bytes must be checked as UTF-8 (the decoder cannot).
    Compressed {
        /// The message was sent as text.
        text: bool,
        /// The compressed payload, without the `00 00 ff ff` tail.
        payload: Bytes,
    },
}

/// The outcome of one [`FrameDecoder::decode`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// The input does not yet hold a whole frame; nothing was consumed.
    NeedMore {
        /// The minimum total input length needed to make progress: the header
        /// length while the header is incomplete, then header + payload.
        at_least: usize,
    },
    /// One frame was consumed from the front of the input.
    Frame {
        /// How many bytes of the input the frame occupied.
        consumed: usize,
        /// The message the frame completed, or `None` for a non-final fragment.
        message: Option<Message>,
    },
}

/// A fragmented data message being reassembled.
#[derive(Debug)]
struct Partial {
    /// Text (validated as UTF-8 unless compressed) or binary.
    text: bool,
    /// RSV1 was set on the first frame: the payload is compressed.
    compressed: bool,
    /// The unmasked payload of the fragments received so far.
    buf: Vec<u8>,
    /// UTF-8 state across fragment boundaries (text only).
    utf8: Utf8Validator,
}

/// A fully parsed frame header.
#[derive(Debug, Clone, Copy)]
struct Header {
    /// The final frame of its message.
    fin: bool,
    /// RSV1 (only ever set on the first frame of a data message, when allowed).
    compressed: bool,
    /// The (non-reserved) opcode.
    opcode: OpCode,
    /// The masking key, for masked frames.
    mask: Option<[u8; 4]>,
    /// Header length: 2-14 bytes.
    len: usize,
    /// Payload length, already checked against the limits.
    payload_len: usize,
}

/// The result of parsing the header at the front of the input.
enum HeaderStatus {
    /// The whole header is present and valid.
    Complete(Header),
    /// The header is cut short; the input needs `at_least` bytes.
    Incomplete { at_least: usize },
}

/// A sans-IO RFC 6455 frame decoder.
///
/// It holds only the state of a fragmented message in progress; when none is
/// in progress it owns no heap memory, so idle connections pin no buffers.
/// After an error the decoder drops any partial message; the connection must
/// be failed.
#[derive(Debug)]
pub struct FrameDecoder {
    /// Limits and role.
    config: DecoderConfig,
    /// The fragmented message in progress; `None` (no heap memory) otherwise.
    partial: Option<Partial>,
}

impl FrameDecoder {
    /// A decoder with no message in progress.
    #[must_use]
    pub const fn new(config: DecoderConfig) -> Self {
        Self {
            config,
            partial: None,
        }
    }

    /// True while a fragmented data message is in progress.
    #[must_use]
    pub const fn in_message(&self) -> bool {
        self.partial.is_some()
    }

    /// Decodes at most one frame from the front of `input`.
    ///
    /// `input` holds bytes read from the socket; the caller drops the
    /// `consumed` prefix, keeps any tail, and calls again once more bytes are
    /// appended. Every prefix of a valid frame yields [`Decoded::NeedMore`]
    /// without allocating. Errors are reported as soon as the bytes that
    /// prove them are present, in header order, so the outcome never depends
    /// on how the stream was split.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] when the frame at the front of `input` breaks RFC
    /// 6455 or the message size limit; the connection must then be failed.
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, ProtocolError> {
        let result = self.decode_frame(input);
        if result.is_err() {
            self.partial = None;
        }
        result
    }

    /// [`Self::decode`] without the cleanup on error.
    fn decode_frame(&mut self, input: &[u8]) -> Result<Decoded, ProtocolError> {
        let header = match self.parse_header(input)? {
            HeaderStatus::Complete(header) => header,
            HeaderStatus::Incomplete { at_least } => return Ok(Decoded::NeedMore { at_least }),
        };
        let end = header
            .len
            .checked_add(header.payload_len)
            .ok_or_else(|| self.too_big(u64::MAX))?;
        let Some(payload) = input.get(header.len..end) else {
            return Ok(Decoded::NeedMore { at_least: end });
        };
        let message = match header.opcode {
            OpCode::Text | OpCode::Binary if header.fin && header.compressed => {
                Some(Message::Compressed {
                    text: header.opcode == OpCode::Text,
                    payload: Bytes::from(unmask(payload, header.mask)),
                })
            }
            OpCode::Ping => Some(Message::Ping(Bytes::from(unmask(payload, header.mask)))),
            OpCode::Pong => Some(Message::Pong(Bytes::from(unmask(payload, header.mask)))),
            OpCode::Close => Some(Message::Close(parse_close(payload, header.mask)?)),
            OpCode::Text if header.fin => {
                let data = unmask(payload, header.mask);
                from_utf8(&data).map_err(|_| ProtocolError::InvalidUtf8)?;
                Some(Message::Text(Bytes::from(data)))
            }
            OpCode::Binary if header.fin => {
                Some(Message::Binary(Bytes::from(unmask(payload, header.mask))))
            }
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                self.append_fragment(header, payload)?
            }
        };
        Ok(Decoded::Frame {
            consumed: end,
            message,
        })
    }

    /// Parses and checks the header. Checks run in the order of the bytes
    /// they depend on, so a shorter prefix never reports a different error
    /// than a longer one.
    fn parse_header(&self, input: &[u8]) -> Result<HeaderStatus, ProtocolError> {
        let (Some(&b0), Some(&b1)) = (input.first(), input.get(1)) else {
            return Ok(HeaderStatus::Incomplete { at_least: 2 });
        };
        let fin = b0 & FIN_BIT != 0;
        let rsv = b0 & RSV_BITS;
        if rsv & !RSV1_BIT != 0 || rsv != 0 && !self.config.compressed {
            return Err(ProtocolError::ReservedBitsSet);
        }
        let raw_opcode = b0 & OPCODE_BITS;
        let opcode =
            OpCode::from_u8(raw_opcode).ok_or(ProtocolError::ReservedOpCode(raw_opcode))?;
        // RSV1 marks a compressed message on its first frame only.
        let compressed = rsv != 0;
        if compressed && !matches!(opcode, OpCode::Text | OpCode::Binary) {
            return Err(ProtocolError::ReservedBitsSet);
        }
        let len7 = b1 & LEN_BITS;
        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if usize::from(len7) > MAX_CONTROL_PAYLOAD {
                return Err(ProtocolError::ControlFrameTooLarge);
            }
        } else {
            match (opcode, self.partial.is_some()) {
                (OpCode::Continuation, false) => return Err(ProtocolError::UnexpectedContinuation),
                (OpCode::Text | OpCode::Binary, true) => {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                _ => {}
            }
        }
        let masked = b1 & MASK_BIT != 0;
        if self.config.require_mask && !masked {
            return Err(ProtocolError::UnmaskedFrame);
        }

        // The masking key follows the 16-bit or 64-bit extended length, if any.
        let mask_at: usize = match len7 {
            LEN_16 => 4,
            LEN_64 => 10,
            _ => 2,
        };
        let header_len = if masked {
            mask_at.saturating_add(4)
        } else {
            mask_at
        };
        let incomplete = Ok(HeaderStatus::Incomplete {
            at_least: header_len,
        });
        let payload_len = match len7 {
            LEN_16 => match read_array::<2>(input, 2) {
                Some(bytes) => u64::from(u16::from_be_bytes(bytes)),
                None => return incomplete,
            },
            LEN_64 => match read_array::<8>(input, 2) {
                Some(bytes) => u64::from_be_bytes(bytes),
                None => return incomplete,
            },
            short => u64::from(short),
        };
        if payload_len >> 63 != 0 {
            return Err(ProtocolError::InvalidLength);
        }
        if !opcode.is_control() {
            self.check_size(payload_len)?;
        }
        let payload_len = usize::try_from(payload_len).map_err(|_| self.too_big(payload_len))?;

        let mask = if masked {
            match read_array::<4>(input, mask_at) {
                Some(key) => Some(key),
                None => return incomplete,
            }
        } else {
            None
        };
        Ok(HeaderStatus::Complete(Header {
            fin,
            compressed,
            opcode,
            mask,
            len: header_len,
            payload_len,
        }))
    }

    /// Fails when the message in progress plus a frame of `frame_len` bytes
    /// would exceed the limit.
    fn check_size(&self, frame_len: u64) -> Result<(), ProtocolError> {
        let buffered = self.partial.as_ref().map_or(0, |partial| partial.buf.len());
        let size = u64::try_from(buffered)
            .unwrap_or(u64::MAX)
            .saturating_add(frame_len);
        let limit = u64::try_from(self.config.max_message_size).unwrap_or(u64::MAX);
        if size > limit {
            return Err(self.too_big(size));
        }
        Ok(())
    }

    /// The error for a message of `size` bytes.
    const fn too_big(&self, size: u64) -> ProtocolError {
        ProtocolError::MessageTooBig {
            size,
            limit: self.config.max_message_size,
        }
    }

    /// Handles a fragment of a data message (the header checks have already
    /// ensured the opcode fits the current state). Returns the message when
    /// the fragment is the final one.
    fn append_fragment(
        &mut self,
        header: Header,
        payload: &[u8],
    ) -> Result<Option<Message>, ProtocolError> {
        let limit = self.config.max_message_size;
        let partial = match (header.opcode, &mut self.partial) {
            (OpCode::Continuation, Some(partial)) => partial,
            (OpCode::Text | OpCode::Binary, slot @ None) => slot.insert(Partial {
                text: header.opcode == OpCode::Text,
                compressed: header.compressed,
                buf: Vec::with_capacity(payload.len()),
                utf8: Utf8Validator::new(),
            }),
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            _ => return Err(ProtocolError::ExpectedContinuation),
        };
        let start = partial.buf.len();
        append_unmasked(&mut partial.buf, payload, header.mask, limit);
        if partial.text && !partial.compressed {
            let fresh = partial.buf.get(start..).unwrap_or_default();
            partial
                .utf8
                .feed(fresh, header.fin)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        if !header.fin {
            return Ok(None);
        }
        Ok(self.partial.take().map(|done| {
            let data = Bytes::from(done.buf);
            if done.compressed {
                Message::Compressed {
                    text: done.text,
                    payload: data,
                }
            } else if done.text {
                Message::Text(data)
            } else {
                Message::Binary(data)
            }
        }))
    }
}

/// Reads `N` bytes at `at`, if present.
fn read_array<const N: usize>(input: &[u8], at: usize) -> Option<[u8; N]> {
    let end = at.checked_add(N)?;
    input.get(at..end)?.try_into().ok()
}

/// Unmasks and validates a close payload (at most 125 bytes) on the stack.
fn parse_close(payload: &[u8], mask: Option<[u8; 4]>) -> Result<Option<CloseFrame>, ProtocolError> {
    let mut buf = [0_u8; MAX_CONTROL_PAYLOAD];
    let body = buf
        .get_mut(..payload.len())
        .ok_or(ProtocolError::ControlFrameTooLarge)?;
    body.copy_from_slice(payload);
    if let Some(mask) = mask {
        apply_mask(body, mask);
    }
    match &*body {
        [] => Ok(None),
        [_] => Err(ProtocolError::InvalidClosePayload),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_close_code(code) {
                return Err(ProtocolError::InvalidCloseCode(code));
            }
            let reason = from_utf8(reason).map_err(|_| ProtocolError::InvalidCloseReason)?;
            Ok(Some(CloseFrame {
                code,
                reason: reason.to_owned(),
            }))
        }
    }
}
