//! `apache2`: Apache combined/common access logs, with Fluentd's record (`code` and `size` as integers,
//! `-` as nil).
//!
//! Lines are split by hand when their shape leaves Fluentd's regexp no choices to make (no backslash, no
//! stray quote, no tab in the request); anything else goes to the regexp itself, so the result is always
//! the one the regexp gives. A property test checks the two agree.
use super::common::{ParserCommon, ParserDefaults};
use super::regexp::CLF_TIME_FORMAT;
use super::time::TimeValueParser;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Map, Str, Value};
use sluice_core::plugin::{BuildCtx, ParseError, Parsed, Parser};
use sluice_core::ruby::regexp::{RubyRegex, Slots};
use sluice_core::ruby::text as ruby_text;

pub const APACHE2_EXPRESSION: &str = r#"^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>(?:[^\"]|\\.)*?)(?: +\S*)?)?" (?<code>[^ ]*) (?<size>[^ ]*)(?: "(?<referer>(?:[^\"]|\\.)*)" "(?<agent>(?:[^\"]|\\.)*)")?$"#;

/// The fields of one access-log line, borrowed from it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Fields<'a> {
    pub host: &'a str,
    pub user: &'a str,
    pub time: &'a str,
    pub method: &'a str,
    pub path: Option<&'a str>,
    pub code: &'a str,
    pub size: &'a str,
    pub referer: Option<&'a str>,
    pub agent: Option<&'a str>,
}

/// Split a line whose shape is unambiguous; `None` means "ask the regexp".
pub fn split_fast(line: &str) -> Option<Fields<'_>> {
    if line.contains('\n') {
        return None;
    }
    let (host, rest) = line.split_once(' ')?;
    let (_ident, rest) = rest.split_once(' ')?;
    let (user, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix('[')?;
    let (time, rest) = rest.split_once(']')?;
    let rest = rest.strip_prefix(" \"")?;
    let (request, tail) = rest.split_once('"')?;
    if request.bytes().any(|b| matches!(b, b'\\' | b'\t' | b'\r' | b'\x0B' | b'\x0C')) {
        return None;
    }
    // Without a space the method would run into the closing quote, where the regexp backtracks.
    let (method, after_method) = request.split_once(' ')?;
    if method.is_empty() {
        return None;
    }
    let target = after_method.trim_start_matches(' ');
    if target.is_empty() {
        return None;
    }
    // The lazy path stops at the start of the last run of spaces (the protocol follows it).
    let path = match target.rfind(' ') {
        Some(last) => &target[..target[..last].trim_end_matches(' ').len()],
        None => target,
    };
    if tail.contains('\\') {
        return None;
    }
    let tail = tail.strip_prefix(' ')?;
    let (code, tail) = tail.split_once(' ')?;
    let (size, rest) = match tail.find(' ') {
        Some(i) => (&tail[..i], Some(&tail[i..])),
        None => (tail, None),
    };
    let (referer, agent) = match rest {
        None => (None, None),
        Some(r) => {
            let r = r.strip_prefix(" \"")?;
            let (referer, r) = r.split_once('"')?;
            let r = r.strip_prefix(" \"")?;
            let agent = r.strip_suffix('"')?;
            if agent.contains('"') {
                return None;
            }
            (Some(referer), Some(agent))
        }
    };
    Some(Fields { host, user, time, method, path: Some(path), code, size, referer, agent })
}

#[derive(Clone)]
pub struct Apache2Parser {
    re: RubyRegex,
    slots: Slots,
    time: TimeValueParser,
    common: ParserCommon,
}

pub fn build(e: &Element, _ctx: &BuildCtx) -> Result<Box<dyn Parser>, ConfigError> {
    Ok(Box::new(Apache2Parser::from_element(e)?))
}

impl Apache2Parser {
    pub fn from_element(e: &Element) -> Result<Self, ConfigError> {
        let common = ParserCommon::from_element(e, &ParserDefaults::time_key())?;
        let time = common.time_parser_with_format(e, CLF_TIME_FORMAT)?;
        let re = RubyRegex::new(APACHE2_EXPRESSION, Default::default()).map_err(|m| e.error(m.to_string()))?;
        Ok(Apache2Parser { slots: re.slots(), re, time, common })
    }

    /// The regexp's answer, for lines the fast path declines.
    fn split_regex<'a>(&mut self, line: &'a str, scratch: &'a mut Map) -> Option<Fields<'a>> {
        if !self.re.captures_into(line, &mut self.slots, scratch) {
            return None;
        }
        let m: &'a Map = scratch;
        let get = |k: &str| m.get(k).and_then(Value::as_str);
        Some(Fields {
            host: get("host").unwrap_or(""),
            user: get("user").unwrap_or(""),
            time: get("time").unwrap_or(""),
            method: get("method").unwrap_or(""),
            path: get("path"),
            code: get("code").unwrap_or(""),
            size: get("size").unwrap_or(""),
            referer: get("referer"),
            agent: get("agent"),
        })
    }
}

fn dash_nil(s: Option<&str>) -> Value {
    match s {
        None | Some("-") => Value::Null,
        Some(s) => Value::Str(Str::from(s)),
    }
}

/// Fluentd's record for the fields (keys in its order).
pub fn record_of(f: &Fields<'_>) -> Map {
    let mut r = Map::with_capacity(9);
    r.push_unchecked(Str::const_new("host"), dash_nil(Some(f.host)));
    r.push_unchecked(Str::const_new("user"), dash_nil(Some(f.user)));
    r.push_unchecked(Str::const_new("method"), Value::Str(Str::from(f.method)));
    r.push_unchecked(Str::const_new("path"), f.path.map_or(Value::Null, |p| Value::Str(Str::from(p))));
    let code = ruby_text::to_i(f.code);
    r.push_unchecked(Str::const_new("code"), if code == 0 { Value::Null } else { Value::Int(code) });
    let size = if f.size == "-" { Value::Null } else { Value::Int(ruby_text::to_i(f.size)) };
    r.push_unchecked(Str::const_new("size"), size);
    r.push_unchecked(Str::const_new("referer"), dash_nil(f.referer));
    r.push_unchecked(Str::const_new("agent"), dash_nil(f.agent));
    r
}

impl Parser for Apache2Parser {
    fn parse(&mut self, line: &str) -> Result<Option<Parsed>, ParseError> {
        let mut scratch = Map::new();
        let fields = match split_fast(line) {
            Some(f) => f,
            None => match self.split_regex(line, &mut scratch) {
                Some(f) => f,
                None => return Err(ParseError::NotMatched("not an apache2 access log line".into())),
            },
        };
        let time = self.time.parse_str(fields.time)?;
        let mut record = record_of(&fields);
        if self.common.keep_time_key {
            record.push_unchecked(Str::const_new("time"), Value::Str(Str::from(fields.time)));
        }
        self.common.convert_values(&mut record);
        Ok(Some(Parsed { time: Some(time), record }))
    }

    fn new_instance(&self) -> Box<dyn Parser> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn regex_fields(line: &str) -> Option<Vec<Option<String>>> {
        let re = RubyRegex::new(APACHE2_EXPRESSION, Default::default()).unwrap();
        let mut m = Map::new();
        if !re.captures_into(line, &mut re.slots(), &mut m) {
            return None;
        }
        let keys = ["host", "user", "time", "method", "path", "code", "size", "referer", "agent"];
        Some(keys.iter().map(|k| m.get(k).and_then(Value::as_str).map(str::to_string)).collect())
    }

    fn fast_fields(f: &Fields<'_>) -> Vec<Option<String>> {
        let s = |x: &str| Some(x.to_string());
        vec![
            s(f.host),
            s(f.user),
            s(f.time),
            s(f.method),
            f.path.map(str::to_string),
            s(f.code),
            s(f.size),
            f.referer.map(str::to_string),
            f.agent.map(str::to_string),
        ]
    }

    #[test]
    fn fast_path_on_common_lines() {
        let line = r#"192.168.0.1 - - [28/Feb/2013:12:00:00 +0900] "GET / HTTP/1.1" 200 777 "-" "Opera/12.0""#;
        let f = split_fast(line).unwrap();
        assert_eq!(Some(fast_fields(&f)), regex_fields(line));
        let line = r#"1.2.3.4 - bob [01/May/2024:12:00:00 +0000] "GET /a b  HTTP/1.1" 404 - "https://x/" "curl/8""#;
        assert_eq!(split_fast(line).map(|f| fast_fields(&f)), regex_fields(line));
        let line = r#"1.2.3.4 - - [01/May/2024:12:00:00 +0000] "GET /x" 200 5"#;
        assert_eq!(split_fast(line).map(|f| fast_fields(&f)), regex_fields(line));
    }

    fn piece() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec!["a", "/", " ", "  ", "\"", "\\", "-", "x y", "\t", "[", "]", "1", "é"]),
            0..6,
        )
        .prop_map(|v| v.concat())
    }

    proptest! {
        // Whenever the fast path answers, it answers what the regexp answers.
        #[test]
        fn fast_path_agrees_with_regexp(host in piece(), req in piece(), code in piece(), size in piece(),
                                        referer in piece(), agent in piece(), with_agent in any::<bool>()) {
            let mut line = format!("{host} - u [01/May/2024:12:00:00 +0000] \"{req}\" {code} {size}");
            if with_agent {
                line.push_str(&format!(" \"{referer}\" \"{agent}\""));
            }
            if let Some(f) = split_fast(&line) {
                prop_assert_eq!(Some(fast_fields(&f)), regex_fields(&line), "line {:?}", line);
            }
        }
    }
}
