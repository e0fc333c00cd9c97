//! `json`: one JSON object per line. `time_key` defaults to `time` and `time_type` to `float`, as in
//! Fluentd; `json_parser` (oj, yajl, json) is accepted and has no effect.
use super::common::{ParserCommon, ParserDefaults};
use super::time::TimeType;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{parse_json_map, JsonError};
use sluice_core::plugin::{BuildCtx, ParseError, Parsed, Parser};

pub const DEFAULTS: ParserDefaults =
    ParserDefaults { time_key: Some("time"), time_type: TimeType::Float, time_format: None, keep_time_key: false };

#[derive(Clone)]
pub struct JsonParser {
    common: ParserCommon,
}

impl JsonParser {
    pub fn from_element(e: &Element) -> Result<Self, ConfigError> {
        e.enum_or("json_parser", &["oj", "yajl", "json"], "oj")?;
        let _ = e.get("stream_buffer_size");
        Ok(JsonParser { common: ParserCommon::from_element(e, &DEFAULTS)? })
    }
}

pub fn build(e: &Element, _ctx: &BuildCtx) -> Result<Box<dyn Parser>, ConfigError> {
    Ok(Box::new(JsonParser::from_element(e)?))
}

/// Why a line is not a JSON object, without quoting the line.
pub fn json_error(e: &JsonError) -> ParseError {
    ParseError::NotMatched(match e {
        JsonError::NotAnObject => "JSON value is not an object".into(),
        JsonError::Syntax(s) => match s.classify() {
            serde_json::error::Category::Eof => {
                format!("invalid JSON: ends early at column {}", s.column())
            }
            _ => format!("invalid JSON: syntax error at column {}", s.column()),
        },
    })
}

impl Parser for JsonParser {
    fn parse(&mut self, line: &str) -> Result<Option<Parsed>, ParseError> {
        let record = parse_json_map(line).map_err(|e| json_error(&e))?;
        self.common.finish(record).map(Some)
    }

    fn new_instance(&self) -> Box<dyn Parser> {
        Box::new(self.clone())
    }
}
