//! `msgpack`: the record as one msgpack map, nothing else.
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{write_map, EventTime, Map};
use sluice_core::plugin::{BuildCtx, Formatter};
use std::sync::Arc;

pub struct MsgpackFormatter;

pub fn build(_e: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Formatter>, ConfigError> {
    Ok(Arc::new(MsgpackFormatter))
}

impl Formatter for MsgpackFormatter {
    fn format(&self, _tag: &str, _time: EventTime, record: &Map, out: &mut Vec<u8>) {
        write_map(record, out);
    }
}
