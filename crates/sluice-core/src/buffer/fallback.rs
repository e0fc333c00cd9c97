//! Where records go that the destination will not take: a buffer's `<secondary>`, else the `@ERROR` label.
//! Chunks come here when retries are exhausted, on an unrecoverable error, for entries a destination
//! rejected, at `retry_secondary_threshold`, and for what a memory buffer could not flush at shutdown.
use super::chunk::Chunk;
use super::config::BufferConfig;
use super::placeholders::{self, FlushContext};
use crate::config::{ConfigError, Element};
use crate::event::{Event, Events};
use crate::plugin::{BuildCtx, ErrorEvents, Output, OutputMetrics};
use crate::router::RouterHandle;
use std::sync::Arc;

pub(super) struct Fallback {
    /// The primary output's name, for logs.
    output: String,
    secondary: Option<Arc<dyn Output>>,
    router: RouterHandle,
    label: Arc<str>,
    /// The primary output's counters.
    metrics: Arc<OutputMetrics>,
}

impl Fallback {
    /// Build the `<secondary>` of the output `conf` (if it has one) whose buffer is configured by `cfg`.
    pub(super) fn build(
        conf: &Element,
        ctx: &BuildCtx,
        cfg: &BufferConfig,
        output: &str,
        metrics: Arc<OutputMetrics>,
    ) -> Result<Fallback, ConfigError> {
        let secondary = match conf.section("secondary") {
            None => None,
            Some(sec) => {
                let mut el = sec.clone();
                // A secondary cuts nothing itself: it sees the primary's chunks, so its placeholders are
                // checked against the primary's chunk keys.
                if el.section("buffer").is_none() {
                    let loc = conf.section("buffer").map(|b| b.loc.clone()).unwrap_or_else(|| sec.loc.clone());
                    let mut names: Vec<String> = Vec::new();
                    if cfg.keys.tag {
                        names.push("tag".into());
                    }
                    if cfg.keys.timekey.is_some() {
                        names.push("time".into());
                    }
                    names.extend(cfg.keys.record_names());
                    let arg = if names.is_empty() { "[]".to_string() } else { names.join(",") };
                    let mut b = Element::new("buffer", arg, loc.clone());
                    if let Some(tk) = cfg.keys.timekey {
                        b.set("timekey", tk.to_string(), loc.clone());
                    }
                    b.mark_all_used();
                    el.children.push(b);
                }
                let out = ctx.registry.build_output(&el, ctx);
                propagate_used(sec, &el);
                Some(out?)
            }
        };
        Ok(Fallback {
            output: output.to_string(),
            secondary,
            router: ctx.router.clone(),
            label: ctx.label.clone(),
            metrics,
        })
    }

    pub(super) fn secondary(&self) -> Option<&Arc<dyn Output>> {
        self.secondary.as_ref()
    }

    /// Entries of `chunk` (all, or those at `only`) grouped by tag, in order.
    fn events_by_tag(&self, chunk: &Chunk, only: Option<&[usize]>) -> Vec<(String, Events)> {
        let mut groups: Vec<(String, Events)> = Vec::new();
        let mut bad = 0u64;
        for (i, e) in chunk.events().enumerate() {
            if only.is_some_and(|o| o.binary_search(&i).is_err()) {
                continue;
            }
            match e {
                Ok(ev) => {
                    let event = Event { time: ev.time, record: ev.record };
                    match groups.last_mut() {
                        Some((t, v)) if t.as_str() == ev.tag.as_str() => v.push(event),
                        _ => groups.push((ev.tag.to_string(), vec![event])),
                    }
                }
                Err(_) => bad += 1,
            }
        }
        if bad > 0 {
            self.metrics.records_dropped.add(bad);
        }
        groups
    }

    pub(super) fn to_secondary(&self, chunk: &Chunk, only: Option<&[usize]>, ctx: &FlushContext) -> Result<(), String> {
        let Some(sec) = &self.secondary else {
            return Err("no <secondary>".into());
        };
        for (tag, events) in self.events_by_tag(chunk, only) {
            placeholders::sync_scope(ctx.clone(), || sec.emit(&tag, events)).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Hand a chunk (or some of its entries) to `<secondary>`, or to `@ERROR` when there is none or it fails.
    pub(super) fn dispose(&self, chunk: &Chunk, only: Option<&[usize]>, reason: &str, ctx: &FlushContext) {
        let n = only.map(|o| o.len()).unwrap_or(chunk.records) as u64;
        if self.secondary.is_some() {
            match self.to_secondary(chunk, only, ctx) {
                Ok(()) => {
                    self.metrics.records_to_secondary.add(n);
                    return;
                }
                Err(e) => {
                    tracing::error!(output = %self.output, chunk = %chunk.id_hex(), records = n, error = %e,
                        "<secondary> failed too; records go to @ERROR");
                }
            }
        }
        self.metrics.records_to_error_label.add(n);
        for (tag, events) in self.events_by_tag(chunk, only) {
            self.route_errors(&tag, events, reason);
        }
    }

    pub(super) fn route_errors(&self, tag: &str, events: Events, reason: &str) {
        if self.router.get().is_none() {
            self.metrics.records_dropped.add(events.len() as u64);
            tracing::error!(output = %self.output, tag, records = events.len(), reason, "no router to take error events; dropped");
            return;
        }
        let mut errs = ErrorEvents::default();
        for e in events {
            errs.push(e, reason);
        }
        self.router.emit_errors(&self.label, tag, errs);
    }
}

/// Copy `used` flags from a clone back to the original so unused-parameter warnings stay right.
fn propagate_used(orig: &Element, clone: &Element) {
    for (a, b) in orig.attrs.iter().zip(clone.attrs.iter()) {
        if b.used.get() {
            a.used.set(true);
        }
    }
    for (a, b) in orig.children.iter().zip(clone.children.iter()) {
        propagate_used(a, b);
    }
}
