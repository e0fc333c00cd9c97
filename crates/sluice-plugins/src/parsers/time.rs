//! Fluentd's parser-side time handling: `time_type` (string, unixtime, float, mixed), `time_format`,
//! `time_format_fallbacks`, `localtime`/`utc`/`timezone`, and the two-entry cache Fluentd keeps (log
//! lines mostly repeat the previous line's timestamp).
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{EventTime, Value};
use sluice_core::plugin::ParseError;
use sluice_core::ruby::print::float_to_s;
use sluice_core::ruby::text as ruby_text;
use sluice_core::timefmt::TimeParser;
pub use sluice_core::timefmt::{days_from_civil, parse_rfc3339};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeType {
    String,
    Unixtime,
    Float,
    Mixed,
}

impl TimeType {
    fn from_word(s: &str) -> Option<TimeType> {
        Some(match s {
            "string" => TimeType::String,
            "unixtime" => TimeType::Unixtime,
            "float" => TimeType::Float,
            "mixed" => TimeType::Mixed,
            _ => return None,
        })
    }
}

/// The time parameters of a `<parse>` section.
#[derive(Debug, Clone)]
pub struct TimeSettings {
    pub time_type: TimeType,
    pub time_format: Option<String>,
    pub localtime: bool,
    pub utc: bool,
    pub timezone: Option<String>,
    pub fallbacks: Vec<String>,
}

impl TimeSettings {
    /// Read the parameters, with the parser's own defaults for `time_type` and `time_format`. As in
    /// Fluentd's json parser, a `time_format` without a `time_type` means `string`.
    pub fn from_element(
        e: &Element,
        default_type: TimeType,
        default_format: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let has_format = e.has("time_format");
        let time_type = match e.get("time_type") {
            Some(_) => {
                let w = e.enum_or("time_type", &["string", "unixtime", "float", "mixed"], "string")?;
                TimeType::from_word(&w).unwrap_or(TimeType::String)
            }
            None if has_format => TimeType::String,
            None => default_type,
        };
        if e.has("localtime") && e.has("utc") {
            return Err(e.error_at("utc", "both of utc and localtime are specified, use only one of them"));
        }
        let localtime = match (e.has("localtime"), e.has("utc")) {
            (true, _) => e.bool_or("localtime", true)?,
            (_, true) => !e.bool_or("utc", false)?,
            _ => true,
        };
        let timezone = e.opt_str("timezone");
        if let Some(tz) = &timezone {
            if !valid_timezone(tz) {
                return Err(e
                    .error_at("timezone", format!("invalid timezone {tz:?}"))
                    .with_hint("write an offset such as +09:00 or a zone name such as Asia/Tokyo"));
            }
        }
        let time_format = e.opt_str("time_format").or_else(|| default_format.map(str::to_string));
        Ok(TimeSettings {
            time_type,
            time_format,
            localtime,
            utc: !localtime,
            timezone,
            fallbacks: e.array_or_empty("time_format_fallbacks")?,
        })
    }

    /// Fluentd's `time_parser_create` with the section's settings.
    pub fn parser(&self) -> Result<TimeValueParser, String> {
        self.parser_for(self.time_type, self.time_format.as_deref(), self.timezone.as_deref())
    }

    /// A string parser with another format (apache2, syslog, cri defaults) and the section's zone settings.
    pub fn parser_with_format(&self, format: &str) -> Result<TimeValueParser, String> {
        self.parser_for(TimeType::String, Some(format), self.timezone.as_deref())
    }

    pub fn parser_for(
        &self,
        ty: TimeType,
        format: Option<&str>,
        timezone: Option<&str>,
    ) -> Result<TimeValueParser, String> {
        let localtime = self.localtime && timezone.is_none();
        let kind = match ty {
            TimeType::Unixtime => Kind::Unixtime,
            TimeType::Float => Kind::Float,
            TimeType::String => Kind::Str(StrParser::new(format, localtime, timezone)?),
            TimeType::Mixed => {
                let mut kinds = Vec::new();
                for f in format.into_iter().chain(self.fallbacks.iter().map(String::as_str)) {
                    kinds.push(match f {
                        "unixtime" => Kind::Unixtime,
                        "float" => Kind::Float,
                        f => Kind::Str(StrParser::new(Some(f), localtime, timezone)?),
                    });
                }
                if kinds.is_empty() {
                    return Err("time_type mixed needs time_format or time_format_fallbacks".into());
                }
                Kind::Mixed(kinds)
            }
        };
        Ok(TimeValueParser { kind, cache: Cache::default() })
    }
}

/// Whether `tz` is a zone Fluentd accepts (`+09:00`, `+0900`, `+09`, `Asia/Tokyo`...).
pub fn valid_timezone(tz: &str) -> bool {
    sluice_core::timefmt::Zone::parse(tz).is_ok()
}

#[derive(Clone)]
enum Kind {
    Str(StrParser),
    Unixtime,
    Float,
    Mixed(Vec<Kind>),
}

/// Fluentd keeps the last two (text, time) pairs: consecutive lines often share a timestamp.
#[derive(Clone, Default)]
struct Cache {
    keys: [String; 2],
    times: [Option<EventTime>; 2],
    next: usize,
}

impl Cache {
    fn get(&self, s: &str) -> Option<EventTime> {
        (0..2).find(|&i| self.times[i].is_some() && self.keys[i] == s).and_then(|i| self.times[i])
    }
    fn put(&mut self, s: &str, t: EventTime) {
        let i = self.next;
        self.keys[i].clear();
        self.keys[i].push_str(s);
        self.times[i] = Some(t);
        self.next = 1 - i;
    }
}

/// Turns a record's time value into an [`EventTime`].
#[derive(Clone)]
pub struct TimeValueParser {
    kind: Kind,
    cache: Cache,
}

fn time_error(value: &str, reason: impl Into<String>) -> ParseError {
    // Keep the quoted value short: it comes from the input.
    let value: String = value.chars().take(64).collect();
    ParseError::Time { value, reason: reason.into() }
}

impl TimeValueParser {
    /// Parse a time value from a record (a string, or a number for unixtime/float/mixed).
    pub fn parse_value(&mut self, v: &Value) -> Result<EventTime, ParseError> {
        match v {
            Value::Str(s) => self.parse_str(s),
            Value::Bytes(b) => self.parse_str(&String::from_utf8_lossy(b)),
            other => parse_kind_value(&self.kind, other),
        }
    }

    /// Parse time text.
    pub fn parse_str(&mut self, s: &str) -> Result<EventTime, ParseError> {
        if let Some(t) = self.cache.get(s) {
            return Ok(t);
        }
        let t = parse_kind_str(&self.kind, s)?;
        self.cache.put(s, t);
        Ok(t)
    }
}

fn parse_kind_str(kind: &Kind, s: &str) -> Result<EventTime, ParseError> {
    match kind {
        Kind::Str(p) => p.parse(s).map_err(|reason| time_error(s, reason)),
        Kind::Unixtime => Ok(EventTime::new(ruby_text::to_i(s), 0)),
        Kind::Float => Ok(parse_float_text(s)),
        Kind::Mixed(kinds) => {
            let mut last = None;
            for k in kinds {
                match parse_kind_str(k, s) {
                    Ok(t) => return Ok(t),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| time_error(s, "no time format matched")))
        }
    }
}

fn parse_kind_value(kind: &Kind, v: &Value) -> Result<EventTime, ParseError> {
    match (kind, v) {
        (Kind::Unixtime, Value::Int(i)) => Ok(EventTime::new(*i, 0)),
        (Kind::Unixtime, Value::UInt(u)) => Ok(EventTime::new(i64::try_from(*u).unwrap_or(i64::MAX), 0)),
        (Kind::Unixtime, Value::Float(f)) if f.is_finite() => Ok(EventTime::new(f.trunc() as i64, 0)),
        (Kind::Float, Value::Int(i)) => Ok(EventTime::new(*i, 0)),
        (Kind::Float, Value::UInt(u)) => Ok(EventTime::new(i64::try_from(*u).unwrap_or(i64::MAX), 0)),
        (Kind::Float, Value::Float(f)) => Ok(parse_float_text(&float_to_s(*f))),
        (Kind::Mixed(kinds), v) => kinds.iter().find_map(|k| parse_kind_value(k, v).ok()).ok_or_else(|| value_error(v)),
        (Kind::Str(_), _) => Err(time_error(&brief(v), "value must be string")),
        _ => Err(value_error(v)),
    }
}

fn value_error(v: &Value) -> ParseError {
    time_error(&brief(v), "value must be a string or a number")
}

fn brief(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Array(_) => "(array)".into(),
        Value::Map(_) => "(hash)".into(),
        other => other.to_display_string(),
    }
}

/// Fluentd's `time_type float` on text: `sec.nsec` with up to nine fraction digits. Text that is not a
/// number but is an RFC 3339 timestamp (`2024-05-01T12:00:00.000Z`, as many JSON logs carry under the
/// default `time_type float` of the json parser) is read as one; Fluentd would take the leading
/// digits (`2024`) as seconds. Anything else gets Fluentd's lenient reading.
pub fn parse_float_text(s: &str) -> EventTime {
    let t = s.trim_start();
    let numeric = t.strip_prefix(['-', '+']).unwrap_or(t).bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'_');
    if !numeric {
        if let Some(t) = parse_rfc3339(s) {
            return t;
        }
    }
    let mut parts = s.splitn(3, '.');
    let sec = ruby_text::to_i(parts.next().unwrap_or(""));
    let nsec = match parts.next() {
        Some(frac) => {
            let mut digits = [b'0'; 9];
            for (d, c) in digits.iter_mut().zip(frac.bytes()) {
                *d = c;
            }
            let text = std::str::from_utf8(&digits).unwrap_or("0");
            ruby_text::to_i(text).clamp(0, 999_999_999) as u32
        }
        None => 0,
    };
    EventTime::new(sec, nsec)
}

/// A string time parser: `sluice_core::timefmt`, with the RFC 3339 fast path in front for the formats
/// that are exactly that.
#[derive(Clone)]
struct StrParser {
    inner: TimeParser,
    rfc3339_fast: bool,
}

impl StrParser {
    fn new(format: Option<&str>, localtime: bool, timezone: Option<&str>) -> Result<Self, String> {
        if format.is_none() && (timezone.is_some() || !localtime) {
            return Err("specifying timezone requires time format".into());
        }
        let inner = TimeParser::new(format, localtime, timezone).map_err(|e| e.to_string())?;
        let rfc3339_fast = matches!(
            format,
            Some(
                "%Y-%m-%dT%H:%M:%S.%NZ"
                    | "%Y-%m-%dT%H:%M:%S.%L%z"
                    | "%Y-%m-%dT%H:%M:%S.%N%z"
                    | "%Y-%m-%dT%H:%M:%S%z"
                    | "%iso8601"
            )
        );
        Ok(StrParser { inner, rfc3339_fast })
    }

    fn parse(&self, s: &str) -> Result<EventTime, String> {
        if self.rfc3339_fast {
            if let Some(t) = parse_rfc3339(s) {
                return Ok(t);
            }
        }
        self.inner.parse(s).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_text_like_fluentd() {
        assert_eq!(parse_float_text("1362020400"), EventTime::new(1362020400, 0));
        assert_eq!(parse_float_text("1362020400.5"), EventTime::new(1362020400, 500_000_000));
        assert_eq!(parse_float_text("1362020400.123456789123"), EventTime::new(1362020400, 123456789));
        assert_eq!(parse_float_text("2024-05-01T12:00:00.000Z"), EventTime::new(1714564800, 0));
        assert_eq!(parse_float_text("abc"), EventTime::new(0, 0));
    }
}
