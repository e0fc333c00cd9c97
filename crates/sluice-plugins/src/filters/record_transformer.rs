//! `record_transformer`: adds or replaces fields from `<record>` templates, removes or keeps fields.
//!
//! Templates are compiled once at build time into literal text and placeholders (`${tag}`,
//! `${tag_parts[N]}`, `${tag_prefix[N]}`, `${tag_suffix[N]}`, `${hostname}`, `${time}`,
//! `${record["k"]}`, also nested `${record["a"]["b"]}`), so an event costs no template parsing.
//! Placeholders refer to the record as it arrived, as in Fluentd. With `auto_typecast` (default true, as in
//! Fluentd v1) a value that is exactly one placeholder keeps the type of what it refers to. `enable_ruby true`
//! evaluates `${...}` as Ruby (sluice's subset): see `record_transformer_ruby`.
use super::record_transformer_ruby as ruby;
use sluice_core::accessor::Accessor;
use sluice_core::config::{ConfigError, Element, Special};
use sluice_core::event::{Event, EventTime, Events, Map, Str, Value};
use sluice_core::plugin::{BuildCtx, ErrorEvents, Filter};
use sluice_core::timefmt::TimeFormatter;
use sluice_core::util::RateLimiter;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

/// One piece of a compiled string template.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Tag,
    TagParts(i64),
    TagPrefix(i64),
    TagSuffix(i64),
    Hostname,
    Time,
    /// `${record["a"]["b"]}`: a path from the top of the record.
    Record(Vec<Str>),
    /// A placeholder Fluentd would not know: it expands to nothing (nil), as in Fluentd.
    Unknown,
}

/// A compiled `<record>` value: a string template, or a JSON value whose strings are templates.
#[derive(Debug, Clone, PartialEq)]
enum Tmpl {
    Str(Vec<Part>),
    Map(Vec<(Vec<Part>, Tmpl)>),
    Array(Vec<Tmpl>),
    Other(Value),
}

pub struct RecordTransformer {
    map: Vec<(Vec<Part>, Tmpl)>,
    /// `enable_ruby true`: the `<record>` entries as Ruby expressions (then `map` is empty).
    ruby_map: Vec<(ruby::Expr, ruby::RTmpl)>,
    remove_keys: Vec<Accessor>,
    keep_keys: Vec<String>,
    renew_record: bool,
    renew_time_key: Option<String>,
    auto_typecast: bool,
    hostname: String,
    /// Ruby's `Time#to_s` for `${time}`: local time, `2024-01-02 03:04:05 +0000`.
    time_to_s: TimeFormatter,
    warn: RateLimiter,
}

pub fn build(s: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Filter>, ConfigError> {
    let enable_ruby = s.bool_or("enable_ruby", false)?;
    let renew_record = s.bool_or("renew_record", false)?;
    // Fluentd v1's default (v0.12's was false).
    let auto_typecast = s.bool_or("auto_typecast", true)?;
    let renew_time_key = s.opt_str("renew_time_key");
    let keep_keys = match s.array("keep_keys")? {
        Some(k) => {
            if !renew_record {
                return Err(s
                    .error_at("keep_keys", "`renew_record` must be true to use `keep_keys`")
                    .with_hint("add 'renew_record true'"));
            }
            k
        }
        None => Vec::new(),
    };
    let remove_keys = s
        .array_or_empty("remove_keys")?
        .iter()
        .map(|k| Accessor::parse_conf(s, "remove_keys", k.trim()))
        .collect::<Result<Vec<_>, _>>()?;

    let mut map: Vec<(Vec<Part>, Tmpl)> = Vec::new();
    let mut ruby_map: Vec<(ruby::Expr, ruby::RTmpl)> = Vec::new();
    let mut ruby_keys: Vec<&str> = Vec::new();
    for rec in s.sections("record") {
        for a in &rec.attrs {
            a.used.set(true);
            if enable_ruby {
                let key = ruby::compile_key(&a.key, &a.loc)?;
                let value = match a.special {
                    None => ruby::compile_value(&a.value, auto_typecast, &a.loc)?,
                    Some(Special::Nil) => ruby::RTmpl::Other(Value::Null),
                    Some(Special::Default) => continue,
                };
                match ruby_keys.iter().position(|k| *k == a.key) {
                    Some(i) => ruby_map[i] = (key, value),
                    None => {
                        ruby_keys.push(&a.key);
                        ruby_map.push((key, value));
                    }
                }
                continue;
            }
            let key = compile_str(&a.key, &a.loc);
            let value = match a.special {
                None => compile_value(&a.value, &a.loc),
                Some(Special::Nil) => Tmpl::Other(Value::Null),
                Some(Special::Default) => continue,
            };
            // A later <record> entry with the same key replaces the earlier one (a Ruby Hash).
            match map.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => map.push((key, value)),
            }
        }
    }

    let hostname =
        if ctx.system.hostname.is_empty() { sluice_core::util::hostname() } else { ctx.system.hostname.clone() };
    Ok(Arc::new(RecordTransformer {
        map,
        ruby_map,
        remove_keys,
        keep_keys,
        renew_record,
        renew_time_key,
        auto_typecast,
        hostname,
        time_to_s: TimeFormatter::new(Some("%Y-%m-%d %H:%M:%S %z"), true, None).map_err(|e| s.error(e))?,
        warn: RateLimiter::new(Duration::from_secs(60)),
    }))
}

/// Fluentd's `parse_value`: text starting with `{` or `[` is JSON when it parses, else a string.
fn compile_value(v: &str, loc: &sluice_core::config::Location) -> Tmpl {
    if v.starts_with('{') || v.starts_with('[') {
        if let Ok(j) = serde_json::from_str::<serde_json::Value>(v) {
            return compile_json(j, loc);
        }
    }
    Tmpl::Str(compile_str(v, loc))
}

fn compile_json(j: serde_json::Value, loc: &sluice_core::config::Location) -> Tmpl {
    match j {
        serde_json::Value::String(s) => Tmpl::Str(compile_str(&s, loc)),
        serde_json::Value::Array(a) => Tmpl::Array(a.into_iter().map(|v| compile_json(v, loc)).collect()),
        serde_json::Value::Object(o) => {
            Tmpl::Map(o.into_iter().map(|(k, v)| (compile_str(&k, loc), compile_json(v, loc))).collect())
        }
        other => Tmpl::Other(Value::from(other)),
    }
}

/// Split a template at Fluentd's placeholder pattern `/(\${[^}]+}|__[A-Z_]+__)/`.
fn compile_str(t: &str, loc: &sluice_core::config::Location) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = t;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("${") {
            if let Some(end) = after.find('}').filter(|&e| e > 0) {
                let name = &after[..end];
                let part = placeholder(name);
                if part == Part::Unknown {
                    tracing::warn!(
                        at = %loc,
                        placeholder = %format!("${{{name}}}"),
                        "record_transformer: unknown placeholder found; it expands to nothing (Ruby expressions need enable_ruby true)"
                    );
                }
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(part);
                rest = &after[end + 1..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix("__") {
            let n = after.bytes().take_while(|b| b.is_ascii_uppercase() || *b == b'_').count();
            // The greedy `[A-Z_]+` gives back characters until `__` follows.
            let mut found = None;
            for len in (1..=n).rev() {
                if after[len..].starts_with("__") {
                    found = Some(len);
                    break;
                }
            }
            if let Some(len) = found {
                tracing::warn!(
                    at = %loc,
                    placeholder = %format!("__{}__", &after[..len]),
                    "record_transformer: unknown placeholder found; it expands to nothing"
                );
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(Part::Unknown);
                rest = &after[len + 2..];
                continue;
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        lit.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    parts
}

fn index_of(name: &str, prefix: &str) -> Option<i64> {
    let idx = name.strip_prefix(prefix)?.strip_prefix('[')?.strip_suffix(']')?;
    let digits = idx.strip_prefix('-').unwrap_or(idx);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    idx.parse().ok()
}

/// `record["a"]["b"]` (or with single quotes) as a path.
fn record_path(name: &str) -> Option<Vec<Str>> {
    let mut rest = name.strip_prefix("record")?;
    let mut path = Vec::new();
    while !rest.is_empty() {
        let r = rest.strip_prefix('[')?;
        let q = r.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let r = &r[1..];
        let close = format!("{q}]");
        let end = r.find(&close)?;
        path.push(Str::from(&r[..end]));
        rest = &r[end + 2..];
    }
    (!path.is_empty()).then_some(path)
}

fn placeholder(name: &str) -> Part {
    match name {
        "tag" => Part::Tag,
        "hostname" => Part::Hostname,
        "time" => Part::Time,
        n => {
            if let Some(i) = index_of(n, "tag_parts") {
                Part::TagParts(i)
            } else if let Some(i) = index_of(n, "tag_prefix") {
                Part::TagPrefix(i)
            } else if let Some(i) = index_of(n, "tag_suffix") {
                Part::TagSuffix(i)
            } else if let Some(p) = record_path(n) {
                Part::Record(p)
            } else {
                Part::Unknown
            }
        }
    }
}

/// What the placeholders of one batch see.
struct Ctx<'a> {
    tag: &'a str,
    parts: Vec<&'a str>,
    /// `tag_prefix[i]`: the first i+1 parts joined; `tag_suffix[i]`: from part i to the end.
    prefix: Vec<&'a str>,
    suffix: Vec<&'a str>,
    hostname: &'a str,
}

impl<'a> Ctx<'a> {
    fn new(tag: &'a str, hostname: &'a str) -> Self {
        let parts: Vec<&str> = tag.split('.').collect();
        let mut prefix = Vec::with_capacity(parts.len());
        let mut suffix = Vec::with_capacity(parts.len());
        let mut pos = 0;
        for p in &parts {
            suffix.push(&tag[pos..]);
            pos += p.len();
            prefix.push(&tag[..pos]);
            pos += 1;
        }
        Ctx { tag, parts, prefix, suffix, hostname }
    }
}

/// Index an array Ruby style: negative counts from the end.
fn pick<'a>(v: &[&'a str], i: i64) -> Option<&'a str> {
    let len = v.len() as i64;
    let i = if i < 0 { len + i } else { i };
    if i < 0 || i >= len {
        return None;
    }
    v.get(i as usize).copied()
}

fn lookup<'r>(record: &'r Map, path: &[Str]) -> Option<&'r Value> {
    let (first, rest) = path.split_first()?;
    let mut v = record.get(first)?;
    for k in rest {
        v = v.as_map()?.get(k)?;
    }
    Some(v)
}

impl RecordTransformer {
    /// The value of one placeholder; None for nil.
    fn value_of<'r>(&self, p: &Part, c: &Ctx<'r>, record: &'r Map, time: EventTime) -> Option<PVal<'r>> {
        Some(match p {
            Part::Lit(s) => PVal::Text(Cow::Owned(s.clone())),
            Part::Tag => PVal::Text(Cow::Borrowed(c.tag)),
            Part::TagParts(i) => PVal::Text(Cow::Borrowed(pick(&c.parts, *i)?)),
            Part::TagPrefix(i) => PVal::Text(Cow::Borrowed(pick(&c.prefix, *i)?)),
            Part::TagSuffix(i) => PVal::Text(Cow::Borrowed(pick(&c.suffix, *i)?)),
            Part::Hostname => PVal::Text(Cow::Borrowed(c.hostname)),
            Part::Time => PVal::Text(Cow::Owned(self.time_to_s.format(time))),
            Part::Record(path) => match lookup(record, path) {
                Some(v) => PVal::Value(v),
                None => {
                    if let Some(n) = self.warn.check("record") {
                        tracing::warn!(
                            tag = c.tag,
                            key = %path.join("."),
                            suppressed = n,
                            "record_transformer: unknown placeholder: the record has no such key"
                        );
                    }
                    return None;
                }
            },
            Part::Unknown => return None,
        })
    }

    fn expand_str(&self, parts: &[Part], c: &Ctx<'_>, record: &Map, time: EventTime, stringify: bool) -> Value {
        if self.auto_typecast && !stringify {
            if let [p] = parts {
                if !matches!(p, Part::Lit(_)) {
                    return match self.value_of(p, c, record, time) {
                        Some(PVal::Value(v)) => v.clone(),
                        Some(PVal::Text(s)) => Value::from(s.as_ref()),
                        None => Value::Null,
                    };
                }
            }
        }
        let mut out = String::new();
        for p in parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Tag => out.push_str(c.tag),
                p => match self.value_of(p, c, record, time) {
                    Some(PVal::Text(s)) => out.push_str(&s),
                    Some(PVal::Value(v)) => v.append_display(&mut out),
                    None => {}
                },
            }
        }
        Value::from(out)
    }

    fn expand(&self, t: &Tmpl, c: &Ctx<'_>, record: &Map, time: EventTime) -> Value {
        match t {
            Tmpl::Str(parts) => self.expand_str(parts, c, record, time, false),
            Tmpl::Map(entries) => {
                let mut m = Map::with_capacity(entries.len());
                for (k, v) in entries {
                    let key = key_string(self.expand_str(k, c, record, time, true));
                    m.insert(key, self.expand(v, c, record, time));
                }
                Value::Map(m)
            }
            Tmpl::Array(items) => Value::Array(items.iter().map(|v| self.expand(v, c, record, time)).collect()),
            Tmpl::Other(v) => v.clone(),
        }
    }

    fn transform(
        &self,
        c: &Ctx<'_>,
        rb: Option<&ruby::BatchVars>,
        ev: &mut Event,
        pairs: &mut Vec<(Str, Value)>,
    ) -> Result<(), String> {
        pairs.clear();
        for (k, v) in &self.map {
            let key = key_string(self.expand_str(k, c, &ev.record, ev.time, true));
            pairs.push((key, self.expand(v, c, &ev.record, ev.time)));
        }
        if let Some(batch) = rb {
            // Every expression sees the record as it arrived; nothing changes if one of them raises.
            let vars = ruby::Vars { record: &ev.record, time: ev.time, batch };
            for (k, v) in &self.ruby_map {
                pairs.push((ruby::expand_key(k, &vars)?, ruby::expand(v, &vars)?));
            }
        }
        if self.renew_record {
            let mut fresh = Map::with_capacity(self.keep_keys.len() + pairs.len());
            for k in &self.keep_keys {
                if let Some(v) = ev.record.get(k) {
                    fresh.insert(k.as_str(), v.clone());
                }
            }
            ev.record = fresh;
        }
        for (k, v) in pairs.drain(..) {
            ev.record.insert(k, v);
        }
        if let Some(key) = &self.renew_time_key {
            if let Some(v) = ev.record.get(key) {
                ev.time = time_from_value(v).ok_or_else(|| {
                    format!("record_transformer: renew_time_key '{key}' holds a value that is not a time")
                })?;
            }
        }
        for a in &self.remove_keys {
            a.remove(&mut ev.record);
        }
        Ok(())
    }
}

enum PVal<'r> {
    Text(Cow<'r, str>),
    Value(&'r Value),
}

fn key_string(v: Value) -> Str {
    match v {
        Value::Str(s) => s,
        other => Str::from(other.to_display_string()),
    }
}

/// Ruby's `Time.at(value.to_r)`: numbers as they are, strings by their leading number (else 0), nil as 0.
fn time_from_value(v: &Value) -> Option<EventTime> {
    match v {
        Value::Int(i) => Some(EventTime::new(*i, 0)),
        Value::UInt(u) => i64::try_from(*u).ok().map(|s| EventTime::new(s, 0)),
        Value::Float(f) if f.is_finite() => Some(EventTime::from_f64(*f)),
        Value::Null => Some(EventTime::new(0, 0)),
        Value::Str(s) => Some(time_from_str(s)),
        _ => None,
    }
}

fn time_from_str(s: &str) -> EventTime {
    let t = s.trim_start();
    let (neg, body) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let int_len = body.bytes().take_while(u8::is_ascii_digit).count();
    let (int_part, rest) = body.split_at(int_len);
    let frac: &str = match rest.strip_prefix('.') {
        Some(r) => &r[..r.bytes().take_while(u8::is_ascii_digit).count()],
        None => "",
    };
    let after = &rest[if frac.is_empty() { 0 } else { frac.len() + 1 }..];
    if after.starts_with(['e', 'E']) {
        // Exponent notation: precision to the nanosecond does not matter here.
        let num_len = t.len() - after.len()
            + after[1..].bytes().take_while(|b| b.is_ascii_digit() || *b == b'-' || *b == b'+').count()
            + 1;
        if let Ok(f) = t[..num_len.min(t.len())].parse::<f64>() {
            return EventTime::from_f64(f);
        }
    }
    if int_part.is_empty() && frac.is_empty() {
        return EventTime::new(0, 0);
    }
    let sec: i64 = int_part.parse().unwrap_or(0);
    let mut nsec: u32 = 0;
    for (i, d) in frac.bytes().take(9).enumerate() {
        nsec += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
    }
    if neg {
        if nsec == 0 {
            EventTime::new(-sec, 0)
        } else {
            EventTime::new(-sec - 1, 1_000_000_000 - nsec)
        }
    } else {
        EventTime::new(sec, nsec)
    }
}

impl Filter for RecordTransformer {
    fn filter(&self, tag: &str, events: &mut Events, errors: &mut ErrorEvents) {
        let c = Ctx::new(tag, &self.hostname);
        let rb = (!self.ruby_map.is_empty())
            .then(|| ruby::BatchVars::new(tag, &c.parts, &c.prefix, &c.suffix, &self.hostname));
        let mut pairs = Vec::with_capacity(self.map.len() + self.ruby_map.len());
        let mut failed: Vec<(usize, String)> = Vec::new();
        for (i, ev) in events.iter_mut().enumerate() {
            // A Ruby error fails before the event changes; renew_time_key fails after, so keep a copy.
            let original = self.renew_time_key.as_ref().map(|_| ev.clone());
            if let Err(reason) = self.transform(&c, rb.as_ref(), ev, &mut pairs) {
                if let Some(orig) = original {
                    *ev = orig;
                }
                failed.push((i, reason));
            }
        }
        if failed.is_empty() {
            return;
        }
        if let Some(n) = self.warn.check("failed") {
            // The reason quotes the expression and Ruby's error, never the record.
            tracing::warn!(
                tag,
                records = failed.len(),
                reason = %failed[0].1,
                suppressed = n,
                "record_transformer: records sent to @ERROR"
            );
        }
        let all = std::mem::take(events);
        let mut fi = failed.into_iter().peekable();
        for (i, ev) in all.into_iter().enumerate() {
            match fi.next_if(|(j, _)| *j == i) {
                Some((_, reason)) => errors.push(ev, reason),
                None => events.push(ev),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc() -> sluice_core::config::Location {
        sluice_core::config::Location::new("t.conf", 1)
    }

    #[test]
    fn compiles_placeholders() {
        assert_eq!(
            compile_str("a ${tag} ${tag_parts[-1]} ${record[\"x\"][\"y\"]} ${nope} __FOO__ __x__", &loc()),
            vec![
                Part::Lit("a ".into()),
                Part::Tag,
                Part::Lit(" ".into()),
                Part::TagParts(-1),
                Part::Lit(" ".into()),
                Part::Record(vec!["x".into(), "y".into()]),
                Part::Lit(" ".into()),
                Part::Unknown,
                Part::Lit(" ".into()),
                Part::Unknown,
                Part::Lit(" __x__".into()),
            ]
        );
        assert_eq!(compile_str("${}", &loc()), vec![Part::Lit("${}".into())]);
    }

    #[test]
    fn prefixes_and_suffixes() {
        let c = Ctx::new("a.b.c", "h");
        assert_eq!(c.prefix, vec!["a", "a.b", "a.b.c"]);
        assert_eq!(c.suffix, vec!["a.b.c", "b.c", "c"]);
        assert_eq!(pick(&c.parts, -1), Some("c"));
        assert_eq!(pick(&c.parts, -4), None);
        assert_eq!(pick(&c.parts, 3), None);
    }

    #[test]
    fn ruby_to_r_times() {
        assert_eq!(time_from_str("1700000000.123456789"), EventTime::new(1_700_000_000, 123_456_789));
        assert_eq!(time_from_str("12abc"), EventTime::new(12, 0));
        assert_eq!(time_from_str("abc"), EventTime::new(0, 0));
        assert_eq!(time_from_str("-1.5"), EventTime::new(-2, 500_000_000));
        assert_eq!(time_from_str("1.5e3"), EventTime::new(1500, 0));
    }
}
