//! The client side of permessage-deflate (`--deflate`): the offer of the upgrade, the check
//! that the 101 accepted it, and a [`Reader`] that inflates compressed (RSV1) server
//! messages before they are parsed, counting bytes on the wire and bytes of payload.
//!
//! With `--inflate-shared` a compressed message byte-for-byte equal to one inflated lately
//! on the same thread is not inflated again: the gateway sends every recipient the same
//! compressed frame, and one load-generator core inflating it for 1,000 clients measures
//! zlib on that core, not the gateway. The payload parsed is still the inflated one.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use netsvr_core::deflate::Inflater;
use serde_json::{Value, json};

use super::ws::Head;

/// The `Sec-WebSocket-Extensions` value every `--deflate` client sends.
pub const OFFER: &str = "permessage-deflate; client_max_window_bits";
/// Smallest limit on an inflated message.
const MIN_LIMIT: usize = 64 * 1024;
/// Inflated messages remembered per thread with `--inflate-shared` (receivers may read a
/// message a second after the first did: hundreds of messages later).
const MEMO_LEN: usize = 4096;

thread_local! {
    /// One inflater per thread: the server takes no context over, so every message is
    /// inflated on its own (`reset`) and one inflater serves every connection task.
    static INFLATER: RefCell<Inflater> = RefCell::new(Inflater::new());
    /// `--inflate-shared`: compressed message to inflated one.
    static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
}

/// Whether the response head `head` has a `Sec-WebSocket-Extensions` header that accepts
/// permessage-deflate.
pub fn accepted(head: &[u8]) -> bool {
    String::from_utf8_lossy(head).lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("sec-websocket-extensions")
                && value.split(',').any(|ext| {
                    ext.split(';').next().unwrap_or_default().trim() == "permessage-deflate"
                })
        })
    })
}

/// The last [`MEMO_LEN`] messages inflated, keyed by their compressed bytes.
#[derive(Debug, Default)]
struct Memo {
    map: HashMap<Vec<u8>, Vec<u8>>,
    order: VecDeque<Vec<u8>>,
}

impl Memo {
    fn insert(&mut self, compressed: &[u8], payload: &[u8]) {
        if self.order.len() >= MEMO_LEN
            && let Some(oldest) = self.order.pop_front()
        {
            self.map.remove(&oldest);
        }
        self.order.push_back(compressed.to_vec());
        self.map.insert(compressed.to_vec(), payload.to_vec());
    }
}

/// Data messages received by a connection, and their bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RxBytes {
    /// Data messages received.
    pub messages: u64,
    /// Of which compressed (RSV1 set).
    pub compressed: u64,
    /// Of which inflated here (fewer than `compressed` with `--inflate-shared`).
    pub inflated: u64,
    /// Bytes of those frames on the wire, headers included.
    pub wire: u64,
    /// Bytes of their payloads once inflated.
    pub payload: u64,
}

impl RxBytes {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &Self) {
        self.messages += other.messages;
        self.compressed += other.compressed;
        self.inflated += other.inflated;
        self.wire += other.wire;
        self.payload += other.payload;
    }

    /// The summary fields: `deflate`, `rx_messages`, `rx_compressed`, `rx_inflated`,
    /// `wire_bytes`, `payload_bytes` and `wire_per_payload` (null when nothing arrived).
    pub fn insert_into(&self, out: &mut Value, deflate: bool) {
        if let Some(map) = out.as_object_mut() {
            map.insert("deflate".into(), json!(deflate));
            map.insert("rx_messages".into(), json!(self.messages));
            map.insert("rx_compressed".into(), json!(self.compressed));
            map.insert("rx_inflated".into(), json!(self.inflated));
            map.insert("wire_bytes".into(), json!(self.wire));
            map.insert("payload_bytes".into(), json!(self.payload));
            let ratio = (self.payload > 0).then(|| self.wire as f64 / self.payload as f64);
            map.insert("wire_per_payload".into(), json!(ratio));
        }
    }
}

/// Reads the data messages of one connection, inflating compressed ones.
#[derive(Debug)]
pub struct Reader {
    deflate: bool,
    shared: bool,
    limit: usize,
    /// What this connection received.
    pub bytes: RxBytes,
}

impl Reader {
    /// A reader for a connection that negotiated permessage-deflate (`deflate`) or not,
    /// whose messages are at most `max_payload` bytes inflated (64 KiB at least); with
    /// `shared`, messages inflated lately on this thread are reused.
    pub fn new(deflate: bool, shared: bool, max_payload: usize) -> Self {
        Self {
            deflate,
            shared,
            limit: max_payload.max(MIN_LIMIT),
            bytes: RxBytes::default(),
        }
    }

    /// The payload of one received data frame: as it came, or inflated when RSV1 is set.
    /// Fails on RSV1 without the extension, or on data that does not inflate.
    pub fn read<'a>(&mut self, head: Head, raw: &'a [u8]) -> Result<Cow<'a, [u8]>, String> {
        self.bytes.messages += 1;
        self.bytes.wire += head.wire_len as u64;
        let payload = if !head.rsv1 {
            Cow::Borrowed(raw)
        } else if !self.deflate {
            return Err("RSV1 set without permessage-deflate".into());
        } else {
            self.bytes.compressed += 1;
            Cow::Owned(self.inflate(raw)?)
        };
        self.bytes.payload += payload.len() as u64;
        Ok(payload)
    }

    /// Inflates `raw`, or with `shared` takes it from the memo when it is there.
    fn inflate(&mut self, raw: &[u8]) -> Result<Vec<u8>, String> {
        if self.shared {
            let seen = MEMO.with_borrow(|memo| memo.map.get(raw).cloned());
            if let Some(payload) = seen {
                return Ok(payload);
            }
        }
        self.bytes.inflated += 1;
        let inflated = INFLATER.with_borrow_mut(|inflater| {
            let got = inflater.inflate(raw, self.limit, true);
            if got.is_err() {
                // An inflater is not to be used again after an error.
                *inflater = Inflater::new();
            }
            got
        });
        let payload = inflated.map_err(|e| format!("inflate: {e}"))?;
        if self.shared {
            MEMO.with_borrow_mut(|memo| memo.insert(raw, &payload));
        }
        Ok(payload)
    }
}

#[cfg(test)]
mod tests {
    use netsvr_core::deflate::Deflater;

    use super::*;

    fn head(rsv1: bool, wire_len: usize) -> Head {
        Head {
            opcode: 1,
            rsv1,
            wire_len,
        }
    }

    #[test]
    fn the_answer_is_found_in_the_head() {
        let yes = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
sec-websocket-extensions: permessage-deflate; server_no_context_takeover\r\n\r\n";
        assert!(accepted(yes));
        let no = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
        assert!(!accepted(no));
        let other = b"HTTP/1.1 101 OK\r\nSec-WebSocket-Extensions: x-permessage-deflate\r\n\r\n";
        assert!(!accepted(other));
    }

    #[test]
    fn compressed_messages_are_inflated_and_counted() {
        let text = "hello load tool ".repeat(64);
        let mut packed = Vec::new();
        assert!(Deflater::new(3, 15).compress_into(text.as_bytes(), &mut packed, true));
        let mut r = Reader::new(true, false, 1024);
        let got = r.read(head(true, packed.len() + 2), &packed).unwrap();
        assert_eq!(got.as_ref(), text.as_bytes());
        let plain = r.read(head(false, 7), b"hello").unwrap();
        assert_eq!(plain.as_ref(), b"hello");
        let want = RxBytes {
            messages: 2,
            compressed: 1,
            inflated: 1,
            wire: packed.len() as u64 + 9,
            payload: text.len() as u64 + 5,
        };
        assert_eq!(r.bytes, want);
        let mut v = json!({});
        r.bytes.insert_into(&mut v, true);
        assert!(v["wire_per_payload"].as_f64().unwrap() < 0.2, "{v}");
    }

    #[test]
    fn shared_frames_are_inflated_once() {
        let mut packed = Vec::new();
        let text = "shared frame ".repeat(50);
        assert!(Deflater::new(3, 15).compress_into(text.as_bytes(), &mut packed, true));
        let (mut a, mut b) = (Reader::new(true, true, 0), Reader::new(true, true, 0));
        assert_eq!(
            a.read(head(true, 9), &packed).unwrap().as_ref(),
            text.as_bytes()
        );
        assert_eq!(
            b.read(head(true, 9), &packed).unwrap().as_ref(),
            text.as_bytes()
        );
        assert_eq!((a.bytes.inflated, b.bytes.inflated), (1, 0));
        assert_eq!(b.bytes.compressed, 1);
        // Without `shared`, every message is inflated.
        let mut c = Reader::new(true, false, 0);
        c.read(head(true, 9), &packed).unwrap();
        assert_eq!(c.bytes.inflated, 1);
    }

    #[test]
    fn bad_frames_fail() {
        assert!(
            Reader::new(false, false, 0)
                .read(head(true, 3), b"x")
                .is_err()
        );
        let mut r = Reader::new(true, false, 0);
        assert!(r.read(head(true, 7), &[0xff, 0xff, 0xff, 0xff, 0]).is_err());
        // The thread's inflater was replaced and works again.
        let mut packed = Vec::new();
        assert!(Deflater::new(1, 15).compress_into(&[b'a'; 600], &mut packed, true));
        assert_eq!(r.read(head(true, 9), &packed).unwrap().len(), 600);
    }
}
