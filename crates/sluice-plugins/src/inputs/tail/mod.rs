//! `tail`: Fluentd's in_tail. Follows files matched by `path` (globs, comma lists), survives rotation
//! (rename-and-create, copytruncate) and restarts (a pos_file in Fluentd's own format), and hands lines in
//! batches to a `<parse>` parser. See docs/plugins/tail.md.
mod config;
mod pos_file;
mod reader;
mod watcher;

pub use config::{Encoding, TailConfig};
pub use pos_file::{parse as parse_pos_file, PosFile, PosKey, UNWATCHED};

use async_trait::async_trait;
use sluice_core::config::{ConfigError, Element};
use sluice_core::plugin::{BuildCtx, Emitter, Input, Parser, PluginError};
use std::sync::atomic::AtomicU64;
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
    /// Batches the next stage refused (buffer full) and that were read again later.
    pub emit_retries: AtomicU64,
    pub rotations: AtomicU64,
    pub truncations: AtomicU64,
    pub permission_errors: AtomicU64,
    /// Matched paths that are not regular files after symlinks are resolved (FIFOs, sockets, devices),
    /// not followed; each counted once.
    pub special_files_skipped: AtomicU64,
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

pub fn build(section: &Element, ctx: &BuildCtx) -> Result<Box<dyn Input>, ConfigError> {
    Ok(Box::new(Tail::from_element(section, ctx)?))
}

#[async_trait]
impl Input for Tail {
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
