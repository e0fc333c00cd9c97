//! `detect_exceptions` (Google's fluent-plugin-detect-exceptions): an output that joins the lines of one
//! exception stack trace (Java, Python, Go, Ruby, PHP, JavaScript, C#, Dart) into one record and emits
//! every record again through the router, with `remove_tag_prefix` taken off the tag.
//!
//! Each stream (tag, plus the `stream` field when set) has its own detector ([`rules`]) and buffer. A
//! buffered trace leaves when a line ends it, when `max_lines`/`max_bytes` is reached, after
//! `multiline_flush_interval`, and before shutdown: nothing held is lost.
pub mod rules;

use async_trait::async_trait;
use parking_lot::{Mutex, ReentrantMutex};
use rules::{Detector, RuleSet, Status};
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Event, EventTime, Events, Map, Value};
use sluice_core::plugin::{BuildCtx, EmitError, ErrorEvents, Output, OutputMetrics, PluginError};
use sluice_core::router::RouterHandle;
use sluice_core::util::RateLimiter;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Fields tried, in order, when `message` is empty.
const DEFAULT_FIELDS: [&str; 2] = ["message", "log"];

struct Settings {
    message: String,
    remove_tag_prefix: String,
    force_line_breaks: bool,
    max_lines: usize,
    max_bytes: usize,
    stream: String,
    flush_interval: Option<Duration>,
}

/// One stream's buffered trace (the plugin's `TraceAccumulator`).
struct Accumulator {
    out_tag: String,
    loops: bool,
    detector: Detector,
    /// The message field; empty until learned from the first record that has one of [`DEFAULT_FIELDS`].
    field: String,
    messages: Vec<String>,
    /// Characters buffered (Ruby's `String#length`).
    size: usize,
    first: Option<(EventTime, Map)>,
    started: Instant,
}

/// Events to emit, in order: (tag, event, loops). `loops`: the tag is the input tag and would come back to
/// this output forever, so the event goes to `@ERROR` instead.
type Out = Vec<(String, Event, bool)>;

impl Accumulator {
    /// Learn the message field from the first record that has one of [`DEFAULT_FIELDS`].
    fn learn_field(&mut self, record: &Map) {
        if self.field.is_empty() {
            if let Some(f) = DEFAULT_FIELDS.iter().find(|f| record.contains_key(f)) {
                self.field = f.to_string();
            }
        }
    }

    /// The line, borrowed when it is text already.
    fn message<'r>(&self, record: &'r Map) -> Option<std::borrow::Cow<'r, str>> {
        match record.get(&self.field) {
            Some(Value::Str(s)) => Some(std::borrow::Cow::Borrowed(s.as_str())),
            Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b)),
            _ => None,
        }
    }

    fn push(&mut self, s: &Settings, time: EventTime, record: Map, out: &mut Out) {
        self.learn_field(&record);
        let message = self.message(&record);
        let has_message = message.is_some();
        let status = match message {
            None => {
                self.detector.reset();
                Status::NoTrace
            }
            Some(m) => {
                if s.max_bytes > 0 && self.size.saturating_add(m.chars().count()) > s.max_bytes {
                    self.force_flush(out);
                }
                self.detector.update(&m)
            }
        };
        self.update_buffer(s, status, time, record, has_message, out);
        if s.max_lines > 0 && self.messages.len() == s.max_lines {
            self.force_flush(out);
        }
    }

    fn update_buffer(
        &mut self,
        s: &Settings,
        status: Status,
        time: EventTime,
        record: Map,
        has_message: bool,
        out: &mut Out,
    ) {
        if self.messages.is_empty() && matches!(status, Status::NoTrace | Status::EndTrace) {
            out.push((self.out_tag.clone(), Event::new(time, record), self.loops));
            return;
        }
        match status {
            Status::InsideTrace => self.add(s, time, record),
            Status::EndTrace => {
                self.add(s, time, record);
                self.flush(out);
            }
            Status::NoTrace => {
                self.flush(out);
                if !has_message {
                    // The plugin loses such a record here (it buffers nothing and flushes nothing).
                    out.push((self.out_tag.clone(), Event::new(time, record), self.loops));
                    return;
                }
                self.add(s, time, record);
                self.flush(out);
            }
            Status::StartTrace => {
                self.flush(out);
                self.add(s, time, record);
            }
        }
    }

    fn add(&mut self, s: &Settings, time: EventTime, record: Map) {
        let message = self.message(&record).map(std::borrow::Cow::into_owned);
        if self.messages.is_empty() {
            self.first = Some((time, record));
            self.started = Instant::now();
        }
        let Some(mut m) = message else { return };
        if s.force_line_breaks && !self.messages.is_empty() && !m.contains('\n') {
            m.insert(0, '\n');
        }
        self.size = self.size.saturating_add(m.chars().count());
        self.messages.push(m);
    }

    fn flush(&mut self, out: &mut Out) {
        let n = self.messages.len();
        let first = self.first.take();
        let messages = std::mem::take(&mut self.messages);
        self.size = 0;
        let Some((time, mut record)) = first else { return };
        match n {
            0 => {}
            1 => out.push((self.out_tag.clone(), Event::new(time, record), self.loops)),
            _ => {
                record.insert(self.field.as_str(), Value::from(messages.concat()));
                out.push((self.out_tag.clone(), Event::new(time, record), self.loops));
            }
        }
    }

    fn force_flush(&mut self, out: &mut Out) {
        self.flush(out);
        self.detector.reset();
    }
}

struct Inner {
    settings: Settings,
    rules: Arc<RuleSet>,
    router: RouterHandle,
    /// Where joined records go (`@label`, else this directive's label).
    label: String,
    /// The label this directive lives in.
    own_label: String,
    /// Tag, then `stream` value, to the stream's accumulator.
    accumulators: Mutex<HashMap<String, HashMap<String, Accumulator>>>,
    /// Joined events a full buffer refused: sent before anything else, so order is kept.
    refused: Mutex<Out>,
    /// Held across processing and emitting so a stream's events leave in order; re-entrant because a
    /// re-emitted event may come back to this output on the same thread.
    order: ReentrantMutex<()>,
    metrics: Arc<OutputMetrics>,
    warn: RateLimiter,
}

pub struct DetectExceptions {
    inner: Arc<Inner>,
    timer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

pub fn build(s: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    let languages = s.array_or_empty("languages")?;
    let rules = RuleSet::new(&languages)
        .map_err(|e| s.error_at("languages", e).with_hint(format!("supported: {}", rules::LANGUAGES.join(", "))))?;
    let limit = |key: &str, default: i64| -> Result<usize, ConfigError> {
        // Zero or less means no limit, as the plugin's `positive?` checks.
        Ok(usize::try_from(s.int_or(key, default)?.max(0)).unwrap_or(usize::MAX))
    };
    let flush_interval = match s.opt_time("multiline_flush_interval")? {
        Some(v) => Some(
            Duration::try_from_secs_f64(v)
                .map_err(|_| s.error_at("multiline_flush_interval", "'multiline_flush_interval' is out of range"))?,
        ),
        None => None,
    };
    let settings = Settings {
        message: s.str_or("message", ""),
        remove_tag_prefix: s.str_or("remove_tag_prefix", ""),
        force_line_breaks: s.bool_or("force_line_breaks", false)?,
        max_lines: limit("max_lines", 1000)?,
        max_bytes: limit("max_bytes", 0)?,
        stream: s.str_or("stream", ""),
        flush_interval,
    };
    let label = s.get("@label").map(str::to_string).unwrap_or_else(|| ctx.label.to_string());
    Ok(Arc::new(DetectExceptions {
        inner: Arc::new(Inner {
            settings,
            rules: Arc::new(rules),
            router: ctx.router.clone(),
            label,
            own_label: ctx.label.to_string(),
            accumulators: Mutex::new(HashMap::new()),
            refused: Mutex::new(Vec::new()),
            order: ReentrantMutex::new(()),
            metrics: Arc::new(OutputMetrics::default()),
            warn: RateLimiter::new(Duration::from_secs(60)),
        }),
        timer: Mutex::new(None),
    }))
}

/// `tag.sub(/^PREFIX\./, '')`: the prefix must be whole tag parts.
fn strip_prefix(tag: &str, prefix: &str) -> String {
    match tag.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) {
        Some(rest) => rest.to_string(),
        None => tag.to_string(),
    }
}

impl Inner {
    fn new_accumulator(&self, tag: &str) -> Accumulator {
        let out_tag = strip_prefix(tag, &self.settings.remove_tag_prefix);
        Accumulator {
            loops: out_tag == tag && self.label == self.own_label,
            out_tag,
            detector: Detector::new(self.rules.clone()),
            field: self.settings.message.clone(),
            messages: Vec::new(),
            size: 0,
            first: None,
            started: Instant::now(),
        }
    }

    fn process(&self, tag: &str, events: Events) -> Out {
        let mut out = Vec::new();
        let mut accs = self.accumulators.lock();
        let streams = match accs.get_mut(tag) {
            Some(m) => m,
            None => accs.entry(tag.to_string()).or_default(),
        };
        let key = &self.settings.stream;
        for ev in events {
            let stream: std::borrow::Cow<'_, str> = match ev.record.get(key) {
                _ if key.is_empty() => "".into(),
                Some(v) => v.match_text(),
                None => "".into(),
            };
            let acc = match streams.get_mut(stream.as_ref()) {
                Some(a) => a,
                None => streams.entry(stream.into_owned()).or_insert_with(|| self.new_accumulator(tag)),
            };
            acc.push(&self.settings, ev.time, ev.record, &mut out);
        }
        out
    }

    /// Emit `out` after what was refused before. Returns the first refusal; what was not taken is kept.
    fn deliver(&self, out: Out) -> Result<(), EmitError> {
        let mut todo = std::mem::take(&mut *self.refused.lock());
        todo.extend(out);
        let mut iter = todo.into_iter().peekable();
        while let Some((tag, ev, loops)) = iter.next() {
            if loops {
                self.to_error(
                    &tag,
                    ev,
                    "detect_exceptions: the output tag is the input tag (remove_tag_prefix did not apply)",
                );
                continue;
            }
            // Consecutive events of one tag go as one batch.
            let mut batch = vec![ev];
            while let Some((_, e, _)) = iter.next_if(|(t, _, l)| *t == tag && !*l) {
                batch.push(e);
            }
            let n = batch.len() as u64;
            if let Err(e) = self.router.emit_to_label(&self.label, &tag, batch.clone()) {
                let mut keep: Out = batch.into_iter().map(|e| (tag.clone(), e, false)).collect();
                keep.extend(iter);
                *self.refused.lock() = keep;
                return Err(e);
            }
            self.metrics.records_written.add(n);
        }
        Ok(())
    }

    fn to_error(&self, tag: &str, ev: Event, reason: &str) {
        if let Some(n) = self.warn.check(reason) {
            tracing::warn!(tag, suppressed = n, reason, "detect_exceptions: record sent to @ERROR");
        }
        self.metrics.records_to_error_label.inc();
        let mut errors = ErrorEvents::default();
        errors.push(ev, reason);
        self.router.emit_errors(&self.label, tag, errors);
    }

    /// Flush every stream (all of them, or those buffered longer than the flush interval).
    fn flush(&self, all: bool) -> Out {
        let mut out = Vec::new();
        let now = Instant::now();
        let mut accs = self.accumulators.lock();
        for acc in accs.values_mut().flat_map(|m| m.values_mut()) {
            let due = self.settings.flush_interval.is_some_and(|iv| now.saturating_duration_since(acc.started) > iv);
            if all || due {
                acc.force_flush(&mut out);
            }
        }
        // Idle streams cost memory only; drop them when there are many (their state is the start state).
        if accs.values().map(HashMap::len).sum::<usize>() > 4096 {
            for m in accs.values_mut() {
                m.retain(|_, a| !a.messages.is_empty());
            }
            accs.retain(|_, m| !m.is_empty());
        }
        out
    }

    /// At shutdown: what cannot be delivered goes to `@ERROR`, counted.
    fn deliver_at_shutdown(&self, out: Out) {
        if let Err(e) = self.deliver(out) {
            let left = std::mem::take(&mut *self.refused.lock());
            tracing::error!(records = left.len(), error = %e, "detect_exceptions: joined records refused at shutdown; sent to @ERROR");
            for (tag, ev, _) in left {
                self.to_error(&tag, ev, "detect_exceptions: refused at shutdown");
            }
        }
    }
}

#[async_trait]
impl Output for DetectExceptions {
    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        let inner = &self.inner;
        let _order = inner.order.lock();
        // Records refused earlier go first; while they are still refused this batch is not taken.
        if !inner.refused.lock().is_empty() {
            inner.deliver(Vec::new())?;
        }
        inner.metrics.records_in.add(events.len() as u64);
        let out = inner.process(tag, events);
        // The batch is taken: what a full buffer refuses now is kept and sent first next time.
        if let Err(e) = inner.deliver(out) {
            tracing::debug!(tag, error = %e, "detect_exceptions: joined records refused; kept for the next emit");
        }
        Ok(())
    }

    async fn start(&self) -> Result<(), PluginError> {
        let Some(iv) = self.inner.settings.flush_interval else { return Ok(()) };
        // The plugin checks every tenth of the interval (at least every second); so do we, but no more
        // often than every 50 ms.
        let period = (iv / 10).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let inner = self.inner.clone();
        let task = tokio::spawn(tracing::Instrument::in_current_span(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let inner = inner.clone();
                // Emitting may wait on a full buffer: off the async workers.
                let _ = tokio::task::spawn_blocking(move || {
                    let _order = inner.order.lock();
                    let out = inner.flush(false);
                    if let Err(e) = inner.deliver(out) {
                        tracing::debug!(error = %e, "detect_exceptions: joined records refused; kept for the next try");
                    }
                })
                .await;
            }
        }));
        *self.timer.lock() = Some(task);
        Ok(())
    }

    fn before_shutdown(&self) {
        if let Some(t) = self.timer.lock().take() {
            t.abort();
        }
        let _order = self.inner.order.lock();
        let out = self.inner.flush(true);
        self.inner.deliver_at_shutdown(out);
    }

    async fn shutdown(&self) {
        // Anything that arrived after before_shutdown.
        self.before_shutdown();
    }

    fn flush_now(&self) {
        let _order = self.inner.order.lock();
        let out = self.inner.flush(true);
        let _ = self.inner.deliver(out);
    }

    fn metrics(&self) -> Option<Arc<OutputMetrics>> {
        Some(self.inner.metrics.clone())
    }
}

impl Drop for DetectExceptions {
    fn drop(&mut self) {
        if let Some(t) = self.timer.lock().take() {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_removed_only_as_whole_tag_parts() {
        assert_eq!(strip_prefix("prefix.plus.rest.of.the.tag", "prefix.plus"), "rest.of.the.tag");
        assert_eq!(strip_prefix("prefix.plus.rest.of.the.tag", "prefix.pl"), "prefix.plus.rest.of.the.tag");
        assert_eq!(strip_prefix("prefix.plus.rest.of.the.tag", "does.not.occur"), "prefix.plus.rest.of.the.tag");
        assert_eq!(strip_prefix("foo", "foo"), "foo");
    }
}
