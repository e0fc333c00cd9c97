//! `record_transformer` with `enable_ruby true`: each `${...}` holds Ruby (sluice's subset,
//! `sluice_core::ruby`), compiled once and evaluated per record with Fluentd's names: `record`, `tag`,
//! `time`, `tag_parts`, `tag_prefix`, `tag_suffix`, `hostname`.
//!
//! As in Fluentd's RubyPlaceholderExpander, a value that is exactly one `${expr}` (with `auto_typecast`)
//! keeps the type of `expr`; any other value is a Ruby string `"...#{expr}..."`, and keys are always strings.
use sluice_core::config::{ConfigError, Location};
use sluice_core::event::{EventTime, Map, Str, Value};
use sluice_core::ruby::{Context, Program, RTime, RValue};

const NAMES: &[&str] = &["record", "tag", "time", "tag_parts", "tag_prefix", "tag_suffix", "hostname"];

/// One compiled expression and the text it came from (for messages).
#[derive(Debug, Clone)]
pub struct Expr {
    source: String,
    prog: Program,
}

/// A compiled `<record>` value: an expression, or a JSON value whose strings are expressions.
#[derive(Debug, Clone)]
pub enum RTmpl {
    Expr(Expr),
    Map(Vec<(Expr, RTmpl)>),
    Array(Vec<RTmpl>),
    Other(Value),
}

/// Compile a `<record>` key: always a string.
pub fn compile_key(k: &str, loc: &Location) -> Result<Expr, ConfigError> {
    compile_str(k, false, loc)
}

/// Compile a `<record>` value (Fluentd's `parse_value`: text starting with `{` or `[` is JSON when it parses).
pub fn compile_value(v: &str, auto_typecast: bool, loc: &Location) -> Result<RTmpl, ConfigError> {
    if v.starts_with('{') || v.starts_with('[') {
        if let Ok(j) = serde_json::from_str::<serde_json::Value>(v) {
            return compile_json(j, auto_typecast, loc);
        }
    }
    Ok(RTmpl::Expr(compile_str(v, auto_typecast, loc)?))
}

fn compile_json(j: serde_json::Value, typed: bool, loc: &Location) -> Result<RTmpl, ConfigError> {
    Ok(match j {
        serde_json::Value::String(s) => RTmpl::Expr(compile_str(&s, typed, loc)?),
        serde_json::Value::Array(a) => {
            RTmpl::Array(a.into_iter().map(|v| compile_json(v, typed, loc)).collect::<Result<_, _>>()?)
        }
        serde_json::Value::Object(o) => RTmpl::Map(
            o.into_iter()
                .map(|(k, v)| Ok((compile_key(&k, loc)?, compile_json(v, typed, loc)?)))
                .collect::<Result<_, ConfigError>>()?,
        ),
        other => RTmpl::Other(Value::from(other)),
    })
}

fn compile_str(s: &str, typed: bool, loc: &Location) -> Result<Expr, ConfigError> {
    let single = typed && s.matches("${").count() == 1 && s.starts_with("${") && s.ends_with('}');
    let prog = if single {
        Program::parse(&s[2..s.len() - 1], NAMES)
    } else {
        Program::parse_interpolated(&s.replace("${", "#{"), NAMES)
    };
    let prog = prog.map_err(|e| {
        ConfigError::at(loc, format!("record_transformer: embedded Ruby '{s}': {e}"))
            .with_hint("enable_ruby evaluates sluice's Ruby subset: see \"Embedded Ruby\" in docs/config.md")
    })?;
    Ok(Expr { source: s.to_string(), prog })
}

/// The names one event's expressions see. The tag's arrays are built once per batch.
pub struct Vars<'a> {
    pub record: &'a Map,
    pub time: EventTime,
    pub batch: &'a BatchVars,
}

pub struct BatchVars {
    tag: RValue,
    parts: RValue,
    prefix: RValue,
    suffix: RValue,
    hostname: RValue,
}

impl BatchVars {
    pub fn new(tag: &str, parts: &[&str], prefix: &[&str], suffix: &[&str], hostname: &str) -> Self {
        let arr = |v: &[&str]| RValue::Array(v.iter().map(|s| RValue::str(*s)).collect());
        BatchVars {
            tag: RValue::str(tag),
            parts: arr(parts),
            prefix: arr(prefix),
            suffix: arr(suffix),
            hostname: RValue::str(hostname),
        }
    }
}

impl Context for Vars<'_> {
    fn get(&self, name: &str) -> Option<RValue> {
        Some(match name {
            "record" => RValue::from_map(self.record),
            "tag" => self.batch.tag.clone(),
            "time" => RValue::Time(RTime { t: self.time, utc: false }),
            "tag_parts" => self.batch.parts.clone(),
            "tag_prefix" => self.batch.prefix.clone(),
            "tag_suffix" => self.batch.suffix.clone(),
            "hostname" => self.batch.hostname.clone(),
            _ => return None,
        })
    }

    fn record_key(&self, key: &str) -> Option<Option<RValue>> {
        Some(self.record.get(key).map(RValue::from_value))
    }
}

fn run(e: &Expr, vars: &Vars<'_>) -> Result<RValue, String> {
    e.prog.eval(vars).map_err(|err| format!("record_transformer: failed to expand `{}`: {err}", e.source))
}

/// The key's text.
pub fn expand_key(e: &Expr, vars: &Vars<'_>) -> Result<Str, String> {
    Ok(Str::from(run(e, vars)?.to_s()))
}

/// The value for the record; an error (Ruby raised) sends the event to `@ERROR`.
pub fn expand(t: &RTmpl, vars: &Vars<'_>) -> Result<Value, String> {
    Ok(match t {
        RTmpl::Expr(e) => run(e, vars)?.into_value(),
        RTmpl::Map(entries) => {
            let mut m = Map::with_capacity(entries.len());
            for (k, v) in entries {
                m.insert(expand_key(k, vars)?, expand(v, vars)?);
            }
            Value::Map(m)
        }
        RTmpl::Array(items) => Value::Array(items.iter().map(|i| expand(i, vars)).collect::<Result<_, _>>()?),
        RTmpl::Other(v) => v.clone(),
    })
}
