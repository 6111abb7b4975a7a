//! Fuzzes the protobuf body of every netsvr command directly (the codec target reaches the
//! bodies only through whole frames): byte 0 picks the command, the rest is its body,
//! decoded as `ToGateway` and as `ToBusiness`. Nothing may panic, and whatever decodes must
//! survive re-encoding and framing.
#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use netsvr_protocol::DEFAULT_HEARTBEAT;
use netsvr_protocol::codec::Codec;

const MAX_FRAME: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    static IDS: OnceLock<Vec<u32>> = OnceLock::new();
    let ids = IDS.get_or_init(netsvr_fuzz::command_ids);
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let cmd = ids[usize::from(pick) % ids.len()];
    let codec = Codec::new(MAX_FRAME, Bytes::from_static(DEFAULT_HEARTBEAT));
    netsvr_fuzz::check_command(&codec, MAX_FRAME, cmd, &Bytes::copy_from_slice(body));
});
