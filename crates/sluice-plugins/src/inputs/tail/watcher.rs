//! The tail loop: one blocking thread per `<source>` polls its files (a `stat` every `stat_interval`,
//! the glob every `refresh_interval`), reads new lines in batches of `read_lines_limit`, emits each batch
//! and only then records the new position. A refused batch (buffer full) is read again later: the
//! position never moves past lines the next stage has not accepted.
use super::config::{Encoding, TailConfig};
use super::pos_file::{PosFile, PosKey, Slot};
use super::reader::{Handle, Next};
use super::TailStats;
use sluice_core::event::{Event, EventTime, Events, Map, Str, Value};
use sluice_core::metrics::WatchedFile;
use sluice_core::plugin::{
    BuildCtx, EmitError, Emitter, ParseError, Parsed, Parser, PluginError, DEFAULT_MAX_JOINED_SIZE,
};
use sluice_core::util::RateLimiter;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Batches read from one file before the others get their turn.
const MAX_BATCHES_PER_TURN: usize = 16;
/// Bytes read from one file before the others get their turn (a long line must not hold the thread).
const MAX_BYTES_PER_TURN: usize = 8 * 1024 * 1024;
/// Like Ruby's Dir.glob: `*` does not match a leading dot.
const GLOB_OPTIONS: glob::MatchOptions =
    glob::MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: true };
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
    fn warn_key(&self, key: &str) -> Option<u64> {
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
    fn try_emit(&self, tag: &str, events: Events) -> Result<bool, Stop> {
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
    fn emit_until_accepted(&self, tag: &str, events: Events) -> Result<(), Stop> {
        loop {
            if self.try_emit(tag, events.clone())? {
                return Ok(());
            }
        }
    }
}

/// Per-file parsing state.
pub struct Stream {
    pub path: String,
    tag: String,
    path_value: Value,
    parser: Box<dyn Parser>,
    joining: bool,
    held: bool,
    last_line_at: Instant,
}

impl Stream {
    fn new(cfg: &TailConfig, path: &str, proto: &dyn Parser) -> Stream {
        let mut parser = proto.new_instance();
        parser.set_max_joined_size(cfg.max_line_size.unwrap_or(DEFAULT_MAX_JOINED_SIZE));
        Stream {
            path: path.to_string(),
            tag: cfg.tag_for(path),
            path_value: Value::Str(Str::from(path)),
            joining: parser.is_joining(),
            parser,
            held: false,
            last_line_at: Instant::now(),
        }
    }

    fn push(&self, env: &Env, p: Parsed, now: EventTime, out: &mut Events) {
        let mut record = p.record;
        if let Some(k) = &env.cfg.path_key {
            if !record.contains_key(k) {
                record.insert(k.as_str(), self.path_value.clone());
            }
        }
        out.push(Event::new(p.time.unwrap_or(now), record));
    }

    /// Parse one line. Returns what happened to it, for position tracking with joining parsers.
    fn line(&mut self, env: &Env, bytes: &[u8], now: EventTime, out: &mut Events) -> LineOutcome {
        let (result, text) = match env.cfg.encoding {
            Encoding::Charset(charset) => {
                let (text, had_errors) = charset.decode_without_bom_handling(bytes);
                if had_errors {
                    self.invalid_line(env, bytes.len(), charset.name());
                }
                (self.parser.parse(&text), Some(text))
            }
            Encoding::Utf8 | Encoding::Binary => match std::str::from_utf8(bytes) {
                Ok(s) => (self.parser.parse(s), Some(Cow::Borrowed(s))),
                // A part of a joined record may end inside a character: the parser joins the bytes and
                // decodes the whole record once.
                Err(_) if self.joining => (self.parser.parse_bytes(bytes), None),
                Err(_) => {
                    self.invalid_line(env, bytes.len(), "UTF-8");
                    let text = String::from_utf8_lossy(bytes);
                    (self.parser.parse(&text), Some(text))
                }
            },
        };
        let text = || text.clone().unwrap_or_else(|| String::from_utf8_lossy(bytes));
        match result {
            Ok(Some(p)) => {
                self.push(env, p, now, out);
                while let Some(more) = self.parser.take_extra() {
                    match more {
                        Ok(p) => self.push(env, p, now, out),
                        Err(e) => self.unmatched(env, &text(), bytes.len(), e, now, out),
                    }
                }
                LineOutcome::Parsed
            }
            Ok(None) => {
                self.held = true;
                LineOutcome::Held
            }
            Err(ParseError::TooLong { limit }) => {
                // The rest of the record is still to come (and consumed by the parser): like a held line.
                self.held = true;
                env.stats.records_too_long.fetch_add(1, Relaxed);
                if let Some(suppressed) = env.warn_key(&format!("joined:{}", self.path)) {
                    tracing::warn!(path = %self.path, limit, suppressed,
                        "tail: joined record longer than max_line_size; dropped");
                }
                LineOutcome::Held
            }
            Err(e) => {
                self.unmatched(env, &text(), bytes.len(), e, now, out);
                LineOutcome::Unmatched
            }
        }
    }

    fn unmatched(&self, env: &Env, text: &str, len: usize, e: ParseError, now: EventTime, out: &mut Events) {
        env.stats.unmatched_lines.fetch_add(1, Relaxed);
        if env.cfg.emit_unmatched_lines {
            let mut record = Map::with_capacity(2);
            record.insert("unmatched_line", Value::Str(Str::from(text)));
            self.push(env, Parsed { time: None, record }, now, out);
        } else if let Some(suppressed) = {
            env.stats.unparsed_dropped.fetch_add(1, Relaxed);
            env.warn_key(&format!("unmatched:{}", self.path))
        } {
            let reason = match e {
                ParseError::NotMatched(_) => "pattern not matched",
                ParseError::Time { .. } => "invalid time",
                ParseError::TooLong { .. } => "record too long",
            };
            tracing::warn!(path = %self.path, bytes = len, suppressed, reason,
                "tail: line not parsed; dropped (set emit_unmatched_lines true to keep it)");
        }
    }

    fn invalid_line(&self, env: &Env, len: usize, charset: &str) {
        env.stats.invalid_utf8_lines.fetch_add(1, Relaxed);
        if let Some(suppressed) = env.warn_key(&format!("utf8:{}", self.path)) {
            tracing::warn!(path = %self.path, bytes = len, suppressed,
                "tail: line is not valid {charset}; invalid bytes replaced with U+FFFD");
        }
    }

    /// Emit what a joining parser holds. True (for a joining parser) when it now holds nothing, so the
    /// caller may commit the position of every line read, even when it held nothing to begin with (a
    /// CRI `F` line leaves nothing held; without this a graceful stop re-read it after the restart).
    fn flush_parser(&mut self, env: &Env) -> Result<bool, Stop> {
        if !self.held {
            return Ok(self.joining);
        }
        self.held = false;
        if let Some(p) = self.parser.flush() {
            let mut ev = Vec::with_capacity(1);
            self.push(env, p, EventTime::now(), &mut ev);
            while let Some(more) = self.parser.take_extra() {
                if let Ok(p) = more {
                    self.push(env, p, EventTime::now(), &mut ev);
                }
            }
            env.emit_until_accepted(&self.tag, ev)?;
        }
        Ok(true)
    }
}

pub enum LineOutcome {
    Parsed,
    Held,
    Unmatched,
}

/// Where a handle's positions are recorded.
struct Commit<'a> {
    pos: Option<(&'a mut PosFile, Slot)>,
}

impl Commit<'_> {
    fn commit(&mut self, h: &mut Handle) {
        // Lines a joining parser still holds are not covered: after a crash they are read again.
        let off = h.consumed().min(h.hold_start.unwrap_or(u64::MAX));
        h.committed = off;
        if let Some((pf, slot)) = self.pos.as_mut() {
            if let Err(e) = pf.update(*slot, off, h.ino) {
                tracing::warn!(error = %e, "tail: cannot update pos_file");
            }
        }
    }
}

pub enum ReadOutcome {
    /// Read to the end (or to the byte limit).
    Idle,
    /// Stopped after its turn; more is waiting.
    More,
    /// The next stage refused a batch; it will be read again.
    Refused,
}

/// Emit `events` and commit the position; on refusal, rewind (or retry for joining parsers).
fn flush_batch(env: &Env, s: &mut Stream, h: &mut Handle, events: &mut Events, c: &mut Commit) -> Result<bool, Stop> {
    if events.is_empty() {
        c.commit(h);
        return Ok(true);
    }
    if s.joining {
        // The parser's state cannot be rewound: keep the batch until it is taken.
        env.emit_until_accepted(&s.tag, std::mem::take(events))?;
        c.commit(h);
        return Ok(true);
    }
    if env.try_emit(&s.tag, std::mem::take(events))? {
        c.commit(h);
        Ok(true)
    } else {
        let at = h.committed;
        if let Err(e) = h.rewind(at) {
            tracing::warn!(path = %s.path, error = %e, "tail: cannot seek back after a refused batch");
        }
        Ok(false)
    }
}

fn read_handle(env: &Env, s: &mut Stream, h: &mut Handle, c: &mut Commit) -> Result<ReadOutcome, Stop> {
    let cfg = &env.cfg;
    let mut events: Events = Vec::new();
    let mut lines = 0usize;
    let mut batches = 0usize;
    let mut now = EventTime::now();
    let mut any = false;
    let mut bytes_read = 0usize;
    loop {
        match h.next_line(cfg.max_line_size) {
            Next::Line(a, b) => {
                any = true;
                // Split borrows: the line lives in the handle's buffer.
                let bytes: &[u8] = h.bytes(a, b);
                let outcome = s.line(env, bytes, now, &mut events);
                if s.joining {
                    // Where the event the parser is assembling starts (conservatively: after a parsed
                    // event, a multiline parser holds the line that ended it).
                    let off = h.offset_of(a);
                    match outcome {
                        LineOutcome::Parsed => h.hold_start = Some(off),
                        LineOutcome::Held => {
                            h.hold_start.get_or_insert(off);
                        }
                        LineOutcome::Unmatched => {}
                    }
                }
                lines += 1;
                if lines >= cfg.read_lines_limit {
                    if !flush_batch(env, s, h, &mut events, c)? {
                        return Ok(ReadOutcome::Refused);
                    }
                    lines = 0;
                    batches += 1;
                    now = EventTime::now();
                    if batches >= MAX_BATCHES_PER_TURN {
                        s.last_line_at = Instant::now();
                        return Ok(ReadOutcome::More);
                    }
                }
            }
            Next::Skipped => {
                env.stats.lines_too_long.fetch_add(1, Relaxed);
                if let Some(suppressed) = env.warn_key(&format!("long:{}", s.path)) {
                    tracing::warn!(path = %s.path, max_line_size = cfg.max_line_size.unwrap_or(0), suppressed,
                        "tail: line longer than max_line_size skipped");
                }
            }
            Next::Empty => {
                if h.throttled(cfg.read_bytes_limit_per_second) {
                    break;
                }
                if bytes_read >= MAX_BYTES_PER_TURN {
                    if !flush_batch(env, s, h, &mut events, c)? {
                        return Ok(ReadOutcome::Refused);
                    }
                    s.last_line_at = Instant::now();
                    return Ok(ReadOutcome::More);
                }
                match h.fill(cfg.read_bytes_limit_per_second) {
                    Ok(0) => break,
                    Ok(n) => bytes_read += n,
                    Err(e) => {
                        if let Some(suppressed) = env.warn_key(&format!("read:{}", s.path)) {
                            tracing::warn!(path = %s.path, error = %e, suppressed, "tail: read failed");
                        }
                        break;
                    }
                }
            }
        }
    }
    if any {
        s.last_line_at = Instant::now();
    }
    if !flush_batch(env, s, h, &mut events, c)? {
        return Ok(ReadOutcome::Refused);
    }
    Ok(ReadOutcome::Idle)
}

/// Emit an incomplete last line as a line (end of a rotated file, or exit_on_eof).
fn finish_pending(env: &Env, s: &mut Stream, h: &mut Handle, c: &mut Commit) -> Result<(), Stop> {
    if let Some((a, b)) = h.take_pending() {
        let mut events = Vec::new();
        let bytes = h.bytes(a, b).to_vec();
        s.line(env, &bytes, EventTime::now(), &mut events);
        if !events.is_empty() {
            env.emit_until_accepted(&s.tag, events)?;
        }
        c.commit(h);
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum WKey {
    Path(String),
    Ino(u64, u64),
}

struct Tailed {
    stream: Stream,
    slot: Option<Slot>,
    cur: Option<Handle>,
    /// Rotated-away files still read until their deadline (`rotate_wait`).
    rotated: Vec<(Handle, Instant)>,
    next_open_try: Instant,
    perm_warned: bool,
    /// follow_inodes: since when no matched path points to this inode.
    gone_since: Option<Instant>,
    /// Path mode: no longer matched by the globs (excluded, not modified recently, removed): not reopened.
    detached: bool,
    /// Path mode: the followed file left its path; a file that appears there next is the rotated-in one.
    renamed_away: bool,
}

pub struct Worker {
    env: Env,
    proto: Box<dyn Parser>,
    pos: Option<PosFile>,
    files: BTreeMap<WKey, Tailed>,
    started: bool,
    refresh_requested: bool,
    last_refresh: Instant,
    /// Matched paths that are not regular files, warned about once.
    special_warned: HashSet<String>,
}

fn has_glob(p: &str) -> bool {
    p.contains(['*', '?', '['])
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

    /// The files the `path` patterns match now.
    fn expand(&mut self) -> Vec<String> {
        let cfg = &self.env.cfg;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let now = SystemTime::now();
        for pat in &cfg.paths {
            let candidates: Vec<String> = if has_glob(pat) {
                match glob::glob_with(pat, GLOB_OPTIONS) {
                    Ok(paths) => paths.filter_map(Result::ok).map(|p| p.to_string_lossy().into_owned()).collect(),
                    Err(_) => Vec::new(),
                }
            } else {
                vec![pat.clone()]
            };
            for p in candidates {
                if cfg.excluded(&p) || seen.contains(&p) {
                    continue;
                }
                match std::fs::metadata(&p) {
                    Ok(m) => {
                        if m.is_dir() {
                            continue;
                        }
                        if !m.is_file() {
                            // A FIFO would block the reader, a device (a symlink to /dev/zero) never ends.
                            if self.special_warned.insert(p.clone()) {
                                self.env.stats.special_files_skipped.fetch_add(1, Relaxed);
                                tracing::warn!(path = %p, "tail: not a regular file (FIFO, socket or device); not followed");
                            }
                            continue;
                        }
                        if let Some(limit) = cfg.limit_recently_modified {
                            let old = m
                                .modified()
                                .ok()
                                .and_then(|t| now.duration_since(t).ok())
                                .is_some_and(|age| age > limit);
                            if old {
                                continue;
                            }
                        }
                    }
                    Err(_) if has_glob(pat) => continue,
                    // A literal path that does not exist yet is watched for its creation.
                    Err(_) => {}
                }
                seen.insert(p.clone());
                out.push(p);
            }
        }
        out
    }

    fn refresh(&mut self) {
        self.last_refresh = Instant::now();
        self.refresh_requested = false;
        let startup = !self.started;
        self.started = true;
        let matched = self.expand();
        if self.env.cfg.follow_inodes {
            self.refresh_inodes(&matched, startup);
            return;
        }
        let set: HashSet<&String> = matched.iter().collect();
        for p in &matched {
            let key = WKey::Path(p.clone());
            if !self.files.contains_key(&key) {
                let mut t = self.new_tailed(p);
                self.open_path(&mut t, startup);
                self.files.insert(key, t);
            } else if self.files.get(&key).is_some_and(|t| t.detached) {
                // Matched again: continue where it was (its position is still in memory and in the pos_file).
                let Some(mut t) = self.files.remove(&key) else {
                    continue;
                };
                t.detached = false;
                if t.cur.is_none() {
                    let ino = std::fs::metadata(p).map(|m| m.ino()).ok();
                    match t.rotated.iter().position(|(h, _)| Some(h.ino) == ino) {
                        Some(i) => t.cur = Some(t.rotated.remove(i).0),
                        None => self.open_path(&mut t, false),
                    }
                }
                self.files.insert(key, t);
            }
        }
        let gone: Vec<WKey> = self
            .files
            .iter()
            .filter(|(k, _)| matches!(k, WKey::Path(p) if !set.contains(p)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            let Some(t) = self.files.get_mut(&k) else {
                continue;
            };
            t.detached = true;
            if let Some(h) = t.cur.take() {
                // No longer matched (deleted, excluded, or not modified recently): read it to its end.
                let deadline = Instant::now() + self.env.cfg.rotate_wait;
                t.rotated.push((h, deadline));
            }
            if t.rotated.is_empty() {
                let exists = Path::new(&t.stream.path).exists();
                if let (Some(pf), Some(slot), false) = (self.pos.as_mut(), t.slot, exists) {
                    let _ = pf.unwatch(slot);
                }
                let mut t = self.files.remove(&k);
                if let Some(t) = t.as_mut() {
                    let _ = t.stream.flush_parser(&self.env);
                }
            }
        }
    }

    fn refresh_inodes(&mut self, matched: &[String], startup: bool) {
        let mut live = HashSet::new();
        for p in matched {
            let Ok(m) = std::fs::metadata(p) else {
                continue;
            };
            let key = WKey::Ino(m.dev(), m.ino());
            live.insert(key.clone());
            if let Some(t) = self.files.get_mut(&key) {
                t.gone_since = None;
                continue;
            }
            let mut t = self.new_tailed(p);
            self.open_path(&mut t, startup);
            if let Some(h) = &t.cur {
                let key = WKey::Ino(h.dev, h.ino);
                live.insert(key.clone());
                self.files.entry(key).or_insert(t);
            }
        }
        let now = Instant::now();
        for (k, t) in self.files.iter_mut() {
            if !live.contains(k) && t.gone_since.is_none() {
                t.gone_since = Some(now);
            }
        }
    }

    /// Open the file of `t` at the position its pos_file entry, or the startup rule, gives.
    /// A newly matched file, not yet opened.
    fn new_tailed(&self, path: &str) -> Tailed {
        Tailed {
            stream: Stream::new(&self.env.cfg, path, self.proto.as_ref()),
            slot: None,
            cur: None,
            rotated: Vec::new(),
            next_open_try: Instant::now(),
            perm_warned: false,
            gone_since: None,
            detached: false,
            renamed_away: false,
        }
    }

    fn open_path(&mut self, t: &mut Tailed, startup: bool) {
        let cfg = self.env.cfg.clone();
        let path = t.stream.path.clone();
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                self.open_failed(t, &e);
                return;
            }
        };
        let key = if cfg.follow_inodes { PosKey::Ino(meta.ino()) } else { PosKey::Path(path.clone()) };
        let want = match self.pos.as_ref().and_then(|pf| pf.lookup(&key)) {
            Some((pos, ino)) if ino == meta.ino() => Some(pos),
            // The file was replaced while sluice was not running: read the new one from its start.
            Some(_) => Some(0),
            None if startup && !cfg.read_from_head => None,
            None => Some(0),
        };
        match Handle::open(Path::new(&path), want) {
            Ok((mut h, _size)) => {
                h.committed = h.consumed();
                if let Some(pf) = self.pos.as_mut() {
                    match pf.slot(&path, h.committed, h.ino) {
                        Ok(s) => t.slot = Some(s),
                        Err(e) => tracing::warn!(error = %e, "tail: cannot write pos_file"),
                    }
                }
                tracing::info!(path = %path, pos = h.committed, "tail: following file");
                self.env.stats.files_opened.fetch_add(1, Relaxed);
                t.perm_warned = false;
                t.cur = Some(h);
            }
            Err(e) => self.open_failed(t, &e),
        }
    }

    fn open_failed(&self, t: &mut Tailed, e: &io::Error) {
        let cfg = &self.env.cfg;
        match e.kind() {
            io::ErrorKind::NotFound => {
                t.next_open_try = Instant::now() + cfg.stat_interval;
            }
            io::ErrorKind::PermissionDenied => {
                self.env.stats.permission_errors.fetch_add(1, Relaxed);
                t.next_open_try = Instant::now() + cfg.refresh_interval.max(Duration::from_secs(1));
                if !(cfg.ignore_repeated_permission_error && t.perm_warned) {
                    tracing::warn!(path = %t.stream.path, "tail: permission denied; will retry at the next refresh");
                }
                t.perm_warned = true;
            }
            _ => {
                t.next_open_try = Instant::now() + cfg.refresh_interval.max(Duration::from_secs(1));
                if let Some(suppressed) = self.env.warn_key(&format!("open:{}", t.stream.path)) {
                    tracing::warn!(path = %t.stream.path, error = %e, suppressed, "tail: cannot open file");
                }
            }
        }
    }

    /// One pass over every file. True when some file has more to read right away.
    fn tick(&mut self) -> Result<bool, Stop> {
        let keys: Vec<WKey> = self.files.keys().cloned().collect();
        let mut busy = false;
        let mut remove = Vec::new();
        for k in keys {
            let Some(mut t) = self.files.remove(&k) else {
                continue;
            };
            let r = if self.env.cfg.follow_inodes { self.tick_inode(&mut t) } else { self.tick_path(&mut t) };
            let keep = match r {
                Ok((b, keep)) => {
                    busy |= b;
                    keep
                }
                Err(Stop) => {
                    self.files.insert(k, t);
                    return Err(Stop);
                }
            };
            if keep {
                self.files.insert(k, t);
            } else {
                remove.push(t);
            }
            if self.env.ctx.shutdown.is_triggered() {
                return Err(Stop);
            }
        }
        for mut t in remove {
            if t.cur.is_some() {
                self.env.stats.files_closed.fetch_add(1, Relaxed);
            }
            if let (Some(pf), Some(slot)) = (self.pos.as_mut(), t.slot) {
                let _ = pf.unwatch(slot);
            }
            t.stream.flush_parser(&self.env)?;
        }
        Ok(busy)
    }

    fn read_cur(&mut self, t: &mut Tailed) -> Result<bool, Stop> {
        let Some(h) = t.cur.as_mut() else {
            return Ok(false);
        };
        if !h.is_open() {
            match h.reopen(Path::new(&t.stream.path)) {
                Ok(true) => {}
                _ => return Ok(false),
            }
        }
        let mut c = Commit { pos: self.pos.as_mut().zip(t.slot) };
        let out = read_handle(&self.env, &mut t.stream, h, &mut c)?;
        if self.env.cfg.open_on_every_update && matches!(out, ReadOutcome::Idle) {
            h.close();
        }
        Ok(matches!(out, ReadOutcome::More))
    }

    /// multiline_flush_interval: emit what the parser holds when the file has been quiet that long.
    fn after_read(&mut self, t: &mut Tailed) -> Result<(), Stop> {
        if let Some(iv) = self.env.cfg.multiline_flush_interval {
            if t.stream.held && t.stream.last_line_at.elapsed() >= iv && t.stream.flush_parser(&self.env)? {
                if let Some(h) = t.cur.as_mut() {
                    h.hold_start = None;
                    Commit { pos: self.pos.as_mut().zip(t.slot) }.commit(h);
                }
            }
        }
        Ok(())
    }

    fn drain_rotated(&mut self, t: &mut Tailed) -> Result<bool, Stop> {
        let mut busy = false;
        let now = Instant::now();
        let mut i = 0;
        while i < t.rotated.len() {
            let (h, deadline) = &mut t.rotated[i];
            let mut c = Commit { pos: None };
            let out = if h.is_open() { read_handle(&self.env, &mut t.stream, h, &mut c)? } else { ReadOutcome::Idle };
            busy |= matches!(out, ReadOutcome::More);
            let expired = now >= *deadline || (self.env.cfg.exit_on_eof && h.at_eof);
            if expired && matches!(out, ReadOutcome::Idle) {
                let (mut h, _) = t.rotated.remove(i);
                finish_pending(&self.env, &mut t.stream, &mut h, &mut c)?;
                tracing::info!(path = %t.stream.path, "tail: done with rotated file");
            } else {
                i += 1;
            }
        }
        Ok(busy)
    }

    /// Path mode: the file at the path may be replaced (rotation), truncated or removed.
    fn tick_path(&mut self, t: &mut Tailed) -> Result<(bool, bool), Stop> {
        let mut busy = self.drain_rotated(t)?;
        let mut unchanged = false;
        let cfg = self.env.cfg.clone();
        let path = t.stream.path.clone();
        match std::fs::metadata(&path) {
            Ok(m) => {
                let replaced = t.cur.as_ref().map(|h| h.ino != m.ino() || h.dev != m.dev());
                match replaced {
                    Some(true) => {
                        // Rotation: finish what the old file has now, keep it for rotate_wait, start the new one.
                        self.read_cur(t)?;
                        if let Some(h) = t.cur.take() {
                            self.env.stats.rotations.fetch_add(1, Relaxed);
                            tracing::info!(path = %path, "tail: file rotated; reading the new file from its start");
                            t.rotated.push((h, Instant::now() + cfg.rotate_wait));
                        }
                        self.open_new(t)?;
                    }
                    Some(false) => {
                        let h = t.cur.as_mut().expect("checked");
                        if h.truncated(m.len()) {
                            self.env.stats.truncations.fetch_add(1, Relaxed);
                            tracing::info!(path = %path, "tail: file truncated; reading it again from its start");
                            let _ = h.rewind(0);
                            let mut c = Commit { pos: self.pos.as_mut().zip(t.slot) };
                            c.commit(h);
                        } else {
                            // Nothing new since the last read: spare the read (and the open).
                            unchanged = h.at_eof && m.len() == h.read_offset();
                        }
                    }
                    None => {
                        if !t.detached && Instant::now() >= t.next_open_try {
                            self.open_new(t)?;
                            if t.cur.is_some() {
                                // A rename seen before the new file was created is a rotation all the same.
                                if std::mem::take(&mut t.renamed_away) {
                                    self.env.stats.rotations.fetch_add(1, Relaxed);
                                    tracing::info!(path = %path, "tail: file rotated; reading the new file from its start");
                                } else {
                                    tracing::info!(path = %path, pos = 0, "tail: following file");
                                }
                            }
                        }
                    }
                }
            }
            Err(e) => {
                if let Some(h) = t.cur.take() {
                    if e.kind() == io::ErrorKind::NotFound {
                        let mut h = h;
                        let mut c = Commit { pos: self.pos.as_mut().zip(t.slot) };
                        read_handle(&self.env, &mut t.stream, &mut h, &mut c)?;
                        tracing::info!(path = %path, "tail: file removed or renamed; reading it for rotate_wait");
                        t.rotated.push((h, Instant::now() + cfg.rotate_wait));
                        t.renamed_away = true;
                    } else {
                        t.cur = Some(h);
                    }
                }
            }
        }
        if !unchanged {
            busy |= self.read_cur(t)?;
        }
        self.after_read(t)?;
        Ok((busy, true))
    }

    /// A file appeared at the path after start (or after a rotation): read it from its start.
    fn open_new(&mut self, t: &mut Tailed) -> Result<(), Stop> {
        let path = t.stream.path.clone();
        match Handle::open(Path::new(&path), Some(0)) {
            Ok((mut h, _)) => {
                h.committed = 0;
                if let Some(pf) = self.pos.as_mut() {
                    match pf.slot(&path, 0, h.ino) {
                        Ok(s) => t.slot = Some(s),
                        Err(e) => tracing::warn!(error = %e, "tail: cannot write pos_file"),
                    }
                }
                self.env.stats.files_opened.fetch_add(1, Relaxed);
                t.perm_warned = false;
                t.cur = Some(h);
            }
            Err(e) => self.open_failed(t, &e),
        }
        Ok(())
    }

    /// follow_inodes: a watcher is one inode, whatever its name is now.
    fn tick_inode(&mut self, t: &mut Tailed) -> Result<(bool, bool), Stop> {
        if let Some(h) = t.cur.as_mut() {
            match std::fs::metadata(&t.stream.path) {
                Ok(m) if m.ino() == h.ino && m.dev() == h.dev => {
                    if h.size().is_some_and(|s| h.truncated(s)) {
                        self.env.stats.truncations.fetch_add(1, Relaxed);
                        let _ = h.rewind(0);
                        let mut c = Commit { pos: self.pos.as_mut().zip(t.slot) };
                        c.commit(h);
                    }
                }
                // Renamed or replaced: find where it went at the next refresh.
                _ => self.refresh_requested = true,
            }
        }
        let busy = self.read_cur(t)?;
        self.after_read(t)?;
        if let Some(since) = t.gone_since {
            let done = since.elapsed() >= self.env.cfg.rotate_wait
                || (self.env.cfg.exit_on_eof && t.cur.as_ref().is_none_or(|h| h.at_eof));
            if done && !busy {
                if let Some(h) = t.cur.as_mut() {
                    let mut c = Commit { pos: self.pos.as_mut().zip(t.slot) };
                    finish_pending(&self.env, &mut t.stream, h, &mut c)?;
                }
                return Ok((false, false));
            }
        }
        Ok((busy, true))
    }
}
