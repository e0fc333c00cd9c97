//! Lock-free counters and gauges: relaxed atomics, no lock and no allocation on the hot path.
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A gauge that can go down (bytes currently buffered).
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn sub(&self, n: u64) {
        let _ = self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(n)));
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters the router keeps.
#[derive(Debug, Default)]
pub struct RouterMetrics {
    pub unmatched_records: Counter,
    pub error_records: Counter,
    pub error_records_dropped: Counter,
}

impl RouterMetrics {
    /// The router's counters as `sluice_router_*` metrics.
    pub fn report(&self, sink: &mut dyn super::MetricSink) {
        sink.counter(
            "sluice_router_unmatched_records_total",
            "Records dropped because no <match> (or no label) took their tag.",
            &[],
            self.unmatched_records.get(),
        );
        sink.counter(
            "sluice_router_error_records_total",
            "Records a plugin rejected to the error stream (@ERROR).",
            &[],
            self.error_records.get(),
        );
        sink.counter(
            "sluice_router_error_records_dropped_total",
            "Rejected records dropped because there was no <label @ERROR> or it refused them.",
            &[],
            self.error_records_dropped.get(),
        );
        const DROPPED: &str = "Records dropped, by component and reason.";
        let router = [("plugin_id", "router"), ("type", "router")];
        let un = [router[0], router[1], ("reason", "unmatched")];
        sink.counter("sluice_records_dropped_total", DROPPED, &un, self.unmatched_records.get());
        let err = [router[0], router[1], ("reason", "no_error_label")];
        sink.counter("sluice_records_dropped_total", DROPPED, &err, self.error_records_dropped.get());
    }
}
