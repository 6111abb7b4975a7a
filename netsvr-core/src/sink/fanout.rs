//! A sink that gives every event to several sinks.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{EventSink, SinkError};
use crate::event::Event;

/// Delivers each event to every inner sink. Each inner sink keeps its own order and queue;
/// one that refuses does not stop the others. The first refusal is reported.
#[derive(Clone, Default)]
pub struct FanoutSink {
    sinks: Vec<Arc<dyn EventSink>>,
}

impl std::fmt::Debug for FanoutSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.sinks.iter().map(|s| s.name()).collect();
        f.debug_struct("FanoutSink").field("sinks", &names).finish()
    }
}

impl FanoutSink {
    /// A fan-out over `sinks`.
    pub fn new(sinks: Vec<Arc<dyn EventSink>>) -> Self {
        Self { sinks }
    }

    /// Adds one more sink.
    pub fn push(&mut self, sink: Arc<dyn EventSink>) {
        self.sinks.push(sink);
    }

    /// The inner sinks.
    pub fn sinks(&self) -> &[Arc<dyn EventSink>] {
        &self.sinks
    }
}

#[async_trait]
impl EventSink for FanoutSink {
    fn deliver(&self, event: Event) -> Result<(), SinkError> {
        let mut result = Ok(());
        if let Some((last, rest)) = self.sinks.split_last() {
            for sink in rest {
                if let Err(e) = sink.deliver(event.clone()) {
                    result = result.and(Err(e));
                }
            }
            if let Err(e) = last.deliver(event) {
                result = result.and(Err(e));
            }
        }
        result
    }

    async fn flush(&self, timeout: Duration) -> bool {
        let mut all = true;
        for sink in &self.sinks {
            all &= sink.flush(timeout).await;
        }
        all
    }

    fn name(&self) -> &str {
        "fanout"
    }

    fn report(&self, out: &mut Vec<super::SinkStatus>) {
        for sink in &self.sinks {
            sink.report(out);
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::event::EventKind;
    use crate::sink::ChannelSink;

    fn event() -> Event {
        crate::event::test_event(1, EventKind::Open)
    }

    #[test]
    fn every_sink_gets_the_event_even_when_one_is_full() {
        let (small, mut small_rx) = ChannelSink::new(1);
        let (big, mut big_rx) = ChannelSink::new(8);
        let fanout = FanoutSink::new(vec![Arc::new(small), Arc::new(big)]);
        assert_eq!(fanout.deliver(event()), Ok(()));
        assert_eq!(fanout.deliver(event()), Err(SinkError::Full));
        assert!(small_rx.try_recv().is_some());
        assert!(small_rx.try_recv().is_none());
        assert!(big_rx.try_recv().is_some());
        assert!(big_rx.try_recv().is_some());
        assert_eq!(fanout.sinks().len(), 2);
    }
}
