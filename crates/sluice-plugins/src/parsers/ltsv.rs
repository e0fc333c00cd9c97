//! `ltsv`: `label:value` pairs separated by tabs (`delimiter`, `delimiter_pattern`, `label_delimiter`).
use super::common::{ParserCommon, ParserDefaults};
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Map, Str, Value};
use sluice_core::plugin::{BuildCtx, ParseError, Parsed, Parser};
use sluice_core::ruby::regexp::RubyRegex;

#[derive(Clone)]
enum Delimiter {
    Text(String),
    Pattern(RubyRegex),
}

#[derive(Clone)]
pub struct LtsvParser {
    delimiter: Delimiter,
    label_delimiter: String,
    common: ParserCommon,
}

pub fn build(e: &Element, _ctx: &BuildCtx) -> Result<Box<dyn Parser>, ConfigError> {
    let delimiter = match e.get("delimiter_pattern") {
        Some(p) => {
            Delimiter::Pattern(RubyRegex::from_config(p).map_err(|m| e.error_at("delimiter_pattern", m.to_string()))?)
        }
        None => Delimiter::Text(e.str_or("delimiter", "\t")),
    };
    let label_delimiter = e.str_or("label_delimiter", ":");
    if label_delimiter.is_empty() {
        return Err(e.error_at("label_delimiter", "label_delimiter must not be empty"));
    }
    Ok(Box::new(LtsvParser {
        delimiter,
        label_delimiter,
        common: ParserCommon::from_element(e, &ParserDefaults::time_key())?,
    }))
}

impl LtsvParser {
    fn add_pair(&self, pair: &str, record: &mut Map) {
        // Fluentd 1.18 skips an item without the label delimiter (`next unless pair.include?(...)`), then
        // splits at the first delimiter.
        if let Some((k, v)) = pair.split_once(self.label_delimiter.as_str()) {
            record.insert(k, Value::Str(Str::from(v)));
        }
    }
}

impl Parser for LtsvParser {
    fn parse(&mut self, line: &str) -> Result<Option<Parsed>, ParseError> {
        let mut record = Map::new();
        match &self.delimiter {
            Delimiter::Text(d) if d == " " => {
                line.split_ascii_whitespace().for_each(|p| self.add_pair(p, &mut record));
            }
            Delimiter::Text(d) if d.is_empty() => self.add_pair(line, &mut record),
            Delimiter::Text(d) => line.split(d.as_str()).for_each(|p| self.add_pair(p, &mut record)),
            Delimiter::Pattern(re) => re.split(line).into_iter().for_each(|p| self.add_pair(p, &mut record)),
        }
        self.common.finish(record).map(Some)
    }

    fn new_instance(&self) -> Box<dyn Parser> {
        Box::new(self.clone())
    }
}
