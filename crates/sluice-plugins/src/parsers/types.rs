//! Fluentd's value conversion after parsing: `types` casts, `null_value_pattern` and
//! `null_empty_string`.
use super::time::{TimeSettings, TimeType, TimeValueParser};
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Map, Str, Value};
use sluice_core::ruby::print as ruby;
use sluice_core::ruby::regexp::RubyRegex;
use sluice_core::ruby::text as ruby_text;

#[derive(Clone)]
enum Cast {
    String,
    Integer,
    Float,
    Bool,
    Time(Box<TimeValueParser>),
    Array(String),
}

/// Everything `convert_values` does in Fluentd, built once from the `<parse>` section.
#[derive(Clone)]
pub struct ValueConverter {
    casts: Vec<(Str, Cast)>,
    null_pattern: Option<RubyRegex>,
    null_empty_string: bool,
}

impl ValueConverter {
    /// `None` when the section asks for no conversion, so parsers skip the pass entirely.
    pub fn from_element(e: &Element, time: &TimeSettings) -> Result<Option<Self>, ConfigError> {
        let mut casts = Vec::new();
        for (field, def) in e.hash("types")?.unwrap_or_default() {
            let (ty, option) = match def.split_once(':') {
                Some((t, o)) => (t, Some(o)),
                None => (def.as_str(), None),
            };
            let cast = match ty {
                "string" => Cast::String,
                "integer" => Cast::Integer,
                "float" => Cast::Float,
                "bool" => Cast::Bool,
                "array" => Cast::Array(option.unwrap_or(",").to_string()),
                "time" => Cast::Time(Box::new(
                    time_cast(option, time)
                        .map_err(|m| e.error_at("types", format!("types: time cast for '{field}': {m}")))?,
                )),
                other => {
                    return Err(e
                        .error_at("types", format!("unknown value conversion for key:'{field}', type:'{other}'"))
                        .with_hint("use one of: string, integer, float, bool, time, array"))
                }
            };
            casts.push((Str::from(field), cast));
        }
        let null_pattern = match e.get("null_value_pattern") {
            Some(p) => Some(
                // A Fluentd `:regexp` parameter: `/.../` is unwrapped, a bare source is used as is.
                RubyRegex::from_config(p).map_err(|err| e.error_at("null_value_pattern", err.to_string()))?,
            ),
            None => None,
        };
        let null_empty_string = e.bool_or("null_empty_string", false)?;
        if casts.is_empty() && null_pattern.is_none() && !null_empty_string {
            return Ok(None);
        }
        Ok(Some(ValueConverter { casts, null_pattern, null_empty_string }))
    }

    /// Apply the conversion to every field (nil stays nil; null-like strings become nil first).
    pub fn convert(&mut self, record: &mut Map) {
        for (key, value) in record.iter_mut() {
            if value.is_null() {
                continue;
            }
            if self.null_like(value) {
                *value = Value::Null;
                continue;
            }
            if let Some((_, cast)) = self.casts.iter_mut().find(|(k, _)| k == key) {
                *value = apply(cast, value);
            }
        }
    }

    fn null_like(&self, v: &Value) -> bool {
        let s = match v {
            Value::Str(s) => std::borrow::Cow::Borrowed(s.as_str()),
            Value::Bytes(b) => String::from_utf8_lossy(b),
            _ => return false,
        };
        (self.null_empty_string && s.is_empty()) || self.null_pattern.as_ref().is_some_and(|r| r.is_match(&s))
    }
}

/// `time:[timezone:]format`, where the format may be `unixtime` or `float`.
fn time_cast(option: Option<&str>, base: &TimeSettings) -> Result<TimeValueParser, String> {
    let Some(option) = option else {
        return base.parser_for(TimeType::String, None, None);
    };
    let (mut timezone, mut format) = match option.split_once(':') {
        Some((tz, f)) if super::time::valid_timezone(tz) => (Some(tz), f),
        _ => (None, option),
    };
    let ty = match format {
        "unixtime" => TimeType::Unixtime,
        "float" => TimeType::Float,
        _ => TimeType::String,
    };
    if ty != TimeType::String {
        format = "";
        timezone = None;
    }
    let format = (!format.is_empty()).then_some(format);
    base.parser_for(ty, format, timezone)
}

fn text(v: &Value) -> std::borrow::Cow<'_, str> {
    match v {
        Value::Str(s) => std::borrow::Cow::Borrowed(s.as_str()),
        other => std::borrow::Cow::Owned(ruby::to_s(other)),
    }
}

fn apply(cast: &mut Cast, v: &Value) -> Value {
    match cast {
        Cast::String => match v {
            Value::Str(_) | Value::Bytes(_) => v.clone(),
            other => Value::Str(Str::from(ruby::to_s(other))),
        },
        Cast::Integer => Value::Int(match v {
            Value::Int(i) => *i,
            Value::UInt(u) => i64::try_from(*u).unwrap_or(i64::MAX),
            Value::Float(f) if f.is_finite() => f.trunc() as i64,
            other => ruby_text::to_i(&text(other)),
        }),
        Cast::Float => Value::Float(match v {
            Value::Int(i) => *i as f64,
            Value::UInt(u) => *u as f64,
            Value::Float(f) => *f,
            other => ruby_text::to_f(&text(other)),
        }),
        Cast::Bool => {
            let t = text(v);
            Value::Bool(["true", "yes", "1"].iter().any(|w| t.eq_ignore_ascii_case(w)))
        }
        // Fluentd stores an EventTime, which serializes as its seconds.
        Cast::Time(p) => match p.parse_value(v) {
            Ok(t) => Value::Int(t.sec),
            Err(_) => Value::Null,
        },
        Cast::Array(delim) => {
            let t = text(v);
            Value::Array(ruby_text::split(&t, delim).into_iter().map(Value::from).collect())
        }
    }
}
