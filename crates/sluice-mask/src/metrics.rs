//! The mask filter's counters: values masked per kind (never the values) and records that failed closed.
use crate::kind::KindId;
use crate::OnError;
use sluice_core::metrics::MetricSink;
use std::sync::atomic::{AtomicU64, Ordering};

/// What was masked, per kind (never the values), and how many records failed closed.
#[derive(Debug)]
pub struct MaskMetrics {
    names: Vec<String>,
    masked: Vec<AtomicU64>,
    pub records_in: AtomicU64,
    pub records_masked: AtomicU64,
    pub records_failed: AtomicU64,
    pub fields_removed: AtomicU64,
}

impl MaskMetrics {
    pub(crate) fn new(names: Vec<String>) -> Self {
        let masked = names.iter().map(|_| AtomicU64::new(0)).collect();
        MaskMetrics {
            names,
            masked,
            records_in: AtomicU64::new(0),
            records_masked: AtomicU64::new(0),
            records_failed: AtomicU64::new(0),
            fields_removed: AtomicU64::new(0),
        }
    }

    pub(crate) fn count(&self, kind: KindId) {
        if let Some(c) = self.masked.get(kind as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Masked values per kind name (`email`, `card`, ..., `sensitive_key`, user rule names).
    pub fn masked_by_kind(&self) -> Vec<(String, u64)> {
        self.names.iter().zip(&self.masked).map(|(n, c)| (n.clone(), c.load(Ordering::Relaxed))).collect()
    }

    pub fn masked(&self, kind: &str) -> u64 {
        self.names.iter().position(|n| n == kind).map_or(0, |i| self.masked[i].load(Ordering::Relaxed))
    }
}

impl MaskMetrics {
    /// The counters as `sluice_mask_*` metrics (the engine adds `plugin_id` and `type`).
    pub(crate) fn report(&self, on_error: OnError, sink: &mut dyn MetricSink) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        sink.counter("sluice_mask_records_in_total", "Records the mask filter scanned.", &[], get(&self.records_in));
        sink.counter(
            "sluice_mask_records_masked_total",
            "Records in which the mask filter masked at least one value.",
            &[],
            get(&self.records_masked),
        );
        for (name, c) in self.names.iter().zip(&self.masked) {
            sink.counter(
                "sluice_mask_detections_total",
                "Values masked, by detector (never the values).",
                &[("detector", name)],
                get(c),
            );
        }
        let failed = get(&self.records_failed);
        let (to_error, dropped) = match on_error {
            OnError::Error => (failed, 0),
            OnError::Drop => (0, failed),
        };
        sink.counter(
            "sluice_mask_records_to_error_total",
            "Records the mask filter could not scan and sent to @ERROR (fail closed).",
            &[],
            to_error,
        );
        sink.counter(
            "sluice_records_dropped_total",
            "Records dropped, by component and reason.",
            &[("reason", "mask_fail_closed")],
            dropped,
        );
    }
}
