//! What a load message carries (`--payload`): the 24-byte binary stamp padded with `x`
//! (`filler`, the default, binary frames), or a chat message in JSON of exactly `--size`
//! bytes with the stamp in hex (`json`, text frames), varied per message the way real
//! traffic is, so permessage-deflate compresses it no better than it would real messages.

use bytes::Bytes;
use netsvr_core::wire::{OpCode, encode_client_frame};

use super::ws::{STAMP_LEN, Stamp};

/// Mask of every client frame (the value does not matter to the server).
const MASK: [u8; 4] = [0x5a, 0x17, 0xc3, 0x2e];
/// A JSON payload starts with this, then the stamp as hex.
const JSON_HEAD: &str = r#"{"stamp":""#;
/// Words of the JSON message's text.
const WORDS: [&str; 48] = [
    "the", "a", "we", "you", "they", "meeting", "deploy", "gateway", "release", "today",
    "tomorrow", "is", "was", "will", "be", "ready", "late", "done", "please", "check", "logs",
    "again", "after", "before", "lunch", "review", "branch", "merged", "broken", "fixed", "thanks",
    "great", "idea", "ticket", "customer", "asked", "about", "latency", "numbers", "look", "good",
    "bad", "on", "in", "for", "with", "and", "but",
];
/// Room names of the JSON message.
const ROOMS: [&str; 6] = ["general", "ops", "release", "support", "random", "design"];

/// The payload format of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// The stamp, then `x` up to `--size` (binary frames; compresses to almost nothing).
    Filler,
    /// A JSON chat message of `--size` bytes, the stamp in hex (text frames).
    Json,
}

impl PayloadKind {
    /// The kind named `name` on the command line (`filler` or `json`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "filler" => Some(Self::Filler),
            "json" => Some(Self::Json),
            _ => None,
        }
    }

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Filler => "filler",
            Self::Json => "json",
        }
    }

    /// The smallest `--size` this kind can be built at.
    pub fn min_size(self) -> usize {
        match self {
            Self::Filler => STAMP_LEN,
            Self::Json => {
                // The longest fields: every number at its widest, a 7-letter room.
                let widest = Stamp {
                    run: u32::MAX,
                    conn: u32::MAX,
                    seq: u64::MAX,
                    sent_ns: u64::MAX,
                };
                json_fields(&widest).len() + 2
            }
        }
    }

    /// The payload of `size` bytes (at least [`min_size`](Self::min_size)) carrying `stamp`.
    pub fn build(self, stamp: &Stamp, size: usize) -> Vec<u8> {
        match self {
            Self::Filler => stamp.payload(size),
            Self::Json => json(stamp, size),
        }
    }

    /// A masked client frame carrying [`build`](Self::build).
    pub fn frame(self, stamp: &Stamp, size: usize) -> Bytes {
        let opcode = match self {
            Self::Filler => OpCode::Binary,
            Self::Json => OpCode::Text,
        };
        encode_client_frame(opcode, true, &self.build(stamp, size), MASK)
    }

    /// The stamp of a received payload of this kind, if it carries one.
    pub fn read(self, payload: &[u8]) -> Option<Stamp> {
        match self {
            Self::Filler => Stamp::read(payload),
            Self::Json => {
                let hex = payload.strip_prefix(JSON_HEAD.as_bytes())?;
                let mut raw = [0u8; STAMP_LEN];
                for (byte, pair) in raw.iter_mut().zip(hex.get(..2 * STAMP_LEN)?.chunks(2)) {
                    let digits = std::str::from_utf8(pair).ok()?;
                    *byte = u8::from_str_radix(digits, 16).ok()?;
                }
                Stamp::read(&raw)
            }
        }
    }
}

/// Everything of the JSON message but its text and the closing `"}`.
fn json_fields(stamp: &Stamp) -> String {
    let mut hex = String::with_capacity(2 * STAMP_LEN);
    for b in stamp.payload(STAMP_LEN) {
        hex.push_str(&format!("{b:02x}"));
    }
    let user = stamp.conn % 1000;
    let room = ROOMS[(stamp.seq % ROOMS.len() as u64) as usize];
    format!(
        "{JSON_HEAD}{hex}\",\"type\":\"chat.message\",\"room\":\"{room}\",\"id\":{seq},\
\"from\":{{\"id\":{user},\"name\":\"user{user}\",\"avatar\":\"https://cdn.example.com/avatars/{user}.png\",\
\"roles\":[\"member\"]}},\"sent_at_ns\":{sent},\"edited\":false,\"reactions\":[],\"text\":\"",
        seq = stamp.seq,
        sent = stamp.sent_ns,
    )
}

/// A JSON chat message of exactly `size` bytes (at least the fields and `"}`).
fn json(stamp: &Stamp, size: usize) -> Vec<u8> {
    let mut out = json_fields(stamp).into_bytes();
    let text_end = size.saturating_sub(2).max(out.len());
    // Words picked by a xorshift seeded per message: every message reads differently.
    let mut x = (u64::from(stamp.conn) << 32 ^ stamp.seq).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < text_end {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let word = WORDS[(x % WORDS.len() as u64) as usize];
        out.extend_from_slice(word.as_bytes());
        out.push(if x.is_multiple_of(11) { b'.' } else { b' ' });
    }
    // Words and separators are ASCII: cutting anywhere keeps valid UTF-8.
    out.truncate(text_end);
    out.extend_from_slice(b"\"}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(seq: u64) -> Stamp {
        Stamp {
            run: 0xdead_beef,
            conn: 7,
            seq,
            sent_ns: 123_456_789,
        }
    }

    #[test]
    fn json_is_exact_valid_and_read_back() {
        for size in [PayloadKind::Json.min_size(), 1024, 4096] {
            let p = PayloadKind::Json.build(&stamp(3), size);
            assert_eq!(p.len(), size);
            let v: serde_json::Value = serde_json::from_slice(&p).unwrap();
            assert_eq!(v["type"], "chat.message");
            assert_eq!(PayloadKind::Json.read(&p), Some(stamp(3)));
        }
        assert_ne!(
            PayloadKind::Json.build(&stamp(1), 1024)[300..],
            PayloadKind::Json.build(&stamp(2), 1024)[300..],
            "every message has its own text"
        );
        assert_eq!(PayloadKind::Json.read(b"{\"stamp\":\"zz"), None);
        assert_eq!(PayloadKind::Json.read(b"xyz"), None);
    }

    #[test]
    fn filler_and_names() {
        let p = PayloadKind::Filler.build(&stamp(9), 100);
        assert_eq!(PayloadKind::Filler.read(&p), Some(stamp(9)));
        for kind in [PayloadKind::Filler, PayloadKind::Json] {
            assert_eq!(PayloadKind::parse(kind.name()), Some(kind));
        }
        assert_eq!(PayloadKind::parse("xml"), None);
        let frame = PayloadKind::Json.frame(&stamp(0), 512);
        assert_eq!(frame[0], 0x81, "JSON goes in a text frame");
    }
}
