//! Fuzzes the cross-node envelope decoder (`netsvr_core::cluster::envelope`): any bytes
//! either fail with an error or decode to an envelope whose encoding is exactly the input
//! (the format is canonical), and whose body then decodes as a netsvr message or fails
//! cleanly, as a node receiving it from the broker would try.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use netsvr_core::cluster::envelope::{Envelope, EnvelopeError, HEADER_LEN, Kind};
use netsvr_protocol::{ToBusiness, ToGateway};

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    match Envelope::decode(&bytes) {
        Ok(envelope) => {
            assert!(data.len() >= HEADER_LEN);
            assert_eq!(envelope.encode(), bytes, "re-encoding gives the input back");
            let body = envelope.body.clone();
            match envelope.kind {
                Kind::Reply => {
                    let _ = ToBusiness::decode(envelope.cmd, body);
                }
                Kind::Command | Kind::Query => {
                    let _ = ToGateway::decode(envelope.cmd, body);
                }
            }
        }
        Err(EnvelopeError::Short(n)) => assert!(n < HEADER_LEN && n == data.len()),
        Err(_) => assert!(data.len() >= HEADER_LEN),
    }
});
