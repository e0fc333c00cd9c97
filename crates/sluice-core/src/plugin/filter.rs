use crate::event::{Event, Events};

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
}
