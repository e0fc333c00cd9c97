//! Formatter-side time output: Fluentd's `time_type` (string, unixtime, float) with `time_format`,
//! `localtime`/`utc`/`timezone`. Keeps the last formatted second, since consecutive events mostly share it.
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::EventTime;
use sluice_core::timefmt::TimeFormatter;
use std::sync::Mutex;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TimeKind {
    String,
    Unixtime,
    Float,
}

pub struct TimeOutput {
    kind: TimeKind,
    formatter: Option<TimeFormatter>,
    /// Whether the format shows fractions (`%L`, `%N`, `%Q`); if not, equal seconds give equal text.
    subsec: bool,
    cache: Mutex<Option<(EventTime, String)>>,
}

/// Whether the zone parameters ask for local time (Fluentd: `localtime` unless `utc` or `timezone`).
pub fn localtime_of(e: &Element) -> Result<bool, ConfigError> {
    if e.has("localtime") && e.has("utc") {
        return Err(e.error_at("utc", "both of utc and localtime are specified, use only one of them"));
    }
    Ok(match (e.has("localtime"), e.has("utc")) {
        (true, _) => e.bool_or("localtime", true)?,
        (_, true) => !e.bool_or("utc", false)?,
        _ => true,
    })
}

impl TimeOutput {
    /// From a section's `time_type` (`default_kind` when absent; `time_as_epoch true` means unixtime),
    /// `time_format` and zone parameters.
    pub fn from_element(e: &Element, default_kind: TimeKind) -> Result<Self, ConfigError> {
        let mut kind = match e.get("time_type") {
            Some(_) => match e.enum_or("time_type", &["string", "unixtime", "float"], "string")?.as_str() {
                "unixtime" => TimeKind::Unixtime,
                "float" => TimeKind::Float,
                _ => TimeKind::String,
            },
            None => default_kind,
        };
        if e.bool_or("time_as_epoch", false)? {
            kind = TimeKind::Unixtime;
        }
        let localtime = localtime_of(e)?;
        let format = e.opt_str("time_format");
        let timezone = e.opt_str("timezone");
        Self::new(kind, format.as_deref(), localtime && timezone.is_none(), timezone.as_deref())
            .map_err(|m| e.error(format!("invalid time settings: {m}")))
    }

    pub fn new(kind: TimeKind, format: Option<&str>, localtime: bool, timezone: Option<&str>) -> Result<Self, String> {
        let formatter = match kind {
            TimeKind::String => Some(TimeFormatter::new(format, localtime, timezone)?),
            _ => None,
        };
        let subsec = formatter.as_ref().is_some_and(TimeFormatter::has_subsec);
        Ok(TimeOutput { kind, formatter, subsec, cache: Mutex::new(None) })
    }

    /// Append the time text.
    pub fn write(&self, t: EventTime, out: &mut Vec<u8>) {
        match self.kind {
            TimeKind::Unixtime => {
                use std::io::Write;
                let _ = write!(out, "{}", t.sec);
            }
            TimeKind::Float => {
                // Ruby's `time.to_r.to_f`: the nearest double to the exact time.
                let f: f64 = format!("{}.{:09}", t.sec, t.nsec).parse().unwrap_or(t.as_f64());
                sluice_core::ruby::print::write_float(f, out);
            }
            TimeKind::String => {
                let Some(f) = &self.formatter else { return };
                let key = if self.subsec { t } else { EventTime::new(t.sec, 0) };
                if let Ok(mut c) = self.cache.lock() {
                    if let Some((k, s)) = c.as_ref() {
                        if *k == key {
                            out.extend_from_slice(s.as_bytes());
                            return;
                        }
                    }
                    // Format into the cached text's own buffer: no allocation once it is warm.
                    let (k, s) = c.get_or_insert_with(|| (key, String::with_capacity(32)));
                    *k = key;
                    s.clear();
                    f.format_into(t, s);
                    out.extend_from_slice(s.as_bytes());
                    return;
                }
                out.extend_from_slice(f.format(t).as_bytes());
            }
        }
    }
}

/// Fluentd's `newline` parameter (`lf` or `crlf`) and `add_newline`.
pub fn newline_of(e: &Element, add_newline_default: bool) -> Result<&'static [u8], ConfigError> {
    if !e.bool_or("add_newline", add_newline_default)? {
        return Ok(b"");
    }
    Ok(match e.enum_or("newline", &["lf", "crlf"], "lf")?.as_str() {
        "crlf" => b"\r\n",
        _ => b"\n",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_kinds() {
        let mut out = Vec::new();
        TimeOutput::new(TimeKind::Float, None, false, None)
            .unwrap()
            .write(EventTime::new(1362020400, 123_000_000), &mut out);
        assert_eq!(out, b"1362020400.123");
        out.clear();
        TimeOutput::new(TimeKind::Float, None, false, None).unwrap().write(EventTime::new(1362020400, 0), &mut out);
        assert_eq!(out, b"1362020400.0");
        out.clear();
        TimeOutput::new(TimeKind::Unixtime, None, false, None).unwrap().write(EventTime::new(1362020400, 5), &mut out);
        assert_eq!(out, b"1362020400");
    }

    #[test]
    fn string_cache_tells_milliseconds_apart() {
        // `%Q` shows milliseconds: two events in one second must not share the cached text.
        let t = TimeOutput::new(TimeKind::String, Some("%s %Q"), false, None).unwrap();
        let mut out = Vec::new();
        t.write(EventTime::new(1362020400, 1_000_000), &mut out);
        out.push(b'|');
        t.write(EventTime::new(1362020400, 2_000_000), &mut out);
        out.push(b'|');
        t.write(EventTime::new(1362020400, 2_500_000), &mut out);
        assert_eq!(out, b"1362020400 1362020400001|1362020400 1362020400002|1362020400 1362020400002");
    }
}
