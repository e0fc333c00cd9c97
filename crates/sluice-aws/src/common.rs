//! What the outputs share: `<inject>`, turning an event into the bytes of one record (`<format>`,
//! `data_key`, compression), and strftime with Ruby's `%N`.
use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{EventTime, Map, Value};
use sluice_core::plugin::{BuildCtx, Formatter};
use std::io::Write;
use std::sync::Arc;

/// strftime with Ruby's `%N`/`%3N`/`%6N`/`%9N` (chrono spells them `%9f` ...).
pub fn strftime_ruby(fmt: &str) -> String {
    let mut out = String::with_capacity(fmt.len() + 4);
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some('N') => {
                chars.next();
                out.push_str("%9f");
            }
            Some(d @ ('3' | '6' | '9')) => {
                chars.next();
                if chars.peek() == Some(&'N') {
                    chars.next();
                    out.push('%');
                    out.push(d);
                    out.push('f');
                } else {
                    out.push('%');
                    out.push(d);
                }
            }
            Some('%') => {
                chars.next();
                out.push_str("%%");
            }
            _ => out.push('%'),
        }
    }
    out
}

/// Format a time with a Ruby strftime pattern, in UTC or local time.
pub fn format_time(sec: i64, nsec: u32, fmt: &str, utc: bool) -> String {
    use chrono::TimeZone;
    use std::fmt::Write as _;
    let f = strftime_ruby(fmt);
    let mut s = String::new();
    let ok = if utc {
        match chrono::Utc.timestamp_opt(sec, nsec).single() {
            Some(t) => write!(s, "{}", t.format(&f)).is_ok(),
            None => false,
        }
    } else {
        match chrono::Local.timestamp_opt(sec, nsec).single() {
            Some(t) => write!(s, "{}", t.format(&f)).is_ok(),
            None => false,
        }
    };
    if ok {
        s
    } else {
        sec.to_string()
    }
}

/// `<inject>`: add the time, tag or hostname to each record before formatting.
#[derive(Debug, Clone, Default)]
pub struct Inject {
    time_key: Option<String>,
    time_type: String,
    time_format: String,
    utc: bool,
    tag_key: Option<String>,
    hostname_key: Option<String>,
    hostname: String,
}

impl Inject {
    /// Read `<inject>` (None when absent). `default_time_type`/`default_time_format` are the plugin's.
    pub fn from_conf(
        conf: &Element,
        ctx: &BuildCtx,
        default_time_type: &str,
        default_time_format: &str,
    ) -> Result<Option<Inject>, ConfigError> {
        let Some(s) = conf.section("inject") else {
            return Ok(None);
        };
        let time_type = s.enum_or("time_type", &["float", "unixtime", "string"], default_time_type)?;
        let localtime = s.bool_or("localtime", false)?;
        let utc = s.bool_or("utc", !localtime)?;
        let _ = s.get("timezone");
        let host = if ctx.system.hostname.is_empty() {
            gethostname::gethostname().to_string_lossy().into_owned()
        } else {
            ctx.system.hostname.clone()
        };
        Ok(Some(Inject {
            time_key: s.opt_str("time_key"),
            time_type,
            time_format: s.str_or("time_format", default_time_format),
            utc,
            tag_key: s.opt_str("tag_key"),
            hostname_key: s.opt_str("hostname_key"),
            hostname: s.str_or("hostname", &host),
        }))
    }

    /// Fluentd's v0.12 compat parameters (`include_time_key`, `time_key`, `time_format`, `localtime`,
    /// `include_tag_key`, `tag_key`) that Fluentd turns into an `<inject>` section; None when neither
    /// `include_*` is true.
    pub fn from_compat(conf: &Element) -> Result<Option<Inject>, ConfigError> {
        let with_time = conf.bool_or("include_time_key", false)?;
        let with_tag = conf.bool_or("include_tag_key", false)?;
        if !with_time && !with_tag {
            return Ok(None);
        }
        let localtime = conf.bool_or("localtime", false)?;
        Ok(Some(Inject {
            time_key: with_time.then(|| conf.str_or("time_key", "time")),
            time_type: "string".into(),
            time_format: conf.str_or("time_format", "%Y-%m-%dT%H:%M:%S%z"),
            utc: !localtime,
            tag_key: with_tag.then(|| conf.str_or("tag_key", "tag")),
            hostname_key: None,
            hostname: String::new(),
        }))
    }

    pub fn apply(&self, tag: &str, time: EventTime, record: &mut Map) {
        if let Some(k) = &self.hostname_key {
            record.insert(k.as_str(), Value::Str(self.hostname.as_str().into()));
        }
        if let Some(k) = &self.tag_key {
            record.insert(k.as_str(), Value::Str(tag.into()));
        }
        if let Some(k) = &self.time_key {
            let v = match self.time_type.as_str() {
                "unixtime" => Value::Int(time.sec),
                "string" => Value::Str(format_time(time.sec, time.nsec, &self.time_format, self.utc).into()),
                _ => Value::Float(time.as_f64()),
            };
            record.insert(k.as_str(), v);
        }
    }
}

/// `compression` of the Kinesis plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compress {
    None,
    Zlib,
    Gzip,
}

/// Turns an event into the bytes of one Kinesis/Firehose record.
pub struct RecordData {
    formatter: Arc<dyn Formatter>,
    inject: Option<Inject>,
    data_key: Option<String>,
    compression: Compress,
    /// Remove the formatter's trailing newline (`chomp_record`).
    chomp: bool,
    /// Add one newline after chomping (Firehose's `append_new_line`).
    append_new_line: bool,
}

impl RecordData {
    pub fn from_conf(
        conf: &Element,
        ctx: &BuildCtx,
        append_new_line_default: Option<bool>,
    ) -> Result<Self, ConfigError> {
        let formatter = ctx.registry.formatter_of(conf, "json", ctx)?;
        let inject = Inject::from_conf(conf, ctx, "string", "%Y-%m-%dT%H:%M:%S.%N%z")?;
        let compression = match conf.enum_or("compression", &["", "zlib", "gzip"], "")?.as_str() {
            "zlib" => Compress::Zlib,
            "gzip" => Compress::Gzip,
            _ => Compress::None,
        };
        let append_new_line = match append_new_line_default {
            Some(d) => conf.bool_or("append_new_line", d)?,
            None => false,
        };
        Ok(RecordData {
            formatter,
            inject,
            data_key: conf.opt_str("data_key").filter(|s| !s.is_empty()),
            compression,
            chomp: conf.bool_or("chomp_record", false)?,
            append_new_line,
        })
    }

    /// The record's bytes, or why it cannot be sent (never containing record content).
    pub fn encode(&self, tag: &str, time: EventTime, record: Map) -> Result<Vec<u8>, String> {
        let mut data = match &self.data_key {
            Some(k) => match record.get(k) {
                None | Some(Value::Null) => return Err(format!("data_key '{k}' not found in record")),
                Some(Value::Bytes(b)) => b.clone(),
                Some(v) => v.to_display_string().into_bytes(),
            },
            None => {
                let mut record = record;
                if let Some(inj) = &self.inject {
                    inj.apply(tag, time, &mut record);
                }
                let mut out = Vec::with_capacity(256);
                self.formatter.format(tag, time, &record, &mut out);
                out
            }
        };
        if self.chomp || self.append_new_line {
            while data.last() == Some(&b'\n') {
                data.pop();
                if data.last() == Some(&b'\r') {
                    data.pop();
                }
                if !self.append_new_line {
                    break;
                }
            }
        }
        if self.append_new_line {
            data.push(b'\n');
        }
        compress(self.compression, data).map_err(|e| format!("compression failed: {e}"))
    }
}

pub fn compress(c: Compress, data: Vec<u8>) -> std::io::Result<Vec<u8>> {
    match c {
        Compress::None => Ok(data),
        Compress::Zlib => {
            let mut e = ZlibEncoder::new(Vec::with_capacity(data.len() / 2 + 16), Compression::default());
            e.write_all(&data)?;
            e.finish()
        }
        Compress::Gzip => {
            let mut e = GzEncoder::new(Vec::with_capacity(data.len() / 2 + 16), Compression::default());
            e.write_all(&data)?;
            e.finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruby_nanos() {
        assert_eq!(strftime_ruby("%Y-%m-%dT%H:%M:%S.%N%z"), "%Y-%m-%dT%H:%M:%S.%9f%z");
        assert_eq!(strftime_ruby("%3N|%%N"), "%3f|%%N");
        assert_eq!(format_time(0, 5_000_000, "%Y%m%d%H %3N", true), "1970010100 005");
    }
}
