//! Counters each writer keeps (tests and monitoring read them); none holds record content.
use parking_lot::Mutex;
use sluice_core::metrics::MetricSink;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinct error codes kept per writer; later ones are counted as `other` (codes come from the service).
const MAX_CODES: usize = 32;

#[derive(Debug, Default)]
pub struct WriterStats {
    pub requests: AtomicU64,
    pub records_delivered: AtomicU64,
    pub records_failed_in_response: AtomicU64,
    pub records_oversize: AtomicU64,
    pub records_invalid: AtomicU64,
    pub objects_written: AtomicU64,
    /// Records the service refused in a response (retried), by its error code. Touched only on failures.
    refused_by_code: Mutex<BTreeMap<String, u64>>,
}

impl WriterStats {
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
    pub fn partial(&self, n: usize) {
        self.records_failed_in_response.fetch_add(n as u64, Ordering::Relaxed);
    }
    /// Count the records a PutRecords/PutRecordBatch response refused, by error code.
    pub fn refused(&self, codes: &[Option<String>]) {
        let n = codes.iter().filter(|c| c.is_some()).count();
        if n == 0 {
            return;
        }
        self.partial(n);
        let mut by = self.refused_by_code.lock();
        for c in codes.iter().flatten() {
            let key = if by.contains_key(c.as_str()) || by.len() < MAX_CODES { c.as_str() } else { "other" };
            *by.entry(key.to_string()).or_insert(0) += 1;
        }
    }
    /// Records refused by the service, by error code.
    pub fn refused_by_code(&self) -> Vec<(String, u64)> {
        self.refused_by_code.lock().iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
    /// The counters as `sluice_aws_*` metrics (the engine adds `plugin_id` and `type`).
    pub fn report(&self, sink: &mut dyn MetricSink) {
        sink.counter("sluice_aws_requests_total", "Requests sent to the AWS service.", &[], self.get(&self.requests));
        sink.counter(
            "sluice_aws_records_delivered_total",
            "Records the AWS service accepted.",
            &[],
            self.get(&self.records_delivered),
        );
        const RETRIED: &str = "Records the service refused in its response (retried), by error code.";
        for (code, n) in self.refused_by_code() {
            sink.counter("sluice_aws_records_retried_total", RETRIED, &[("error_code", &code)], n);
        }
        const FAILED: &str = "Records rejected without sending them (to <secondary>/@ERROR), by reason.";
        sink.counter(
            "sluice_aws_records_failed_total",
            FAILED,
            &[("error_code", "oversize")],
            self.get(&self.records_oversize),
        );
        sink.counter(
            "sluice_aws_records_failed_total",
            FAILED,
            &[("error_code", "invalid")],
            self.get(&self.records_invalid),
        );
        sink.counter("sluice_aws_objects_written_total", "Objects written (s3).", &[], self.get(&self.objects_written));
    }
    pub fn delivered(&self, n: usize) {
        self.records_delivered.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub fn record_invalid(&self) {
        self.records_invalid.fetch_add(1, Ordering::Relaxed);
    }
    /// Count and log an oversize record: tag and size only, never its content.
    pub fn record_oversize(&self, tag: &str, plugin: &str, size: usize, limit: usize) {
        self.records_oversize.fetch_add(1, Ordering::Relaxed);
        tracing::error!(plugin, tag, size, max_record_size = limit, "record over max_record_size rejected");
    }
    pub fn get(&self, c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}
