//! One lane's delivery to Redis: its own connection, and each batch as one `MULTI` … `EXEC`
//! transaction sent in a single pipelined round trip.
//!
//! The connection is opened lazily on the first batch and dropped on any failure (I/O error,
//! refused transaction, timeout); the next attempt opens a fresh one. Nothing here blocks or
//! fails while Redis is down: the lane simply reports the batch as not delivered and the
//! [`BufferedSink`](crate::sink::BufferedSink) retries it with back-off.

use std::time::Duration;

use async_trait::async_trait;
use metrics::{Counter, counter};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, Pipeline, Value};

use super::config::{KeyKind, RedisConfig, Target};
use crate::event::{Event, EventKind};
use crate::metrics::SINK_FAILED_TOTAL;
use crate::pbevent::PbEvent;
use crate::sink::{Backend, BatchError};

/// Where each kind of event goes, and how streams are trimmed.
#[derive(Debug, Clone)]
pub(super) struct Routes {
    open: Target,
    message: Target,
    close: Target,
    maxlen: usize,
}

impl Routes {
    pub(super) fn new(config: &RedisConfig) -> Self {
        Self {
            open: config.open.clone(),
            message: config.message.clone(),
            close: config.close.clone(),
            maxlen: config.maxlen,
        }
    }

    /// The target of `event`, or `None` when its key is empty (that kind is turned off).
    fn target(&self, event: &Event) -> Option<&Target> {
        let target = match &event.kind {
            EventKind::Open => &self.open,
            EventKind::Message { .. } => &self.message,
            EventKind::Close { .. } => &self.close,
        };
        (!target.key.is_empty()).then_some(target)
    }

    /// Fills `pipe` with one command per routed event of `batch` (the pipeline is cleared
    /// first and made atomic) and returns how many commands it holds.
    pub(super) fn fill(&self, pipe: &mut Pipeline, batch: &[Event]) -> usize {
        pipe.clear();
        pipe.atomic().ignore_errors();
        for event in batch {
            if let Some(target) = self.target(event) {
                let payload = PbEvent::from_event(event).unframed();
                pipe.add_command(command(target, self.maxlen, &payload));
            }
        }
        pipe.len()
    }
}

/// The command storing `payload` at `target`: `LPUSH key payload`, or
/// `XADD key [MAXLEN ~ maxlen] * data payload` (trimmed only when `maxlen > 0`).
pub(super) fn command(target: &Target, maxlen: usize, payload: &[u8]) -> Cmd {
    match target.kind {
        KeyKind::List => {
            let mut cmd = redis::cmd("LPUSH");
            cmd.arg(&target.key).arg(payload);
            cmd
        }
        KeyKind::Stream => {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(&target.key);
            if maxlen > 0 {
                cmd.arg("MAXLEN").arg("~").arg(maxlen);
            }
            cmd.arg("*").arg("data").arg(payload);
            cmd
        }
    }
}

/// The commands of a transaction that Redis ran and rejected (for example `WRONGTYPE`: the
/// key holds another type), with the first error's text. Counts 0 when all succeeded.
pub(super) fn rejections(reply: &Value) -> Result<(usize, Option<String>), String> {
    let Value::Array(results) = reply else {
        return Err(format!("unexpected EXEC reply: {reply:?}"));
    };
    let mut first = None;
    let mut count = 0;
    for result in results {
        if let Value::ServerError(e) = result {
            count += 1;
            first.get_or_insert_with(|| e.to_string());
        }
    }
    Ok((count, first))
}

/// A lane's back-end: a lazily opened connection and a reused pipeline.
pub(super) struct RedisBackend {
    client: Client,
    connect: AsyncConnectionConfig,
    routes: Routes,
    timeout: Duration,
    lane: usize,
    conn: Option<MultiplexedConnection>,
    pipe: Pipeline,
    rejected: Counter,
}

impl RedisBackend {
    /// A back-end for `lane`; no I/O until the first batch.
    pub(super) fn new(client: Client, config: &RedisConfig, lane: usize, name: &str) -> Self {
        Self {
            client,
            // The batch as a whole is bounded by `timeout` (below); these keep redis' own
            // shorter defaults from cutting a large batch short.
            connect: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(config.timeout))
                .set_response_timeout(Some(config.timeout)),
            routes: Routes::new(config),
            timeout: config.timeout,
            lane,
            conn: None,
            pipe: Pipeline::with_capacity(config.batch),
            rejected: counter!(SINK_FAILED_TOTAL, "sink" => name.to_owned()),
        }
    }

    /// Opens the connection if needed, then runs the transaction; returns EXEC's reply.
    async fn exchange(&mut self) -> redis::RedisResult<Value> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            empty => {
                let conn = self
                    .client
                    .get_multiplexed_async_connection_with_config(&self.connect)
                    .await?;
                tracing::debug!(lane = self.lane, "redis sink connected");
                empty.insert(conn)
            }
        };
        self.pipe.query_async::<Value>(conn).await
    }

    fn fail(&mut self, error: String) -> BatchError {
        // Whatever state the connection is in, start the next attempt on a fresh one.
        self.conn = None;
        BatchError {
            delivered: 0,
            error: format!("redis lane {}: {error}", self.lane),
        }
    }
}

#[async_trait]
impl Backend for RedisBackend {
    async fn deliver(&mut self, batch: &[Event]) -> Result<(), BatchError> {
        if self.routes.fill(&mut self.pipe, batch) == 0 {
            return Ok(()); // every event of the batch is turned off
        }
        let reply = match tokio::time::timeout(self.timeout, self.exchange()).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => return Err(self.fail(e.to_string())),
            Err(_) => {
                let error = format!("batch timed out after {:?}", self.timeout);
                return Err(self.fail(error));
            }
        };
        match rejections(&reply) {
            Ok((0, _)) => Ok(()),
            Ok((count, first)) => {
                // The transaction ran: the other commands are applied, so retrying would only
                // duplicate them and be rejected again. Count and log the rejected ones.
                self.rejected.increment(count as u64);
                tracing::error!(
                    lane = self.lane,
                    rejected = count,
                    error = first.as_deref().unwrap_or(""),
                    "redis rejected events (is a target key of another type?)"
                );
                Ok(())
            }
            Err(error) => Err(self.fail(error)),
        }
    }
}
