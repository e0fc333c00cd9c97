//! `hash`: the record as Ruby prints a Hash (`{"k"=>"v"}`, Ruby 3.0 to 3.3 spelling).
use super::time::newline_of;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{EventTime, Map};
use sluice_core::plugin::{BuildCtx, Formatter};
use sluice_core::ruby::print::write_inspect_map;
use std::sync::Arc;

pub struct HashFormatter {
    newline: &'static [u8],
}

pub fn build(e: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Formatter>, ConfigError> {
    Ok(Arc::new(HashFormatter { newline: newline_of(e, true)? }))
}

impl Formatter for HashFormatter {
    fn format(&self, _tag: &str, _time: EventTime, record: &Map, out: &mut Vec<u8>) {
        write_inspect_map(record, out);
        out.extend_from_slice(self.newline);
    }
}
