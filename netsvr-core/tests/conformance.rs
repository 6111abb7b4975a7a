//! A raw-frame conformance suite, organised like the server categories of the
//! Autobahn|Testsuite: every case writes hand-built client frames and asserts the gateway's
//! exact reaction (the Message events, the pongs, the close code, the end of TCP).
//!
//! Categories (one module each): 1 framing, 2 pings/pongs, 3 reserved bits, 4 opcodes,
//! 5 fragmentation, 6 UTF-8 handling, 7 close handling, 9 limits/performance. Case names
//! follow Autobahn's numbering where a case has an Autobahn counterpart; cases the suite
//! adds are named after their category ("5.x ...").
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "conformance/close.rs"]
mod close;
#[path = "conformance/fragmentation.rs"]
mod fragmentation;
#[path = "conformance/framing.rs"]
mod framing;
#[path = "conformance/limits.rs"]
mod limits;
#[path = "conformance/opcodes.rs"]
mod opcodes;
#[path = "conformance/pings.rs"]
mod pings;
#[path = "conformance/reserved_bits.rs"]
mod reserved_bits;
#[path = "conformance/support.rs"]
mod support;
#[path = "conformance/utf8.rs"]
mod utf8;
