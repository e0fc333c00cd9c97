//! `<filter @type prometheus>` and `<match @type prometheus>`: instrument `<metric>`s from records.
use crate::user_metrics::Metrics;
use async_trait::async_trait;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::Events;
use sluice_core::plugin::{BuildCtx, EmitError, ErrorEvents, Filter, Output};
use std::sync::Arc;

fn metrics(conf: &Element, ctx: &BuildCtx) -> Result<Arc<Metrics>, ConfigError> {
    let m = Metrics::from_conf(conf, &ctx.system.hostname)?;
    if !ctx.dry_run {
        ctx.metrics.add_collector(m.clone());
    }
    Ok(m)
}

/// Passes every record on; a record whose `key` is not a number is also copied to `@ERROR`, as
/// Fluentd's `emit_error_event` does.
pub struct PrometheusFilter {
    metrics: Arc<Metrics>,
}

pub fn build_filter(conf: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Filter>, ConfigError> {
    Ok(Arc::new(PrometheusFilter { metrics: metrics(conf, ctx)? }))
}

impl Filter for PrometheusFilter {
    fn filter(&self, tag: &str, events: &mut Events, errors: &mut ErrorEvents) {
        for i in self.metrics.instrument(tag, events) {
            if let Some(ev) = events.get(i) {
                errors.push(ev.clone(), "prometheus: failed to instrument a metric: value must be a number");
            }
        }
    }
}

/// Instruments and discards, like Fluentd's `out_prometheus`.
pub struct PrometheusOutput {
    metrics: Arc<Metrics>,
    router: sluice_core::router::RouterHandle,
    label: Arc<str>,
}

pub fn build_output(conf: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    Ok(Arc::new(PrometheusOutput {
        metrics: metrics(conf, ctx)?,
        router: ctx.router.clone(),
        label: ctx.label.clone(),
    }))
}

#[async_trait]
impl Output for PrometheusOutput {
    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        let bad = self.metrics.instrument(tag, &events);
        if !bad.is_empty() {
            let mut errors = ErrorEvents::default();
            for i in bad {
                if let Some(ev) = events.get(i) {
                    errors.push(ev.clone(), "prometheus: failed to instrument a metric: value must be a number");
                }
            }
            self.router.emit_errors(&self.label, tag, errors);
        }
        Ok(())
    }
}
