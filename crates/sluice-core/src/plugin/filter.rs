use crate::event::{Event, Events};
use crate::metrics::MetricSink;

/// Events a filter rejected, with the reason; the router sends them to the `@ERROR` label.
#[derive(Debug, Default)]
pub struct ErrorEvents {
    pub events: Vec<(Event, String)>,
}

impl ErrorEvents {
    pub fn push(&mut self, event: Event, reason: impl Into<String>) {
        self.events.push((event, reason.into()));
    }
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// A `<filter>`: changes, drops or rejects the events of a batch in place.
pub trait Filter: Send + Sync {
    fn filter(&self, tag: &str, events: &mut Events, errors: &mut ErrorEvents);

    /// Start background work (a timer that flushes events the filter holds back). Called once, inside the
    /// runtime, before inputs start.
    fn start(&self) {}

    /// Emit every event the filter still holds and stop holding new ones. Called once after the inputs
    /// stopped and before any output shuts down, so nothing held is lost.
    fn shutdown(&self) {}

    /// The batch this filter last filtered for `tag` was refused after it (a full buffer): the input keeps
    /// its position and sends the same events again. A filter that keeps state across batches (`concat`'s
    /// held lines) puts that state back as it was before the batch, so the retry neither loses nor repeats
    /// anything. Called on the emitting thread right after the refusal.
    fn refused(&self, _tag: &str) {}

    /// Who this filter is on a route, for [`super::EventSink::emit_after_filter`]; a wrapper answers
    /// for the filter it wraps.
    /// The filter's metrics, called at scrape time; the sink adds `plugin_id` and `type`.
    fn report(&self, _sink: &mut dyn MetricSink) {}

    fn identity(&self) -> usize {
        self as *const Self as *const () as usize
    }
}
