//! Fuzzes permessage-deflate: negotiating arbitrary `Sec-WebSocket-Extensions` values never
//! panics and any answer is a well-formed response; inflating arbitrary bytes never panics
//! and never yields more than the limit; and what the deflater produces inflates back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsvr_core::DeflateConfig;
use netsvr_core::deflate::{Deflater, InflateError, Inflater, negotiate};

/// The inflated-size limit under test (small, so bombs are cheap to find).
const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut config = DeflateConfig::default();
    config.client_context_takeover = flags & 1 == 1;
    config.client_max_window_bits = 8 + (flags >> 1) % 8;
    if let Some(agreed) = negotiate(rest.split(|&b| b == b'\n'), &config) {
        let response = agreed.response();
        assert!(response.starts_with("permessage-deflate; server_no_context_takeover"));
        assert!((9..=15).contains(&agreed.server_window_bits));
    }
    let mut inflater = Inflater::new();
    match inflater.inflate(rest, LIMIT, true) {
        Ok(out) => assert!(out.len() <= LIMIT),
        Err(InflateError::TooBig { limit }) => assert_eq!(limit, LIMIT),
        Err(_) => {}
    }
    let mut packed = Vec::new();
    let mut deflater = Deflater::new(u32::from(flags % 9) + 1, 9 + (flags >> 4) % 7);
    let only_if_smaller = flags & 0x80 == 0;
    if deflater.compress_into(rest, &mut packed, only_if_smaller) {
        assert!(!only_if_smaller || packed.len() < rest.len());
        let back = Inflater::new().inflate(&packed, rest.len(), true);
        assert_eq!(back.as_deref(), Ok(rest));
    }
});
