//! `out_file`: `TIME<delimiter>TAG<delimiter>JSON` per event, the file output's default
//! (`output_time`, `output_tag`, `delimiter` TAB/SPACE/COMMA, `time_type`, `time_format`, zones, `newline`).
use super::time::{TimeKind, TimeOutput};
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{write_json_map, EventTime, Map};
use sluice_core::plugin::{BuildCtx, Formatter};
use std::sync::Arc;

pub struct OutFileFormatter {
    output_time: bool,
    output_tag: bool,
    delimiter: u8,
    time: TimeOutput,
    newline: &'static [u8],
}

pub fn build(e: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Formatter>, ConfigError> {
    // Fluentd maps any other value to a tab.
    let delimiter = match e.get("delimiter") {
        Some(v) if v.to_ascii_uppercase().contains("SPACE") => b' ',
        Some(v) if v.to_ascii_uppercase().contains("COMMA") => b',',
        _ => b'\t',
    };
    Ok(Arc::new(OutFileFormatter {
        output_time: e.bool_or("output_time", true)?,
        output_tag: e.bool_or("output_tag", true)?,
        delimiter,
        time: TimeOutput::from_element(e, TimeKind::String)?,
        // Fluentd's `newline` (lf/crlf); out_file has no `add_newline`.
        newline: if e.enum_or("newline", &["lf", "crlf"], "lf")? == "crlf" { b"\r\n" } else { b"\n" },
    }))
}

impl Formatter for OutFileFormatter {
    fn format(&self, tag: &str, time: EventTime, record: &Map, out: &mut Vec<u8>) {
        if self.output_time {
            self.time.write(time, out);
            out.push(self.delimiter);
        }
        if self.output_tag {
            out.extend_from_slice(tag.as_bytes());
            out.push(self.delimiter);
        }
        write_json_map(record, out);
        out.extend_from_slice(self.newline);
    }
}
