//! The engine's list of components (every `<source>`, `<filter>` and `<match>`), shared with plugins
//! through [`crate::plugin::BuildCtx::metrics`] so a monitoring `<source>` can serve them at run time.
use super::{MetricSink, Report, WithLabels};
use crate::config::Element;
use crate::plugin::RouterHandle;
use crate::plugin::{Filter, Output, OutputMetrics};
use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Fluentd's `plugin_category`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Input,
    Filter,
    Output,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Input => "input",
            Category::Filter => "filter",
            Category::Output => "output",
        }
    }
}

/// The retry state of a buffered output, as Fluentd's monitor_agent shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryStatus {
    /// Unix seconds of the first failure of the current retry sequence.
    pub start: f64,
    /// Failed attempts so far in this sequence.
    pub steps: u32,
    /// Unix seconds of the next attempt.
    pub next_time: f64,
}

/// A snapshot of a buffered output's buffer (read under its lock, at scrape time only).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BufferStatus {
    /// Chunks queued for flushing.
    pub queue_length: u64,
    /// Bytes staged and queued (what `total_limit_size` limits).
    pub total_bytes: u64,
    pub stage_length: u64,
    pub stage_bytes: u64,
    pub queue_bytes: u64,
    pub total_limit_size: u64,
    /// Free share of `total_limit_size`, in percent (Fluentd's `buffer_available_buffer_space_ratios`).
    pub available_space_ratio: f64,
    /// Time keys of the staged and queued chunks (empty without a `time` chunk key).
    pub timekeys: Vec<i64>,
    pub retry: Option<RetryStatus>,
}

enum Probe {
    Input(Option<Arc<dyn Report>>),
    Filter(Arc<dyn Filter>),
    Output(Arc<dyn Output>),
}

/// One configured plugin.
pub struct Component {
    /// `@id`, or `object:<hex>` as Fluentd makes one.
    pub plugin_id: String,
    /// True when the configuration gave the `@id`.
    pub id_given: bool,
    pub type_name: String,
    pub category: Category,
    /// The directive's parameters (top level, in file order), secrets replaced by `xxxxxx`.
    pub config: Vec<(String, String)>,
    probe: Probe,
}

impl Component {
    fn new(el: &Element, category: Category, addr: usize, probe: Probe) -> Self {
        let (plugin_id, id_given) = match el.plugin_id() {
            Some(id) => (id.to_string(), true),
            None => (format!("object:{addr:x}"), false),
        };
        Component {
            plugin_id,
            id_given,
            type_name: el.plugin_type().unwrap_or_default().to_string(),
            category,
            config: masked_config(el),
            probe,
        }
    }

    pub fn input(el: &Element, addr: usize, reporter: Option<Arc<dyn Report>>) -> Self {
        Self::new(el, Category::Input, addr, Probe::Input(reporter))
    }

    pub fn filter(el: &Element, filter: Arc<dyn Filter>) -> Self {
        let addr = Arc::as_ptr(&filter) as *const () as usize;
        Self::new(el, Category::Filter, addr, Probe::Filter(filter))
    }

    pub fn output(el: &Element, output: Arc<dyn Output>) -> Self {
        let addr = Arc::as_ptr(&output) as *const () as usize;
        Self::new(el, Category::Output, addr, Probe::Output(output))
    }

    /// The output's counters (outputs only).
    pub fn output_metrics(&self) -> Option<Arc<OutputMetrics>> {
        match &self.probe {
            Probe::Output(o) => o.metrics(),
            _ => None,
        }
    }

    /// The buffer's state (buffered outputs only).
    pub fn buffer_status(&self) -> Option<BufferStatus> {
        match &self.probe {
            Probe::Output(o) => o.buffer_status(),
            _ => None,
        }
    }

    /// The files an input follows (tail only).
    pub fn watched_files(&self) -> Option<super::WatchedFiles> {
        match &self.probe {
            Probe::Input(Some(r)) => r.watched_files(),
            _ => None,
        }
    }

    /// Write this component's own `sluice_*` metrics, each labelled with `plugin_id` and `type`.
    pub fn report(&self, sink: &mut dyn MetricSink) {
        let labels = [("plugin_id", self.plugin_id.as_str()), ("type", self.type_name.as_str())];
        let mut sink = WithLabels { inner: sink, labels: &labels };
        match &self.probe {
            Probe::Input(Some(r)) => r.report(&mut sink),
            Probe::Input(None) => {}
            Probe::Filter(f) => f.report(&mut sink),
            Probe::Output(o) => {
                if let Some(m) = o.metrics() {
                    m.report(&mut sink);
                }
                o.report(&mut sink);
            }
        }
    }
}

/// Parameter names whose values are never shown (monitor_agent's `config`): Fluentd masks parameters
/// declared `secret`; sluice has no such declarations, so it masks by name and fails closed.
fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    const WORDS: &[&str] = &["pass", "secret", "token", "credential", "private", "webhook", "auth", "salt"];
    WORDS.iter().any(|w| k.contains(w)) || k == "key" || k.ends_with("_key") || k.ends_with("key_id")
}

fn masked_config(el: &Element) -> Vec<(String, String)> {
    el.attrs
        .iter()
        .map(|a| {
            let v = if is_secret(&a.key) { "xxxxxx".to_string() } else { a.value.clone() };
            (a.key.clone(), v)
        })
        .collect()
}

/// Seconds without a heartbeat after which the engine counts as stuck.
pub const HEARTBEAT_STALE_SECS: u64 = 30;

/// Every component of the running configuration, the router's counters, and extra collectors.
#[derive(Default)]
pub struct Hub {
    components: RwLock<Vec<Arc<Component>>>,
    collectors: RwLock<Vec<Arc<dyn Report>>>,
    router: OnceLock<RouterHandle>,
    ready: AtomicBool,
    /// Unix milliseconds of the engine's last heartbeat (0: not running yet).
    heartbeat: AtomicU64,
}

fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Hub {
    pub fn new() -> Arc<Self> {
        Arc::new(Hub::default())
    }

    pub fn add(&self, c: Component) {
        self.components.write().push(Arc::new(c));
    }

    /// Components in configuration order.
    pub fn components(&self) -> Vec<Arc<Component>> {
        self.components.read().clone()
    }

    /// Metrics that belong to no single component (`<filter @type prometheus>`'s `<metric>`s,
    /// `prometheus_monitor`).
    pub fn add_collector(&self, r: Arc<dyn Report>) {
        self.collectors.write().push(r);
    }

    pub fn set_router(&self, router: RouterHandle) {
        let _ = self.router.set(router);
    }

    /// Write every metric: components' `sluice_*` metrics, the router's, then the collectors'.
    pub fn report(&self, sink: &mut dyn MetricSink) {
        for c in self.components() {
            c.report(sink);
        }
        if let Some(r) = self.router.get().and_then(RouterHandle::get) {
            r.report(sink);
        }
        let collectors = self.collectors.read().clone();
        for c in collectors {
            c.report(sink);
        }
    }

    /// Every input and output has started.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Called by the engine's heartbeat task on the runtime.
    pub fn beat(&self) {
        self.heartbeat.store(unix_millis(), Ordering::Relaxed);
    }

    /// False when the engine ran and its heartbeat stopped for [`HEARTBEAT_STALE_SECS`].
    pub fn is_live(&self) -> bool {
        let last = self.heartbeat.load(Ordering::Relaxed);
        last == 0 || unix_millis().saturating_sub(last) < HEARTBEAT_STALE_SECS * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_by_name() {
        for k in ["aws_sec_key", "aws_key_id", "password", "webhook_url", "token", "hash_key", "key"] {
            assert!(is_secret(k), "{k}");
        }
        for k in ["path", "tag", "stream_name", "region", "pos_file", "@type", "@id"] {
            assert!(!is_secret(k), "{k}");
        }
    }
}
