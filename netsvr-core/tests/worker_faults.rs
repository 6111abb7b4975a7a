//! Worker-port faults: a business process reset mid-stream, then restarted, with and without a survivor.
#![cfg(feature = "worker")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use common::node::Node;
use futures_util::SinkExt;
use netsvr_core::{Gateway, SinkStatus};
use netsvr_protocol::cmd::events::ALL;
use netsvr_protocol::{Codec, Frame, ToBusiness, ToGateway, pb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

/// Client connections sending at once.
const CLIENTS: usize = 12;
/// Messages each client sends, numbered from 0.
const PER_CLIENT: u64 = 600;
/// Time between two messages of one client (about 100 messages/s each, 1,200/s in all).
const PACE: Duration = Duration::from_millis(10);
/// Frames queued per business connection (the default).
const QUEUE: usize = 65_536;
/// How long a step may take on a loaded machine.
const LONG: Duration = Duration::from_secs(30);

/// One event as a business process saw it: a client's numbered message, or its close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Open,
    Message(u64),
    Close,
}

type Log = Arc<Mutex<Vec<(usize, Seen)>>>;
/// uniqId → client index, learnt from ConnOpen's query string and shared by every process
/// (a close may reach another process than the open did).
type Owners = Arc<Mutex<BTreeMap<String, usize>>>;

/// A business process: registers for every event, then records them until it is killed.
struct Process {
    log: Log,
    task: JoinHandle<()>,
}

impl Process {
    async fn start(worker: SocketAddr, owners: &Owners) -> Self {
        let mut stream = TcpStream::connect(worker).await.unwrap();
        let mut out = BytesMut::new();
        ToGateway::Register(pb::RegisterReq { events: ALL }).encode(&mut out);
        stream.write_all(&out).await.unwrap();
        let log = Log::default();
        let (registered_tx, registered) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(record(stream, log.clone(), owners.clone(), registered_tx));
        tokio::time::timeout(LONG, registered)
            .await
            .expect("no RegisterResp")
            .expect("the business task ended before registering");
        Self { log, task }
    }

    fn messages(&self) -> usize {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|(_, s)| matches!(s, Seen::Message(_)))
            .count()
    }

    fn closes(&self) -> usize {
        let log = self.log.lock().unwrap();
        log.iter().filter(|(_, s)| matches!(s, Seen::Close)).count()
    }

    /// Kills it the way a crash does: the task stops mid-read and its socket is reset (zero
    /// linger) with whatever the gateway had sent it still unread.
    async fn kill(self) -> Vec<(usize, Seen)> {
        self.task.abort();
        let _ = self.task.await;
        self.log.lock().unwrap().clone()
    }
}

/// Reads frames until the connection ends. Clients connect with `?c=INDEX` and send
/// `INDEX:N` texts.
async fn record(
    mut stream: TcpStream,
    log: Log,
    owners: Owners,
    registered: tokio::sync::oneshot::Sender<()>,
) {
    stream.set_zero_linger().unwrap();
    let mut registered = Some(registered);
    let (codec, mut buf) = (Codec::default(), BytesMut::new());
    loop {
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            let Frame::Command { cmd, body } = frame else {
                panic!("the gateway never sends heartbeats")
            };
            let seen = match ToBusiness::decode(cmd, body).unwrap() {
                ToBusiness::Register(resp) => {
                    assert_eq!(resp.code, 0, "{resp:?}");
                    let _ = registered.take().map(|tx| tx.send(()));
                    continue;
                }
                ToBusiness::ConnOpen(open) => {
                    let client = open.raw_query.strip_prefix("c=").unwrap().parse().unwrap();
                    owners.lock().unwrap().insert(open.uniq_id, client);
                    (client, Seen::Open)
                }
                ToBusiness::Transfer(t) => {
                    let text = std::str::from_utf8(&t.data).unwrap();
                    let (client, n) = text.split_once(':').unwrap();
                    (client.parse().unwrap(), Seen::Message(n.parse().unwrap()))
                }
                ToBusiness::ConnClose(c) => {
                    let owner = owners.lock().unwrap().get(&c.uniq_id).copied();
                    (
                        owner.expect("a close of an unknown connection"),
                        Seen::Close,
                    )
                }
                other => panic!("unexpected {other:?}"),
            };
            log.lock().unwrap().push(seen);
        }
        if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
            return;
        }
    }
}

// ---- Clients and the gateway's counters ----

/// Connects the clients; each then sends `INDEX:0` to `INDEX:{PER_CLIENT - 1}` at [`PACE`]
/// and closes.
async fn start_clients(node: &Node) -> Vec<JoinHandle<()>> {
    let mut senders = Vec::new();
    for c in 0..CLIENTS {
        let url = node.url(&format!("?c={c}"));
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        senders.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(PACE);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            for n in 0..PER_CLIENT {
                tick.tick().await;
                ws.send(Message::text(format!("{c}:{n}"))).await.unwrap();
            }
            common::close_client(ws).await;
        }));
    }
    senders
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + LONG;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn worker(gateway: &Gateway) -> SinkStatus {
    common::only_sink(gateway, "worker")
}

/// Business connections registered now.
fn registered(gateway: &Gateway) -> usize {
    worker(gateway).capacity / QUEUE
}

/// Waits until every client is closed and every event is accounted for: handed to a
/// business connection (`delivered`) or dropped and counted (`dropped`). Returns the status.
async fn settled(gateway: &Gateway, senders: Vec<JoinHandle<()>>) -> SinkStatus {
    for sender in senders {
        tokio::time::timeout(LONG, sender).await.unwrap().unwrap();
    }
    let total = CLIENTS as u64 * PER_CLIENT;
    until("every event accounted for", || {
        let (stats, s) = (gateway.stats(), worker(gateway));
        let events = stats.opened + stats.messages_in + stats.closed;
        stats.closed == CLIENTS as u64 && s.queued == 0 && s.delivered + s.dropped == events
    })
    .await;
    assert_eq!(gateway.stats().messages_in, total, "every message accepted");
    worker(gateway)
}

/// What one process saw of one client: message numbers in arrival order, opens, closes.
#[derive(Debug, Default, Clone)]
struct View {
    numbers: Vec<u64>,
    opens: usize,
    closes: usize,
}

/// Splits a process's log by client, checking that what it saw of each client is in order:
/// the open first, numbers strictly increasing, the close last.
fn views(log: &[(usize, Seen)]) -> Vec<View> {
    let mut views = vec![View::default(); CLIENTS];
    for &(c, seen) in log {
        let v = &mut views[c];
        assert_eq!(v.closes, 0, "client {c}: {seen:?} after its close");
        match seen {
            Seen::Open => {
                assert!(
                    v.numbers.is_empty() && v.opens == 0,
                    "client {c}: late open"
                );
                v.opens += 1;
            }
            Seen::Message(n) => {
                if let Some(&last) = v.numbers.last() {
                    assert!(
                        n > last,
                        "client {c}: {n} after {last} (reordered or repeated)"
                    );
                }
                v.numbers.push(n);
            }
            Seen::Close => v.closes += 1,
        }
    }
    views
}

/// Events a process saw (opens, messages and closes).
fn count(views: &[View]) -> u64 {
    views
        .iter()
        .map(|v| (v.numbers.len() + v.opens + v.closes) as u64)
        .sum()
}

fn range(numbers: &[u64]) -> Option<(u64, u64)> {
    Some((*numbers.first()?, *numbers.last()? + 1))
}

/// `numbers` is exactly `from..to`.
fn contiguous(numbers: &[u64]) -> bool {
    range(numbers).is_none_or(|(from, to)| numbers.len() as u64 == to - from)
}

// ---- The faults ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_business_hands_its_clients_to_the_survivor_in_order() {
    let node = Node::start().await;
    let owners = Owners::default();
    let a = Process::start(node.worker, &owners).await;
    let b = Process::start(node.worker, &owners).await;
    until("two registered", || registered(&node.gateway) == 2).await;
    let senders = start_clients(&node).await;
    until("both processes to receive events", || {
        a.messages() >= 100 && b.messages() >= 100
    })
    .await;
    let a_log = a.kill().await;
    assert!(senders.iter().all(|s| !s.is_finished()), "kill mid-stream");
    until("the gateway to drop the killed process", || {
        registered(&node.gateway) == 1
    })
    .await;
    let at_kill = b.messages();
    until("the survivor to take every client", || {
        b.messages() >= at_kill + 500
    })
    .await;
    // Restarted, it shares the clients with the survivor again (the registered set changed,
    // so some clients move: each process still sees its share in order).
    let a2 = Process::start(node.worker, &owners).await;
    until("the restarted process to receive events", || {
        a2.messages() >= 100
    })
    .await;
    assert!(
        senders.iter().all(|s| !s.is_finished()),
        "restart mid-stream"
    );
    let status = settled(&node.gateway, senders).await;
    // Written is not yet read: let the live processes read every close before they stop.
    until("every close read", || b.closes() + a2.closes() == CLIENTS).await;
    let (va, vb, va2) = (
        views(&a_log),
        views(&b.kill().await),
        views(&a2.kill().await),
    );

    let (mut lost, mut moved) = (0, 0);
    for c in 0..CLIENTS {
        assert_eq!(va[c].opens + vb[c].opens, 1, "client {c}: one open");
        assert_eq!(va[c].closes, 0, "client {c}: closed after the kill");
        assert_eq!(vb[c].closes + va2[c].closes, 1, "client {c}: one close");
        let mut alive: Vec<u64> = [&vb[c].numbers[..], &va2[c].numbers[..]].concat();
        alive.sort_unstable();
        assert!(
            contiguous(&alive),
            "client {c}: a hole or a repeat {alive:?}"
        );
        let (from, to) = range(&alive).expect("the live processes saw every client");
        assert_eq!(to, PER_CLIENT, "client {c}: the last messages arrived");
        match range(&va[c].numbers) {
            // The killed process's clients: it saw a first part in order; the survivor the
            // rest after at most one gap (what was in flight to the killed process).
            Some((0, k)) if contiguous(&va[c].numbers) => {
                assert!(from >= k, "client {c}: {from}.. after ..{k} (repeated)");
                lost += from - k;
                moved += 1;
            }
            None => assert_eq!(
                from, 0,
                "client {c}: the survivor's own client lost messages"
            ),
            Some(_) => panic!("client {c}: the killed process saw {:?}", va[c].numbers),
        }
    }
    assert!(
        moved > 0 && moved < CLIENTS,
        "{moved} of {CLIENTS} clients moved"
    );
    let received = count(&va) + count(&vb) + count(&va2);
    let events = CLIENTS as u64 * (PER_CLIENT + 2);
    assert_eq!(received + lost, events);
    let unread = status.delivered - received;
    println!(
        "{moved} clients moved to the survivor; {lost} messages lost with the killed process: \
         {unread} written to it and never read, {} dropped and counted; {status:?}",
        status.dropped
    );
    assert_eq!(lost, unread + status.dropped);
    // The sink's drops are the events it refused (the gateway's drops_sink) plus those
    // accepted into the killed process's queue and lost with its connection.
    assert!(
        node.gateway.stats().drops_sink <= status.dropped,
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_business_killed_and_restarted_drops_and_counts_the_gap() {
    let node = Node::start().await;
    let owners = Owners::default();
    let a = Process::start(node.worker, &owners).await;
    until("one registered", || registered(&node.gateway) == 1).await;
    let senders = start_clients(&node).await;
    until("events", || a.messages() >= 200).await;
    let a_log = a.kill().await;
    assert!(senders.iter().all(|s| !s.is_finished()), "kill mid-stream");
    until("the gateway to drop the killed process", || {
        registered(&node.gateway) == 0
    })
    .await;
    let gap_start = worker(&node.gateway).dropped;
    until("events during the gap dropped and counted", || {
        worker(&node.gateway).dropped >= gap_start + 300
    })
    .await;
    assert!(!worker(&node.gateway).healthy);
    let a2 = Process::start(node.worker, &owners).await;
    until("the restarted process to receive events", || {
        a2.messages() >= 100
    })
    .await;
    assert!(
        senders.iter().all(|s| !s.is_finished()),
        "restart mid-stream"
    );
    let status = settled(&node.gateway, senders).await;
    until("every close read", || a2.closes() == CLIENTS).await;
    let (va, va2) = (views(&a_log), views(&a2.kill().await));

    let mut lost = 0;
    for c in 0..CLIENTS {
        assert_eq!((va[c].opens, va[c].closes), (1, 0), "client {c}");
        assert_eq!((va2[c].opens, va2[c].closes), (0, 1), "client {c}");
        // Before the kill: a first part in order; after the restart: the last part in order;
        // between them the gap.
        let (before, after) = (&va[c].numbers, &va2[c].numbers);
        assert!(contiguous(before) && contiguous(after), "client {c}");
        let (Some((0, k)), Some((from, PER_CLIENT))) = (range(before), range(after)) else {
            panic!("client {c}: {before:?} then {after:?}");
        };
        assert!(from >= k, "client {c}: {from}.. after ..{k}");
        lost += from - k;
    }
    let received = count(&va) + count(&va2);
    assert_eq!(received + lost, CLIENTS as u64 * (PER_CLIENT + 2));
    let unread = status.delivered - received;
    println!(
        "{lost} messages lost in the gap: {} dropped and counted while none was registered, \
         {unread} written to the killed process and never read; {status:?}",
        status.dropped
    );
    assert!(status.dropped >= 300, "{status:?}");
    assert_eq!(lost, status.dropped + unread, "every loss accounted for");
    // The sink's drops are the events it refused (the gateway's drops_sink) plus those
    // accepted into the killed process's queue and lost with its connection.
    assert!(
        node.gateway.stats().drops_sink <= status.dropped,
        "{status:?}"
    );
    assert!(status.healthy, "{status:?}");
}
