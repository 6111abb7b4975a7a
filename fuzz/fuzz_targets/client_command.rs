//! Fuzzes the client-command parser (`netsvr_core::client_cmd::parse`) with arbitrary text
//! messages: nothing may panic, a command's topics stay within the documented bounds, and
//! every reply it could get is a JSON object.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    netsvr_core::fuzzing::client_command(data);
});
