//! Fluentd's record accessor: `key`, `$.a.b`, `$.a[0]`, `$.a[-1]`, `$['a']['b c']`, `$["a"][0]`.
//!
//! Parsing follows Fluentd's `PluginHelper::RecordAccessor`:
//! * a parameter not starting with `$.` or `$[` is a plain top-level key (and so is `$.key` or `$['key']`
//!   with a single key: those are as fast as [`Map::get`]);
//! * dot notation splits on `.`; whitespace inside a key is an error (use brackets); `[N]` after a key
//!   is an array index (`Integer()` semantics, so negative indexes count from the end);
//! * bracket notation takes quoted keys (`'..'` or `".."`) and unquoted integer indexes.
//!
//! Looking up an index in a map, or a key in an array, finds nothing (Ruby's `dig` would return nil or raise;
//! a missing value is what every caller handles).
use crate::config::{ConfigError, Element};
use crate::event::{Map, Str, Value};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid record accessor '{param}': {reason}")]
pub struct AccessorError {
    pub param: String,
    pub reason: String,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(Str),
    Index(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Inner {
    Simple(Str),
    Path(Vec<Segment>),
}

/// A parsed record accessor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accessor {
    source: String,
    inner: Inner,
}

impl fmt::Display for Accessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn err(param: &str, reason: impl Into<String>) -> AccessorError {
    AccessorError { param: param.to_string(), reason: reason.into() }
}

fn parse_index(s: &str, param: &str) -> Result<i64, AccessorError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(err(param, "missing array index in '[]'"));
    }
    let t2 = t.replace('_', "");
    t2.parse::<i64>()
        .map_err(|_| err(param, format!("array index '{s}' is not an integer (quote string keys: ['{s}'])")))
}

fn parse_dot(param: &str) -> Result<Vec<Segment>, AccessorError> {
    let body = &param[2..];
    let mut out = Vec::new();
    for key in body.split('.') {
        if let Some(start) = key.find('[') {
            if start > 0 {
                out.push(Segment::Key(Str::from(&key[..start])));
            }
            let mut rest = &key[start + 1..];
            let mut in_bracket = true;
            while !rest.is_empty() {
                if in_bracket {
                    let i = rest.find(']').ok_or_else(|| err(param, "'[' found but ']' not found"))?;
                    out.push(Segment::Index(parse_index(&rest[..i], param)?));
                    rest = &rest[i + 1..];
                    in_bracket = false;
                } else if let Some(r) = rest.strip_prefix('[') {
                    rest = r;
                    in_bracket = true;
                } else {
                    return Err(err(param, "found more characters after ']'"));
                }
            }
            if in_bracket {
                return Err(err(param, "'[' found but ']' not found"));
            }
        } else {
            if key.is_empty() {
                return Err(err(param, "empty key in dot notation"));
            }
            out.push(Segment::Key(Str::from(key)));
        }
    }
    if out.is_empty() {
        return Err(err(param, "empty keys in dot notation"));
    }
    for s in &out {
        if let Segment::Key(k) = s {
            if k.chars().any(char::is_whitespace) {
                return Err(err(
                    param,
                    format!("whitespace character is not allowed in dot notation. Use bracket notation: {k}"),
                ));
            }
        }
    }
    Ok(out)
}

fn parse_bracket(param: &str) -> Result<Vec<Segment>, AccessorError> {
    let mut rest = &param[1..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let Some(r) = rest.strip_prefix('[') else {
            return Err(err(param, "found more characters after ']'"));
        };
        rest = r;
        match rest.as_bytes().first() {
            Some(&q) if q == b'\'' || q == b'"' => {
                let close = if q == b'\'' { "']" } else { "\"]" };
                let i = rest[1..].find(close).ok_or_else(|| {
                    if rest[1..].contains("']") || rest[1..].contains("\"]") {
                        err(param, "mismatched quotes")
                    } else {
                        err(param, "incomplete bracket")
                    }
                })?;
                out.push(Segment::Key(Str::from(&rest[1..1 + i])));
                rest = &rest[1 + i + 2..];
            }
            _ => {
                let i = rest.find(']').ok_or_else(|| err(param, "'[' found but ']' not found"))?;
                out.push(Segment::Index(parse_index(&rest[..i], param)?));
                rest = &rest[i + 1..];
            }
        }
    }
    if out.is_empty() {
        return Err(err(param, "empty keys in bracket notation"));
    }
    Ok(out)
}

fn step<'a>(v: &'a Value, seg: &Segment) -> Option<&'a Value> {
    match (v, seg) {
        (Value::Map(m), Segment::Key(k)) => m.get(k),
        (Value::Array(a), Segment::Index(i)) => a.get(resolve_index(*i, a.len())?),
        _ => None,
    }
}

fn step_mut<'a>(v: &'a mut Value, seg: &Segment) -> Option<&'a mut Value> {
    match (v, seg) {
        (Value::Map(m), Segment::Key(k)) => m.get_mut(k),
        (Value::Array(a), Segment::Index(i)) => {
            let idx = resolve_index(*i, a.len())?;
            a.get_mut(idx)
        }
        _ => None,
    }
}

/// The position index `i` names in an array of `len` items (negative counts from the end), if any.
pub fn resolve_index(i: i64, len: usize) -> Option<usize> {
    if i >= 0 {
        let u = usize::try_from(i).ok()?;
        (u < len).then_some(u)
    } else {
        let back = usize::try_from(i.unsigned_abs()).ok()?;
        len.checked_sub(back)
    }
}

impl Accessor {
    /// Parse a record accessor parameter (Fluentd's syntax).
    pub fn parse(param: &str) -> Result<Accessor, AccessorError> {
        let segs = if param.starts_with("$.") {
            parse_dot(param)?
        } else if param.starts_with("$[") {
            parse_bracket(param)?
        } else {
            return Ok(Accessor { source: param.to_string(), inner: Inner::Simple(Str::from(param)) });
        };
        let inner = match segs.as_slice() {
            [Segment::Key(k)] => Inner::Simple(k.clone()),
            _ => Inner::Path(segs),
        };
        Ok(Accessor { source: param.to_string(), inner })
    }

    /// Parse parameter `key` of `conf` (the text is `value`), turning a syntax error into a config error at
    /// that parameter's line.
    pub fn parse_conf(conf: &Element, key: &str, value: &str) -> Result<Accessor, ConfigError> {
        Accessor::parse(value).map_err(|e| conf.error_at(key, e.to_string()))
    }

    /// A plain top-level key (no path).
    pub fn is_simple(&self) -> bool {
        matches!(self.inner, Inner::Simple(_))
    }

    /// The top-level key when [`is_simple`](Self::is_simple).
    pub fn simple_key(&self) -> Option<&str> {
        match &self.inner {
            Inner::Simple(k) => Some(k),
            Inner::Path(_) => None,
        }
    }

    /// The path as segments (a simple key is one segment).
    pub fn segments(&self) -> Vec<Segment> {
        match &self.inner {
            Inner::Simple(k) => vec![Segment::Key(k.clone())],
            Inner::Path(p) => p.clone(),
        }
    }

    /// The parameter text this accessor was parsed from.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    #[inline]
    pub fn get<'a>(&self, record: &'a Map) -> Option<&'a Value> {
        match &self.inner {
            Inner::Simple(k) => record.get(k),
            Inner::Path(p) => {
                let (first, rest) = p.split_first()?;
                let Segment::Key(k) = first else { return None };
                let mut cur = record.get(k)?;
                for seg in rest {
                    cur = step(cur, seg)?;
                }
                Some(cur)
            }
        }
    }

    #[inline]
    pub fn get_mut<'a>(&self, record: &'a mut Map) -> Option<&'a mut Value> {
        match &self.inner {
            Inner::Simple(k) => record.get_mut(k),
            Inner::Path(p) => {
                let (first, rest) = p.split_first()?;
                let Segment::Key(k) = first else { return None };
                let mut cur = record.get_mut(k)?;
                for seg in rest {
                    cur = step_mut(cur, seg)?;
                }
                Some(cur)
            }
        }
    }

    /// Set the value at the path. Missing intermediate maps are created (`$.a.b` on `{}` gives
    /// `{"a":{"b":v}}`); an array index must exist (it is replaced). Returns false when the path runs
    /// through a value that is neither a map nor an array, or through a missing array element.
    pub fn set(&self, record: &mut Map, value: Value) -> bool {
        match &self.inner {
            Inner::Simple(k) => {
                record.insert(k.clone(), value);
                true
            }
            Inner::Path(p) => {
                let Some((last, parents)) = p.split_last() else {
                    return false;
                };
                let Some((first, mid)) = parents.split_first() else {
                    return false;
                };
                let Segment::Key(fk) = first else {
                    return false;
                };
                if !record.contains_key(fk) {
                    record.insert(fk.clone(), Value::Map(Map::new()));
                }
                let Some(mut cur) = record.get_mut(fk) else {
                    return false;
                };
                for seg in mid {
                    if let (Value::Map(m), Segment::Key(k)) = (&mut *cur, seg) {
                        if !m.contains_key(k) {
                            m.insert(k.clone(), Value::Map(Map::new()));
                        }
                    }
                    match step_mut(cur, seg) {
                        Some(next) => cur = next,
                        None => return false,
                    }
                }
                match (cur, last) {
                    (Value::Map(m), Segment::Key(k)) => {
                        m.insert(k.clone(), value);
                        true
                    }
                    (Value::Array(a), Segment::Index(i)) => match resolve_index(*i, a.len()) {
                        Some(idx) => {
                            a[idx] = value;
                            true
                        }
                        None if *i >= 0 && usize::try_from(*i).ok() == Some(a.len()) => {
                            a.push(value);
                            true
                        }
                        None => false,
                    },
                    _ => false,
                }
            }
        }
    }

    /// Remove the value at the path and return it (an array element is removed, shifting the rest).
    pub fn remove(&self, record: &mut Map) -> Option<Value> {
        match &self.inner {
            Inner::Simple(k) => record.remove(k),
            Inner::Path(p) => {
                let (last, parents) = p.split_last()?;
                let (first, mid) = parents.split_first()?;
                let Segment::Key(fk) = first else { return None };
                let mut cur = record.get_mut(fk)?;
                for seg in mid {
                    cur = step_mut(cur, seg)?;
                }
                match (cur, last) {
                    (Value::Map(m), Segment::Key(k)) => m.remove(k),
                    (Value::Array(a), Segment::Index(i)) => {
                        let idx = resolve_index(*i, a.len())?;
                        Some(a.remove(idx))
                    }
                    _ => None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record;

    fn sample() -> Map {
        let mut inner = record! {"b" => "B", "b c" => "spaced"};
        inner.insert("arr", Value::Array(vec![Value::from(1i64), Value::from(record! {"x" => "X"})]));
        record! {"k" => "v", "a" => inner, "key.with.dot" => "dotted"}
    }

    fn acc(s: &str) -> Accessor {
        Accessor::parse(s).unwrap()
    }

    #[test]
    fn simple_keys() {
        let m = sample();
        assert!(acc("k").is_simple());
        assert!(acc("$.k").is_simple());
        assert!(acc("$['k']").is_simple());
        assert_eq!(acc("k").get(&m), Some(&Value::from("v")));
        assert_eq!(acc("$.k").get(&m), Some(&Value::from("v")));
        // A plain parameter is a literal key, dots and all.
        assert_eq!(acc("key.with.dot").get(&m), Some(&Value::from("dotted")));
        assert_eq!(acc("$['key.with.dot']").get(&m), Some(&Value::from("dotted")));
        assert_eq!(acc("missing").get(&m), None);
        assert_eq!(acc("k").simple_key(), Some("k"));
    }

    #[test]
    fn nested_paths() {
        let m = sample();
        assert_eq!(acc("$.a.b").get(&m), Some(&Value::from("B")));
        assert_eq!(acc("$['a']['b c']").get(&m), Some(&Value::from("spaced")));
        assert_eq!(acc("$[\"a\"][\"b\"]").get(&m), Some(&Value::from("B")));
        assert_eq!(acc("$.a.arr[0]").get(&m), Some(&Value::Int(1)));
        assert_eq!(acc("$.a.arr[1].x").get(&m), Some(&Value::from("X")));
        assert_eq!(acc("$.a.arr[-1].x").get(&m), Some(&Value::from("X")));
        assert_eq!(acc("$['a']['arr'][1]['x']").get(&m), Some(&Value::from("X")));
        assert_eq!(acc("$.a.arr[2]").get(&m), None);
        assert_eq!(acc("$.a.arr[-3]").get(&m), None);
        assert_eq!(acc("$.a.b.c").get(&m), None);
        assert_eq!(acc("$.a.arr.x").get(&m), None);
        assert_eq!(acc("$[0]").get(&m), None);
        assert!(!acc("$.a.b").is_simple());
        assert_eq!(
            acc("$.a.arr[1][0]").segments(),
            vec![Segment::Key("a".into()), Segment::Key("arr".into()), Segment::Index(1), Segment::Index(0)]
        );
    }

    #[test]
    fn syntax_errors() {
        for bad in
            ["$.", "$.a..b", "$.a b", "$.a[", "$.a[]", "$.a[x]", "$.a[0]x", "$[", "$['a'", "$['a\"]", "$['a']x", "$[a]"]
        {
            assert!(Accessor::parse(bad).is_err(), "{bad} should fail");
        }
        let e = Accessor::parse("$.a b").unwrap_err();
        assert!(e.to_string().contains("bracket notation"), "{e}");
    }

    #[test]
    fn get_mut_set_remove() {
        let mut m = sample();
        if let Some(v) = acc("$.a.b").get_mut(&mut m) {
            *v = Value::from("changed");
        }
        assert_eq!(acc("$.a.b").get(&m), Some(&Value::from("changed")));

        assert!(acc("$.new.deep.key").set(&mut m, Value::Int(7)));
        assert_eq!(acc("$.new.deep.key").get(&m), Some(&Value::Int(7)));
        assert!(acc("$.a.arr[0]").set(&mut m, Value::Int(9)));
        assert_eq!(acc("$.a.arr[0]").get(&m), Some(&Value::Int(9)));
        assert!(!acc("$.k.sub").set(&mut m, Value::Int(1)));
        assert!(acc("top").set(&mut m, Value::Null));
        assert_eq!(m.get("top"), Some(&Value::Null));

        assert_eq!(acc("$.a.arr[-1].x").remove(&mut m), Some(Value::from("X")));
        assert_eq!(acc("$.a.arr[0]").remove(&mut m), Some(Value::Int(9)));
        assert_eq!(acc("$.a.arr").get(&m), Some(&Value::Array(vec![Value::Map(Map::new())])));
        assert_eq!(acc("$['a']['b c']").remove(&mut m), Some(Value::from("spaced")));
        assert_eq!(acc("$.a.nope").remove(&mut m), None);
        assert_eq!(acc("k").remove(&mut m), Some(Value::from("v")));
        assert!(!m.contains_key("k"));
    }

    #[test]
    fn display_is_source() {
        assert_eq!(acc("$['a']['b c']").to_string(), "$['a']['b c']");
        assert_eq!(acc("$['a']['b c']").as_str(), "$['a']['b c']");
    }
}
