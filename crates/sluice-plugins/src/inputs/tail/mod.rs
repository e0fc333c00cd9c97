//! `tail`: Fluentd's in_tail. Follows files matched by `path` (globs, comma lists), survives rotation
//! (rename-and-create, copytruncate) and restarts (a pos_file in Fluentd's own format), and hands lines in
//! batches to a `<parse>` parser. See docs/plugins/tail.md.
mod config;
mod discovery;
mod follow;
mod pos_file;
mod reader;
mod stream;
mod watcher;

pub use config::{Encoding, TailConfig};
pub use pos_file::{parse as parse_pos_file, PosFile, PosKey, UNWATCHED};

use async_trait::async_trait;
use sluice_core::config::{ConfigError, Element};
use sluice_core::metrics::{MetricSink, Report, WatchedFile, WatchedFiles};
use sluice_core::plugin::{BuildCtx, Emitter, Input, Parser, PluginError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counters of one tail input (what a user checks when lines go missing: none are lost silently).
#[derive(Debug, Default)]
pub struct TailStats {
    pub events_emitted: AtomicU64,
    /// Lines longer than `max_line_size`, skipped.
    pub lines_too_long: AtomicU64,
    /// Records joined from several lines (CRI/docker partial lines, multiline) that grew past
    /// `max_line_size` (16 MiB without it), dropped whole.
    pub records_too_long: AtomicU64,
    /// Lines with invalid UTF-8 (kept, with U+FFFD in place of the invalid bytes).
    pub invalid_utf8_lines: AtomicU64,
    /// Lines the parser did not match (emitted as `unmatched_line` with `emit_unmatched_lines true`).
    pub unmatched_lines: AtomicU64,
    /// Of those, the lines dropped (without `emit_unmatched_lines`).
    pub unparsed_dropped: AtomicU64,
    /// Batches the next stage refused (buffer full) and that were read again later.
    pub emit_retries: AtomicU64,
    pub rotations: AtomicU64,
    pub truncations: AtomicU64,
    pub permission_errors: AtomicU64,
    /// Matched paths that are not regular files after symlinks are resolved (FIFOs, sockets, devices),
    /// not followed; each counted once.
    pub special_files_skipped: AtomicU64,
    pub files_opened: AtomicU64,
    pub files_closed: AtomicU64,
    /// The followed files as of the last snapshot (about once a second), for `prometheus_tail_monitor`.
    pub files: parking_lot::Mutex<Vec<WatchedFile>>,
}

pub struct Tail {
    cfg: Arc<TailConfig>,
    parser: Box<dyn Parser>,
    stats: Arc<TailStats>,
}

impl Tail {
    pub fn from_element(s: &Element, ctx: &BuildCtx) -> Result<Tail, ConfigError> {
        let cfg = TailConfig::from_element(s)?;
        let parser = ctx.registry.parser_of(s, "none", ctx)?;
        if cfg.multiline_flush_interval.is_some() && !parser.is_joining() {
            tracing::debug!("tail: multiline_flush_interval has no effect with a parser that does not join lines");
        }
        if let Some(p) = &cfg.pos_file {
            ctx.check_writable(pos_file::dir_of(p)).map_err(|e| s.error_at("pos_file", format!("pos_file: {e}")))?;
        }
        if cfg.exit_on_eof && !ctx.dry_run {
            ctx.eof.register();
        }
        Ok(Tail { cfg: Arc::new(cfg), parser, stats: Arc::default() })
    }

    /// This input's counters (shared with the running input).
    pub fn stats(&self) -> Arc<TailStats> {
        self.stats.clone()
    }
}

/// Exported as `sluice_tail_*` (labelled with the input's `plugin_id`), with the lines and records tail dropped
/// also in `sluice_records_dropped_total{reason}`, so one alert covers every drop.
impl Report for TailStats {
    fn report(&self, sink: &mut dyn MetricSink) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let counters: [(&str, &str, &AtomicU64); 10] = [
            ("sluice_tail_events_emitted_total", "Events tail emitted.", &self.events_emitted),
            ("sluice_tail_lines_too_long_total", "Lines longer than max_line_size, skipped.", &self.lines_too_long),
            (
                "sluice_tail_records_too_long_total",
                "Joined records (partial lines, multiline) longer than the limit, dropped.",
                &self.records_too_long,
            ),
            (
                "sluice_tail_invalid_utf8_lines_total",
                "Lines with invalid UTF-8, kept with U+FFFD in place of the invalid bytes.",
                &self.invalid_utf8_lines,
            ),
            ("sluice_tail_unmatched_lines_total", "Lines the parser did not match.", &self.unmatched_lines),
            (
                "sluice_tail_emit_retries_total",
                "Batches the next stage refused (buffers full) and that were read again.",
                &self.emit_retries,
            ),
            ("sluice_tail_rotations_total", "File rotations followed.", &self.rotations),
            ("sluice_tail_truncations_total", "Files truncated while followed.", &self.truncations),
            (
                "sluice_tail_permission_errors_total",
                "Files that could not be opened for lack of permission.",
                &self.permission_errors,
            ),
            (
                "sluice_tail_special_files_skipped_total",
                "Matched paths that are not regular files (FIFOs, sockets, devices), not followed.",
                &self.special_files_skipped,
            ),
        ];
        for (name, help, v) in counters {
            sink.counter(name, help, &[], get(v));
        }
        const DROPPED: &str = "Records dropped, by component and reason.";
        sink.counter(
            "sluice_records_dropped_total",
            DROPPED,
            &[("reason", "line_too_long")],
            get(&self.lines_too_long),
        );
        sink.counter(
            "sluice_records_dropped_total",
            DROPPED,
            &[("reason", "record_too_long")],
            get(&self.records_too_long),
        );
        sink.counter("sluice_records_dropped_total", DROPPED, &[("reason", "unparsed")], get(&self.unparsed_dropped));
        for f in self.files.lock().iter() {
            let lag = f.size.saturating_sub(f.position) as f64;
            sink.gauge("sluice_tail_file_lag_bytes", "Bytes of the file not read yet.", &[("path", &f.path)], lag);
        }
    }

    fn watched_files(&self) -> Option<WatchedFiles> {
        Some(WatchedFiles {
            files: self.files.lock().clone(),
            opened: self.files_opened.load(Ordering::Relaxed),
            closed: self.files_closed.load(Ordering::Relaxed),
            rotated: self.rotations.load(Ordering::Relaxed),
        })
    }
}

pub fn build(section: &Element, ctx: &BuildCtx) -> Result<Box<dyn Input>, ConfigError> {
    Ok(Box::new(Tail::from_element(section, ctx)?))
}

#[async_trait]
impl Input for Tail {
    fn reporter(&self) -> Option<Arc<dyn Report>> {
        Some(self.stats.clone())
    }

    async fn run(self: Box<Self>, emitter: Emitter, ctx: BuildCtx) -> Result<(), PluginError> {
        let Tail { cfg, parser, stats } = *self;
        let exit_on_eof = cfg.exit_on_eof;
        let eof = ctx.eof.clone();
        let worker = watcher::Worker::new(cfg, parser, stats, emitter, ctx);
        // The reader thread logs under this input's @log_level span.
        let span = tracing::Span::current();
        let r = match tokio::task::spawn_blocking(move || span.in_scope(|| worker.run())).await {
            Ok(r) => r,
            Err(e) => Err(PluginError::Other(format!("tail: reader thread failed: {e}"))),
        };
        if exit_on_eof {
            // Also on error, so that a batch run does not wait forever.
            eof.finished();
        }
        r
    }
}
