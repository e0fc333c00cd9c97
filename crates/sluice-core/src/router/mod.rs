//! Fluentd's routing. Within a label, a batch passes every matching `<filter>` top to bottom and stops at
//! the first matching `<match>`. The route for a tag is computed once and cached.
use crate::event::{Event, Events};
use crate::metrics::{MetricSink, Report, RouterMetrics};
use crate::pattern::TagMatcher;
use crate::plugin::{EmitError, ErrorEvents, EventSink, Filter, Output};
use crate::util::RateLimiter;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

// The label names and the handle plugins hold are the plugin contract's; the router implements it.
pub use crate::plugin::{RouterHandle, ERROR_LABEL, ROOT_LABEL};
const ROUTE_CACHE_MAX: usize = 8192;

pub enum Step {
    Filter { matcher: TagMatcher, filter: Arc<dyn Filter> },
    Match { matcher: TagMatcher, output: Arc<dyn Output> },
}

/// The resolved path of one tag through a label.
struct Route {
    filters: Vec<Arc<dyn Filter>>,
    output: Option<Arc<dyn Output>>,
}

/// The directives of one label, in file order.
pub struct Pipeline {
    name: String,
    steps: Vec<Step>,
    cache: RwLock<HashMap<Box<str>, Arc<Route>>>,
}

impl Pipeline {
    pub fn new(name: impl Into<String>, steps: Vec<Step>) -> Self {
        Pipeline { name: name.into(), steps, cache: RwLock::new(HashMap::new()) }
    }

    fn route(&self, tag: &str) -> Arc<Route> {
        if let Some(r) = self.cache.read().get(tag) {
            return r.clone();
        }
        let mut filters = Vec::new();
        let mut output = None;
        for step in &self.steps {
            match step {
                Step::Filter { matcher, filter } if matcher.matches(tag) => filters.push(filter.clone()),
                Step::Match { matcher, output: o } if matcher.matches(tag) => {
                    output = Some(o.clone());
                    break;
                }
                _ => {}
            }
        }
        let route = Arc::new(Route { filters, output });
        let mut cache = self.cache.write();
        // Tags can be unbounded (tags made from record content): cap the cache rather than grow forever.
        if cache.len() >= ROUTE_CACHE_MAX {
            cache.clear();
        }
        cache.insert(tag.into(), route.clone());
        route
    }

    pub fn outputs(&self) -> impl Iterator<Item = &Arc<dyn Output>> {
        self.steps.iter().filter_map(|s| match s {
            Step::Match { output, .. } => Some(output),
            _ => None,
        })
    }

    pub fn filters(&self) -> impl Iterator<Item = &Arc<dyn Filter>> {
        self.steps.iter().filter_map(|s| match s {
            Step::Filter { filter, .. } => Some(filter),
            _ => None,
        })
    }
}

pub struct Router {
    labels: HashMap<String, Pipeline>,
    pub metrics: RouterMetrics,
    warn_limiter: RateLimiter,
}

impl Router {
    pub fn new(labels: Vec<Pipeline>) -> Self {
        Router {
            labels: labels.into_iter().map(|p| (p.name.clone(), p)).collect(),
            metrics: RouterMetrics::default(),
            warn_limiter: RateLimiter::new(Duration::from_secs(60)),
        }
    }

    pub fn has_label(&self, label: &str) -> bool {
        self.labels.contains_key(label)
    }

    /// Every output in every label (for start, shutdown and flush).
    pub fn outputs(&self) -> Vec<Arc<dyn Output>> {
        self.labels.values().flat_map(|p| p.outputs().cloned()).collect()
    }

    /// Every filter in every label, each label's in file order (for start and shutdown).
    pub fn filters(&self) -> Vec<Arc<dyn Filter>> {
        self.labels.values().flat_map(|p| p.filters().cloned()).collect()
    }

    pub fn emit_to_label(&self, label: &str, tag: &str, events: Events) -> Result<(), EmitError> {
        self.emit_from(label, tag, events, None)
    }

    /// Route events a filter held back (`concat`'s timed-out lines) on from just after that filter: through
    /// the filters that follow it for this tag, then the output. `filter` is the filter's
    /// [`Filter::identity`]; when it is not on the tag's route, the events pass every filter.
    pub fn emit_after_filter(&self, label: &str, tag: &str, events: Events, filter: usize) -> Result<(), EmitError> {
        self.emit_from(label, tag, events, Some(filter))
    }

    fn emit_from(&self, label: &str, tag: &str, mut events: Events, after: Option<usize>) -> Result<(), EmitError> {
        let Some(pipeline) = self.labels.get(label) else {
            // Checked at start-up; reaching here means a plugin named a label that does not exist.
            self.metrics.unmatched_records.add(events.len() as u64);
            if let Some(n) = self.warn_limiter.check(label) {
                tracing::warn!(label, tag, suppressed = n, "no such label; events dropped");
            }
            return Ok(());
        };
        let route = pipeline.route(tag);
        let skip = after.and_then(|id| route.filters.iter().position(|f| f.identity() == id)).map_or(0, |i| i + 1);
        let mut errors = ErrorEvents::default();
        let mut ran = 0;
        for f in &route.filters[skip..] {
            f.filter(tag, &mut events, &mut errors);
            ran += 1;
            if events.is_empty() {
                break;
            }
        }
        let delivered = if events.is_empty() {
            Ok(())
        } else {
            match &route.output {
                Some(o) => o.emit(tag, events),
                None => {
                    self.metrics.unmatched_records.add(events.len() as u64);
                    if let Some(n) = self.warn_limiter.check(tag) {
                        tracing::warn!(tag, label, suppressed = n, "no patterns matched tag; events dropped");
                    }
                    Ok(())
                }
            }
        };
        match delivered {
            // The input sends this batch again: the filters' rejects come again with it, and stateful
            // filters undo what the batch did to them (latest first).
            Err(e) => {
                for f in route.filters[skip..skip + ran].iter().rev() {
                    f.refused(tag);
                }
                Err(e)
            }
            Ok(()) => {
                if !errors.is_empty() {
                    self.emit_errors(label, tag, errors);
                }
                Ok(())
            }
        }
    }

    /// Events a plugin rejected go to `@ERROR` if it exists; otherwise they are counted and logged by
    /// reason only (never their content, which may hold personal data).
    pub fn emit_errors(&self, from_label: &str, tag: &str, errors: ErrorEvents) {
        let n = errors.events.len() as u64;
        self.metrics.error_records.add(n);
        if from_label != ERROR_LABEL && self.has_label(ERROR_LABEL) {
            let events: Vec<Event> = errors.events.into_iter().map(|(e, _)| e).collect();
            if let Err(e) = self.emit_to_label(ERROR_LABEL, tag, events) {
                self.metrics.error_records_dropped.add(n);
                tracing::error!(tag, error = %e, records = n, "could not route error events to @ERROR; dropped");
            }
            return;
        }
        self.metrics.error_records_dropped.add(n);
        let reason = errors.events.first().map(|(_, r)| r.as_str()).unwrap_or("");
        if let Some(s) = self.warn_limiter.check(&format!("error:{tag}")) {
            tracing::warn!(tag, records = n, reason, suppressed = s, "error events dropped (no <label @ERROR>)");
        }
    }
}

/// The contract plugins see ([`crate::plugin::EventSink`]): one dynamic call per batch.
impl EventSink for Router {
    fn has_label(&self, label: &str) -> bool {
        Router::has_label(self, label)
    }

    fn emit_to_label(&self, label: &str, tag: &str, events: Events) -> Result<(), EmitError> {
        Router::emit_to_label(self, label, tag, events)
    }

    fn emit_after_filter(&self, label: &str, tag: &str, events: Events, filter: usize) -> Result<(), EmitError> {
        Router::emit_after_filter(self, label, tag, events, filter)
    }

    fn emit_errors(&self, from_label: &str, tag: &str, errors: ErrorEvents) {
        Router::emit_errors(self, from_label, tag, errors)
    }
}

impl Report for Router {
    fn report(&self, sink: &mut dyn MetricSink) {
        self.metrics.report(sink);
    }
}
