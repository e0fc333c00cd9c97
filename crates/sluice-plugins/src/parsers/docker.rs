//! `docker`: Docker json-file log lines `{"log":"...","stream":"stdout","time":"..."}`. Docker splits
//! output lines longer than 16 KiB into pieces whose `log` does not end with a newline; those pieces
//! are joined (per stream) into one event carrying the first piece's fields and time. The time comes
//! from `time` (RFC 3339 with nanoseconds), which is kept in the record by default.
use super::common::{ParserCommon, ParserDefaults};
use super::json::json_error;
use super::time::TimeType;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{parse_json_map, Map, Str, Value};
use sluice_core::plugin::{BuildCtx, ParseError, Parsed, Parser};

pub const DEFAULTS: ParserDefaults = ParserDefaults {
    time_key: Some("time"),
    time_type: TimeType::String,
    time_format: Some("%Y-%m-%dT%H:%M:%S.%NZ"),
    keep_time_key: true,
};

#[derive(Clone)]
pub struct DockerParser {
    common: ParserCommon,
    /// First piece's record (its `log` holding the text so far), one per stream.
    partials: Vec<(Str, Map)>,
}

pub fn build(e: &Element, _ctx: &BuildCtx) -> Result<Box<dyn Parser>, ConfigError> {
    Ok(Box::new(DockerParser { common: ParserCommon::from_element(e, &DEFAULTS)?, partials: Vec::new() }))
}

fn stream_of(record: &Map) -> Str {
    record.get("stream").and_then(Value::as_str).map(Str::from).unwrap_or_default()
}

fn log_text(record: &Map) -> Option<&str> {
    record.get("log").and_then(Value::as_str)
}

impl Parser for DockerParser {
    fn parse(&mut self, line: &str) -> Result<Option<Parsed>, ParseError> {
        let mut record = parse_json_map(line).map_err(|e| json_error(&e))?;
        let Some(log) = log_text(&record) else {
            return self.common.finish(record).map(Some);
        };
        let complete = log.ends_with('\n');
        let stream = stream_of(&record);
        let pos = self.partials.iter().position(|(s, _)| *s == stream);
        if let Some(i) = pos {
            let piece = log.to_string();
            let first = &mut self.partials[i].1;
            if let Some(Value::Str(text)) = first.get_mut("log") {
                text.push_str(&piece);
            }
            if !complete {
                return Ok(None);
            }
            record = self.partials.swap_remove(i).1;
        } else if !complete {
            self.partials.push((stream, record));
            return Ok(None);
        }
        self.common.finish(record).map(Some)
    }

    fn flush(&mut self) -> Option<Parsed> {
        while !self.partials.is_empty() {
            let (_, record) = self.partials.remove(0);
            if let Ok(p) = self.common.finish(record) {
                return Some(p);
            }
        }
        None
    }

    fn is_joining(&self) -> bool {
        true
    }

    fn new_instance(&self) -> Box<dyn Parser> {
        Box::new(DockerParser { common: self.common.clone(), partials: Vec::new() })
    }
}
