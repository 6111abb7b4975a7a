//! Incremental UTF-8 validation for text messages that arrive in fragments.
//!
//! A fragment boundary may fall inside a multi-byte sequence. The validator
//! keeps the (at most three) bytes of such an incomplete sequence in a small
//! inline array, so it never allocates, and fails as soon as an invalid
//! sequence is seen rather than at the end of the message.

use core::str::from_utf8;

/// The longest UTF-8 sequence, in bytes.
const MAX_SEQ: usize = 4;

/// The input is not valid UTF-8 (or, at the end of the message, ends inside a sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InvalidUtf8;

/// Validates a UTF-8 byte stream chunk by chunk.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Utf8Validator {
    /// The leading bytes of a sequence left incomplete by the previous chunk.
    pending: [u8; MAX_SEQ],
    /// How many bytes of `pending` are in use (0..=3).
    pending_len: usize,
}

impl Utf8Validator {
    /// A validator at the start of a stream.
    pub(super) const fn new() -> Self {
        Self {
            pending: [0; MAX_SEQ],
            pending_len: 0,
        }
    }

    /// Validates the next `chunk` of the stream.
    ///
    /// An incomplete sequence at the end of `chunk` is remembered when
    /// `is_final` is false and is an error when it is true.
    pub(super) fn feed(&mut self, chunk: &[u8], is_final: bool) -> Result<(), InvalidUtf8> {
        let rest = self.complete_pending(chunk)?;
        if self.pending_len != 0 {
            // `chunk` was too short to finish the pending sequence.
            return if is_final { Err(InvalidUtf8) } else { Ok(()) };
        }
        match from_utf8(rest) {
            Ok(_) => Ok(()),
            Err(err) if err.error_len().is_some() => Err(InvalidUtf8),
            Err(err) => {
                // An incomplete (but so far valid) sequence runs to the end of `rest`.
                let tail = rest.get(err.valid_up_to()..).ok_or(InvalidUtf8)?;
                if is_final {
                    return Err(InvalidUtf8);
                }
                self.store_pending(tail)
            }
        }
    }

    /// Tries to finish the pending sequence with the first bytes of `chunk`;
    /// returns the part of `chunk` after the bytes it used.
    fn complete_pending<'a>(&mut self, chunk: &'a [u8]) -> Result<&'a [u8], InvalidUtf8> {
        if self.pending_len == 0 {
            return Ok(chunk);
        }
        let lead = *self.pending.first().ok_or(InvalidUtf8)?;
        let width = sequence_width(lead).ok_or(InvalidUtf8)?;
        let needed = width.checked_sub(self.pending_len).ok_or(InvalidUtf8)?;
        let take = needed.min(chunk.len());
        let (head, rest) = chunk.split_at_checked(take).ok_or(InvalidUtf8)?;

        let mut seq = self.pending;
        let end = self.pending_len.checked_add(take).ok_or(InvalidUtf8)?;
        seq.get_mut(self.pending_len..end)
            .ok_or(InvalidUtf8)?
            .copy_from_slice(head);
        let seq = seq.get(..end).ok_or(InvalidUtf8)?;

        match from_utf8(seq) {
            Ok(_) => {
                self.pending_len = 0;
                Ok(rest)
            }
            // Still incomplete: `chunk` is exhausted (take < needed).
            Err(err) if err.error_len().is_none() && take < needed => {
                self.store_pending(seq)?;
                Ok(rest)
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Remembers an incomplete sequence (1..=3 bytes).
    fn store_pending(&mut self, bytes: &[u8]) -> Result<(), InvalidUtf8> {
        let slot = self.pending.get_mut(..bytes.len()).ok_or(InvalidUtf8)?;
        slot.copy_from_slice(bytes);
        self.pending_len = bytes.len();
        Ok(())
    }
}

/// The length of the sequence a lead byte starts, for lead bytes that can
/// begin a valid multi-byte sequence.
const fn sequence_width(lead: u8) -> Option<usize> {
    match lead {
        0xC2..=0xDF => Some(2),
        0xE0..=0xEF => Some(3),
        0xF0..=0xF4 => Some(4),
        _ => None,
    }
}
