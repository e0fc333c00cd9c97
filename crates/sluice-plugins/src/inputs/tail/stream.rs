//! One file's stream: lines read from a [`Handle`] are parsed (joining parsers hold partial records), emitted
//! in batches of `read_lines_limit`, and only then is the position committed. A refused batch is rewound
//! and read again later.
use super::config::{Encoding, TailConfig};
use super::pos_file::{PosFile, Slot};
use super::reader::{Handle, Next};
use super::watcher::{Env, Stop};
use sluice_core::event::{Event, EventTime, Events, Map, Str, Value};
use sluice_core::plugin::{ParseError, Parsed, Parser, DEFAULT_MAX_JOINED_SIZE};
use std::borrow::Cow;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

/// Batches read from one file before the others get their turn.
const MAX_BATCHES_PER_TURN: usize = 16;
/// Bytes read from one file before the others get their turn (a long line must not hold the thread).
const MAX_BYTES_PER_TURN: usize = 8 * 1024 * 1024;

/// Per-file parsing state.
pub struct Stream {
    pub path: String,
    tag: String,
    path_value: Value,
    parser: Box<dyn Parser>,
    joining: bool,
    pub(super) held: bool,
    pub(super) last_line_at: Instant,
}

impl Stream {
    pub(super) fn new(cfg: &TailConfig, path: &str, proto: &dyn Parser) -> Stream {
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
    pub(super) fn flush_parser(&mut self, env: &Env) -> Result<bool, Stop> {
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
pub(super) struct Commit<'a> {
    pub(super) pos: Option<(&'a mut PosFile, Slot)>,
}

impl Commit<'_> {
    pub(super) fn commit(&mut self, h: &mut Handle) {
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

pub(super) fn read_handle(env: &Env, s: &mut Stream, h: &mut Handle, c: &mut Commit) -> Result<ReadOutcome, Stop> {
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
pub(super) fn finish_pending(env: &Env, s: &mut Stream, h: &mut Handle, c: &mut Commit) -> Result<(), Stop> {
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
