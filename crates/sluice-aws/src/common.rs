//! What the outputs share: turning an event into the bytes of one record (`<format>`, the core's
//! `<inject>`, `data_key`, compression). Times are formatted by the core's `timefmt`.
use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;
use sluice_core::buffer::{Chunk, EntryJson};
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{EventTime, Map, Value};
use sluice_core::inject::{Inject, InjectDefaults};
use sluice_core::plugin::{BuildCtx, Formatter};
use std::io::Write;
use std::sync::Arc;

/// `compression` of the Kinesis plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compress {
    None,
    Zlib,
    Gzip,
}

/// Turns an event into the bytes of one Kinesis/Firehose record.
pub struct RecordData {
    formatter: Arc<dyn Formatter>,
    inject: Option<Inject>,
    data_key: Option<String>,
    compression: Compress,
    /// Remove the formatter's trailing newline (`chomp_record`).
    chomp: bool,
    /// Add one newline after chomping (Firehose's `append_new_line`).
    append_new_line: bool,
    /// The record is the default `json` formatter's output and nothing more (no `<inject>`, no
    /// `data_key`): it can be written straight from the chunk's msgpack ([`Chunk::json_entries`]).
    ///
    /// [`Chunk::json_entries`]: sluice_core::buffer::Chunk::json_entries
    plain_json: bool,
}

/// Whether `conf` leaves the formatter at `json` with its defaults (one object, then `\n`).
fn default_json_format(conf: &Element) -> bool {
    match conf.section("format") {
        None => !conf.has("format"),
        Some(f) => {
            f.children.is_empty()
                && matches!(f.plugin_type(), None | Some("json"))
                && f.attrs.iter().all(|a| matches!(a.key.as_str(), "@type" | "json_parser"))
        }
    }
}

impl RecordData {
    pub fn from_conf(
        conf: &Element,
        ctx: &BuildCtx,
        append_new_line_default: Option<bool>,
    ) -> Result<Self, ConfigError> {
        let formatter = ctx.registry.formatter_of(conf, "json", ctx)?;
        // fluent-plugin-kinesis changes <inject>'s defaults to a string time with nanoseconds.
        let defaults = InjectDefaults { time_type: "string", time_format: Some("%Y-%m-%dT%H:%M:%S.%N%z") };
        let inject = Inject::from_conf(conf, ctx, defaults)?;
        let compression = match conf.enum_or("compression", &["", "zlib", "gzip"], "")?.as_str() {
            "zlib" => Compress::Zlib,
            "gzip" => Compress::Gzip,
            _ => Compress::None,
        };
        let append_new_line = match append_new_line_default {
            Some(d) => conf.bool_or("append_new_line", d)?,
            None => false,
        };
        let data_key = conf.opt_str("data_key").filter(|s| !s.is_empty());
        let plain_json = default_json_format(conf) && inject.is_none() && data_key.is_none();
        Ok(RecordData {
            plain_json,
            formatter,
            inject,
            data_key,
            compression,
            chomp: conf.bool_or("chomp_record", false)?,
            append_new_line,
        })
    }

    /// The record's bytes, or why it cannot be sent (never containing record content).
    pub fn encode(&self, tag: &str, time: EventTime, record: Map) -> Result<Vec<u8>, String> {
        let data = match &self.data_key {
            Some(k) => match record.get(k) {
                None | Some(Value::Null) => return Err(format!("data_key '{k}' not found in record")),
                Some(Value::Bytes(b)) => b.clone(),
                Some(v) => v.to_display_string().into_bytes(),
            },
            None => {
                let mut record = record;
                if let Some(inj) = &self.inject {
                    inj.apply(tag, time, &mut record);
                }
                let mut out = Vec::with_capacity(256);
                self.formatter.format(tag, time, &record, &mut out);
                out
            }
        };
        self.finish(data)
    }

    /// See [`RecordData::plain_json`].
    pub fn plain_json(&self) -> bool {
        self.plain_json
    }

    /// Each entry of `chunk` as its record payload, in order: with `direct`, the record's JSON straight from
    /// the chunk (entries it cannot write directly are decoded and formatted), else decoded and formatted.
    /// `key_of` sees the decoded record, or None on the direct path. Returns the first corrupt entry (where
    /// reading stops) as `(index, message)`.
    pub fn each_payload<K>(
        &self,
        chunk: &Chunk,
        direct: bool,
        plugin: &str,
        key_of: impl Fn(Option<&Map>) -> K,
        mut accept: impl FnMut(usize, &str, Result<Vec<u8>, String>, K),
    ) -> Option<(usize, String)> {
        let corrupt = |i: usize, e: &dyn std::fmt::Display| Some((i, format!("{plugin}: corrupt chunk entry: {e}")));
        if !direct {
            for (i, ev) in chunk.events().enumerate() {
                match ev {
                    Ok(ev) => {
                        let key = key_of(Some(&ev.record));
                        accept(i, &ev.tag, self.encode(&ev.tag, ev.time, ev.record), key);
                    }
                    Err(e) => return corrupt(i, &e),
                }
            }
            return None;
        }
        let mut entries = chunk.json_entries();
        let mut cap = 256;
        let mut i = 0;
        loop {
            let mut json = Vec::with_capacity(cap);
            match entries.next_into(&mut json) {
                None => return None,
                Some(Ok(EntryJson::Written { tag })) => {
                    cap = json.len() + 16;
                    accept(i, tag, self.finish_json(json), key_of(None));
                }
                Some(Ok(EntryJson::Decoded(ev))) => {
                    let key = key_of(Some(&ev.record));
                    accept(i, &ev.tag, self.encode(&ev.tag, ev.time, ev.record), key);
                }
                Some(Err(e)) => return corrupt(i, &e),
            }
            i += 1;
        }
    }

    /// The record's bytes from the JSON of its record (the direct path, when [`RecordData::plain_json`]):
    /// the formatter's newline, then what `encode` does after formatting.
    pub fn finish_json(&self, mut json: Vec<u8>) -> Result<Vec<u8>, String> {
        json.push(b'\n');
        self.finish(json)
    }

    /// `chomp_record`, `append_new_line` and `compression`, after formatting.
    fn finish(&self, mut data: Vec<u8>) -> Result<Vec<u8>, String> {
        if self.chomp || self.append_new_line {
            while data.last() == Some(&b'\n') {
                data.pop();
                if data.last() == Some(&b'\r') {
                    data.pop();
                }
                if !self.append_new_line {
                    break;
                }
            }
        }
        if self.append_new_line {
            data.push(b'\n');
        }
        compress(self.compression, data).map_err(|e| format!("compression failed: {e}"))
    }
}

pub fn compress(c: Compress, data: Vec<u8>) -> std::io::Result<Vec<u8>> {
    match c {
        Compress::None => Ok(data),
        Compress::Zlib => {
            let mut e = ZlibEncoder::new(Vec::with_capacity(data.len() / 2 + 16), Compression::default());
            e.write_all(&data)?;
            e.finish()
        }
        Compress::Gzip => {
            let mut e = GzEncoder::new(Vec::with_capacity(data.len() / 2 + 16), Compression::default());
            e.write_all(&data)?;
            e.finish()
        }
    }
}
