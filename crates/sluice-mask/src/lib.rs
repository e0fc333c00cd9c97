//! `@type mask`: finds personal data and secrets in records and masks them before they leave the node.
//!
//! Fail closed: a record with a value the filter cannot read (invalid UTF-8 bytes, a value larger than
//! `max_value_size`, nesting deeper than 64 levels) or an internal error never passes on unmasked. It goes
//! to `@ERROR` with the unreadable values redacted (`on_error error`, the default) or is dropped
//! (`on_error drop`), and is counted.
//!
//! This file is the walk over a record; `config` reads the filter's parameters and `metrics` holds its
//! counters.
mod config;
pub mod context;
pub mod decode;
pub mod detect;
pub mod kind;
pub mod mask;
mod metrics;
pub mod validate;

pub use config::OnError;
use config::{Accessor, Role};
use detect::{is_masked_value, Ctx, Match, Scanner, Scratch};
use kind::{normalize_key, KindId, KEY_BUF};
use mask::{Masker, Mode};
pub use metrics::MaskMetrics;
use sluice_core::accessor::{resolve_index, Segment};
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Events, Map, Str, Value};
use sluice_core::metrics::MetricSink;
use sluice_core::plugin::{BuildCtx, ErrorEvents, Filter, Registry};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub fn register(reg: &mut Registry) {
    reg.register_filter("mask", build);
}

/// Deepest nesting scanned; deeper values count as unreadable.
const MAX_DEPTH: usize = 64;

/// Extra masking rounds over a masked value before it is redacted whole.
const MAX_ROUNDS: usize = 3;

pub struct MaskFilter {
    scanner: Scanner,
    masker: Masker,
    /// Kind names by id: built-ins, `sensitive_key`, then user rules.
    names: Vec<String>,
    /// Mode per kind id.
    modes: Vec<Mode>,
    scan_all: bool,
    accessors: Vec<Accessor>,
    all_accessors: Vec<u16>,
    sensitive: HashMap<Vec<u8>, KindId>,
    on_error: OnError,
    metrics: Arc<MaskMetrics>,
}

pub fn build(conf: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Filter>, ConfigError> {
    Ok(Arc::new(MaskFilter::from_conf(conf)?))
}

impl MaskFilter {
    pub fn metrics(&self) -> Arc<MaskMetrics> {
        self.metrics.clone()
    }

    /// Mask one record in place. `Err` (with a reason that never holds record content) means the record
    /// must not pass on; its unreadable values have been redacted.
    pub fn mask_record(&self, record: &mut Map) -> Result<bool, String> {
        self.mask_record_with(record, &mut Cx::default())
    }

    fn mask_record_with(&self, record: &mut Map, cx: &mut Cx) -> Result<bool, String> {
        cx.failure = None;
        cx.changed = false;
        let st = State { in_scope: self.scan_all, mode: None, active: &self.all_accessors, key: None };
        self.walk_map(record, &st, 0, cx);
        match cx.failure.take() {
            Some(reason) => Err(reason),
            None => Ok(cx.changed),
        }
    }

    fn mode_for(&self, kind: KindId, over: Option<Mode>) -> Mode {
        over.unwrap_or_else(|| self.modes.get(kind as usize).copied().unwrap_or(Mode::Redact))
    }

    fn walk_map(&self, m: &mut Map, st: &State<'_>, depth: usize, cx: &mut Cx) {
        m.retain(|k, v| {
            let mut child = State { in_scope: st.in_scope, mode: st.mode, active: &[], key: Some(k) };
            let mut next: Vec<u16> = Vec::new();
            for &ai in st.active {
                let a = &self.accessors[ai as usize];
                if matches!(a.segs.get(depth), Some(Segment::Key(s)) if s.as_str() == k) {
                    if a.segs.len() == depth + 1 {
                        match a.role {
                            Role::Skip => return true,
                            Role::Target => child.in_scope = true,
                            Role::Mode(md) => child.mode = Some(md),
                        }
                    } else {
                        next.push(ai);
                    }
                }
            }
            child.active = &next;
            if !self.sensitive.is_empty() {
                let mut buf = [0u8; KEY_BUF];
                if let Some(kind) = normalize_key(k, &mut buf).and_then(|n| self.sensitive.get(n)) {
                    return self.mask_whole(v, *kind, child.mode, depth, cx);
                }
            }
            self.walk_value(v, &child, depth, cx)
        });
    }

    /// Returns false when the value must be removed.
    fn walk_value(&self, v: &mut Value, st: &State<'_>, depth: usize, cx: &mut Cx) -> bool {
        if depth > MAX_DEPTH {
            *v = Value::from("[REDACTED:unscannable]");
            cx.fail("nesting deeper than 64 levels");
            return true;
        }
        match v {
            Value::Map(m) => {
                self.walk_map(m, st, depth + 1, cx);
                true
            }
            Value::Array(items) => {
                let len = items.len();
                let mut idx = 0;
                items.retain_mut(|item| {
                    let mut child = State { in_scope: st.in_scope, mode: st.mode, active: &[], key: st.key };
                    let mut next: Vec<u16> = Vec::new();
                    for &ai in st.active {
                        let a = &self.accessors[ai as usize];
                        if matches!(a.segs.get(depth + 1), Some(Segment::Index(i)) if resolve_index(*i, len) == Some(idx)) {
                            if a.segs.len() == depth + 2 {
                                match a.role {
                                    Role::Skip => {
                                        idx += 1;
                                        return true;
                                    }
                                    Role::Target => child.in_scope = true,
                                    Role::Mode(md) => child.mode = Some(md),
                                }
                            } else {
                                next.push(ai);
                            }
                        }
                    }
                    idx += 1;
                    child.active = &next;
                    // an index consumes one level of the accessor
                    self.walk_value(item, &child, depth + 1, cx)
                });
                true
            }
            Value::Str(s) if st.in_scope => match self.mask_text(s.as_str(), st.mode, st.ctx(false), cx) {
                Outcome::Keep => true,
                Outcome::Remove => false,
                Outcome::Replace(r) => {
                    *s = Str::from(r);
                    true
                }
            },
            Value::Int(_) | Value::UInt(_) if st.in_scope => {
                let big = match *v {
                    Value::Int(i) => i.unsigned_abs() >= 1_000_000,
                    Value::UInt(u) => u >= 1_000_000,
                    _ => false,
                };
                if !big {
                    return true;
                }
                let text = v.to_display_string();
                match self.mask_text(&text, st.mode, st.ctx(true), cx) {
                    Outcome::Keep => true,
                    Outcome::Remove => false,
                    Outcome::Replace(r) => {
                        *v = Value::from(r);
                        true
                    }
                }
            }
            // A number stored as a float (`4111111111111111.0`, `4.111111111111111e15`): its integer value.
            Value::Float(f) if st.in_scope => {
                let f = *f;
                if !(f.is_finite() && f.fract() == 0.0 && (1e6..1e20).contains(&f.abs())) {
                    return true;
                }
                // `Display` of an integral f64 prints its digits without exponent or fraction
                let text = format!("{f}");
                match self.mask_text(&text, st.mode, st.ctx(true), cx) {
                    Outcome::Keep => true,
                    Outcome::Remove => false,
                    Outcome::Replace(r) => {
                        *v = Value::from(r);
                        true
                    }
                }
            }
            Value::Bytes(bytes) if st.in_scope => match std::str::from_utf8(bytes) {
                Ok(text) => match self.mask_text(text, st.mode, st.ctx(false), cx) {
                    Outcome::Keep => true,
                    Outcome::Remove => false,
                    Outcome::Replace(r) => {
                        *v = Value::from(r);
                        true
                    }
                },
                Err(_) => {
                    *v = Value::from("[REDACTED:unscannable]");
                    cx.fail("a value is not valid UTF-8");
                    true
                }
            },
            _ => true,
        }
    }

    fn mask_text(&self, s: &str, over: Option<Mode>, ctx: Ctx<'_>, cx: &mut Cx) -> Outcome {
        if let Err(e) = self.scanner.scan(s, ctx, &mut cx.matches, &mut cx.scratch) {
            cx.fail(&e.to_string());
            return Outcome::Replace("[REDACTED:unscannable]".into());
        }
        if cx.matches.is_empty() {
            return Outcome::Keep;
        }
        cx.changed = true;
        let mut cur = self.apply(s, over, cx);
        // What `partial` keeps can complete a value a longer match hid (`010-1234-5678::1` hides the IPv6
        // address `5678::1`): mask again until nothing is found, so masking twice equals masking once.
        let mut stable = false;
        for _ in 0..=MAX_ROUNDS {
            let Some(text) = &cur else {
                stable = true;
                break;
            };
            if self.scanner.scan(text, ctx, &mut cx.matches, &mut cx.scratch).is_err() {
                break;
            }
            if cx.matches.is_empty() {
                stable = true;
                break;
            }
            cur = self.apply(&text.clone(), over, cx);
        }
        match cur {
            None => {
                self.metrics.fields_removed.fetch_add(1, Ordering::Relaxed);
                Outcome::Remove
            }
            Some(_) if !stable => Outcome::Replace("[REDACTED:unstable]".into()),
            Some(t) => Outcome::Replace(t),
        }
    }

    /// Replace `cx.matches` in `s`; `None` when a match's mode is `remove`.
    fn apply(&self, s: &str, over: Option<Mode>, cx: &mut Cx) -> Option<String> {
        let mut out = String::with_capacity(s.len() + 16);
        let mut last = 0;
        let mut remove = false;
        for &Match { start, end, kind } in &cx.matches {
            let mode = self.mode_for(kind, over);
            self.metrics.count(kind);
            if mode == Mode::Remove {
                remove = true;
            }
            out.push_str(&s[last..start]);
            self.masker.render(kind, &self.names[kind as usize], mode, &s[start..end], &mut out);
            last = end;
        }
        out.push_str(&s[last..]);
        (!remove).then_some(out)
    }

    /// A field whose name means personal data: mask the whole value whatever it holds.
    fn mask_whole(&self, v: &mut Value, kind: KindId, over: Option<Mode>, depth: usize, cx: &mut Cx) -> bool {
        let mode = self.mode_for(kind, over);
        if mode == Mode::Remove {
            self.metrics.count(kind);
            self.metrics.fields_removed.fetch_add(1, Ordering::Relaxed);
            cx.changed = true;
            return false;
        }
        let name = &self.names[kind as usize];
        let text: Option<std::borrow::Cow<'_, str>> = match &*v {
            Value::Str(s) if is_masked_value(s) => return true,
            Value::Str(s) => Some(std::borrow::Cow::Borrowed(s.as_str())),
            Value::Int(_) | Value::UInt(_) | Value::Float(_) => Some(std::borrow::Cow::Owned(v.to_display_string())),
            Value::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) => Some(std::borrow::Cow::Borrowed(s)),
                // Not text, but we need not read it: it is replaced whole (a token over the raw bytes).
                Err(_) => {
                    let mut out = String::new();
                    if mode == Mode::Hash {
                        self.masker.token(kind, b, &mut out);
                    } else {
                        self.masker.render(kind, name, Mode::Redact, "", &mut out);
                    }
                    self.metrics.count(kind);
                    cx.changed = true;
                    *v = Value::from(out);
                    return true;
                }
            },
            Value::Array(_) | Value::Map(_) => None,
            Value::Null | Value::Bool(_) => return true,
        };
        match text {
            Some(t) => {
                let mut out = String::new();
                let m = if t.is_empty() && mode == Mode::Partial { Mode::Redact } else { mode };
                self.masker.render(kind, name, m, &t, &mut out);
                self.metrics.count(kind);
                cx.changed = true;
                *v = Value::from(out);
            }
            None => {
                if depth > MAX_DEPTH {
                    *v = Value::from("[REDACTED:unscannable]");
                    cx.fail("nesting deeper than 64 levels");
                    return true;
                }
                match v {
                    Value::Array(items) => {
                        items.retain_mut(|i| self.mask_whole(i, kind, over, depth + 1, cx));
                    }
                    Value::Map(m) => m.retain(|_, i| self.mask_whole(i, kind, over, depth + 1, cx)),
                    _ => {}
                }
            }
        }
        true
    }
}

enum Outcome {
    Keep,
    Remove,
    Replace(String),
}

struct State<'a> {
    in_scope: bool,
    mode: Option<Mode>,
    active: &'a [u16],
    /// The name of the field the value belongs to (array items: the array's field).
    key: Option<&'a str>,
}

impl<'a> State<'a> {
    fn ctx(&self, numeric: bool) -> Ctx<'a> {
        Ctx { key: self.key, numeric }
    }
}

#[derive(Default)]
struct Cx {
    matches: Vec<Match>,
    scratch: Scratch,
    failure: Option<String>,
    changed: bool,
}

impl Cx {
    fn fail(&mut self, reason: &str) {
        if self.failure.is_none() {
            self.failure = Some(format!("mask: record not passed on: {reason}"));
        }
    }
}

impl Filter for MaskFilter {
    fn report(&self, sink: &mut dyn MetricSink) {
        self.metrics.report(self.on_error, sink);
    }

    fn filter(&self, tag: &str, events: &mut Events, errors: &mut ErrorEvents) {
        let m = &self.metrics;
        m.records_in.fetch_add(events.len() as u64, Ordering::Relaxed);
        let mut failed = 0u64;
        events.retain_mut(|ev| {
            let res = std::panic::catch_unwind(AssertUnwindSafe(|| self.mask_record(&mut ev.record)));
            let reason = match res {
                Ok(Ok(changed)) => {
                    if changed {
                        m.records_masked.fetch_add(1, Ordering::Relaxed);
                    }
                    return true;
                }
                Ok(Err(reason)) => reason,
                Err(_) => {
                    // The record may be half masked: keep none of it.
                    let mut r = Map::new();
                    r.insert("mask_error", Value::from("[REDACTED:internal_error]"));
                    ev.record = r;
                    "mask: record not passed on: internal error".to_string()
                }
            };
            failed += 1;
            if self.on_error == OnError::Error {
                let event = std::mem::take(ev);
                errors.push(event, reason);
            }
            false
        });
        if failed > 0 {
            m.records_failed.fetch_add(failed, Ordering::Relaxed);
            tracing::warn!(tag, failed, on_error = ?self.on_error, "mask: records could not be scanned and were not passed on");
        }
    }
}
