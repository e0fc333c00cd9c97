//! `csv` (`fields` required, `delimiter`, `force_quotes` default true, `add_newline`) and `tsv` (`keys`,
//! `delimiter`), with Ruby's CSV quoting.
use super::time::newline_of;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{EventTime, Map, Value};
use sluice_core::plugin::{BuildCtx, Formatter};
use sluice_core::ruby::print::write_to_s;
use std::sync::Arc;

pub struct CsvFormatter {
    fields: Vec<String>,
    delimiter: Vec<u8>,
    force_quotes: bool,
    newline: &'static [u8],
}

pub fn build(e: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Formatter>, ConfigError> {
    let fields: Vec<String> = e.array("fields")?.unwrap_or_default().into_iter().filter(|f| !f.is_empty()).collect();
    if fields.is_empty() {
        return Err(e.error("'fields' parameter is required").with_hint("add 'fields name1,name2,...'"));
    }
    let delimiter = match e.str_or("delimiter", ",").as_str() {
        "\\t" | "TAB" => "\t".to_string(),
        d => d.to_string(),
    };
    Ok(Arc::new(CsvFormatter {
        fields,
        delimiter: delimiter.into_bytes(),
        force_quotes: e.bool_or("force_quotes", true)?,
        newline: if e.bool_or("add_newline", true)? { b"\n" } else { b"" },
    }))
}

impl CsvFormatter {
    fn needs_quotes(&self, field: &[u8]) -> bool {
        field.is_empty() || field.iter().any(|b| matches!(b, b'\r' | b'\n' | b'"') || self.delimiter.contains(b))
    }
}

impl Formatter for CsvFormatter {
    fn format(&self, _tag: &str, _time: EventTime, record: &Map, out: &mut Vec<u8>) {
        let mut text = Vec::new();
        for (i, f) in self.fields.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(&self.delimiter);
            }
            let v = record.get(f);
            if !self.force_quotes && v.is_none_or(Value::is_null) {
                continue;
            }
            text.clear();
            if let Some(v) = v {
                write_to_s(v, &mut text);
            }
            if self.force_quotes || self.needs_quotes(&text) {
                out.push(b'"');
                for &b in &text {
                    if b == b'"' {
                        out.push(b'"');
                    }
                    out.push(b);
                }
                out.push(b'"');
            } else {
                out.extend_from_slice(&text);
            }
        }
        out.extend_from_slice(self.newline);
    }
}

pub struct TsvFormatter {
    keys: Vec<String>,
    delimiter: Vec<u8>,
    newline: &'static [u8],
}

pub fn build_tsv(e: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Formatter>, ConfigError> {
    let keys = match e.array("keys")? {
        Some(k) if !k.is_empty() => k,
        _ => return Err(e.error("'keys' parameter is required").with_hint("add 'keys name1,name2,...'")),
    };
    Ok(Arc::new(TsvFormatter {
        keys,
        delimiter: e.str_or("delimiter", "\t").into_bytes(),
        newline: newline_of(e, true)?,
    }))
}

impl Formatter for TsvFormatter {
    fn format(&self, _tag: &str, _time: EventTime, record: &Map, out: &mut Vec<u8>) {
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(&self.delimiter);
            }
            if let Some(v) = record.get(k) {
                write_to_s(v, out);
            }
        }
        out.extend_from_slice(self.newline);
    }
}
