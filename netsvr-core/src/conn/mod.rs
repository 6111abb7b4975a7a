//! The shared half of a client connection: identity, business state, outbound queue,
//! activity clock. The socket itself lives only in the connection's task.

mod frame;
mod outbox;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, MutexGuard};

use crate::client_cmd::ClientGrants;
use crate::event::{ConnInfo, ConnMeta, ConnSnapshot};

pub(crate) use frame::{Compression, Deflatable, Frame};
pub(crate) use outbox::{CloseRequest, Outbox, Push};

/// Business state of a connection, changed only under its lock.
#[derive(Debug)]
pub(crate) struct ConnState {
    pub(crate) info: Arc<ConnInfo>,
    /// Removed from the tables: no more changes.
    pub(crate) detached: bool,
    /// Its close was already reported for it (by the node that claimed this one's lost
    /// lease): the Close event is not emitted again.
    pub(crate) close_reported: bool,
}

/// One client connection as the tables and fan-out see it.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) meta: Arc<ConnMeta>,
    state: Mutex<ConnState>,
    pub(crate) outbox: Outbox,
    /// Milliseconds since the gateway's epoch at the last inbound frame.
    last_active: AtomicU64,
    /// What the authenticator granted for client commands (8 bytes; none when unused).
    pub(crate) grants: Option<Arc<ClientGrants>>,
}

impl Conn {
    pub(crate) fn new(meta: ConnMeta, info: ConnInfo, now_ms: u64) -> Self {
        Self {
            meta: Arc::new(meta),
            state: Mutex::new(ConnState {
                info: Arc::new(info),
                detached: false,
                close_reported: false,
            }),
            outbox: Outbox::default(),
            last_active: AtomicU64::new(now_ms),
            grants: None,
        }
    }

    /// The same connection with the client-command grants of its admission.
    pub(crate) fn with_grants(mut self, grants: Option<Arc<ClientGrants>>) -> Self {
        self.grants = grants;
        self
    }

    /// Locks the business state. Lock order: a connection's state, then table shards.
    pub(crate) fn lock(&self) -> MutexGuard<'_, ConnState> {
        self.state.lock()
    }

    /// The current info.
    pub(crate) fn info(&self) -> Arc<ConnInfo> {
        self.state.lock().info.clone()
    }

    /// An event snapshot of the current state.
    pub(crate) fn snapshot(&self) -> ConnSnapshot {
        ConnSnapshot {
            meta: self.meta.clone(),
            info: self.info(),
        }
    }

    pub(crate) fn touch(&self, now_ms: u64) {
        self.last_active.store(now_ms, Ordering::Relaxed);
    }

    pub(crate) fn last_active(&self) -> u64 {
        self.last_active.load(Ordering::Relaxed)
    }
}
