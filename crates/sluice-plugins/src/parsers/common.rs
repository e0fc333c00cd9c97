//! The parameters every Fluentd parser shares (`time_key`, `keep_time_key`, `estimate_current_event`,
//! the time parameters, `types`, `null_value_pattern`, `null_empty_string`), built once per section.
//! Parsers that produce a record and want Fluentd's `parse_time` + `convert_values` call
//! [`ParserCommon::finish`].
use super::time::{TimeSettings, TimeType, TimeValueParser};
use super::types::ValueConverter;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{EventTime, Map, Str};
use sluice_core::plugin::{ParseError, Parsed};

/// A parser's own defaults for the shared parameters (Fluentd's `config_set_default`).
#[derive(Debug, Clone, Copy)]
pub struct ParserDefaults {
    pub time_key: Option<&'static str>,
    pub time_type: TimeType,
    pub time_format: Option<&'static str>,
    pub keep_time_key: bool,
}

impl Default for ParserDefaults {
    fn default() -> Self {
        ParserDefaults { time_key: None, time_type: TimeType::String, time_format: None, keep_time_key: false }
    }
}

impl ParserDefaults {
    /// `time_key time`, the rest as Fluentd's base parser.
    pub fn time_key() -> Self {
        ParserDefaults { time_key: Some("time"), ..Default::default() }
    }
}

#[derive(Clone)]
pub struct ParserCommon {
    pub time_key: Option<Str>,
    pub keep_time_key: bool,
    pub estimate_current_event: bool,
    pub settings: TimeSettings,
    pub time: TimeValueParser,
    values: Option<ValueConverter>,
}

impl ParserCommon {
    pub fn from_element(e: &Element, d: &ParserDefaults) -> Result<Self, ConfigError> {
        let settings = TimeSettings::from_element(e, d.time_type, d.time_format)?;
        let time = settings.parser().map_err(|m| e.error(format!("invalid time settings: {m}")))?;
        let time_key = e.opt_str("time_key").or_else(|| d.time_key.map(str::to_string)).map(Str::from);
        // Accepted for compatibility; sluice has no per-parse timeout.
        let _ = e.get("timeout");
        Ok(ParserCommon {
            time_key,
            keep_time_key: e.bool_or("keep_time_key", d.keep_time_key)?,
            estimate_current_event: e.bool_or("estimate_current_event", true)?,
            values: ValueConverter::from_element(e, &settings)?,
            settings,
            time,
        })
    }

    /// A string time parser with a fixed format and this section's zone settings.
    pub fn time_parser_with_format(&self, e: &Element, format: &str) -> Result<TimeValueParser, ConfigError> {
        self.settings.parser_with_format(format).map_err(|m| e.error(format!("invalid time settings: {m}")))
    }

    /// Fluentd's `parse_time`: take (or, with `keep_time_key`, read) the `time_key` field and parse it.
    /// `None` when the record has no such field: the caller uses the current time.
    pub fn take_time(&mut self, record: &mut Map) -> Result<Option<EventTime>, ParseError> {
        let Some(key) = &self.time_key else {
            return Ok(None);
        };
        if self.keep_time_key {
            match record.get(key) {
                Some(v) => self.time.parse_value(v).map(Some),
                None => Ok(None),
            }
        } else {
            match record.remove(key) {
                Some(v) => self.time.parse_value(&v).map(Some),
                None => Ok(None),
            }
        }
    }

    /// Fluentd's `convert_values` (a no-op unless `types`, `null_value_pattern` or `null_empty_string` is set).
    pub fn convert_values(&mut self, record: &mut Map) {
        if let Some(v) = &mut self.values {
            v.convert(record);
        }
    }

    pub fn converts_values(&self) -> bool {
        self.values.is_some()
    }

    /// `parse_time` then `convert_values`, as most Fluentd parsers end.
    pub fn finish(&mut self, mut record: Map) -> Result<Parsed, ParseError> {
        let time = self.take_time(&mut record)?;
        self.convert_values(&mut record);
        Ok(Parsed { time, record })
    }
}
