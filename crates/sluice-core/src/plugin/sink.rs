//! What plugins may ask of the router, as a contract: the router implements
//! [`EventSink`], and plugins hold a [`RouterHandle`] to it without depending on the router's type.
//! A call through the handle is one dynamic call per batch, never per event.
use super::{EmitError, ErrorEvents};
use crate::event::Events;
use crate::metrics::Report;
use std::sync::{Arc, OnceLock, Weak};

/// The label of directives outside any `<label>`.
pub const ROOT_LABEL: &str = "@ROOT";
/// Fluentd's label for events plugins reject.
pub const ERROR_LABEL: &str = "@ERROR";

/// Where plugins send events: the router. Its counters come through [`Report`].
pub trait EventSink: Report {
    fn has_label(&self, label: &str) -> bool;

    /// Route a batch into `label`: its filters, then its first matching `<match>`.
    fn emit_to_label(&self, label: &str, tag: &str, events: Events) -> Result<(), EmitError>;

    /// Route events a filter held back on from just after that filter (`filter` is its
    /// [`super::Filter::identity`]).
    fn emit_after_filter(&self, label: &str, tag: &str, events: Events, filter: usize) -> Result<(), EmitError>;

    /// Events a plugin rejected: to `@ERROR` where it exists, else counted and logged by reason.
    fn emit_errors(&self, from_label: &str, tag: &str, errors: ErrorEvents);
}

/// A late-bound reference to the router: outputs are built before the router that contains them.
#[derive(Clone, Default)]
pub struct RouterHandle(Arc<OnceLock<Weak<dyn EventSink>>>);

impl RouterHandle {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set<S: EventSink + 'static>(&self, sink: &Arc<S>) {
        let weak: Weak<dyn EventSink> = Arc::downgrade(sink) as Weak<S>;
        let _ = self.0.set(weak);
    }

    /// The router, while it runs.
    pub fn get(&self) -> Option<Arc<dyn EventSink>> {
        self.0.get().and_then(Weak::upgrade)
    }

    pub fn emit_to_label(&self, label: &str, tag: &str, events: Events) -> Result<(), EmitError> {
        match self.get() {
            Some(r) => r.emit_to_label(label, tag, events),
            None => Err(EmitError::ShuttingDown),
        }
    }

    pub fn emit_after_filter(&self, label: &str, tag: &str, events: Events, filter: usize) -> Result<(), EmitError> {
        match self.get() {
            Some(r) => r.emit_after_filter(label, tag, events, filter),
            None => Err(EmitError::ShuttingDown),
        }
    }

    pub fn emit_errors(&self, label: &str, tag: &str, errors: ErrorEvents) {
        if let Some(r) = self.get() {
            r.emit_errors(label, tag, errors);
        }
    }
}
