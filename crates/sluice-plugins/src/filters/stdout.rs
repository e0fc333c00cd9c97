//! `stdout` filter (Fluentd's built-in `filter_stdout`): prints each event with its `<format>` (default
//! `@type stdout`, i.e. `TIME TAG: JSON`) and passes every event on unchanged.
use crate::outputs::stdout::format_lines;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::Events;
use sluice_core::plugin::{BuildCtx, ErrorEvents, Filter, Formatter};
use std::io::Write;
use std::sync::Arc;

pub struct StdoutFilter {
    formatter: Arc<dyn Formatter>,
}

pub fn build(s: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Filter>, ConfigError> {
    Ok(Arc::new(StdoutFilter { formatter: ctx.registry.formatter_of(s, "stdout", ctx)? }))
}

impl Filter for StdoutFilter {
    fn filter(&self, tag: &str, events: &mut Events, _errors: &mut ErrorEvents) {
        let mut buf = Vec::with_capacity(events.len() * 128);
        format_lines(self.formatter.as_ref(), tag, events, &mut buf);
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(&buf).and_then(|_| out.flush()) {
            // Printing is a side effect: the events still pass on.
            tracing::warn!(tag, error = %e, "stdout filter: cannot write to standard output");
        }
    }
}
