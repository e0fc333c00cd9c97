//! `concat` (fluent-plugin-concat): joins the `key` field of consecutive events of one stream into one
//! event, by line count (`n_lines`), by regexps (`multiline_start_regexp`, `multiline_end_regexp`,
//! `continuous_line_regexp`), by a partial flag (`partial_key`/`partial_value`), by Docker's partial
//! metadata (`use_partial_metadata`) or by the CRI log tag (`use_partial_cri_logtag`).
//!
//! Lines held back are never lost: a stream idle for `flush_interval` seconds is flushed by a timer, and
//! everything still held is flushed at shutdown. As in the plugin, those flushes go to `timeout_label`
//! when set, else to `@ERROR` (a "timeout error" event); when neither label exists they continue through
//! the rest of the pipeline, where Fluentd would only write them into its own log.
use parking_lot::Mutex;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Event, EventTime, Events, Map, Value};
use sluice_core::plugin::{BuildCtx, ErrorEvents, Filter};
use sluice_core::router::RouterHandle;
use sluice_core::ruby::regexp::{split_literal, RubyRegex};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the timer looks for idle streams (the plugin's timer runs every second).
const TIMER_PERIOD: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Line(usize),
    Partial,
    PartialMetadata,
    PartialCri,
    Regexp,
}

/// Docker's partial-message field names for one `partial_metadata_format`.
struct MetaFields {
    message: &'static str,
    id: &'static str,
    ordinal: &'static str,
    last: &'static str,
    /// The field whose presence marks a record as partial.
    indicator: &'static str,
}

const DOCKER_FLUENTD: MetaFields = MetaFields {
    message: "partial_message",
    id: "partial_id",
    ordinal: "partial_ordinal",
    last: "partial_last",
    indicator: "partial_message",
};
// The journald driver leaves CONTAINER_PARTIAL_MESSAGE off the last part, so the id marks a partial.
const DOCKER_JOURNALD: MetaFields = MetaFields {
    message: "CONTAINER_PARTIAL_MESSAGE",
    id: "CONTAINER_PARTIAL_ID",
    ordinal: "CONTAINER_PARTIAL_ORDINAL",
    last: "CONTAINER_PARTIAL_LAST",
    indicator: "CONTAINER_PARTIAL_ID",
};
const DOCKER_JOURNALD_LOWER: MetaFields = MetaFields {
    message: "container_partial_message",
    id: "container_partial_id",
    ordinal: "container_partial_ordinal",
    last: "container_partial_last",
    indicator: "container_partial_id",
};

struct Config {
    key: String,
    separator: String,
    mode: Mode,
    start: Option<RubyRegex>,
    end: Option<RubyRegex>,
    continuous: Option<RubyRegex>,
    stream_identity_key: Option<String>,
    flush_interval: Option<Duration>,
    timeout_label: Option<String>,
    use_first_timestamp: bool,
    partial_key: Option<String>,
    partial_value: Option<String>,
    keep_partial_key: bool,
    meta: &'static MetaFields,
    keep_partial_metadata: bool,
    cri_logtag_key: String,
    cri_stream_key: String,
}

/// One buffered event: (tag, time, record).
type Held = (String, EventTime, Map);

/// The streams one batch changed, each as it was before the batch (None: it did not exist).
type Undo = Vec<(String, Option<Stream>)>;

#[derive(Default, Clone)]
struct Stream {
    lines: Vec<Held>,
    /// When this stream last got an event (the plugin's timeout map).
    touched: Option<Instant>,
}

struct Inner {
    cfg: Config,
    router: RouterHandle,
    /// The label this filter lives in: timeout errors are reported from it.
    label: String,
    streams: Mutex<HashMap<String, Stream>>,
    /// Per tag, the streams the last batch changed, as they were before it: put back when that batch is
    /// refused downstream, so its retry finds the state it first found (None: the stream did not exist).
    undo: Mutex<HashMap<String, Undo>>,
    /// Flushed events a full buffer refused; tried again on the next tick, handed to `@ERROR` at shutdown.
    refused: Mutex<Vec<(String, Event)>>,
    finished: std::sync::atomic::AtomicBool,
}

pub struct Concat {
    inner: Arc<Inner>,
    timer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

fn regexp(s: &Element, key: &str) -> Result<Option<RubyRegex>, ConfigError> {
    let Some(v) = s.opt_str(key) else { return Ok(None) };
    let (src, flags) = split_literal(&v).map_err(|e| s.error_at(key, format!("'{key}': {e}")))?;
    RubyRegex::new(src, flags).map(Some).map_err(|e| s.error_at(key, format!("'{key}': {e}")))
}

pub fn build(s: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Filter>, ConfigError> {
    let key = s.required_str("key")?;
    let separator = s.str_or("separator", "\n");
    let n_lines = s.opt_int("n_lines")?;
    let start = regexp(s, "multiline_start_regexp")?;
    let end = regexp(s, "multiline_end_regexp")?;
    let continuous = regexp(s, "continuous_line_regexp")?;
    let partial_key = s.opt_str("partial_key");
    let partial_value = s.opt_str("partial_value");
    let use_meta = s.bool_or("use_partial_metadata", false)?;
    let mut use_cri = s.bool_or("use_partial_cri_logtag", false)?;
    let format = s.enum_or(
        "partial_metadata_format",
        &["docker-fluentd", "docker-journald", "docker-journald-lowercase", "cri"],
        "docker-fluentd",
    )?;
    // sluice extension: `partial_metadata_format cri` is the CRI log tag mode, with the field names the
    // cri parser gives (`logtag`, `stream`); the plugin has no such format.
    let meta_cri = use_meta && format == "cri";
    let use_meta = use_meta && !meta_cri;
    use_cri |= meta_cri;
    let regexps = start.is_some() || end.is_some();
    if n_lines.is_none() && !regexps && partial_key.is_none() && !use_meta && !use_cri {
        return Err(s
            .error("Either n_lines, multiline_start_regexp, multiline_end_regexp, partial_key, use_partial_metadata or use_partial_cri_logtag is required")
            .with_hint("add e.g. 'multiline_start_regexp /^\\S/'"));
    }
    let exclusive = [
        (n_lines.is_some() && regexps, "n_lines and multiline_start_regexp/multiline_end_regexp are exclusive"),
        (partial_key.is_some() && n_lines.is_some(), "partial_key and n_lines are exclusive"),
        (partial_key.is_some() && regexps, "partial_key and multiline_start_regexp/multiline_end_regexp are exclusive"),
        (partial_key.is_some() && partial_value.is_none(), "partial_value is required when partial_key is specified"),
        (use_meta && n_lines.is_some(), "use_partial_metadata and n_lines are exclusive"),
        (use_meta && regexps, "use_partial_metadata and multiline_start_regexp/multiline_end_regexp are exclusive"),
        (use_meta && partial_key.is_some(), "use_partial_metadata and partial_key are exclusive"),
        (use_cri && n_lines.is_some(), "use_partial_cri_logtag and n_lines are exclusive"),
        (use_cri && regexps, "use_partial_cri_logtag and multiline_start_regexp/multiline_end_regexp are exclusive"),
        (use_cri && partial_key.is_some(), "use_partial_cri_logtag and partial_key are exclusive"),
    ];
    if let Some((_, msg)) = exclusive.iter().find(|(bad, _)| *bad) {
        return Err(s.error(*msg));
    }
    let mode = if let Some(n) = n_lines {
        let n = usize::try_from(n)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| s.error_at("n_lines", "'n_lines' must be at least 1"))?;
        Mode::Line(n)
    } else if partial_key.is_some() {
        Mode::Partial
    } else if use_meta {
        Mode::PartialMetadata
    } else if use_cri {
        Mode::PartialCri
    } else {
        Mode::Regexp
    };
    let cri_logtag_key =
        s.opt_str("partial_cri_logtag_key")
            .unwrap_or_else(|| if meta_cri { "logtag".to_string() } else { String::new() });
    if mode == Mode::PartialCri && cri_logtag_key.is_empty() {
        return Err(s
            .error_at("use_partial_cri_logtag", "use_partial_cri_logtag needs 'partial_cri_logtag_key'")
            .with_hint("name the field holding the CRI tag (P or F), e.g. 'partial_cri_logtag_key logtag'"));
    }
    let flush_interval = s.time_or("flush_interval", 60.0)?;
    let flush_interval = (flush_interval > 0.0)
        .then(|| Duration::try_from_secs_f64(flush_interval))
        .transpose()
        .map_err(|_| s.error_at("flush_interval", "'flush_interval' is out of range"))?;
    let cfg = Config {
        key,
        separator,
        mode,
        start,
        end,
        continuous,
        stream_identity_key: s.opt_str("stream_identity_key"),
        flush_interval,
        timeout_label: s.opt_str("timeout_label").filter(|l| !l.is_empty()),
        use_first_timestamp: s.bool_or("use_first_timestamp", false)?,
        partial_key,
        partial_value,
        keep_partial_key: s.bool_or("keep_partial_key", false)?,
        meta: match format.as_str() {
            "docker-journald" => &DOCKER_JOURNALD,
            "docker-journald-lowercase" => &DOCKER_JOURNALD_LOWER,
            _ => &DOCKER_FLUENTD,
        },
        keep_partial_metadata: s.bool_or("keep_partial_metadata", false)?,
        cri_logtag_key,
        cri_stream_key: s.str_or("partial_cri_stream_key", "stream"),
    };
    Ok(Arc::new(Concat {
        inner: Arc::new(Inner {
            cfg,
            router: ctx.router.clone(),
            label: ctx.label.to_string(),
            streams: Mutex::new(HashMap::new()),
            undo: Mutex::new(HashMap::new()),
            refused: Mutex::new(Vec::new()),
            finished: Default::default(),
        }),
        timer: Mutex::new(None),
    }))
}

/// Fluentd's own log events pass through untouched.
fn is_fluent_log_tag(tag: &str) -> bool {
    tag.strip_prefix("fluent.").is_some_and(|l| matches!(l, "trace" | "debug" | "info" | "warn" | "error" | "fatal"))
}

fn text(v: Option<&Value>) -> std::borrow::Cow<'_, str> {
    match v {
        None | Some(Value::Null) => std::borrow::Cow::Borrowed(""),
        Some(v) => v.match_text(),
    }
}

impl Inner {
    fn stream_identity(&self, tag: &str, record: &Map) -> String {
        let c = &self.cfg;
        let sik = c.stream_identity_key.as_deref().map(|k| text(record.get(k)));
        match (c.mode, sik) {
            (Mode::PartialMetadata, Some(s)) => format!("{tag}:{s}{}", text(record.get(c.meta.id))),
            (Mode::PartialMetadata, None) => format!("{tag}:{}", text(record.get(c.meta.id))),
            (_, Some(s)) => format!("{tag}:{s}"),
            (_, None) => format!("{tag}:default"),
        }
    }

    /// Join the held lines of a stream (sorted by ordinal for Docker partials) into the first record;
    /// `next` becomes the stream's only held line.
    fn flush_stream(&self, st: &mut Stream, next: Option<Held>) -> Option<Held> {
        let mut lines = std::mem::take(&mut st.lines);
        if let Some(n) = next {
            st.lines.push(n);
        }
        if lines.is_empty() {
            return None;
        }
        let c = &self.cfg;
        let mut order: Vec<usize> = (0..lines.len()).collect();
        if c.mode == Mode::PartialMetadata {
            // Ruby's `to_i`: leading digits, else 0.
            order.sort_by_key(|&i| sluice_core::ruby::text::to_i(&text(lines[i].2.get(c.meta.ordinal))));
        }
        let mut joined = String::new();
        for (n, &i) in order.iter().enumerate() {
            if n > 0 {
                joined.push_str(&c.separator);
            }
            if let Some(v) = lines[i].2.get(&c.key) {
                v.append_display(&mut joined);
            }
        }
        let (tag, time, mut first) = lines.swap_remove(0);
        first.insert(c.key.as_str(), Value::from(joined));
        Some((tag, time, first))
    }

    /// The plugin's `process`: events to emit now for one input event (possibly none).
    fn process(
        &self,
        streams: &mut HashMap<String, Stream>,
        id: String,
        tag: &str,
        time: EventTime,
        record: Map,
    ) -> Result<Vec<(EventTime, Map)>, String> {
        let c = &self.cfg;
        let st = streams.entry(id).or_default();
        st.touched = Some(Instant::now());
        let mut out = Vec::new();
        let emit = |held: Option<Held>, out: &mut Vec<(EventTime, Map)>, strip: Option<&str>| {
            if let Some((_, t, mut r)) = held {
                if let Some(k) = strip {
                    r.remove(k);
                }
                out.push((t, r));
            }
        };
        match c.mode {
            Mode::Line(n) => {
                st.lines.push((tag.to_string(), time, record));
                if st.lines.len() >= n {
                    let h = self.flush_stream(st, None);
                    emit(h, &mut out, None);
                }
            }
            Mode::Partial => {
                let last = text(record.get(c.partial_key.as_deref().unwrap_or_default()))
                    != c.partial_value.as_deref().unwrap_or_default();
                st.lines.push((tag.to_string(), time, record));
                if last {
                    let h = self.flush_stream(st, None);
                    emit(h, &mut out, c.partial_key.as_deref());
                }
            }
            Mode::PartialCri => {
                let logtag = match record.get(&c.cri_logtag_key) {
                    Some(Value::Str(s)) => s.to_string(),
                    _ => return Err(format!("no CRI log tag in field {:?}", c.cri_logtag_key)),
                };
                st.lines.push((tag.to_string(), time, record));
                if logtag.split(':').next() == Some("F") {
                    let h = self.flush_stream(st, None);
                    emit(h, &mut out, Some(&c.cri_logtag_key));
                }
            }
            Mode::PartialMetadata => {
                let last = text(record.get(c.meta.last)) == "true";
                st.lines.push((tag.to_string(), time, record));
                if last {
                    let h = self.flush_stream(st, None);
                    emit(h, &mut out, None);
                }
            }
            Mode::Regexp => self.process_regexp(st, tag, time, record, &mut out),
        }
        Ok(out)
    }

    fn process_regexp(
        &self,
        st: &mut Stream,
        tag: &str,
        time: EventTime,
        record: Map,
        out: &mut Vec<(EventTime, Map)>,
    ) {
        let c = &self.cfg;
        let line = text(record.get(&c.key)).into_owned();
        let first = c.start.as_ref().is_some_and(|r| r.is_match(&line));
        let last = c.end.as_ref().is_some_and(|r| r.is_match(&line));
        let push = |h: Option<Held>, out: &mut Vec<(EventTime, Map)>| {
            if let Some((_, t, r)) = h {
                out.push((t, r));
            }
        };
        if first {
            if st.lines.is_empty() {
                st.lines.push((tag.to_string(), time, record));
                if last {
                    push(self.flush_stream(st, None), out);
                }
            } else {
                push(self.flush_stream(st, Some((tag.to_string(), time, record))), out);
                if last {
                    push(self.flush_stream(st, None), out);
                }
            }
        } else if last {
            st.lines.push((tag.to_string(), time, record));
            push(self.flush_stream(st, None), out);
        } else if st.lines.is_empty() {
            if c.start.is_none() {
                st.lines.push((tag.to_string(), time, record));
            } else {
                out.push((time, record));
            }
        } else if c.continuous.as_ref().is_none_or(|r| r.is_match(&line)) {
            st.lines.push((tag.to_string(), time, record));
        } else {
            push(self.flush_stream(st, None), out);
            out.push((time, record));
        }
    }

    /// Merge a flushed event into the event that released it, as the plugin does, and drop the partial
    /// markers.
    fn merged(&self, current: &Map, flushed: Map) -> Map {
        let c = &self.cfg;
        let mut m = current.clone();
        for (k, v) in flushed.iter() {
            m.insert(k.clone(), v.clone());
        }
        match c.mode {
            Mode::Partial if !c.keep_partial_key => {
                if let Some(k) = &c.partial_key {
                    m.remove(k);
                }
            }
            Mode::PartialMetadata if !c.keep_partial_metadata => {
                for k in [c.meta.message, c.meta.id, c.meta.ordinal, c.meta.last] {
                    m.remove(k);
                }
            }
            Mode::PartialCri => {
                if !c.keep_partial_key {
                    m.remove(&c.cri_logtag_key);
                }
                m.remove(&c.cri_stream_key);
            }
            _ => {}
        }
        m
    }

    /// Whether an event takes part in joining at all.
    fn joins(&self, record: &Map) -> bool {
        let c = &self.cfg;
        if !record.contains_key(&c.key) {
            return false;
        }
        match c.mode {
            Mode::Partial => c.partial_key.as_deref().is_some_and(|k| record.contains_key(k)),
            Mode::PartialMetadata => record.contains_key(c.meta.indicator),
            _ => true,
        }
    }

    /// Streams idle for `flush_interval` (all of them when `all`), joined, with the tag to emit them with.
    fn take_flushes(&self, all: bool) -> Vec<(String, Event)> {
        let now = Instant::now();
        let mut streams = self.streams.lock();
        let mut out = Vec::new();
        let mut done = Vec::new();
        for (id, st) in streams.iter_mut() {
            let idle = match (self.cfg.flush_interval, st.touched) {
                (Some(iv), Some(t)) => now.saturating_duration_since(t) >= iv,
                _ => false,
            };
            if !all && !idle {
                continue;
            }
            done.push(id.clone());
            if let Some((tag, time, record)) = self.flush_stream(st, None) {
                // The plugin stamps a timeout flush with the flush time unless use_first_timestamp; the
                // shutdown flush keeps the first line's time.
                let t = if all || self.cfg.use_first_timestamp { time } else { EventTime::now() };
                tracing::info!(stream = %id, at_shutdown = all, "concat: flushing held lines");
                out.push((tag, Event::new(t, record)));
            }
        }
        for id in done {
            streams.remove(&id);
        }
        out
    }

    /// Send flushed events to `timeout_label`, else to `@ERROR`, else (neither exists) on through the rest
    /// of this label's pipeline, so they are never lost. Refused ones are kept for the next try, or at
    /// shutdown handed to `@ERROR`.
    fn deliver(&self, flushed: Vec<(String, Event)>, shutting_down: bool) {
        let mut todo = std::mem::take(&mut *self.refused.lock());
        todo.extend(flushed);
        if todo.is_empty() {
            return;
        }
        let Some(router) = self.router.get() else {
            tracing::error!(records = todo.len(), "concat: flushed lines have nowhere to go (the router is gone)");
            return;
        };
        let label = self.cfg.timeout_label.as_deref().filter(|l| router.has_label(l));
        let to_error = label.is_none()
            && self.label != sluice_core::router::ERROR_LABEL
            && router.has_label(sluice_core::router::ERROR_LABEL);
        let me = self as *const Inner as *const () as usize;
        let mut refused = Vec::new();
        for (tag, ev) in todo {
            if to_error {
                let mut errors = ErrorEvents::default();
                errors.push(ev, "concat: timeout flush");
                router.emit_errors(&self.label, &tag, errors);
                continue;
            }
            let sent = match label {
                Some(l) => router.emit_to_label(l, &tag, vec![ev.clone()]),
                None => router.emit_after_filter(&self.label, &tag, vec![ev.clone()], me),
            };
            if let Err(e) = sent {
                if shutting_down {
                    tracing::error!(tag, error = %e, "concat: flushed lines refused at shutdown; sent to @ERROR");
                    let mut errors = ErrorEvents::default();
                    errors.push(ev, format!("concat: {e}"));
                    router.emit_errors(&self.label, &tag, errors);
                } else {
                    refused.push((tag, ev));
                }
            }
        }
        if !refused.is_empty() {
            self.refused.lock().extend(refused);
        }
    }
}

impl Filter for Concat {
    fn identity(&self) -> usize {
        Arc::as_ptr(&self.inner) as *const () as usize
    }

    fn filter(&self, tag: &str, events: &mut Events, errors: &mut ErrorEvents) {
        if is_fluent_log_tag(tag) {
            return;
        }
        let inner = &self.inner;
        let mut streams = inner.streams.lock();
        // Checked under the lock so nothing is added after the shutdown flush took everything: after it,
        // events pass as they are.
        if inner.finished.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let mut undo: Undo = Vec::new();
        let mut out = Vec::with_capacity(events.len());
        for ev in events.drain(..) {
            if !inner.joins(&ev.record) {
                out.push(ev);
                continue;
            }
            let id = inner.stream_identity(tag, &ev.record);
            if !undo.iter().any(|(u, _)| *u == id) {
                undo.push((id.clone(), streams.get(&id).cloned()));
            }
            let current = ev.record.clone();
            match inner.process(&mut streams, id, tag, ev.time, ev.record) {
                Ok(flushed) => {
                    for (t, r) in flushed {
                        let time = if inner.cfg.use_first_timestamp { t } else { ev.time };
                        out.push(Event::new(time, inner.merged(&current, r)));
                    }
                }
                Err(reason) => errors.push(Event::new(ev.time, current), format!("concat: {reason}")),
            }
        }
        // Replaced per batch: the previous batch of this tag was accepted, or refused and undone.
        let mut log = inner.undo.lock();
        if undo.is_empty() {
            log.remove(tag);
        } else {
            log.insert(tag.to_string(), undo);
        }
        drop(log);
        drop(streams);
        *events = out;
    }

    fn refused(&self, tag: &str) {
        let inner = &self.inner;
        let mut streams = inner.streams.lock();
        let Some(undo) = inner.undo.lock().remove(tag) else { return };
        for (id, before) in undo {
            match before {
                Some(st) => streams.insert(id, st),
                None => streams.remove(&id),
            };
        }
    }

    fn start(&self) {
        if self.inner.cfg.flush_interval.is_none() {
            return;
        }
        if let Some(l) = &self.inner.cfg.timeout_label {
            if self.inner.router.get().is_some_and(|r| !r.has_label(l)) {
                tracing::error!(label = %l, "concat: timeout_label names no <label>; timed-out lines go to @ERROR");
            }
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        let inner = self.inner.clone();
        let task = rt.spawn(async move {
            let mut tick = tokio::time::interval(TIMER_PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let flushed = inner.take_flushes(false);
                let inner = inner.clone();
                // Emitting may wait on a full buffer: off the async workers.
                let _ = tokio::task::spawn_blocking(move || inner.deliver(flushed, false)).await;
            }
        });
        *self.timer.lock() = Some(task);
    }

    fn shutdown(&self) {
        if let Some(t) = self.timer.lock().take() {
            t.abort();
        }
        let flushed = {
            let _held = self.inner.streams.lock();
            self.inner.finished.store(true, std::sync::atomic::Ordering::SeqCst);
            drop(_held);
            self.inner.take_flushes(true)
        };
        self.inner.deliver(flushed, true);
    }
}

impl Drop for Concat {
    fn drop(&mut self) {
        if let Some(t) = self.timer.lock().take() {
            t.abort();
        }
    }
}
