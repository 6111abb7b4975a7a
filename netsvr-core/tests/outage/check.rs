//! What a sink delivered, per connection: decoded netsvr events checked against what the
//! clients sent — nothing missing, nothing reordered, repeats only as documented replays.

use std::collections::BTreeMap;

use bytes::Bytes;
use netsvr_protocol::pb;
use prost::Message as _;

/// One event of one connection: its open, a numbered message, its close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ev {
    Open,
    Msg(u64),
    Close,
}

/// The events of each connection (by uniqId), in the order the sink delivered them.
pub type PerConn = BTreeMap<String, Vec<Ev>>;

fn number(data: &[u8]) -> u64 {
    let text = std::str::from_utf8(data).unwrap();
    text.parse()
        .unwrap_or_else(|_| panic!("not a numbered message: {text:?}"))
}

/// Queue payloads (u32 BE cmd id + protobuf body) grouped by connection.
pub fn queue_payloads<'a>(payloads: impl IntoIterator<Item = &'a [u8]>) -> PerConn {
    let mut out = PerConn::new();
    for payload in payloads {
        let (cmd, body) = payload.split_at(4);
        let (id, ev) = match u32::from_be_bytes(cmd.try_into().unwrap()) {
            900_001_001 => (pb::ConnOpen::decode(body).unwrap().uniq_id, Ev::Open),
            900_001_003 => {
                let t = pb::Transfer::decode(body).unwrap();
                (t.uniq_id, Ev::Msg(number(&t.data)))
            }
            900_001_002 => (pb::ConnClose::decode(body).unwrap().uniq_id, Ev::Close),
            other => panic!("unexpected cmd id {other}"),
        };
        out.entry(id).or_default().push(ev);
    }
    out
}

/// HTTP callback bodies (`/message`: Transfer, `/close`: ConnClose) grouped by connection.
pub fn callback_bodies(taken: &[(String, Bytes)]) -> PerConn {
    let mut out = PerConn::new();
    for (path, body) in taken {
        let (id, ev) = match path.as_str() {
            "/message" => {
                let t = pb::Transfer::decode(body.clone()).unwrap();
                (t.uniq_id, Ev::Msg(number(&t.data)))
            }
            "/close" => (
                pb::ConnClose::decode(body.clone()).unwrap().uniq_id,
                Ev::Close,
            ),
            other => panic!("unexpected path {other}"),
        };
        out.entry(id).or_default().push(ev);
    }
    out
}

/// What a connection that sent `0..n` should produce, with or without its open.
pub fn want(n: u64, open: bool) -> Vec<Ev> {
    let open = open.then_some(Ev::Open);
    open.into_iter()
        .chain((0..n).map(Ev::Msg))
        .chain([Ev::Close])
        .collect()
}

/// Checks that `got` is `want` delivered at least once and in order: `got` is runs of
/// `want`, each starting where the previous one ended or earlier (a replay of what was just
/// delivered, at most `replay` long), the last ending at the end. Returns the repeats.
pub fn at_least_once_in_order(what: &str, got: &[Ev], want: &[Ev], replay: usize) -> usize {
    let (mut next, mut repeats) = (0, 0);
    let mut i = 0;
    while i < got.len() {
        if next < want.len() && got[i] == want[next] {
            (next, i) = (next + 1, i + 1);
            continue;
        }
        // A replay: it must start within the last `replay` events and run up to `next`.
        let start = (next.saturating_sub(replay)..next).find(|&s| want[s] == got[i]);
        let Some(start) = start else {
            panic!(
                "{what}: at {i} got {:?}, expected {:?} (lost or reordered)",
                got[i],
                want.get(next)
            );
        };
        for w in &want[start..next] {
            assert_eq!(
                got.get(i),
                Some(w),
                "{what}: a replay must repeat a whole run"
            );
            (i, repeats) = (i + 1, repeats + 1);
        }
    }
    assert_eq!(
        next,
        want.len(),
        "{what}: the last {} are missing",
        want.len() - next
    );
    repeats
}
