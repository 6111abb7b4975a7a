//! Sans-IO per-message deflate: compress one message on its own, and inflate one message
//! with its inflated size bounded while inflating (a deflate bomb stops at the limit).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::negotiate::MAX_WINDOW_BITS;

/// The empty stored block every message ends with; RFC 7692 strips it on the wire.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// Output reserved per step while inflating: memory follows what the data really holds.
const INFLATE_STEP: usize = 32 * 1024;

/// Why an inbound compressed message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InflateError {
    /// The message inflates to more than the limit (close code 1009).
    #[error("inflated message exceeds {limit} bytes")]
    TooBig {
        /// The limit, in inflated bytes.
        limit: usize,
    },
    /// The payload is not valid deflate data (close code 1007).
    #[error("invalid compressed data")]
    Corrupt,
}

impl InflateError {
    /// The WebSocket close code to fail the connection with.
    #[must_use]
    pub const fn close_code(&self) -> u16 {
        match self {
            Self::TooBig { .. } => 1009,
            Self::Corrupt => 1007,
        }
    }
}

/// A raw-deflate compressor for one level and window; reused across messages, each message
/// compressed on its own (the gateway always negotiates `server_no_context_takeover`).
pub struct Deflater {
    inner: Compress,
    level: u32,
    window_bits: u8,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("level", &self.level)
            .field("window_bits", &self.window_bits)
            .finish_non_exhaustive()
    }
}

impl Deflater {
    /// A compressor at `level` (1-9) with a `window_bits` (9-15) LZ77 window.
    #[must_use]
    pub fn new(level: u32, window_bits: u8) -> Self {
        let window_bits = window_bits.clamp(9, MAX_WINDOW_BITS);
        Self {
            inner: Compress::new_with_window_bits(Compression::new(level), false, window_bits),
            level,
            window_bits,
        }
    }

    /// The level and window this compressor was made with.
    #[must_use]
    pub const fn params(&self) -> (u32, u8) {
        (self.level, self.window_bits)
    }

    /// Compresses `payload` as one permessage-deflate message (sync-flushed, the final
    /// `00 00 ff ff` removed), written after whatever `out` already holds. With
    /// `only_if_smaller`, returns `false` (and leaves `out` as it was) when the result would
    /// not be smaller than `payload`; otherwise `false` only if zlib fails.
    pub fn compress_into(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
        only_if_smaller: bool,
    ) -> bool {
        let start = out.len();
        // Past this the result is no saving: stop early rather than finish a bigger frame.
        let budget = if only_if_smaller {
            start + payload.len() + TAIL.len()
        } else {
            usize::MAX
        };
        out.reserve(payload.len() / 2 + 64);
        self.inner.reset();
        let mut consumed = 0;
        loop {
            if out.len() >= budget {
                out.truncate(start);
                return false;
            }
            if out.capacity() - out.len() < 64 {
                out.reserve((out.len() - start).max(64));
            }
            let before = self.inner.total_in();
            let rest = payload.get(consumed..).unwrap_or_default();
            if self
                .inner
                .compress_vec(rest, out, FlushCompress::Sync)
                .is_err()
            {
                out.truncate(start);
                return false;
            }
            consumed += usize::try_from(self.inner.total_in() - before).unwrap_or(usize::MAX);
            // zlib's sync flush is complete once it returns with output room to spare.
            if consumed >= payload.len() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if only_if_smaller && out.len() - start >= payload.len() {
            out.truncate(start);
            return false;
        }
        true
    }
}

/// A raw-deflate decompressor for inbound messages.
pub struct Inflater {
    inner: Decompress,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").finish_non_exhaustive()
    }
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Inflater {
    /// A decompressor with the largest window, which inflates data of any window size.
    #[must_use]
    pub fn new() -> Self {
        Self {
            inner: Decompress::new_with_window_bits(false, MAX_WINDOW_BITS),
        }
    }

    /// Inflates one message's payload (as received, without the `00 00 ff ff` tail),
    /// producing at most `limit` bytes: past that it stops and fails, having allocated no
    /// more than about `limit`. With `reset` the context starts fresh for this message
    /// (the client does not take its context over); without it, earlier messages of the
    /// connection serve as the dictionary.
    ///
    /// # Errors
    ///
    /// [`InflateError::TooBig`] past `limit`, [`InflateError::Corrupt`] for bad data. The
    /// inflater must not be used again after an error (the connection is failed).
    pub fn inflate(
        &mut self,
        payload: &[u8],
        limit: usize,
        reset: bool,
    ) -> Result<Vec<u8>, InflateError> {
        if reset {
            self.inner.reset(false);
        }
        let mut out = Vec::new();
        // A message may end with a final block (BFINAL); the stream must then restart.
        if self.feed(payload, limit, &mut out)? || self.feed(&TAIL, limit, &mut out)? {
            self.inner.reset(false);
        }
        Ok(out)
    }

    /// Inflates all of `input` into `out`, never letting `out` pass `limit`. Returns
    /// whether the deflate stream ended (a final block).
    fn feed(
        &mut self,
        input: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<bool, InflateError> {
        let start = self.inner.total_in();
        loop {
            let consumed = usize::try_from(self.inner.total_in() - start).unwrap_or(usize::MAX);
            let rest = input.get(consumed..).unwrap_or_default();
            if out.len() == out.capacity() {
                // One byte past the limit proves the message too big.
                let room = (limit + 1).saturating_sub(out.len());
                if room == 0 {
                    return Err(InflateError::TooBig { limit });
                }
                out.reserve_exact(room.min(INFLATE_STEP.max(out.len())));
            }
            let (in_before, out_before) = (self.inner.total_in(), out.len());
            let status = self
                .inner
                .decompress_vec(rest, out, FlushDecompress::Sync)
                .map_err(|_| InflateError::Corrupt)?;
            if out.len() > limit {
                return Err(InflateError::TooBig { limit });
            }
            let all_in = self.inner.total_in() - start >= input.len() as u64;
            if status == Status::StreamEnd {
                // Bytes after the final block are not deflate data.
                return if all_in {
                    Ok(true)
                } else {
                    Err(InflateError::Corrupt)
                };
            }
            let room_left = out.len() < out.capacity();
            if all_in && room_left {
                return Ok(false);
            }
            let stuck = self.inner.total_in() == in_before && out.len() == out_before;
            if stuck && room_left {
                return Err(InflateError::Corrupt);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| b"the quick brown fox jumps over the lazy dog "[i % 44])
            .collect()
    }

    #[test]
    fn round_trip_and_sharing() {
        let mut deflater = Deflater::new(3, 15);
        let mut inflater = Inflater::new();
        for len in [300, 5_000, 200_000] {
            let payload = text(len);
            let mut out = Vec::new();
            assert!(deflater.compress_into(&payload, &mut out, true));
            assert!(out.len() < payload.len() / 4, "{len}: {}", out.len());
            assert!(!out.ends_with(&TAIL));
            let back = inflater.inflate(&out, len, true).unwrap();
            assert_eq!(back, payload);
            // The same bytes inflate for any other receiver (no shared context).
            assert_eq!(Inflater::new().inflate(&out, len, false).unwrap(), payload);
        }
    }

    #[test]
    fn incompressible_payloads_are_left_plain() {
        let mut deflater = Deflater::new(9, 15);
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[3]
            })
            .collect();
        let mut out = vec![1, 2];
        assert!(!deflater.compress_into(&noise, &mut out, true));
        assert_eq!(out, [1, 2]);
        // Unless asked to compress everything: then it still round-trips.
        assert!(deflater.compress_into(&noise, &mut out, false));
        assert!(out.len() > noise.len());
        let back = Inflater::new()
            .inflate(&out[2..], noise.len(), true)
            .unwrap();
        assert_eq!(back, noise);
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let zeros = vec![0_u8; 8 * 1024 * 1024];
        let mut bomb = Vec::new();
        assert!(Deflater::new(9, 15).compress_into(&zeros, &mut bomb, true));
        assert!(bomb.len() < 16 * 1024);
        let mut inflater = Inflater::new();
        let limit = 64 * 1024;
        assert_eq!(
            inflater.inflate(&bomb, limit, true),
            Err(InflateError::TooBig { limit })
        );
        assert_eq!(InflateError::TooBig { limit }.close_code(), 1009);
        // Exactly at the limit is allowed.
        let exact = text(limit);
        let mut packed = Vec::new();
        assert!(Deflater::new(1, 15).compress_into(&exact, &mut packed, true));
        assert_eq!(
            Inflater::new().inflate(&packed, limit, true).unwrap(),
            exact
        );
    }

    #[test]
    fn garbage_is_corrupt() {
        let mut inflater = Inflater::new();
        let got = inflater.inflate(&[0xff, 0xff, 0xff, 0xff, 0x00], 1024, true);
        assert_eq!(got, Err(InflateError::Corrupt));
    }

    #[test]
    fn context_takeover_uses_earlier_messages() {
        // A compressor that keeps its context: the second message refers back to the first.
        let mut keep = Compress::new_with_window_bits(Compression::new(6), false, 15);
        let payload = text(2000);
        let mut first = Vec::with_capacity(4096);
        keep.compress_vec(&payload, &mut first, FlushCompress::Sync)
            .unwrap();
        let mut second = Vec::with_capacity(4096);
        keep.compress_vec(&payload, &mut second, FlushCompress::Sync)
            .unwrap();
        first.truncate(first.len() - 4);
        second.truncate(second.len() - 4);
        assert!(second.len() < first.len());
        let mut inflater = Inflater::new();
        assert_eq!(inflater.inflate(&first, 4096, false).unwrap(), payload);
        assert_eq!(inflater.inflate(&second, 4096, false).unwrap(), payload);
    }
}
