//! `null`: accepts and discards (benchmarks, and tags you mean to drop).
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::Events;
use sluice_core::plugin::{BuildCtx, EmitError, Output, OutputMetrics};
use std::sync::Arc;

pub struct Null {
    metrics: Arc<OutputMetrics>,
}

pub fn build(s: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    // A <buffer> on null is legal in Fluentd; there is nothing to buffer, so it is accepted and ignored.
    if let Some(b) = s.section("buffer") {
        b.mark_all_used();
    }
    Ok(Arc::new(Null { metrics: Arc::default() }))
}

impl Output for Null {
    fn emit(&self, _tag: &str, events: Events) -> Result<(), EmitError> {
        self.metrics.records_in.add(events.len() as u64);
        Ok(())
    }
    fn metrics(&self) -> Option<Arc<OutputMetrics>> {
        Some(self.metrics.clone())
    }
}
