//! A sink that calls a function on the connection's task: for business logic that only
//! enqueues (echo, chat, routing), with no channel hop and no extra task wake-up.

use async_trait::async_trait;

use super::{EventSink, SinkError};
use crate::event::Event;

/// Calls `f(event)` inline, on the connection's task, for every event.
///
/// `f` must be quick and must never block: it runs where the gateway reads the client.
/// Calling [`crate::Gateway`] send operations from it is fine (they only enqueue). To reach
/// the gateway from `f`, build the sink with a [`crate::WeakGateway`] slot filled after
/// `build()`, so the sink does not keep the gateway alive.
pub struct FnSink<F> {
    f: F,
    name: String,
}

impl<F> std::fmt::Debug for FnSink<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnSink").field("name", &self.name).finish()
    }
}

impl<F: Fn(Event) + Send + Sync + 'static> FnSink<F> {
    /// A sink named `fn` running `f`.
    pub fn new(f: F) -> Self {
        Self::named("fn", f)
    }

    /// Same, with a name for logs and status.
    pub fn named(name: &str, f: F) -> Self {
        Self {
            f,
            name: name.to_owned(),
        }
    }
}

#[async_trait]
impl<F: Fn(Event) + Send + Sync + 'static> EventSink for FnSink<F> {
    fn deliver(&self, event: Event) -> Result<(), SinkError> {
        (self.f)(event);
        Ok(())
    }

    fn name(&self) -> &str {
        &self.name
    }
}
