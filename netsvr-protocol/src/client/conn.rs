//! One task-port connection per gateway, owned by a background task: a bounded job queue
//! in, writes batched, replies matched to a FIFO of pending requests (the gateway answers
//! in order with the same command id), heartbeats when idle, reconnects with back-off.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, warn};

use super::io::{Backoff, FrameReader, after, encode, heartbeat_frame, io_error, timed_out};
use super::{ClientConfig, ClientError};
use crate::{Frame, ToBusiness, ToGateway, cmd};

/// Bytes gathered into one write before it is flushed.
const BATCH_BYTES: usize = 64 * 1024;

/// A reply, or why there is none.
pub(crate) type Reply = Result<ToBusiness, ClientError>;

/// What callers hand the connection task.
enum Job {
    /// A no-response command; `done` says whether it reached the socket.
    Send {
        frame: Bytes,
        done: oneshot::Sender<Result<(), ClientError>>,
    },
    /// A query; `reply` gets the answer. The permit holds a slot of the in-flight window.
    Request {
        frame: Bytes,
        cmd: u32,
        reply: oneshot::Sender<Reply>,
        permit: OwnedSemaphorePermit,
    },
}

impl Job {
    fn fail(self, e: ClientError) {
        match self {
            Self::Send { done, .. } => drop(done.send(Err(e))),
            Self::Request { reply, .. } => drop(reply.send(Err(e))),
        }
    }
}

/// A query written and not answered yet.
struct Pending {
    cmd: u32,
    reply: oneshot::Sender<Reply>,
    deadline: Instant,
    _permit: OwnedSemaphorePermit,
}

/// The caller's side of one gateway connection. Cheap to clone; the background task stops
/// when the last clone is dropped (after writing what was queued).
#[derive(Debug, Clone)]
pub(crate) struct NodeConn {
    jobs: mpsc::Sender<Job>,
    window: Arc<Semaphore>,
    config: Arc<ClientConfig>,
}

impl NodeConn {
    /// Starts the connection task on an already connected stream.
    pub(crate) fn spawn(addr: SocketAddr, stream: TcpStream, config: Arc<ClientConfig>) -> Self {
        let (jobs, rx) = mpsc::channel(config.queue_len.max(1));
        let window = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
        tokio::spawn(supervise(addr, stream, rx, Arc::clone(&config)));
        Self {
            jobs,
            window,
            config,
        }
    }

    /// Queues a no-response command; the receiver resolves once it is written.
    pub(crate) async fn start_send(
        &self,
        frame: Bytes,
    ) -> Result<oneshot::Receiver<Result<(), ClientError>>, ClientError> {
        let (done, rx) = oneshot::channel();
        self.jobs
            .send(Job::Send { frame, done })
            .await
            .map_err(|_| ClientError::Closed)?;
        Ok(rx)
    }

    /// Encodes and queues a query, waiting for a slot in the in-flight window first.
    pub(crate) async fn start_request(
        &self,
        req: &ToGateway,
    ) -> Result<oneshot::Receiver<Reply>, ClientError> {
        let frame = encode(req, &self.config.codec)?;
        let permit = Arc::clone(&self.window)
            .acquire_owned()
            .await
            .map_err(|_| ClientError::Closed)?;
        let (reply, rx) = oneshot::channel();
        let job = Job::Request {
            frame,
            cmd: req.cmd(),
            reply,
            permit,
        };
        self.jobs.send(job).await.map_err(|_| ClientError::Closed)?;
        Ok(rx)
    }

    /// Encodes a command with the gateway's size limit.
    pub(crate) fn encode(&self, msg: &ToGateway) -> Result<Bytes, ClientError> {
        encode(msg, &self.config.codec)
    }
}

/// Waits for a queued job's outcome.
pub(crate) async fn outcome<T>(
    rx: oneshot::Receiver<Result<T, ClientError>>,
) -> Result<T, ClientError> {
    rx.await.map_err(|_| ClientError::Closed)?
}

/// Why a connection ended.
enum Exit {
    /// Every `NodeConn` is gone and the queue is drained: stop for good.
    Done,
    /// The connection broke; reconnect.
    Lost(ClientError),
}

/// The connection task: run the connection, and on loss reconnect with back-off, failing
/// the jobs that arrive while there is no connection.
async fn supervise(
    addr: SocketAddr,
    first: TcpStream,
    mut jobs: mpsc::Receiver<Job>,
    config: Arc<ClientConfig>,
) {
    let mut backoff = Backoff::new(config.backoff_min, config.backoff_max);
    let mut stream = Some(first);
    loop {
        let connected = match stream.take() {
            Some(s) => Ok(s),
            None => super::io::connect(addr, &config).await,
        };
        let reason = match connected {
            Ok(s) => {
                debug!(%addr, "task connection up");
                let since = Instant::now();
                match run(addr, s, &mut jobs, &config).await {
                    Exit::Done => return,
                    Exit::Lost(e) => {
                        warn!(%addr, error = %e, "task connection lost");
                        if since.elapsed() >= config.backoff_max {
                            backoff.reset();
                        }
                        e.to_string()
                    }
                }
            }
            Err(e) => {
                warn!(%addr, error = %e, "task connect failed");
                e.to_string()
            }
        };
        let wait = tokio::time::sleep(backoff.next_delay());
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                job = jobs.recv() => match job {
                    Some(job) => job.fail(io_error(
                        ErrorKind::NotConnected,
                        format!("gateway task port {addr} not connected ({reason}); reconnecting"),
                    )),
                    None => return,
                },
            }
        }
    }
}

/// Runs one connection until it breaks or the callers are gone. Whatever is in flight
/// when it breaks is failed with the reason.
async fn run(
    addr: SocketAddr,
    stream: TcpStream,
    jobs: &mut mpsc::Receiver<Job>,
    config: &ClientConfig,
) -> Exit {
    let (rd, mut wr) = stream.into_split();
    let mut reader = FrameReader::new(rd, config.reply_codec());
    let (pend_tx, mut pend_rx) = mpsc::channel::<Pending>(config.max_in_flight.max(1));
    let mut fifo = VecDeque::new();
    let exit = tokio::select! {
        e = read_loop(&mut reader, &mut pend_rx, &mut fifo) => Exit::Lost(e),
        exit = write_loop(&mut wr, jobs, pend_tx, config) => exit,
    };
    let why = match &exit {
        Exit::Done => "the client was dropped".to_owned(),
        Exit::Lost(e) => e.to_string(),
    };
    pend_rx.close();
    while let Ok(p) = pend_rx.try_recv() {
        fifo.push_back(p);
    }
    for p in fifo {
        let _ = p.reply.send(Err(io_error(
            ErrorKind::ConnectionAborted,
            format!("connection to {addr} ended before the reply: {why}"),
        )));
    }
    exit
}

/// Writes queued jobs (batched while more are ready) and heartbeats on idle. Registers each
/// query's pending entry before its bytes leave, so a reply always finds it.
async fn write_loop(
    wr: &mut OwnedWriteHalf,
    jobs: &mut mpsc::Receiver<Job>,
    pend_tx: mpsc::Sender<Pending>,
    config: &ClientConfig,
) -> Exit {
    let period = config.heartbeat_period();
    let heartbeat = heartbeat_frame(&config.codec);
    let mut tick = tokio::time::interval_at(after(period), period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut out = BytesMut::new();
    let mut acks = Vec::new();
    loop {
        let first = tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => job,
                None => return Exit::Done,
            },
            _ = tick.tick() => {
                if let Err(e) = wr.write_all(&heartbeat).await {
                    return Exit::Lost(e.into());
                }
                continue;
            }
        };
        let mut next = Some(first);
        while let Some(job) = next {
            match job {
                Job::Send { frame, done } => {
                    out.extend_from_slice(&frame);
                    acks.push(done);
                }
                Job::Request {
                    frame,
                    cmd,
                    reply,
                    permit,
                } => {
                    let pending = Pending {
                        cmd,
                        reply,
                        deadline: after(config.request_timeout),
                        _permit: permit,
                    };
                    // Never waits long: the window bounds entries to the channel's capacity.
                    if let Err(e) = pend_tx.send(pending).await {
                        let _ = e.0.reply.send(Err(ClientError::Closed));
                        return Exit::Lost(ClientError::Closed);
                    }
                    out.extend_from_slice(&frame);
                }
            }
            next = if out.len() < BATCH_BYTES {
                jobs.try_recv().ok()
            } else {
                None
            };
        }
        let written = wr.write_all(&out).await;
        out.clear();
        tick.reset();
        match written {
            Ok(()) => acks.drain(..).for_each(|done| drop(done.send(Ok(())))),
            Err(e) => {
                let why = e.to_string();
                for done in acks.drain(..) {
                    let _ = done.send(Err(io_error(e.kind(), why.clone())));
                }
                return Exit::Lost(e.into());
            }
        }
    }
}

/// Reads replies and hands each to the oldest pending query of the same command id. A
/// reply with nothing pending, or of another command, or a query past its deadline, breaks
/// the connection: the order can no longer be trusted.
async fn read_loop(
    reader: &mut FrameReader<OwnedReadHalf>,
    pend_rx: &mut mpsc::Receiver<Pending>,
    fifo: &mut VecDeque<Pending>,
) -> ClientError {
    loop {
        let deadline = fifo.front().map(|p| p.deadline);
        let frame = tokio::select! {
            Some(p) = pend_rx.recv() => {
                fifo.push_back(p);
                continue;
            }
            () = sleep_until(deadline), if deadline.is_some() => {
                let e = match fifo.pop_front() {
                    Some(p) => {
                        let name = cmd::name(p.cmd).unwrap_or("?");
                        let _ = p.reply.send(Err(timed_out(format!("no reply to {name}"))));
                        format!("no reply to {name} in time; resetting the connection")
                    }
                    None => "reply deadline passed".to_owned(),
                };
                return timed_out(e);
            }
            frame = reader.next() => match frame {
                Ok(f) => f,
                Err(e) => return e,
            },
        };
        let Frame::Command { cmd: got, body } = frame else {
            continue;
        };
        if matches!(got, cmd::CONN_OPEN | cmd::CONN_CLOSE | cmd::TRANSFER) {
            debug!(cmd = got, "event on a task connection, ignored");
            continue;
        }
        while let Ok(p) = pend_rx.try_recv() {
            fifo.push_back(p);
        }
        let name = cmd::name(got).unwrap_or("?");
        let Some(p) = fifo.pop_front() else {
            return ClientError::Protocol(format!("reply {name} ({got}) with no query in flight"));
        };
        if p.cmd != got {
            let want = cmd::name(p.cmd).unwrap_or("?");
            let msg = format!("reply {name} ({got}) while waiting for {want}");
            let _ = p.reply.send(Err(ClientError::Protocol(msg.clone())));
            return ClientError::Protocol(msg);
        }
        let _ = p
            .reply
            .send(ToBusiness::decode(got, body).map_err(Into::into));
    }
}

/// `tokio::time::sleep_until` for an optional deadline (never resolves for `None`).
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
