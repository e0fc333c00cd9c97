//! `json`: one JSON object per line, or an array of objects (one event each, as in Fluentd). `time_key`
//! defaults to `time` and `time_type` to `float`, as in Fluentd; `json_parser` (oj, yajl, json) is accepted
//! and has no effect.
use super::common::{ParserCommon, ParserDefaults};
use super::time::TimeType;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{parse_json_value, JsonError, Value};
use sluice_core::plugin::{BuildCtx, ParseError, Parsed, Parser};
use std::collections::VecDeque;

pub const DEFAULTS: ParserDefaults =
    ParserDefaults { time_key: Some("time"), time_type: TimeType::Float, time_format: None, keep_time_key: false };

#[derive(Clone)]
pub struct JsonParser {
    common: ParserCommon,
    /// The objects of an array after the first, for `take_extra`.
    extra: VecDeque<Result<Parsed, ParseError>>,
}

impl JsonParser {
    pub fn from_element(e: &Element) -> Result<Self, ConfigError> {
        e.enum_or("json_parser", &["oj", "yajl", "json"], "oj")?;
        let _ = e.get("stream_buffer_size");
        Ok(JsonParser { common: ParserCommon::from_element(e, &DEFAULTS)?, extra: VecDeque::new() })
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
        self.extra.clear();
        match parse_json_value(line).map_err(|e| json_error(&e))? {
            Value::Map(record) => self.common.finish(record).map(Some),
            Value::Array(items) => {
                let mut each = items.into_iter().map(|v| match v {
                    Value::Map(record) => self.common.finish(record),
                    _ => Err(json_error(&JsonError::NotAnObject)),
                });
                let first = each.next();
                self.extra = each.collect();
                first.unwrap_or_else(|| Err(ParseError::NotMatched("JSON array holds no object".into()))).map(Some)
            }
            _ => Err(json_error(&JsonError::NotAnObject)),
        }
    }

    fn take_extra(&mut self) -> Option<Result<Parsed, ParseError>> {
        self.extra.pop_front()
    }

    fn new_instance(&self) -> Box<dyn Parser> {
        Box::new(self.clone())
    }
}
