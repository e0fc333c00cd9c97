//! Counters each writer keeps (tests and monitoring read them); none holds record content.
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct WriterStats {
    pub requests: AtomicU64,
    pub records_delivered: AtomicU64,
    pub records_failed_in_response: AtomicU64,
    pub records_oversize: AtomicU64,
    pub records_invalid: AtomicU64,
    pub objects_written: AtomicU64,
}

impl WriterStats {
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
    pub fn partial(&self, n: usize) {
        self.records_failed_in_response.fetch_add(n as u64, Ordering::Relaxed);
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
