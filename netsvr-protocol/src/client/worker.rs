//! [`WorkerClient`]: registers on every gateway's worker port and merges their events into
//! one bounded channel; heartbeats, reconnects and re-registers on its own.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, warn};

use super::io::{
    Backoff, FrameReader, after, connect, encode, heartbeat_frame, stopped, timed_out,
};
use super::{ClientConfig, ClientError, GatewayAddr};
use crate::{Frame, ToBusiness, ToGateway, cmd, pb};

/// What a gateway's worker connection reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A client connected.
    Open(pb::ConnOpen),
    /// A client disconnected.
    Close(pb::ConnClose),
    /// A client sent a message.
    Message(pb::Transfer),
    /// The connection to this gateway is registered (first time and after every
    /// reconnect); `conn_id` is the gateway's id for it.
    Registered {
        /// `RegisterResp.connId`.
        conn_id: String,
    },
    /// The connection to this gateway was lost; it is being re-established. Events sent
    /// by the gateway in between are lost.
    Disconnected {
        /// Why.
        reason: String,
    },
}

/// An [`Event`] and the gateway it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerEvent {
    /// The gateway's index in the list given to [`WorkerClient::connect`].
    pub gateway: usize,
    /// What happened.
    pub event: Event,
}

/// The event side of a business process: one registered connection per gateway worker
/// port, one task each, all events merged into one bounded channel (a slow reader slows
/// the gateways down through TCP rather than piling events up in memory).
///
/// ```no_run
/// use netsvr_protocol::client::{ClientConfig, Event, GatewayAddr, WorkerClient};
///
/// # async fn run(gateways: Vec<GatewayAddr>) -> Result<(), netsvr_protocol::client::ClientError> {
/// let mut worker = WorkerClient::connect(gateways, ClientConfig::default()).await?;
/// while let Some(ev) = worker.recv().await {
///     match ev.event {
///         Event::Open(open) => println!("{} connected to gateway {}", open.uniq_id, ev.gateway),
///         Event::Message(msg) => println!("{} bytes from {}", msg.data.len(), msg.uniq_id),
///         _ => {}
///     }
/// }
/// worker.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct WorkerClient {
    events: mpsc::Receiver<WorkerEvent>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    gateways: Vec<GatewayAddr>,
}

impl WorkerClient {
    /// Connects to every gateway's worker port and registers for `config.events`. Fails if
    /// any gateway cannot be reached or refuses the registration
    /// ([`ClientError::RegisterRefused`]); later losses are repaired in the background.
    /// Must run inside a Tokio runtime.
    pub async fn connect(
        gateways: Vec<GatewayAddr>,
        config: ClientConfig,
    ) -> Result<Self, ClientError> {
        if gateways.is_empty() {
            return Err(ClientError::Invalid("no gateway given".to_owned()));
        }
        let config = Arc::new(config);
        let mut sessions = Vec::with_capacity(gateways.len());
        for g in &gateways {
            sessions.push(Session::open(g.worker(), &config).await?);
        }
        let (tx, events) = mpsc::channel(config.event_buffer.max(1));
        let (stop, stop_rx) = watch::channel(false);
        let tasks = gateways
            .iter()
            .zip(sessions)
            .enumerate()
            .map(|(index, (g, session))| {
                let task = GatewayTask {
                    index,
                    addr: g.worker(),
                    config: Arc::clone(&config),
                    tx: tx.clone(),
                    stop: stop_rx.clone(),
                };
                tokio::spawn(task.run(session))
            })
            .collect();
        Ok(Self {
            events,
            stop,
            tasks,
            gateways,
        })
    }

    /// The next event of any gateway; `None` once the client is closed and every buffered
    /// event has been taken.
    pub async fn recv(&mut self) -> Option<WorkerEvent> {
        self.events.recv().await
    }

    /// The gateways, in the order given; [`WorkerEvent::gateway`] indexes this.
    pub fn gateways(&self) -> &[GatewayAddr] {
        &self.gateways
    }

    /// Unregisters from every gateway (waiting up to `request_timeout` for each answer) and
    /// stops. Events already buffered can still be taken with [`recv`](Self::recv); events
    /// arriving during the unregistration are kept only if the channel has room. Dropping
    /// the client does the same in the background.
    pub async fn close(&mut self) {
        self.stop.send_replace(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

/// A registered worker connection.
struct Session {
    reader: FrameReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    conn_id: String,
}

impl Session {
    /// Connects, sends `Register` and waits for `RegisterResp`.
    async fn open(addr: SocketAddr, config: &ClientConfig) -> Result<Self, ClientError> {
        let (rd, mut wr) = connect(addr, config).await?.into_split();
        let mut reader = FrameReader::new(rd, config.reply_codec());
        let register = ToGateway::Register(pb::RegisterReq {
            events: config.events,
        });
        wr.write_all(&encode(&register, &config.codec)?).await?;
        let answer = async {
            loop {
                match reader.next().await? {
                    Frame::Heartbeat => {}
                    Frame::Command { cmd, body } => {
                        return match ToBusiness::decode(cmd, body)? {
                            ToBusiness::Register(resp) => Ok(resp),
                            other => Err(ClientError::Protocol(format!(
                                "expected RegisterResp, got {}",
                                cmd::name(other.cmd()).unwrap_or("?")
                            ))),
                        };
                    }
                }
            }
        };
        let resp = tokio::time::timeout(config.request_timeout, answer)
            .await
            .map_err(|_| timed_out(format!("no RegisterResp from {addr}")))??;
        if resp.code != 0 {
            return Err(ClientError::RegisterRefused {
                code: resp.code,
                message: resp.message,
            });
        }
        debug!(%addr, conn_id = %resp.conn_id, "registered");
        Ok(Self {
            reader,
            wr,
            conn_id: resp.conn_id,
        })
    }
}

/// How a session ended.
enum End {
    /// Closed on purpose (shutdown, or the client dropped): stop for good.
    Stop,
    /// Lost: reconnect.
    Lost(ClientError),
}

/// The task of one gateway.
struct GatewayTask {
    index: usize,
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    tx: mpsc::Sender<WorkerEvent>,
    stop: watch::Receiver<bool>,
}

impl GatewayTask {
    async fn run(mut self, first: Session) {
        let mut backoff = Backoff::new(self.config.backoff_min, self.config.backoff_max);
        let mut next = Some(first);
        loop {
            let session = match next.take() {
                Some(s) => s,
                None => {
                    let opened = tokio::select! {
                        biased;
                        () = stopped(&mut self.stop) => return,
                        r = Session::open(self.addr, &self.config) => r,
                    };
                    match opened {
                        Ok(s) => s,
                        Err(e) => {
                            warn!(addr = %self.addr, error = %e, "worker reconnect failed");
                            if self.pause(backoff.next_delay()).await {
                                return;
                            }
                            continue;
                        }
                    }
                }
            };
            let since = Instant::now();
            let reason = match self.serve(session).await {
                End::Stop => return,
                End::Lost(e) => e.to_string(),
            };
            warn!(addr = %self.addr, %reason, "worker connection lost");
            if since.elapsed() >= self.config.backoff_max {
                backoff.reset();
            }
            let lost = self.event(Event::Disconnected { reason });
            let delivered = tokio::select! {
                biased;
                () = stopped(&mut self.stop) => false,
                r = self.tx.send(lost) => r.is_ok(),
            };
            if !delivered || self.pause(backoff.next_delay()).await {
                return;
            }
        }
    }

    /// Sleeps; true if shutdown was asked for meanwhile.
    async fn pause(&mut self, d: std::time::Duration) -> bool {
        tokio::select! {
            biased;
            () = stopped(&mut self.stop) => true,
            () = tokio::time::sleep(d) => false,
        }
    }

    fn event(&self, event: Event) -> WorkerEvent {
        WorkerEvent {
            gateway: self.index,
            event,
        }
    }

    /// Delivers events of a registered connection until it breaks or shutdown; sends the
    /// heartbeat meanwhile, also while waiting for room in the channel.
    async fn serve(&mut self, session: Session) -> End {
        let Session {
            mut reader,
            mut wr,
            conn_id,
        } = session;
        let period = self.config.heartbeat_period();
        let heartbeat = heartbeat_frame(&self.config.codec);
        let mut tick = tokio::time::interval_at(after(period), period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut queued = Some(Event::Registered {
            conn_id: conn_id.clone(),
        });
        loop {
            if let Some(event) = queued.take() {
                loop {
                    tokio::select! {
                        biased;
                        () = stopped(&mut self.stop) => {
                            return self.unregister(reader, wr, conn_id).await;
                        }
                        _ = tick.tick() => {
                            if let Err(e) = wr.write_all(&heartbeat).await {
                                return End::Lost(e.into());
                            }
                        }
                        permit = self.tx.reserve() => match permit {
                            Ok(permit) => {
                                permit.send(self.event(event));
                                break;
                            }
                            // Nobody listens any more: leave properly.
                            Err(_) => return self.unregister(reader, wr, conn_id).await,
                        },
                    }
                }
            }
            let frame = tokio::select! {
                biased;
                () = stopped(&mut self.stop) => return self.unregister(reader, wr, conn_id).await,
                _ = tick.tick() => {
                    if let Err(e) = wr.write_all(&heartbeat).await {
                        return End::Lost(e.into());
                    }
                    continue;
                }
                frame = reader.next() => frame,
            };
            match frame {
                Err(e) => return End::Lost(e),
                Ok(Frame::Heartbeat) => {}
                Ok(Frame::Command { cmd, body }) => match as_event(cmd, body) {
                    Ok(Some(event)) => queued = Some(event),
                    Ok(None) => debug!(cmd, "non-event frame on a worker connection, ignored"),
                    Err(e) => warn!(addr = %self.addr, error = %e, "undecodable event dropped"),
                },
            }
        }
    }

    /// Sends `Unregister` and waits (up to `request_timeout`) for its answer, passing on
    /// events that still fit in the channel.
    async fn unregister(
        &self,
        mut reader: FrameReader<OwnedReadHalf>,
        mut wr: OwnedWriteHalf,
        conn_id: String,
    ) -> End {
        let req = ToGateway::Unregister(pb::UnRegisterReq { conn_id });
        let Ok(frame) = encode(&req, &self.config.codec) else {
            return End::Stop;
        };
        if wr.write_all(&frame).await.is_err() {
            return End::Stop;
        }
        let drain = async {
            while let Ok(frame) = reader.next().await {
                let Frame::Command { cmd, body } = frame else {
                    continue;
                };
                if cmd == cmd::UNREGISTER {
                    break;
                }
                if let Ok(Some(event)) = as_event(cmd, body) {
                    let _ = self.tx.try_send(self.event(event));
                }
            }
        };
        if tokio::time::timeout(self.config.request_timeout, drain)
            .await
            .is_err()
        {
            debug!(addr = %self.addr, "no UnRegisterResp in time");
        }
        let _ = wr.shutdown().await;
        debug!(addr = %self.addr, "unregistered");
        End::Stop
    }
}

/// The event of a frame; `None` for a frame that is not an event.
fn as_event(cmd: u32, body: bytes::Bytes) -> Result<Option<Event>, ClientError> {
    Ok(match ToBusiness::decode(cmd, body)? {
        ToBusiness::ConnOpen(m) => Some(Event::Open(m)),
        ToBusiness::ConnClose(m) => Some(Event::Close(m)),
        ToBusiness::Transfer(m) => Some(Event::Message(m)),
        _ => None,
    })
}
