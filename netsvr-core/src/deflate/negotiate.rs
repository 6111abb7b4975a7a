//! Sans-IO negotiation of permessage-deflate: parses a client's `Sec-WebSocket-Extensions`
//! offers and picks the first one the gateway can honour (RFC 7692 section 7.1).

use super::DeflateConfig;

/// The extension token.
const TOKEN: &str = "permessage-deflate";
/// The smallest LZ77 window zlib can compress raw deflate with (it widens 8 to 9).
const MIN_SERVER_WINDOW_BITS: u8 = 9;
/// The largest LZ77 window (32 KiB).
pub(crate) const MAX_WINDOW_BITS: u8 = 15;

/// The parameters agreed with one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The window the gateway compresses with (the client's `server_max_window_bits`, or 15).
    pub server_window_bits: u8,
    /// The client resets its compression context after each message, so the gateway can
    /// inflate each message on its own and keep no inflate state between messages.
    pub client_no_context_takeover: bool,
    /// The `Sec-WebSocket-Extensions` value of the 101 response.
    response: ResponseValue,
}

impl Negotiated {
    /// The `Sec-WebSocket-Extensions` response header value.
    #[must_use]
    pub fn response(&self) -> &str {
        self.response.as_str()
    }
}

/// The response header value, built without a heap allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ResponseValue {
    buf: [u8; 128],
    len: usize,
}

impl ResponseValue {
    fn new() -> Self {
        let mut value = Self {
            buf: [0; 128],
            len: 0,
        };
        value.push(TOKEN);
        value.push("; server_no_context_takeover");
        value
    }

    fn push(&mut self, text: &str) {
        let end = self.len + text.len();
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(text.as_bytes());
            self.len = end;
        }
    }

    fn push_bits(&mut self, name: &str, bits: u8) {
        self.push("; ");
        self.push(name);
        self.push("=");
        let digits = [b'0' + bits / 10, b'0' + bits % 10];
        let text = if bits >= 10 {
            &digits[..]
        } else {
            &digits[1..]
        };
        self.push(std::str::from_utf8(text).unwrap_or("15"));
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or(TOKEN)
    }
}

/// One offer's parameters, each allowed at most once.
#[derive(Default)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: offered without a value (the client accepts any value we pick).
    client_max_window_bits: Option<Option<u8>>,
}

/// Picks the first permessage-deflate offer in `headers` (the values of every
/// `Sec-WebSocket-Extensions` request header, in order) that `config` can honour.
///
/// Offers with unknown or repeated parameters or bad values are declined, as are offers of
/// `server_max_window_bits=8` (zlib cannot compress with a 256-byte window); the next offer
/// is tried. The gateway always answers `server_no_context_takeover`, and
/// `client_no_context_takeover` unless `config.client_context_takeover` is set.
#[must_use]
pub fn negotiate<'a, I>(headers: I, config: &DeflateConfig) -> Option<Negotiated>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    if !config.enabled {
        return None;
    }
    headers
        .into_iter()
        .filter_map(|value| std::str::from_utf8(value).ok())
        .flat_map(split_offers)
        .filter_map(parse_offer)
        .find_map(|offer| accept(&offer, config))
}

/// Splits a header value into extension offers at commas outside quoted strings.
fn split_offers(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let text = rest?;
        let mut quoted = false;
        for (i, c) in text.char_indices() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => {
                    rest = text.get(i + 1..);
                    return text.get(..i);
                }
                _ => {}
            }
        }
        rest = None;
        Some(text)
    })
}

/// Parses one offer; `None` when it is not permessage-deflate or is malformed.
fn parse_offer(text: &str) -> Option<Offer> {
    let mut parts = text.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case(TOKEN) {
        return None;
    }
    let mut offer = Offer::default();
    for part in parts {
        let (name, value) = match part.split_once('=') {
            Some((name, value)) => (name.trim(), Some(unquote(value.trim())?)),
            None => (part, None),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("server_no_context_takeover", None) if !offer.server_no_context_takeover => {
                offer.server_no_context_takeover = true;
            }
            ("client_no_context_takeover", None) if !offer.client_no_context_takeover => {
                offer.client_no_context_takeover = true;
            }
            ("server_max_window_bits", Some(v)) if offer.server_max_window_bits.is_none() => {
                offer.server_max_window_bits = Some(window_bits(v)?);
            }
            ("client_max_window_bits", v) if offer.client_max_window_bits.is_none() => {
                offer.client_max_window_bits = Some(
                    v.map(window_bits)
                        .map_or(Ok(None), |b| b.map(Some).ok_or(()))
                        .ok()?,
                );
            }
            _ => return None,
        }
    }
    Some(offer)
}

/// A parameter value without its quotes (RFC 7692 allows a quoted-string form).
fn unquote(value: &str) -> Option<&str> {
    match value.strip_prefix('"') {
        Some(inner) => inner.strip_suffix('"'),
        None => Some(value),
    }
}

/// A window size: 1*DIGIT between 8 and 15, no leading zero.
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || value.len() > 2 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|bits| (8..=15).contains(bits))
}

/// The response to an offer the gateway can honour.
fn accept(offer: &Offer, config: &DeflateConfig) -> Option<Negotiated> {
    let server_window_bits = offer.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS);
    if server_window_bits < MIN_SERVER_WINDOW_BITS {
        return None;
    }
    let mut response = ResponseValue::new();
    let client_no_context_takeover =
        offer.client_no_context_takeover || !config.client_context_takeover;
    if client_no_context_takeover {
        response.push("; client_no_context_takeover");
    }
    if let Some(bits) = offer.server_max_window_bits {
        response.push_bits("server_max_window_bits", bits);
    }
    // Only asked of a client that said it understands the parameter, and only useful while
    // it keeps its context: the gateway then inflates with a window this small.
    if let Some(offered) = offer.client_max_window_bits
        && !client_no_context_takeover
        && config.client_max_window_bits < MAX_WINDOW_BITS
    {
        let bits = offered.map_or(config.client_max_window_bits, |b| {
            b.min(config.client_max_window_bits)
        });
        response.push_bits("client_max_window_bits", bits);
    }
    Some(Negotiated {
        server_window_bits,
        client_no_context_takeover,
        response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(headers: &[&str], config: &DeflateConfig) -> Option<String> {
        negotiate(headers.iter().map(|h| h.as_bytes()), config).map(|n| n.response().to_owned())
    }

    #[test]
    fn browsers_offer_is_answered_without_context_takeover() {
        let config = DeflateConfig::default();
        let answer = run(&["permessage-deflate; client_max_window_bits"], &config);
        assert_eq!(
            answer.as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        );
    }

    #[test]
    fn the_first_acceptable_offer_wins() {
        let config = DeflateConfig::default();
        let answer = run(
            &[
                "x-webkit-deflate-frame",
                "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=10",
            ],
            &config,
        );
        assert_eq!(
            answer.as_deref(),
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"
            )
        );
    }

    #[test]
    fn malformed_offers_are_declined() {
        let config = DeflateConfig::default();
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; unknown",
            "permessage-deflate; server_max_window_bits=\"10",
            "deflate-stream",
        ] {
            assert_eq!(run(&[bad], &config), None, "{bad}");
        }
        let quoted = run(
            &["permessage-deflate; server_max_window_bits=\"12\""],
            &config,
        );
        assert!(quoted.is_some_and(|a| a.ends_with("server_max_window_bits=12")));
    }

    #[test]
    fn off_switch_and_context_takeover() {
        let off = DeflateConfig {
            enabled: false,
            ..DeflateConfig::default()
        };
        assert_eq!(run(&["permessage-deflate"], &off), None);
        let keep = DeflateConfig {
            client_context_takeover: true,
            client_max_window_bits: 10,
            ..DeflateConfig::default()
        };
        let n = negotiate(
            [&b"permessage-deflate; client_max_window_bits=12"[..]],
            &keep,
        );
        assert!(n.is_some_and(|n| !n.client_no_context_takeover));
        assert_eq!(
            run(&["permessage-deflate; client_max_window_bits=12"], &keep).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_max_window_bits=10")
        );
        assert_eq!(
            run(&["permessage-deflate; client_no_context_takeover"], &keep).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        );
    }
}
