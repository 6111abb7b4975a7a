//! The consumer of `sink` mode on a thread of its own, with its own runtime, so that clients
//! sending as fast as they can on the main runtime do not starve it of the CPU.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{oneshot, watch};

use super::super::args::Args;
use super::consumer::{Consumer, Tally};

/// A consumer running on its own thread.
pub(super) struct ConsumerThread {
    tally: Option<oneshot::Sender<Tally>>,
    done: oneshot::Receiver<Result<Tally, String>>,
    finished: Arc<AtomicBool>,
}

impl ConsumerThread {
    /// Starts the thread and waits until the consumer is connected (registered, declared).
    pub(super) async fn spawn(args: &Args, stop: watch::Receiver<bool>) -> Result<Self, String> {
        let (ready_tx, ready) = oneshot::channel::<Result<(), String>>();
        let (tally, tally_rx) = oneshot::channel::<Tally>();
        let (done_tx, done) = oneshot::channel();
        let finished = Arc::new(AtomicBool::new(false));
        let (args, flag) = (args.clone(), finished.clone());
        let body = move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let runtime = match runtime {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("consumer runtime: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                let consumer = match Consumer::connect(&args).await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                // Bounded: the run either sends the tally or drops the sender.
                if let Ok(tally) = tally_rx.await {
                    let _ = done_tx.send(consumer.run(tally, stop).await);
                }
            });
            flag.store(true, Ordering::Release);
        };
        std::thread::Builder::new()
            .name("sink-consumer".into())
            .spawn(body)
            .map_err(|e| format!("consumer thread: {e}"))?;
        ready
            .await
            .map_err(|_| "consumer thread ended early".to_owned())??;
        Ok(Self {
            tally: Some(tally),
            done,
            finished,
        })
    }

    /// Starts counting into `tally`.
    pub(super) fn start(&mut self, tally: Tally) {
        if let Some(tx) = self.tally.take() {
            let _ = tx.send(tally);
        }
    }

    /// Whether the consumer stopped (on its own: an error, or the gateway went away).
    pub(super) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// Waits for the consumer's end (after `stop`).
    pub(super) async fn join(self) -> Result<Tally, String> {
        self.done
            .await
            .map_err(|_| "consumer ended without a result".to_owned())?
    }
}
