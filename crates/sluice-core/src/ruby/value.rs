//! Ruby values of the subset, and how they print (`to_s`, `inspect`) and convert to and from records.
use crate::event::{EventTime, Map, Str, Value};
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq)]
pub enum RValue {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Sym(String),
    Array(Vec<RValue>),
    /// An insertion-ordered Hash (records are small: linear lookup).
    Hash(Vec<(RValue, RValue)>),
    Range(i64, i64, bool),
    Time(RTime),
    /// Fluentd's `use_nil` / `use_default`: the whole parameter becomes nil / its default.
    UseNil,
    UseDefault,
}

/// A Ruby `Time`: an instant and whether it shows itself in UTC or local time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RTime {
    pub t: EventTime,
    pub utc: bool,
}

impl RValue {
    pub fn truthy(&self) -> bool {
        !matches!(self, RValue::Nil | RValue::Bool(false))
    }

    /// Ruby's class name, for error messages as Ruby words them.
    pub fn class_name(&self) -> &'static str {
        match self {
            RValue::Nil => "nil",
            RValue::Bool(true) => "true",
            RValue::Bool(false) => "false",
            RValue::Int(_) => "Integer",
            RValue::Float(_) => "Float",
            RValue::Str(_) => "String",
            RValue::Sym(_) => "Symbol",
            RValue::Array(_) => "Array",
            RValue::Hash(_) => "Hash",
            RValue::Range(..) => "Range",
            RValue::Time(_) => "Time",
            RValue::UseNil | RValue::UseDefault => "Object",
        }
    }

    pub fn str(s: impl Into<String>) -> RValue {
        RValue::Str(s.into())
    }

    /// Ruby's `to_s`.
    pub fn to_s(&self) -> String {
        let mut out = String::new();
        self.write_to_s(&mut out);
        out
    }

    pub fn write_to_s(&self, out: &mut String) {
        match self {
            RValue::Nil | RValue::UseNil | RValue::UseDefault => {}
            RValue::Str(s) | RValue::Sym(s) => out.push_str(s),
            RValue::Time(t) => out.push_str(&t.to_s()),
            RValue::Range(a, b, excl) => {
                let _ = write!(out, "{a}{}{b}", if *excl { "..." } else { ".." });
            }
            other => other.write_inspect(out),
        }
    }

    /// Ruby's `inspect` (how arrays and hashes print their items).
    pub fn inspect(&self) -> String {
        let mut out = String::new();
        self.write_inspect(&mut out);
        out
    }

    pub fn write_inspect(&self, out: &mut String) {
        match self {
            RValue::Nil | RValue::UseNil | RValue::UseDefault => out.push_str("nil"),
            RValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            RValue::Int(i) => {
                let _ = write!(out, "{i}");
            }
            RValue::Float(f) => out.push_str(&super::print::float_to_s(*f)),
            RValue::Str(s) => inspect_str(s, out),
            RValue::Sym(s) => {
                out.push(':');
                out.push_str(s);
            }
            RValue::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write_inspect(out);
                }
                out.push(']');
            }
            RValue::Hash(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.write_inspect(out);
                    out.push_str("=>");
                    v.write_inspect(out);
                }
                out.push('}');
            }
            RValue::Range(..) => self.write_to_s(out),
            RValue::Time(t) => out.push_str(&t.to_s()),
        }
    }

    pub fn from_value(v: &Value) -> RValue {
        match v {
            Value::Null => RValue::Nil,
            Value::Bool(b) => RValue::Bool(*b),
            Value::Int(i) => RValue::Int(*i),
            Value::UInt(u) => i64::try_from(*u).map(RValue::Int).unwrap_or(RValue::Float(*u as f64)),
            Value::Float(f) => RValue::Float(*f),
            Value::Str(s) => RValue::Str(s.to_string()),
            Value::Bytes(b) => RValue::Str(String::from_utf8_lossy(b).into_owned()),
            Value::Array(a) => RValue::Array(a.iter().map(RValue::from_value).collect()),
            Value::Map(m) => RValue::from_map(m),
        }
    }

    pub fn from_map(m: &Map) -> RValue {
        RValue::Hash(m.iter().map(|(k, v)| (RValue::Str(k.to_string()), RValue::from_value(v))).collect())
    }

    /// The record value this becomes: symbols and times as their text, hash keys as their `to_s`.
    pub fn into_value(self) -> Value {
        match self {
            RValue::Nil | RValue::UseNil | RValue::UseDefault => Value::Null,
            RValue::Bool(b) => Value::Bool(b),
            RValue::Int(i) => Value::Int(i),
            RValue::Float(f) => Value::Float(f),
            RValue::Str(s) | RValue::Sym(s) => Value::Str(Str::from(s)),
            RValue::Array(a) => Value::Array(a.into_iter().map(RValue::into_value).collect()),
            RValue::Hash(entries) => {
                let mut m = Map::with_capacity(entries.len());
                for (k, v) in entries {
                    m.insert(k.to_s(), v.into_value());
                }
                Value::Map(m)
            }
            other => Value::Str(Str::from(other.to_s())),
        }
    }
}

impl RTime {
    /// Ruby's `Time#to_s`: `2024-01-02 03:04:05 +0900`, or `... UTC` for a UTC time.
    pub fn to_s(&self) -> String {
        let fmt = if self.utc { "%Y-%m-%d %H:%M:%S UTC" } else { "%Y-%m-%d %H:%M:%S %z" };
        self.strftime(fmt)
    }

    pub fn strftime(&self, fmt: &str) -> String {
        match crate::timefmt::TimeFormatter::new(Some(fmt), !self.utc, None) {
            Ok(f) => f.format(self.t),
            Err(_) => String::new(),
        }
    }

    /// Ruby's `Time#iso8601(digits)`.
    pub fn iso8601(&self, digits: i64) -> String {
        let frac = if digits > 0 { format!(".%{}N", digits.min(9)) } else { String::new() };
        let zone = if self.utc { "Z" } else { "%:z" };
        self.strftime(&format!("%Y-%m-%dT%H:%M:%S{frac}{zone}"))
    }
}

/// Ruby's `String#inspect`, the one [`super::print`] writes for record values.
fn inspect_str(s: &str, out: &mut String) {
    let mut b = Vec::with_capacity(s.len() + 2);
    super::print::write_inspect_str(s.as_bytes(), &mut b);
    // Valid UTF-8 in, valid UTF-8 out: the escapes are ASCII.
    out.push_str(&String::from_utf8_lossy(&b));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printing_as_ruby_does() {
        assert_eq!(RValue::Float(1.0).to_s(), "1.0");
        assert_eq!(RValue::Float(1e20).to_s(), "1.0e+20");
        assert_eq!(RValue::Float(0.00001).to_s(), "1.0e-05");
        assert_eq!(RValue::Nil.to_s(), "");
        let a = RValue::Array(vec![RValue::str("a\"b"), RValue::Int(1), RValue::Nil, RValue::Sym("s".into())]);
        assert_eq!(a.to_s(), r#"["a\"b", 1, nil, :s]"#);
        let h = RValue::Hash(vec![(RValue::str("k"), RValue::Float(1.5))]);
        assert_eq!(h.to_s(), r#"{"k"=>1.5}"#);
        // Strings inspect as records' strings do (Ruby's String#inspect): \uXXXX controls, `#{` escaped.
        assert_eq!(RValue::str("a\u{1}\x1b#{x}").inspect(), r##""a\u0001\e\#{x}""##);
    }
}
