//! `json`: one compact JSON object per event (`add_newline`, `newline`). `json_parser` is accepted and
//! has no effect.
use super::time::newline_of;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{write_json_map, EventTime, Map};
use sluice_core::plugin::{BuildCtx, Formatter};
use std::sync::Arc;

pub struct JsonFormatter {
    newline: &'static [u8],
}

pub fn build(e: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Formatter>, ConfigError> {
    let _ = e.get("json_parser");
    Ok(Arc::new(JsonFormatter { newline: newline_of(e, true)? }))
}

impl Formatter for JsonFormatter {
    fn format(&self, _tag: &str, _time: EventTime, record: &Map, out: &mut Vec<u8>) {
        write_json_map(record, out);
        out.extend_from_slice(self.newline);
    }
}
