#![allow(dead_code)]
use sluice_core::event::{Map, Value};
use sluice_mask::MaskFilter;
use std::path::PathBuf;

/// Build the filter from the body of a `<filter>` section.
pub fn filter(body: &str) -> MaskFilter {
    try_filter(body).unwrap_or_else(|e| panic!("config rejected: {e}"))
}

pub fn try_filter(body: &str) -> Result<MaskFilter, String> {
    let text = format!("<filter **>\n  @type mask\n{body}\n</filter>\n");
    let root = sluice_core::config::parse_str(&text, std::path::Path::new("test.conf")).map_err(|e| e.to_string())?;
    let sec = root.children.first().ok_or("no section")?;
    MaskFilter::from_conf(sec).map_err(|e| e.to_string())
}

/// Mask `{"message": text}` and return the new message (or `None` when the field was removed).
pub fn mask_msg(f: &MaskFilter, text: &str) -> Option<String> {
    let mut m = Map::new();
    m.insert("message", Value::from(text));
    f.mask_record(&mut m).expect("scannable");
    m.get("message").map(|v| v.as_str().expect("string").to_string())
}

pub fn corpus_path() -> PathBuf {
    match std::env::var("SLUICE_PII_CORPUS") {
        Ok(p) => PathBuf::from(p),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pii/corpus.jsonl"),
    }
}
