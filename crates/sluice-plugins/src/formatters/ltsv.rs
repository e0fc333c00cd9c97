//! `ltsv`: `label:value` pairs joined by tabs (`delimiter`, `label_delimiter`); a delimiter inside a
//! value is replaced by `replacement` (a space) so the line stays parseable.
use super::time::newline_of;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{EventTime, Map};
use sluice_core::plugin::{BuildCtx, Formatter};
use sluice_core::ruby::print::write_to_s;
use std::sync::Arc;

pub struct LtsvFormatter {
    delimiter: Vec<u8>,
    label_delimiter: Vec<u8>,
    replacement: Vec<u8>,
    newline: &'static [u8],
}

pub fn build(e: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Formatter>, ConfigError> {
    Ok(Arc::new(LtsvFormatter {
        delimiter: e.str_or("delimiter", "\t").into_bytes(),
        label_delimiter: e.str_or("label_delimiter", ":").into_bytes(),
        replacement: e.str_or("replacement", " ").into_bytes(),
        newline: newline_of(e, true)?,
    }))
}

impl Formatter for LtsvFormatter {
    fn format(&self, _tag: &str, _time: EventTime, record: &Map, out: &mut Vec<u8>) {
        let mut value = Vec::new();
        for (i, (label, v)) in record.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(&self.delimiter);
            }
            out.extend_from_slice(label.as_bytes());
            out.extend_from_slice(&self.label_delimiter);
            value.clear();
            write_to_s(v, &mut value);
            replace_into(&value, &self.delimiter, &self.replacement, out);
        }
        out.extend_from_slice(self.newline);
    }
}

/// Append `src` with every `from` replaced by `to`.
pub fn replace_into(src: &[u8], from: &[u8], to: &[u8], out: &mut Vec<u8>) {
    if from.is_empty() {
        out.extend_from_slice(src);
        return;
    }
    let mut rest = src;
    while let Some(p) = memchr::memmem::find(rest, from) {
        out.extend_from_slice(&rest[..p]);
        out.extend_from_slice(to);
        rest = &rest[p + from.len()..];
    }
    out.extend_from_slice(rest);
}
