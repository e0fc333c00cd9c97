//! `parser`: parse one field of each record with a `<parse>` and replace (or extend) the record with the
//! result, as Fluentd's `filter_parser`.
//!
//! Outcomes per event (Fluentd's rules):
//! * parsed: the new record is the parsed fields (prefixed by `inject_key_prefix`, nested under
//!   `hash_value_field`), merged into the original when `reserve_data`; the time is the parsed one unless
//!   `reserve_time` or the text had none; `remove_key_name_field` drops the source field first;
//! * `key_name` missing (or null): an error event `KEY does not exist`; the record is kept as is only with
//!   `reserve_data`;
//! * pattern not matched (bad JSON, a regexp that does not match): an error event; kept only with
//!   `reserve_data`;
//! * invalid time, a value that is not text, bytes that are not UTF-8 (without `replace_invalid_sequence`):
//!   an error event and the record is dropped.
//!
//! Error events go to `@ERROR` only with `emit_invalid_record_to_error` (the default). Their reasons never
//! contain record content.
use parking_lot::Mutex;
use sluice_core::accessor::Accessor;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Event, Events, Map, Str, Value};
use sluice_core::plugin::Filter;
use sluice_core::plugin::{BuildCtx, ErrorEvents, ParseError, Parsed, Parser};
use sluice_core::ruby::text::scrub;
use std::sync::Arc;

pub struct ParserFilter {
    key: Accessor,
    reserve_data: bool,
    reserve_time: bool,
    remove_key_name_field: bool,
    inject_key_prefix: Option<String>,
    hash_value_field: Option<Str>,
    emit_invalid: bool,
    replace_invalid_sequence: bool,
    proto: Box<dyn Parser>,
    /// Parser instances (they need `&mut`): one is taken per batch, so batches on different threads
    /// do not wait for each other.
    pool: Mutex<Vec<Box<dyn Parser>>>,
}

pub fn build(s: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Filter>, ConfigError> {
    let key_name = s.required_str("key_name")?;
    let key = Accessor::parse_conf(s, "key_name", &key_name)?;
    let proto = match s.section("parse") {
        Some(p) => ctx.registry.build_parser(p, None, ctx)?,
        None if s.has("format") => ctx.registry.parser_of(s, "none", ctx)?,
        None => {
            return Err(s
                .error("<parse> section is required")
                .with_hint("add <parse> @type json </parse> (or regexp, ltsv, ...)"))
        }
    };
    let inject_key_prefix = s.opt_str("inject_key_prefix");
    let hash_value_field = s.opt_str("hash_value_field").map(Str::from);
    Ok(Arc::new(ParserFilter {
        key,
        reserve_data: s.bool_or("reserve_data", false)?,
        reserve_time: s.bool_or("reserve_time", false)?,
        remove_key_name_field: s.bool_or("remove_key_name_field", false)?,
        inject_key_prefix,
        hash_value_field,
        emit_invalid: s.bool_or("emit_invalid_record_to_error", true)?,
        replace_invalid_sequence: s.bool_or("replace_invalid_sequence", false)?,
        proto,
        pool: Mutex::new(Vec::new()),
    }))
}

enum Text<'a> {
    Missing,
    Ok(std::borrow::Cow<'a, str>),
    /// Fails with this reason; the record is dropped.
    Fail(&'static str),
}

impl ParserFilter {
    /// Fluentd's `handle_parsed`.
    fn handle_parsed(&self, mut record: Map, values: Map) -> Map {
        let values = match &self.inject_key_prefix {
            Some(p) => {
                let mut m = Map::with_capacity(values.len());
                for (k, v) in values {
                    let mut key = Str::from(p.as_str());
                    key.push_str(&k);
                    m.insert(key, v);
                }
                m
            }
            None => values,
        };
        let r = match &self.hash_value_field {
            Some(h) => {
                let mut m = Map::with_capacity(1);
                m.push_unchecked(h.clone(), Value::Map(values));
                m
            }
            None => values,
        };
        if self.reserve_data {
            record.merge(r);
            record
        } else {
            r
        }
    }

    fn error(&self, errors: &mut ErrorEvents, event: Event, reason: impl Into<String>) {
        if self.emit_invalid {
            errors.push(event, reason);
        }
    }

    /// Parse one event into `out`: nothing (dropped or held), one event, or several (a JSON array).
    fn one(&self, parser: &mut dyn Parser, mut ev: Event, errors: &mut ErrorEvents, out: &mut Events) {
        let text = match self.key.get(&ev.record) {
            None | Some(Value::Null) => Text::Missing,
            Some(Value::Str(s)) => Text::Ok(std::borrow::Cow::Borrowed(s.as_str())),
            Some(Value::Bytes(b)) => match std::str::from_utf8(b) {
                Ok(s) => Text::Ok(std::borrow::Cow::Borrowed(s)),
                Err(_) if self.replace_invalid_sequence => Text::Ok(std::borrow::Cow::Owned(scrub(b))),
                Err(_) => Text::Fail("invalid byte sequence in UTF-8"),
            },
            Some(_) => Text::Fail("parse failed: the value is not a string"),
        };
        let result = match text {
            Text::Missing => {
                if self.emit_invalid {
                    errors.push(ev.clone(), format!("{} does not exist", self.key));
                }
                if self.reserve_data {
                    ev.record = self.handle_parsed(ev.record, Map::new());
                    out.push(ev);
                }
                return;
            }
            Text::Fail(reason) => return self.error(errors, ev, reason),
            Text::Ok(t) => parser.parse(&t),
        };
        match result {
            Ok(Some(parsed)) => {
                let Some(more) = parser.take_extra() else {
                    return out.push(self.apply(ev, parsed));
                };
                let original = ev.clone();
                out.push(self.apply(ev, parsed));
                for next in std::iter::once(more).chain(std::iter::from_fn(|| parser.take_extra())) {
                    self.outcome(original.clone(), next, errors, out);
                }
            }
            // A joining parser kept the text for later lines: nothing to emit now (as Fluentd).
            Ok(None) => {}
            Err(e) => self.outcome(ev, Err(e), errors, out),
        }
    }

    fn outcome(&self, mut ev: Event, result: Result<Parsed, ParseError>, errors: &mut ErrorEvents, out: &mut Events) {
        match result {
            Ok(parsed) => out.push(self.apply(ev, parsed)),
            Err(ParseError::NotMatched(why)) => {
                if self.emit_invalid {
                    errors.push(ev.clone(), format!("pattern not matched in key '{}': {why}", self.key));
                }
                if self.reserve_data {
                    ev.record = self.handle_parsed(ev.record, Map::new());
                    out.push(ev);
                }
            }
            Err(ParseError::Time { reason, .. }) => {
                self.error(errors, ev, format!("invalid time format in key '{}': {reason}", self.key));
            }
            Err(e @ ParseError::TooLong { .. }) => self.error(errors, ev, format!("in key '{}': {e}", self.key)),
        }
    }

    /// The event with its parsed record and time, per reserve_time/remove_key_name_field/reserve_data.
    fn apply(&self, mut ev: Event, parsed: Parsed) -> Event {
        if !self.reserve_time {
            if let Some(t) = parsed.time {
                ev.time = t;
            }
        }
        if self.remove_key_name_field {
            self.key.remove(&mut ev.record);
        }
        ev.record = self.handle_parsed(ev.record, parsed.record);
        ev
    }
}

impl Filter for ParserFilter {
    fn filter(&self, tag: &str, events: &mut Events, errors: &mut ErrorEvents) {
        let mut parser = self.pool.lock().pop().unwrap_or_else(|| self.proto.new_instance());
        let before = errors.events.len();
        let input = std::mem::take(events);
        events.reserve(input.len());
        for ev in input {
            self.one(parser.as_mut(), ev, errors, events);
        }
        self.pool.lock().push(parser);
        let failed = errors.events.len() - before;
        if failed > 0 {
            tracing::debug!(tag, failed, "parser filter: records failed to parse");
        }
    }
}
