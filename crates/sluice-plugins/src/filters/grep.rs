//! `grep`: keep or drop events by regexps on record fields, as Fluentd's `filter_grep`.
//!
//! * top-level `<regexp>`s must all match (and), top-level `<exclude>`s drop on any match (or);
//! * `<and>` holds either `<regexp>`s (all must match) or `<exclude>`s (drop when all match);
//! * `<or>` holds either `<regexp>`s (at least one must match) or `<exclude>`s (drop on any match);
//! * the legacy `regexp1`..`regexp20` / `exclude1`..`exclude20` (`KEY PATTERN`) still work.
//!
//! Keys are record accessors (`$.a.b`). A missing value matches as the empty string, other non-string
//! values as their `to_s` text, and bytes that are not UTF-8 after replacing invalid sequences with `?`
//! (what Fluentd's `scrub('?')` retry does).
//!
//! A pattern that gives up before deciding (the backtracking limit) never silently counts as "no match":
//! by default (`on_regexp_give_up error`) the record goes to `@ERROR`.
use sluice_core::accessor::Accessor;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Events, Map, Value};
use sluice_core::plugin::{BuildCtx, ErrorEvents, Filter};
use sluice_core::ruby::regexp::{GaveUp, OnGiveUp, RubyFlags, RubyRegex};
use sluice_core::ruby::text::scrub;
use std::borrow::Cow;
use std::sync::Arc;

/// How many legacy `regexpN`/`excludeN` parameters Fluentd reads.
const LEGACY_MAX: usize = 20;

struct Expression {
    key: Accessor,
    pattern: RubyRegex,
}

impl Expression {
    fn matches(&self, record: &Map, on: OnGiveUp) -> Result<bool, GaveUp> {
        let text: Cow<'_, str> = match self.key.get(record) {
            None => Cow::Borrowed(""),
            Some(Value::Str(s)) => Cow::Borrowed(s.as_str()),
            Some(Value::Bytes(b)) => Cow::Owned(scrub(b)),
            // Ruby's `to_s`: 1.0 is "1.0", arrays and hashes as `inspect` prints them.
            Some(v) => Cow::Owned(sluice_core::ruby::print::to_s(v)),
        };
        on.apply(self.pattern.try_is_match(&text))
    }
}

/// Conditions grouped as Fluentd groups them; each group keeps one expression per key (declaration order).
#[derive(Default)]
struct Groups {
    regexp_and: Vec<Expression>,
    regexp_or: Vec<Expression>,
    exclude_and: Vec<Expression>,
    exclude_or: Vec<Expression>,
}

pub struct Grep {
    groups: Groups,
    on_give_up: OnGiveUp,
}

impl Grep {
    /// Whether the record is kept, or [`GaveUp`] when a test that decides it could not be made.
    fn keep(&self, r: &Map) -> Result<bool, GaveUp> {
        let (g, on) = (&self.groups, self.on_give_up);
        for x in &g.regexp_and {
            if !x.matches(r, on)? {
                return Ok(false);
            }
        }
        if !g.regexp_or.is_empty() && !any(&g.regexp_or, r, on)? {
            return Ok(false);
        }
        if !g.exclude_and.is_empty() && !any_not(&g.exclude_and, r, on)? {
            return Ok(false);
        }
        Ok(!any(&g.exclude_or, r, on)?)
    }
}

/// Whether any expression matches (stops at the first match).
fn any(list: &[Expression], r: &Map, on: OnGiveUp) -> Result<bool, GaveUp> {
    for x in list {
        if x.matches(r, on)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether any expression does not match (stops at the first that does not).
fn any_not(list: &[Expression], r: &Map, on: OnGiveUp) -> Result<bool, GaveUp> {
    for x in list {
        if !x.matches(r, on)? {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Filter for Grep {
    fn filter(&self, _tag: &str, events: &mut Events, errors: &mut ErrorEvents) {
        events.retain(|e| match self.keep(&e.record) {
            Ok(keep) => keep,
            Err(g) => {
                // Rare: the only place an event is copied.
                errors.push(e.clone(), format!("grep: {g}"));
                false
            }
        });
    }
}

fn push_unique(list: &mut Vec<Expression>, e: Expression, sec: &Element, what: &str) -> Result<(), ConfigError> {
    if list.iter().any(|x| x.key.as_str() == e.key.as_str()) {
        return Err(sec.error_at("key", format!("Duplicate key{what}: {}", e.key)));
    }
    list.push(e);
    Ok(())
}

/// A `<regexp>` or `<exclude>` section: `key` (record accessor) and `pattern` (`/re/flags` or bare).
fn expression(sec: &Element) -> Result<Expression, ConfigError> {
    let key = sec.required_str("key")?;
    let pattern = sec.required_str("pattern")?;
    let key = Accessor::parse_conf(sec, "key", &key)?;
    let pattern =
        RubyRegex::from_config(&pattern).map_err(|e| sec.error_at("pattern", format!("'pattern' parameter: {e}")))?;
    Ok(Expression { key, pattern })
}

pub fn build(s: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Filter>, ConfigError> {
    let mut g = Groups::default();
    let on_give_up = OnGiveUp::from_conf(s)?;

    // Legacy `regexpN KEY PATTERN` / `excludeN KEY PATTERN`: the pattern is a bare Ruby regexp source.
    for (prefix, exclude) in [("regexp", false), ("exclude", true)] {
        for i in 1..=LEGACY_MAX {
            let name = format!("{prefix}{i}");
            let Some(v) = s.opt_str(&name) else { continue };
            tracing::warn!("'{name}' parameter is deprecated: Use <{prefix}> section");
            let Some((key, pat)) = v.split_once(' ') else {
                return Err(s.error_at(&name, format!("{name} does not contain 2 parameters")));
            };
            let key = Accessor::parse_conf(s, &name, key)?;
            let pattern = RubyRegex::new(pat, RubyFlags::default())
                .map_err(|e| s.error_at(&name, format!("'{name}' parameter: {e}")))?;
            let list = if exclude { &mut g.exclude_or } else { &mut g.regexp_and };
            if list.iter().any(|x| x.key.as_str() == key.as_str()) {
                return Err(s.error_at(&name, format!("{name} contains a duplicated key, {key}")));
            }
            list.push(Expression { key, pattern });
        }
    }

    let regexps: Vec<&Element> = s.sections("regexp").collect();
    if regexps.len() > 1 {
        tracing::info!("Top level multiple <regexp> is interpreted as 'and' condition");
    }
    for sec in regexps {
        push_unique(&mut g.regexp_and, expression(sec)?, sec, "")?;
    }
    let excludes: Vec<&Element> = s.sections("exclude").collect();
    if excludes.len() > 1 {
        tracing::info!("Top level multiple <exclude> is interpreted as 'or' condition");
    }
    for sec in excludes {
        push_unique(&mut g.exclude_or, expression(sec)?, sec, "")?;
    }

    for (name, and) in [("and", true), ("or", false)] {
        for cond in s.sections(name) {
            let rs: Vec<&Element> = cond.sections("regexp").collect();
            let es: Vec<&Element> = cond.sections("exclude").collect();
            if !rs.is_empty() && !es.is_empty() {
                return Err(cond.error(format!("Do not specify both <regexp> and <exclude> in <{name}>")));
            }
            if rs.is_empty() && es.is_empty() {
                tracing::warn!(line = cond.loc.line, "empty <{name}> section in grep has no effect");
            }
            let what = format!(" in <{name}>");
            for sec in rs {
                let list = if and { &mut g.regexp_and } else { &mut g.regexp_or };
                push_unique(list, expression(sec)?, sec, &what)?;
            }
            for sec in es {
                let list = if and { &mut g.exclude_and } else { &mut g.exclude_or };
                push_unique(list, expression(sec)?, sec, &what)?;
            }
        }
    }
    Ok(Arc::new(Grep { groups: g, on_give_up }))
}
