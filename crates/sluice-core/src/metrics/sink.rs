//! The one interface every component reports through: it writes named samples with labels into a
//! [`MetricSink`] when asked (at scrape time), so the hot path only touches its own atomics.

/// The Prometheus type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Summary,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary => "summary",
            Kind::Histogram => "histogram",
        }
    }
}

/// Where a component writes its metrics. `name` is the family name; `suffix` is empty for counters and
/// gauges, `_sum`/`_count` (and `_bucket` with an `le` label) for summaries and histograms.
pub trait MetricSink {
    fn sample(&mut self, name: &str, help: &str, kind: Kind, suffix: &str, labels: &[(&str, &str)], value: f64);

    fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        self.sample(name, help, Kind::Counter, "", labels, value as f64);
    }

    fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.sample(name, help, Kind::Gauge, "", labels, value);
    }
}

/// Something that reports metrics: a component's counters, or a collector such as `prometheus_monitor`.
pub trait Report: Send + Sync {
    fn report(&self, sink: &mut dyn MetricSink);

    /// Inputs that follow files (tail): each file's path, position and inode, for `prometheus_tail_monitor`.
    fn watched_files(&self) -> Option<WatchedFiles> {
        None
    }
}

/// What a file-following input reports about its files (Fluentd's in_tail watchers).
#[derive(Debug, Clone, Default)]
pub struct WatchedFiles {
    pub files: Vec<WatchedFile>,
    pub opened: u64,
    pub closed: u64,
    pub rotated: u64,
}

#[derive(Debug, Clone)]
pub struct WatchedFile {
    pub path: String,
    /// Bytes read and accepted by the next stage (what the pos file records).
    pub position: u64,
    pub inode: u64,
    /// The file's size at the snapshot: `size - position` is how far the reader is behind.
    pub size: u64,
}

/// A sink that adds fixed labels (the component's `plugin_id` and `type`) to every sample.
pub struct WithLabels<'a> {
    pub inner: &'a mut dyn MetricSink,
    pub labels: &'a [(&'a str, &'a str)],
}

impl MetricSink for WithLabels<'_> {
    fn sample(&mut self, name: &str, help: &str, kind: Kind, suffix: &str, labels: &[(&str, &str)], value: f64) {
        let mut all: Vec<(&str, &str)> = Vec::with_capacity(self.labels.len() + labels.len());
        all.extend_from_slice(self.labels);
        all.extend(labels.iter().filter(|(k, _)| !self.labels.iter().any(|(f, _)| f == k)));
        self.inner.sample(name, help, kind, suffix, &all, value);
    }
}
