//! `prometheus_monitor`, `prometheus_output_monitor` and `prometheus_tail_monitor`: Fluentd's status
//! gauges computed from the engine's components at scrape time (so `interval` is accepted and unused).
use crate::labels;
use async_trait::async_trait;
use sluice_core::config::{ConfigError, Element};
use sluice_core::metrics::{Category, Hub, MetricSink, Report};
use sluice_core::plugin::{BuildCtx, Emitter, Input, PluginError};
use std::sync::{Arc, Weak};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Status,
    Output,
    Tail,
}

struct Collector {
    hub: Weak<Hub>,
    base: Vec<(String, String)>,
    which: Which,
}

impl Report for Collector {
    fn report(&self, sink: &mut dyn MetricSink) {
        let Some(hub) = self.hub.upgrade() else { return };
        match self.which {
            Which::Status => self.status(&hub, sink),
            Which::Output => self.outputs(&hub, sink),
            Which::Tail => self.tails(&hub, sink),
        }
    }
}

impl Collector {
    fn labels<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut l: Vec<(&str, &str)> = self.base.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        for (k, v) in extra {
            match l.iter_mut().find(|(n, _)| n == k) {
                Some(slot) => slot.1 = v,
                None => l.push((k, v)),
            }
        }
        l
    }

    fn status(&self, hub: &Hub, sink: &mut dyn MetricSink) {
        for c in hub.components() {
            let l = self.labels(&[
                ("plugin_id", &c.plugin_id),
                ("plugin_category", c.category.as_str()),
                ("type", &c.type_name),
            ]);
            if let Some(b) = c.buffer_status() {
                sink.gauge(
                    "fluentd_status_buffer_queue_length",
                    "Current buffer queue length.",
                    &l,
                    b.queue_length as f64,
                );
                sink.gauge(
                    "fluentd_status_buffer_total_bytes",
                    "Current total size of queued buffers.",
                    &l,
                    b.total_bytes as f64,
                );
                if let (Some(min), Some(max)) = (b.timekeys.first(), b.timekeys.last()) {
                    sink.gauge("fluentd_status_buffer_newest_timekey", "Newest timekey in buffer.", &l, *max as f64);
                    sink.gauge("fluentd_status_buffer_oldest_timekey", "Oldest timekey in buffer.", &l, *min as f64);
                }
            }
            if let Some(m) = c.output_metrics() {
                sink.gauge("fluentd_status_retry_count", "Current retry counts.", &l, m.write_errors.get() as f64);
            }
        }
    }

    /// fluent-plugin-prometheus's in_prometheus_tail_monitor: each file's position and inode, and the
    /// watcher counts of each tail input.
    fn tails(&self, hub: &Hub, sink: &mut dyn MetricSink) {
        for c in hub.components().iter().filter(|c| c.category == Category::Input) {
            let Some(w) = c.watched_files() else { continue };
            for f in &w.files {
                let l = self.labels(&[("plugin_id", &c.plugin_id), ("type", &c.type_name), ("path", &f.path)]);
                sink.gauge("fluentd_tail_file_position", "Current position of file.", &l, f.position as f64);
                sink.gauge("fluentd_tail_file_inode", "Current inode of file.", &l, f.inode as f64);
            }
            let l = self.labels(&[("plugin_id", &c.plugin_id), ("type", &c.type_name)]);
            sink.gauge("fluentd_tail_file_closed", "Number of closed files.", &l, w.closed as f64);
            sink.gauge("fluentd_tail_file_opened", "Number of opened files.", &l, w.opened as f64);
            sink.gauge("fluentd_tail_file_rotated", "Number of rotated files.", &l, w.rotated as f64);
        }
    }

    fn outputs(&self, hub: &Hub, sink: &mut dyn MetricSink) {
        for c in hub.components().iter().filter(|c| c.category == Category::Output) {
            let l = self.labels(&[("plugin_id", &c.plugin_id), ("type", &c.type_name)]);
            let mut g = |name: &str, help: &str, v: f64| sink.gauge(name, help, &l, v);
            if let Some(b) = c.buffer_status() {
                g("fluentd_output_status_buffer_queue_length", "Current buffer queue length.", b.queue_length as f64);
                g(
                    "fluentd_output_status_buffer_total_bytes",
                    "Current total size of queued buffers.",
                    b.total_bytes as f64,
                );
                g(
                    "fluentd_output_status_buffer_stage_length",
                    "Current length of stage buffers.",
                    b.stage_length as f64,
                );
                g(
                    "fluentd_output_status_buffer_stage_byte_size",
                    "Current total size of stage buffers.",
                    b.stage_bytes as f64,
                );
                g(
                    "fluentd_output_status_buffer_queue_byte_size",
                    "Current total size of queue buffers.",
                    b.queue_bytes as f64,
                );
                g(
                    "fluentd_output_status_buffer_available_space_ratio",
                    "Ratio of available space in buffer.",
                    b.available_space_ratio,
                );
                if let (Some(min), Some(max)) = (b.timekeys.first(), b.timekeys.last()) {
                    g("fluentd_output_status_buffer_newest_timekey", "Newest timekey in buffer.", *max as f64);
                    g("fluentd_output_status_buffer_oldest_timekey", "Oldest timekey in buffer.", *min as f64);
                }
                let wait = b.retry.as_ref().map_or(0.0, |r| (r.next_time - r.start).max(0.0));
                g("fluentd_output_status_retry_wait", "Current retry wait", wait);
            }
            if let Some(m) = c.output_metrics() {
                let errors = m.write_errors.get() as f64;
                g("fluentd_output_status_retry_count", "Current retry counts.", errors);
                g("fluentd_output_status_num_errors", "Current number of errors.", errors);
                g("fluentd_output_status_emit_count", "Current emit counts.", m.emit_count.get() as f64);
                g("fluentd_output_status_emit_records", "Current emit records.", m.records_in.get() as f64);
                g("fluentd_output_status_write_count", "Current write counts.", m.write_count.get() as f64);
                g("fluentd_output_status_rollback_count", "Current rollback counts.", m.retries.get() as f64);
                g("fluentd_output_status_flush_time_count", "Total flush time.", m.flush_time_ms.get() as f64);
                g(
                    "fluentd_output_status_slow_flush_count",
                    "Current slow flush counts.",
                    m.slow_flush_count.get() as f64,
                );
            }
        }
    }
}

/// The input: registers its collector and waits for shutdown.
struct MonitorInput;

#[async_trait]
impl Input for MonitorInput {
    async fn run(self: Box<Self>, _emitter: Emitter, ctx: BuildCtx) -> Result<(), PluginError> {
        ctx.shutdown.wait().await;
        Ok(())
    }
}

fn build(conf: &Element, ctx: &BuildCtx, which: Which, plugin: &str) -> Result<Box<dyn Input>, ConfigError> {
    // `interval` is Fluentd's refresh period; sluice computes the values at scrape time.
    let _ = conf.time_or("interval", 5.0)?;
    let base = labels::parse_static(conf, plugin, &ctx.system.hostname)?;
    if !ctx.dry_run {
        ctx.metrics.add_collector(Arc::new(Collector { hub: Arc::downgrade(&ctx.metrics), base, which }));
    }
    Ok(Box::new(MonitorInput))
}

pub fn build_status(conf: &Element, ctx: &BuildCtx) -> Result<Box<dyn Input>, ConfigError> {
    build(conf, ctx, Which::Status, "prometheus_monitor")
}

pub fn build_output(conf: &Element, ctx: &BuildCtx) -> Result<Box<dyn Input>, ConfigError> {
    build(conf, ctx, Which::Output, "prometheus_output_monitor")
}

pub fn build_tail(conf: &Element, ctx: &BuildCtx) -> Result<Box<dyn Input>, ConfigError> {
    build(conf, ctx, Which::Tail, "prometheus_tail_monitor")
}
