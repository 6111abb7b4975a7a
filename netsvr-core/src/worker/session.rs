//! One business connection (worker or task port): frames in, commands applied in order,
//! events and responses out through one bounded queue written in batches.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use bytes::{Bytes, BytesMut};
use metrics::counter;
use netsvr_protocol::cmd::events::ALL;
use netsvr_protocol::pb::RegisterRespCode;
use netsvr_protocol::{Frame, MessageError, ToBusiness, ToGateway, pb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

use super::Ports;
use super::access;
use super::dispatch::{Business, Outgoing, Registry};
use crate::metrics::{SINK_DELIVERED_TOTAL, SINK_FAILED_TOTAL};

/// Which port a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Port {
    Worker,
    Task,
}

/// Time allowed for the shared secret, when one is required.
const AUTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Frames written per batch at most.
const BATCH: usize = 256;
/// A write buffer grown past this is given back after use.
const KEEP_WRITE_BUF: usize = 1024 * 1024;

/// Serves one business connection until it closes, breaks the protocol, or goes silent.
pub(crate) async fn serve(ports: Arc<Ports>, stream: TcpStream, peer: SocketAddr, port: Port) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "set_nodelay failed");
    }
    let (mut reader, writer) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Outgoing>(ports.config.send_queue_capacity);
    let writing = tokio::spawn(write_loop(writer, rx, ports.registry.clone()));
    let business = Arc::new(Business {
        id: ports.next_business_id(),
        events: AtomicI32::new(0),
        tx,
    });
    let why = read_loop(&ports, &mut reader, &business, port).await;
    ports.registry.unregister(business.id);
    drop(business);
    match &why {
        Ok(()) => tracing::debug!(%peer, ?port, "business connection closed"),
        Err(reason) => tracing::warn!(%peer, ?port, "closing business connection: {reason}"),
    }
    let _ = writing.await;
}

async fn write_loop(
    mut writer: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Outgoing>,
    registry: Arc<Registry>,
) {
    let delivered = counter!(SINK_DELIVERED_TOTAL, "sink" => "worker");
    let failed = counter!(SINK_FAILED_TOTAL, "sink" => "worker");
    let mut batch = Vec::with_capacity(BATCH);
    let mut buf = BytesMut::new();
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let result = if let [only] = batch.as_slice() {
            writer.write_all(&only.frame).await
        } else {
            buf.clear();
            for out in &batch {
                buf.extend_from_slice(&out.frame);
            }
            writer.write_all(&buf).await
        };
        let (events, bytes) = batch
            .iter()
            .filter(|o| o.event)
            .fold((0, 0), |(n, b), o| (n + 1, b + o.frame.len() as u64));
        batch.clear();
        if buf.capacity() > KEEP_WRITE_BUF {
            buf = BytesMut::new();
        }
        if result.is_err() {
            // Not known to have reached the business: the failed batch and all still queued.
            rx.close();
            let mut lost = events;
            while let Ok(out) = rx.try_recv() {
                lost += u64::from(out.event);
            }
            registry.counters.lost(lost);
            failed.increment(lost);
            break;
        }
        registry.counters.written(events, bytes);
        delivered.increment(events);
    }
    let _ = writer.shutdown().await;
}

/// Reads and applies frames; `Err` says why the connection must close.
async fn read_loop(
    ports: &Ports,
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    business: &Arc<Business>,
    port: Port,
) -> Result<(), String> {
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let secret = &ports.config.secret;
    let mut authenticated = secret.is_empty();
    loop {
        while let Some(frame) = ports.codec.decode(&mut buf).map_err(|e| e.to_string())? {
            if !authenticated {
                if !access::secret_matches(&frame, secret) {
                    return Err("the first frame is not the shared secret".to_owned());
                }
                authenticated = true;
                continue;
            }
            if let Frame::Command { cmd, body } = frame {
                handle(ports, business, port, cmd, body).await?;
            }
        }
        let limit = if authenticated {
            ports.config.read_timeout
        } else {
            ports.config.read_timeout.min(AUTH_TIMEOUT)
        };
        match tokio::time::timeout(limit, reader.read_buf(&mut buf)).await {
            Err(_) if !authenticated => {
                return Err(format!("no shared secret within {limit:?}"));
            }
            Err(_) => {
                return Err(format!(
                    "nothing received for {limit:?} (not even a heartbeat)"
                ));
            }
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("read failed: {e}")),
        }
    }
}

async fn reply(business: &Business, message: ToBusiness) -> Result<(), String> {
    let mut out = BytesMut::new();
    message.encode(&mut out);
    // Responses wait for room (they are never dropped); only events are dropped when full.
    business
        .tx
        .send(Outgoing {
            frame: out.freeze(),
            event: false,
        })
        .await
        .map_err(|_| "writer gone".to_owned())
}

async fn handle(
    ports: &Ports,
    business: &Arc<Business>,
    port: Port,
    cmd: u32,
    body: Bytes,
) -> Result<(), String> {
    let message = match ToGateway::decode(cmd, body) {
        Ok(m) => m,
        Err(MessageError::UnknownCmd(c)) => return Err(format!("unknown command id {c}")),
        Err(MessageError::Body { .. }) if cmd == netsvr_protocol::cmd::REGISTER => {
            let code = RegisterRespCode::UnmarshalError;
            return reply(business, register_resp(code, "bad RegisterReq body", "")).await;
        }
        Err(e) => {
            tracing::warn!("ignoring a command: {e}");
            return Ok(());
        }
    };
    match message {
        ToGateway::Register(_) | ToGateway::Unregister(_) if port == Port::Task => {
            Err("Register and Unregister belong on the worker port".to_owned())
        }
        ToGateway::Register(req) => {
            let resp = register(ports, business, req.events);
            reply(business, resp).await
        }
        ToGateway::Unregister(_) => {
            business.events.store(0, Ordering::Relaxed);
            ports.registry.unregister(business.id);
            reply(business, ToBusiness::Unregister(pb::UnRegisterResp {})).await
        }
        other => {
            #[cfg(feature = "cluster")]
            if let Some(answer) = cluster_query(ports, &other).await {
                return reply(business, answer).await;
            }
            match crate::command::apply(&ports.gateway, other, || ports.meters.response()) {
                Some(response) => reply(business, response).await,
                None => Ok(()),
            }
        }
    }
}

/// With a cluster (and a task port acting cluster-wide), a query is answered by every
/// node and the answers merged; Metrics stays this node's. `None`: answer it here.
#[cfg(feature = "cluster")]
async fn cluster_query(ports: &Ports, message: &ToGateway) -> Option<ToBusiness> {
    if !message.expects_response() || matches!(message, ToGateway::Metrics) {
        return None;
    }
    ports.gateway.outbound()?;
    let cluster = ports.gateway.cluster()?;
    match cluster.query(message.clone()).await {
        Ok(merged) => {
            if !merged.missing.is_empty() {
                tracing::warn!(missing = ?merged.missing, "cluster query answered without some nodes");
            }
            Some(merged.answer)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cluster query failed; answering from this node");
            None
        }
    }
}

fn register_resp(code: RegisterRespCode, message: &str, conn_id: &str) -> ToBusiness {
    ToBusiness::Register(pb::RegisterResp {
        code: code as i32,
        message: message.to_owned(),
        conn_id: conn_id.to_owned(),
    })
}

fn register(ports: &Ports, business: &Arc<Business>, events: i32) -> ToBusiness {
    if events <= 0 || events & !ALL != 0 {
        let text = format!("events must be a mask of 1, 2 and 4, got {events}");
        return register_resp(RegisterRespCode::InvalidEvent, &text, "");
    }
    if business.events.load(Ordering::Relaxed) != 0 {
        return register_resp(
            RegisterRespCode::DuplicateRegister,
            "already registered",
            "",
        );
    }
    business.events.store(events, Ordering::Relaxed);
    ports.registry.register(business);
    register_resp(RegisterRespCode::Success, "", &business.id.to_string())
}
