use super::EmitError;
use crate::event::Events;
use crate::metrics::{BufferStatus, Counter, MetricSink};
use async_trait::async_trait;
use parking_lot::Mutex;
use std::sync::Arc;

/// A runtime failure of a plugin (as opposed to a configuration error).
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// Counters every output keeps; the monitoring work exports them.
#[derive(Debug, Default)]
pub struct OutputMetrics {
    /// Emit calls (batches) accepted (Fluentd's `emit_count`).
    pub emit_count: Counter,
    /// Write attempts of chunks (Fluentd's `write_count`).
    pub write_count: Counter,
    /// Milliseconds spent in writes (Fluentd's `flush_time_count`).
    pub flush_time_ms: Counter,
    /// Writes slower than `slow_flush_log_threshold` (Fluentd's `slow_flush_count`).
    pub slow_flush_count: Counter,
    pub records_in: Counter,
    pub records_written: Counter,
    pub bytes_queued: Counter,
    pub chunks_queued: Counter,
    pub retries: Counter,
    pub write_errors: Counter,
    pub records_dropped: Counter,
    pub records_to_secondary: Counter,
    pub records_to_error_label: Counter,
    pub last_error: Mutex<Option<String>>,
}

impl OutputMetrics {
    pub fn set_last_error(&self, e: &str) {
        *self.last_error.lock() = Some(e.to_string());
    }

    /// The counters as `sluice_output_*` metrics (the caller adds `plugin_id` and `type`).
    pub fn report(&self, sink: &mut dyn MetricSink) {
        let c = |sink: &mut dyn MetricSink, name: &str, help: &str, v: &Counter| sink.counter(name, help, &[], v.get());
        c(sink, "sluice_output_records_in_total", "Records the output accepted.", &self.records_in);
        c(sink, "sluice_output_records_written_total", "Records the destination accepted.", &self.records_written);
        c(sink, "sluice_output_chunks_queued_total", "Chunks queued for flushing.", &self.chunks_queued);
        c(sink, "sluice_output_bytes_queued_total", "Bytes queued for flushing.", &self.bytes_queued);
        c(sink, "sluice_output_retries_total", "Retries scheduled after a failed write.", &self.retries);
        c(sink, "sluice_output_write_errors_total", "Failed writes.", &self.write_errors);
        c(
            sink,
            "sluice_output_slow_flushes_total",
            "Writes slower than slow_flush_log_threshold.",
            &self.slow_flush_count,
        );
        c(
            sink,
            "sluice_output_records_to_secondary_total",
            "Records handed to <secondary>.",
            &self.records_to_secondary,
        );
        c(
            sink,
            "sluice_output_records_to_error_label_total",
            "Records routed to @ERROR because they could not be delivered.",
            &self.records_to_error_label,
        );
        sink.counter(
            "sluice_records_dropped_total",
            "Records dropped, by component and reason.",
            &[("reason", "undeliverable")],
            self.records_dropped.get(),
        );
    }
}

/// A `<match>`. The router hands it batches; what it does with them (write at once, or buffer and flush
/// later) is its own business. Buffered outputs get all of this from [`crate::buffer::BufferedOutput`].
#[async_trait]
pub trait Output: Send + Sync {
    /// Accept a batch. An error means the batch was not taken (the input keeps it and retries).
    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError>;

    /// Start background work (flush threads). Called once, before the first emit.
    async fn start(&self) -> Result<(), PluginError> {
        Ok(())
    }

    /// Emit again every event held back (outputs that re-emit through the router and join events, like
    /// `detect_exceptions`). Called after the inputs stopped and the filters were shut down, before any
    /// output's `shutdown`, so what it emits still reaches running outputs.
    fn before_shutdown(&self) {}

    /// Stop: flush what `flush_at_shutdown` asks for, then return.
    async fn shutdown(&self) {}

    /// Flush every buffer now (SIGUSR1).
    fn flush_now(&self) {}

    fn metrics(&self) -> Option<Arc<OutputMetrics>> {
        None
    }

    /// The buffer's state for monitoring (buffered outputs).
    fn buffer_status(&self) -> Option<BufferStatus> {
        None
    }

    /// Metrics of this output beyond [`OutputMetrics`] (its destination's own counters). Called at
    /// scrape time; the sink adds `plugin_id` and `type`.
    fn report(&self, _sink: &mut dyn MetricSink) {}
}
