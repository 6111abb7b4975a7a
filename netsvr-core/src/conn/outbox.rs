//! A connection's bounded outbound queue: producers push shared frames, the connection task
//! takes them all at once and writes them in batches.

use std::collections::VecDeque;
use std::task::Waker;

use atomic_waker::AtomicWaker;
use parking_lot::Mutex;

use super::Frame;
use crate::event::CloseReason;

/// A request to close the connection, carried out by its task.
#[derive(Debug, Clone)]
pub(crate) struct CloseRequest {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
    pub(crate) cause: CloseReason,
}

/// What happened to a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    Queued,
    Full,
    Closed,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Frame>,
    close: Option<CloseRequest>,
    shut: bool,
    /// The task registered its waker and has not been woken since: the next push wakes it.
    armed: bool,
}

/// The queue. Holds no heap memory while empty.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    waker: AtomicWaker,
}

impl Outbox {
    /// Queues one frame unless `capacity` frames are already waiting or the connection is
    /// closing. Wakes the connection task if it is waiting (once per batch).
    pub(crate) fn push(&self, frame: Frame, capacity: usize) -> Push {
        let mut state = self.state.lock();
        if state.shut || state.close.is_some() {
            return Push::Closed;
        }
        if state.frames.len() >= capacity {
            return Push::Full;
        }
        state.frames.push_back(frame);
        let wake = std::mem::take(&mut state.armed);
        drop(state);
        if wake {
            self.waker.wake();
        }
        Push::Queued
    }

    /// Queues several frames in order, all or none.
    pub(crate) fn push_all(&self, frames: &[Frame], capacity: usize) -> Push {
        let mut state = self.state.lock();
        if state.shut || state.close.is_some() {
            return Push::Closed;
        }
        if state.frames.len() + frames.len() > capacity {
            return Push::Full;
        }
        if frames.is_empty() {
            return Push::Queued;
        }
        state.frames.extend(frames.iter().cloned());
        let wake = std::mem::take(&mut state.armed);
        drop(state);
        if wake {
            self.waker.wake();
        }
        Push::Queued
    }

    /// Says the task is running and will [`take`](Self::take) before it waits again, so
    /// pushes need not wake it (a connection answering its own message does not schedule
    /// itself a second time).
    pub(crate) fn disarm(&self) {
        self.state.lock().armed = false;
    }

    /// Asks the task to close after writing what is queued. The first request wins.
    pub(crate) fn request_close(&self, request: CloseRequest) {
        self.close_inner(request, false);
    }

    /// Asks the task to close now, discarding what is queued (slow consumer).
    pub(crate) fn close_now(&self, request: CloseRequest) {
        self.close_inner(request, true);
    }

    fn close_inner(&self, request: CloseRequest, discard: bool) {
        let mut state = self.state.lock();
        if state.shut || state.close.is_some() {
            return;
        }
        if discard {
            state.frames = VecDeque::new();
        }
        state.close = Some(request);
        drop(state);
        self.waker.wake();
    }

    /// Moves every queued frame into `into` (which must be empty) and returns a pending close
    /// request, registering `waker` first so no push is missed.
    pub(crate) fn take(&self, waker: &Waker, into: &mut VecDeque<Frame>) -> Option<CloseRequest> {
        self.waker.register(waker);
        let mut state = self.state.lock();
        state.armed = true;
        if !state.frames.is_empty() {
            std::mem::swap(&mut state.frames, into);
        }
        state.close.take().inspect(|_| {
            // Keep refusing pushes once a close was handed out.
            state.shut = true;
        })
    }

    /// Hands out a pending close request even while earlier frames are still being written
    /// (a client that stopped reading must still be closable); queued frames follow them.
    pub(crate) fn take_close(
        &self,
        waker: &Waker,
        into: &mut VecDeque<Frame>,
    ) -> Option<CloseRequest> {
        self.waker.register(waker);
        let mut state = self.state.lock();
        state.armed = true;
        let request = state.close.take()?;
        state.shut = true;
        into.extend(state.frames.drain(..));
        Some(request)
    }

    /// Marks the queue dead: later pushes answer `Closed`; queued frames are freed.
    pub(crate) fn shut(&self) {
        let mut state = self.state.lock();
        state.shut = true;
        state.frames = VecDeque::new();
    }

    /// Frames waiting (for tests and stats).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.state.lock().frames.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn request() -> CloseRequest {
        CloseRequest {
            code: 1008,
            reason: "kicked",
            cause: CloseReason::Kicked,
        }
    }

    #[test]
    fn bounded_and_wakes_once_per_batch() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let outbox = Outbox::default();
        let mut taken = VecDeque::new();
        assert!(outbox.take(&waker, &mut taken).is_none());
        assert_eq!(
            outbox.push(Frame::from(Bytes::from_static(b"a")), 2),
            Push::Queued
        );
        assert_eq!(
            outbox.push(Frame::from(Bytes::from_static(b"b")), 2),
            Push::Queued
        );
        assert_eq!(
            outbox.push(Frame::from(Bytes::from_static(b"c")), 2),
            Push::Full
        );
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(outbox.take(&waker, &mut taken).is_none());
        assert_eq!(taken.len(), 2);
        assert_eq!(outbox.len(), 0);
    }

    #[test]
    fn a_disarmed_queue_collects_without_waking_until_the_next_take() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let outbox = Outbox::default();
        let mut taken = VecDeque::new();
        assert!(outbox.take(&waker, &mut taken).is_none());
        outbox.disarm();
        assert_eq!(
            outbox.push(Frame::from(Bytes::from_static(b"a")), 8),
            Push::Queued
        );
        assert_eq!(
            outbox.push_all(&[Frame::from(Bytes::from_static(b"b"))], 8),
            Push::Queued
        );
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            0,
            "the running task is not woken"
        );
        assert!(outbox.take(&waker, &mut taken).is_none());
        assert_eq!(taken.len(), 2, "the next take collects what came meanwhile");
        taken.clear();
        assert_eq!(
            outbox.push(Frame::from(Bytes::from_static(b"c")), 8),
            Push::Queued
        );
        assert_eq!(
            outbox.push(Frame::from(Bytes::from_static(b"d")), 8),
            Push::Queued
        );
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "armed again: one wake per batch"
        );
    }

    #[test]
    fn close_keeps_queue_unless_discarding() {
        let waker = Waker::noop();
        let outbox = Outbox::default();
        outbox.push(Frame::from(Bytes::from_static(b"bye")), 8);
        outbox.request_close(request());
        assert_eq!(
            outbox.push(Frame::from(Bytes::from_static(b"late")), 8),
            Push::Closed
        );
        let mut taken = VecDeque::new();
        assert!(outbox.take(waker, &mut taken).is_some());
        assert_eq!(taken.len(), 1);

        let outbox = Outbox::default();
        outbox.push(Frame::from(Bytes::from_static(b"x")), 8);
        outbox.close_now(request());
        let mut taken = VecDeque::new();
        assert!(outbox.take(waker, &mut taken).is_some());
        assert!(taken.is_empty());
    }
}
