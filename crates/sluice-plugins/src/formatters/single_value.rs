//! `single_value`: one field's value as text (`message_key`, default `message`; a missing field gives
//! an empty line, as Ruby's `nil.to_s`).
use super::time::newline_of;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{EventTime, Map};
use sluice_core::plugin::{BuildCtx, Formatter};
use sluice_core::ruby::print::write_to_s;
use std::sync::Arc;

pub struct SingleValueFormatter {
    key: String,
    newline: &'static [u8],
}

pub fn build(e: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Formatter>, ConfigError> {
    Ok(Arc::new(SingleValueFormatter { key: e.str_or("message_key", "message"), newline: newline_of(e, true)? }))
}

impl Formatter for SingleValueFormatter {
    fn format(&self, _tag: &str, _time: EventTime, record: &Map, out: &mut Vec<u8>) {
        if let Some(v) = record.get(&self.key) {
            write_to_s(v, out);
        }
        out.extend_from_slice(self.newline);
    }
}
