//! The tail loop: one blocking thread per `<source>` polls its files (a `stat` every `stat_interval`,
//! the glob every `refresh_interval`), reads new lines in batches of `read_lines_limit`, emits each batch
//! and only then records the new position. A refused batch (buffer full) is read again later: the
//! position never moves past lines the next stage has not accepted.
use super::config::TailConfig;
use super::follow::Tailed;
use super::pos_file::PosFile;
use super::stream::{finish_pending, Commit};
use super::TailStats;
use sluice_core::event::Events;
use sluice_core::metrics::WatchedFile;
use sluice_core::plugin::{BuildCtx, EmitError, Emitter, Parser, PluginError};
use sluice_core::util::RateLimiter;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often ended warning windows are checked for suppressed counts to report.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The thread was asked to stop (shutdown) while waiting.
pub struct Stop;

pub struct Env {
    pub cfg: Arc<TailConfig>,
    pub emitter: Emitter,
    pub stats: Arc<TailStats>,
    pub ctx: BuildCtx,
    warn: RateLimiter,
    backoff: std::cell::Cell<Duration>,
}

impl Env {
    pub(super) fn warn_key(&self, key: &str) -> Option<u64> {
        self.warn.check(key)
    }

    /// Log the counts of rate-limited warnings whose window has ended (or all of them, at shutdown), so
    /// that no drop goes unreported when a flood stops.
    fn report_suppressed(&self, all: bool) {
        let due = if all { self.warn.take_all() } else { self.warn.take_due() };
        for (key, n) in due {
            let (kind, path) = key.split_once(':').unwrap_or((key.as_str(), ""));
            let what = match kind {
                "unmatched" => "tail: line not parsed; dropped (more lines, not logged one by one)",
                "long" => "tail: line longer than max_line_size skipped (more lines, not logged one by one)",
                "joined" => "tail: joined record longer than max_line_size; dropped (more records, not logged one by one)",
                "utf8" => "tail: line is not valid text; invalid bytes replaced with U+FFFD (more lines, not logged one by one)",
                "overflow" => "tail: batch refused; will read it again (more batches, not logged one by one)",
                _ => "tail: warnings suppressed by the rate limit",
            };
            tracing::warn!(path, kind, suppressed = n, "{what}");
        }
    }

    /// Sleep up to `d`, waking early on shutdown.
    fn sleep(&self, d: Duration) -> Result<(), Stop> {
        let end = Instant::now() + d;
        loop {
            if self.ctx.shutdown.is_triggered() {
                return Err(Stop);
            }
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }

    /// Emit; Ok(false) when the next stage refused the batch (after waiting a little).
    pub(super) fn try_emit(&self, tag: &str, events: Events) -> Result<bool, Stop> {
        let n = events.len();
        match self.emitter.emit(tag, events) {
            Ok(()) => {
                self.stats.events_emitted.fetch_add(n as u64, Relaxed);
                self.backoff.set(BACKOFF_MIN);
                Ok(true)
            }
            Err(EmitError::ShuttingDown) => Err(Stop),
            Err(e @ EmitError::BufferOverflow { .. }) => {
                self.stats.emit_retries.fetch_add(1, Relaxed);
                let d = self.backoff.get();
                // A short refusal is backpressure doing its job (a memory buffer at its bound while the flush
                // catches up); refusals for seconds on end are worth a warning.
                if d < BACKOFF_MAX {
                    tracing::debug!(tag, events = n, error = %e, "tail: batch refused; will read it again");
                } else if let Some(suppressed) = self.warn_key("overflow") {
                    tracing::warn!(tag, events = n, error = %e, suppressed, "tail: batch refused; will read it again");
                }
                self.backoff.set((d * 2).min(BACKOFF_MAX));
                self.sleep(d)?;
                Ok(false)
            }
        }
    }

    /// Emit events that cannot be read again (held by a joining parser): retry until accepted.
    pub(super) fn emit_until_accepted(&self, tag: &str, events: Events) -> Result<(), Stop> {
        loop {
            if self.try_emit(tag, events.clone())? {
                return Ok(());
            }
        }
    }
}

/// What a followed file is keyed by: its path, or (`follow_inodes`) its device and inode.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum WKey {
    Path(String),
    Ino(u64, u64),
}

pub struct Worker {
    pub(super) env: Env,
    pub(super) proto: Box<dyn Parser>,
    pub(super) pos: Option<PosFile>,
    pub(super) files: BTreeMap<WKey, Tailed>,
    pub(super) started: bool,
    pub(super) refresh_requested: bool,
    pub(super) last_refresh: Instant,
    /// Matched paths that are not regular files, warned about once.
    pub(super) special_warned: HashSet<String>,
}

impl Worker {
    pub fn new(
        cfg: Arc<TailConfig>,
        proto: Box<dyn Parser>,
        stats: Arc<TailStats>,
        emitter: Emitter,
        ctx: BuildCtx,
    ) -> Worker {
        Worker {
            env: Env {
                cfg,
                emitter,
                stats,
                ctx,
                warn: RateLimiter::new(Duration::from_secs(60)),
                backoff: std::cell::Cell::new(BACKOFF_MIN),
            },
            proto,
            pos: None,
            files: BTreeMap::new(),
            started: false,
            refresh_requested: false,
            last_refresh: Instant::now(),
            special_warned: HashSet::new(),
        }
    }

    pub fn run(mut self) -> Result<(), PluginError> {
        let cfg = self.env.cfg.clone();
        if let Some(p) = &cfg.pos_file {
            self.pos = Some(
                PosFile::open(p, cfg.follow_inodes)
                    .map_err(|e| PluginError::Other(format!("tail: cannot open pos_file {}: {e}", p.display())))?,
            );
        }
        let mut next_refresh = if cfg.skip_refresh_on_startup && !cfg.exit_on_eof {
            Instant::now() + cfg.refresh_interval
        } else {
            Instant::now()
        };
        let mut next_compaction = cfg.pos_file_compaction_interval.map(|d| Instant::now() + d);
        let mut next_report = Instant::now() + REPORT_INTERVAL;
        let result = loop {
            if self.env.ctx.shutdown.is_triggered() {
                break Ok(());
            }
            let now = Instant::now();
            if now >= next_refresh
                || (self.refresh_requested && now.duration_since(self.last_refresh) >= cfg.stat_interval * 4)
            {
                self.refresh();
                next_refresh = Instant::now() + cfg.refresh_interval;
            }
            let busy = match self.tick() {
                Ok(b) => b,
                Err(Stop) => break Ok(()),
            };
            if let Some(at) = next_compaction {
                if Instant::now() >= at {
                    self.compact();
                    next_compaction = cfg.pos_file_compaction_interval.map(|d| Instant::now() + d);
                }
            }
            if cfg.exit_on_eof && self.started && self.all_read() {
                let _ = self.finish_all();
                break Ok(());
            }
            if Instant::now() >= next_report {
                self.env.report_suppressed(false);
                self.publish_files();
                next_report = Instant::now() + REPORT_INTERVAL;
            }
            if !busy && self.env.sleep(cfg.stat_interval).is_err() {
                break Ok(());
            }
        };
        // Events a joining parser still holds are emitted while the outputs are still running.
        if !cfg.exit_on_eof {
            let _ = self.flush_parsers();
        }
        self.env.report_suppressed(true);
        result
    }

    /// A snapshot of the followed files for monitoring (never on the read path: once per report interval).
    fn publish_files(&self) {
        let files = self
            .files
            .values()
            .filter_map(|t| {
                let h = t.cur.as_ref()?;
                let size = h.size().unwrap_or(h.committed);
                Some(WatchedFile { path: t.stream.path.clone(), position: h.committed, inode: h.ino, size })
            })
            .collect();
        *self.env.stats.files.lock() = files;
    }

    /// True when every file has been read to its end (exit_on_eof).
    fn all_read(&self) -> bool {
        self.files.values().all(|t| t.rotated.is_empty() && t.cur.as_ref().is_none_or(|h| h.at_eof))
    }

    fn finish_all(&mut self) -> Result<(), Stop> {
        let env = &self.env;
        for t in self.files.values_mut() {
            if let Some(h) = t.cur.as_mut() {
                let mut c = Commit { pos: self.pos.as_mut().zip(t.slot) };
                finish_pending(env, &mut t.stream, h, &mut c)?;
            }
            if t.stream.flush_parser(env)? {
                if let Some(h) = t.cur.as_mut() {
                    h.hold_start = None;
                    Commit { pos: self.pos.as_mut().zip(t.slot) }.commit(h);
                }
            }
        }
        Ok(())
    }

    fn flush_parsers(&mut self) -> Result<(), Stop> {
        for t in self.files.values_mut() {
            if t.stream.flush_parser(&self.env)? {
                if let Some(h) = t.cur.as_mut() {
                    h.hold_start = None;
                    Commit { pos: self.pos.as_mut().zip(t.slot) }.commit(h);
                }
            }
        }
        Ok(())
    }

    fn compact(&mut self) {
        let Some(pf) = self.pos.as_mut() else { return };
        match pf.compact() {
            Ok(remap) => {
                for t in self.files.values_mut() {
                    t.slot = t.slot.and_then(|s| remap.get(&s).copied());
                }
            }
            Err(e) => tracing::warn!(error = %e, "tail: pos_file compaction failed"),
        }
    }
}
