//! `none`: the whole line as one field (`message_key`, default `message`), no time.
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Map, Str, Value};
use sluice_core::plugin::{BuildCtx, ParseError, Parsed, Parser};

#[derive(Clone)]
pub struct NoneParser {
    key: Str,
}

pub fn build(e: &Element, _ctx: &BuildCtx) -> Result<Box<dyn Parser>, ConfigError> {
    // Fluentd's none parser ignores the shared parameters; read them so they are not reported unused.
    for k in ["estimate_current_event", "time_key", "keep_time_key"] {
        let _ = e.get(k);
    }
    Ok(Box::new(NoneParser { key: Str::from(e.str_or("message_key", "message")) }))
}

impl Parser for NoneParser {
    fn parse(&mut self, line: &str) -> Result<Option<Parsed>, ParseError> {
        let mut record = Map::with_capacity(1);
        record.push_unchecked(self.key.clone(), Value::Str(Str::from(line)));
        Ok(Some(Parsed { time: None, record }))
    }

    fn new_instance(&self) -> Box<dyn Parser> {
        Box::new(self.clone())
    }
}
