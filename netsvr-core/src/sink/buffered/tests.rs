//! Unit tests of the buffered sink: order, retries, bounds, flush.

use std::sync::Arc;

use parking_lot::Mutex;

use super::*;
use crate::event::{EventKind, MessageKind};

fn event(conn: u8, n: u32) -> Event {
    crate::event::test_event(
        conn,
        EventKind::Message {
            kind: MessageKind::Binary,
            payload: bytes::Bytes::from(n.to_be_bytes().to_vec()),
        },
    )
}

fn number(e: &Event) -> (u8, u32) {
    match &e.kind {
        EventKind::Message { payload, .. } => {
            let mut b = [0u8; 4];
            b.copy_from_slice(payload);
            (e.conn.meta.uniq_id.as_bytes()[0], u32::from_be_bytes(b))
        }
        _ => (0, 0),
    }
}

/// Records what it got; fails while `down` is set (after delivering `partial` of a batch).
#[derive(Clone, Default)]
struct Recorder {
    got: Arc<Mutex<Vec<(u8, u32)>>>,
    down: Arc<AtomicBool>,
    partial: usize,
}

#[async_trait]
impl Backend for Recorder {
    async fn deliver(&mut self, batch: &[Event]) -> Result<(), BatchError> {
        if self.down.load(Ordering::SeqCst) {
            let n = self.partial.min(batch.len());
            self.got.lock().extend(batch[..n].iter().map(number));
            return Err(BatchError {
                delivered: n,
                error: "down".into(),
            });
        }
        self.got.lock().extend(batch.iter().map(number));
        Ok(())
    }
}

fn config(capacity: usize, lanes: usize) -> BufferedConfig {
    let mut c = BufferedConfig::new("test");
    c.capacity = capacity;
    c.lanes = lanes;
    c.batch = 8;
    c.retry_min = Duration::from_millis(5);
    c.retry_max = Duration::from_millis(20);
    c
}

#[tokio::test]
async fn delivers_everything_in_order_per_connection() {
    let rec = Recorder::default();
    let sink = BufferedSink::start(config(10_000, 4), |_| rec.clone());
    for n in 0..500 {
        for conn in 1..=5 {
            sink.deliver(event(conn, n)).unwrap();
        }
    }
    assert!(sink.flush(Duration::from_secs(5)).await);
    let got = rec.got.lock().clone();
    assert_eq!(got.len(), 2500);
    for conn in 1..=5 {
        let seq: Vec<u32> = got
            .iter()
            .filter(|(c, _)| *c == conn)
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(seq, (0..500).collect::<Vec<_>>(), "conn {conn}");
    }
    let mut status = Vec::new();
    sink.report(&mut status);
    assert_eq!(status[0].delivered, 2500);
    assert_eq!(status[0].queued, 0);
}

#[tokio::test]
async fn outage_retries_without_loss_or_duplicates_then_counts_drops_past_the_bound() {
    let rec = Recorder {
        partial: 3,
        ..Recorder::default()
    };
    rec.down.store(true, Ordering::SeqCst);
    let sink = BufferedSink::start(config(100, 1), |_| rec.clone());
    let mut refused = 0;
    for n in 0..150 {
        if sink.deliver(event(1, n)).is_err() {
            refused += 1;
        }
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut status = Vec::new();
    sink.report(&mut status);
    assert!(!status[0].healthy);
    assert!(status[0].retried > 0);
    // The lane keeps at most its bound buffered plus one batch in flight.
    assert!(refused >= 150 - 100 - 8 - 3, "refused {refused}");
    assert_eq!(status[0].dropped, refused);
    assert!(!sink.flush(Duration::from_millis(20)).await);
    rec.down.store(false, Ordering::SeqCst);
    assert!(sink.flush(Duration::from_secs(5)).await);
    let got: Vec<u32> = rec.got.lock().iter().map(|(_, n)| *n).collect();
    let accepted = 150 - refused as usize;
    assert_eq!(got.len(), accepted, "every accepted event exactly once");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
    let mut status = Vec::new();
    sink.report(&mut status);
    assert!(status[0].healthy);
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let c = config(1, 1);
    assert_eq!(backoff(&c, 0), Duration::from_millis(5));
    assert_eq!(backoff(&c, 1), Duration::from_millis(10));
    assert_eq!(backoff(&c, 2), Duration::from_millis(20));
    assert_eq!(backoff(&c, 30), Duration::from_millis(20));
}
