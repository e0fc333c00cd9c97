//! `file`: writes each chunk to a file named from `path` with placeholders, as Fluentd's out_file does.
//!
//! Path rules (Fluentd's): with `time` as a chunk key (the default, `timekey 1d`), `/dir/file` becomes
//! `/dir/file.%Y%m%d_N.log` (the time part follows `timekey`: `%Y%m%d%H` for hourly and so on), a `*` in
//! `path` is replaced by the time part, and a path that already has the time placeholders keeps them. `_N`
//! is the first index whose file does not exist yet; with `append true` there is no index and chunks are
//! appended to one file. `compress gzip` adds `.gz` (one gzip member per chunk).
//!
//! As a `<secondary>` it writes synchronously, without a buffer of its own, for each chunk the primary
//! hands over.
use async_trait::async_trait;
use sluice_core::buffer::placeholders::{self, FlushContext};
use sluice_core::buffer::{
    BufferDefaults, BufferedOutput, Chunk, ChunkKeys, ChunkMetadata, ChunkWriter, WriteError, Zone,
};
use sluice_core::config::{compat, ConfigError, Element};
use sluice_core::event::{EventTime, Events, Map};
use sluice_core::inject::{Inject, InjectDefaults};
use sluice_core::plugin::{BuildCtx, EmitError, Formatter, Output, OutputMetrics};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const FILE_PERMISSION: u32 = 0o644;
const DIR_PERMISSION: u32 = 0o755;
const DEFAULT_TIMEKEY: u64 = 86400;
const INDEX: &str = "_**";

/// Fluentd's `timekey_to_timeformat`.
fn timekey_format(timekey: i64) -> &'static str {
    match timekey {
        i64::MIN..=59 => "%Y%m%d%H%M%S",
        60..=3599 => "%Y%m%d%H%M",
        3600..=86399 => "%Y%m%d%H",
        _ => "%Y%m%d",
    }
}

/// Fluentd's `generate_path_template`.
pub fn path_template(
    original: &str,
    timekey: Option<i64>,
    append: bool,
    gzip: bool,
    path_suffix: &str,
) -> Result<String, String> {
    let comp = if gzip { ".gz" } else { "" };
    let index = if append { "" } else { INDEX };
    if original.contains('*') {
        let Some(tk) = timekey else {
            return Err("path including '*' must be used with buffer chunk key 'time'".into());
        };
        return Ok(format!("{}{}", original.replace('*', &format!("{}{}", timekey_format(tk), index)), comp));
    }
    match timekey {
        Some(tk) => {
            let fmt = timekey_format(tk);
            let parts: Vec<&str> = fmt.as_bytes().chunks(2).filter_map(|c| std::str::from_utf8(c).ok()).collect();
            if parts.iter().any(|p| original.contains(p)) {
                if parts.iter().any(|p| !original.contains(p)) {
                    return Err("insufficient timestamp placeholders in path".into());
                }
                Ok(format!("{original}{index}{path_suffix}{comp}"))
            } else {
                Ok(format!("{original}.{fmt}{index}{path_suffix}{comp}"))
            }
        }
        None => Ok(format!("{original}{index}{path_suffix}{comp}")),
    }
}

pub struct FileWriter {
    template: String,
    append: bool,
    gzip: bool,
    formatter: Arc<dyn Formatter>,
    symlink_path: Option<String>,
    file_perm: u32,
    dir_perm: u32,
}

fn mkdir_p(dir: &Path, mode: u32) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    fs::DirBuilder::new().recursive(true).mode(mode).create(dir)
}

impl FileWriter {
    /// The file the next chunk with `meta` goes to (the first free `_N` unless appending).
    /// Placeholder values are path-safe (see `placeholders::push_path_safe`), and the template is split at
    /// the index marker before expanding, so a value cannot take the marker's place either.
    fn target(&self, meta: &ChunkMetadata, zone: &Zone, id: Option<&[u8; 16]>) -> PathBuf {
        let split = if self.append { None } else { self.template.split_once(INDEX) };
        let Some((head, tail)) = split else {
            return PathBuf::from(placeholders::expand_in(&self.template, meta, zone, id));
        };
        let head = placeholders::expand_in(head, meta, zone, id);
        let tail = placeholders::expand_in(tail, meta, zone, id);
        let mut i = 0u64;
        loop {
            let p = PathBuf::from(format!("{head}_{i}{tail}"));
            if !p.exists() {
                return p;
            }
            i += 1;
        }
    }

    /// Format `events` (tag, time, record) and write them as one unit. Returns the path written.
    fn write_events<'a>(
        &self,
        meta: &ChunkMetadata,
        zone: &Zone,
        id: Option<&[u8; 16]>,
        events: impl Iterator<Item = (&'a str, EventTime, &'a Map)>,
    ) -> io::Result<PathBuf> {
        let mut buf = Vec::with_capacity(64 * 1024);
        for (tag, time, record) in events {
            self.formatter.format(tag, time, record, &mut buf);
        }
        self.write_formatted(meta, zone, id, buf)
    }

    /// Write already formatted bytes to the chunk's file as one unit. Returns the path written.
    fn write_formatted(
        &self,
        meta: &ChunkMetadata,
        zone: &Zone,
        id: Option<&[u8; 16]>,
        buf: Vec<u8>,
    ) -> io::Result<PathBuf> {
        let path = self.target(meta, zone, id);
        if let Some(dir) = path.parent() {
            mkdir_p(dir, self.dir_perm)?;
        }
        let data = if self.gzip {
            let mut enc =
                flate2::write::GzEncoder::new(Vec::with_capacity(buf.len() / 4 + 64), flate2::Compression::default());
            enc.write_all(&buf)?;
            enc.finish()?
        } else {
            buf
        };
        let mut f = OpenOptions::new().create(true).append(true).mode(self.file_perm).open(&path)?;
        f.write_all(&data)?;
        f.flush()?;
        if let Some(link) = &self.symlink_path {
            let _ = fs::remove_file(link);
            if let Err(e) = std::os::unix::fs::symlink(&path, link) {
                tracing::warn!(symlink_path = %link, error = %e, "file output: cannot update symlink_path");
            }
        }
        Ok(path)
    }
}

fn io_error(path_hint: &str, e: io::Error) -> WriteError {
    // Full disks, permissions and vanished directories may all be fixed by an operator: retry.
    WriteError::retryable(format!("file output: cannot write {path_hint}: {e}"))
}

#[async_trait]
impl ChunkWriter for FileWriter {
    async fn write(&self, chunk: &Chunk) -> Result<(), WriteError> {
        let (zone, id) = match placeholders::current() {
            Some(c) => (c.zone, Some(c.chunk_id)),
            None => (Zone::Local, Some(chunk.id)),
        };
        // Decode and format one entry at a time: holding every decoded record of a chunk at once cost
        // several times the chunk's size in memory.
        let mut buf = Vec::with_capacity(chunk.bytesize() + chunk.bytesize() / 4);
        let mut bad = 0usize;
        for e in chunk.events() {
            match e {
                Ok(e) => self.formatter.format(&e.tag, e.time, &e.record, &mut buf),
                Err(_) => bad += 1,
            }
        }
        if bad > 0 {
            tracing::warn!(chunk = %chunk.id_hex(), "file output: chunk has an undecodable entry; the rest is written");
        }
        self.write_formatted(&chunk.metadata, &zone, id.as_ref(), buf)
            .map(|_| ())
            .map_err(|e| io_error(&self.template, e))
    }
}

/// Copy "parameter was read" marks from a modified clone back to the user's section.
pub(crate) fn propagate_used(orig: &Element, clone: &Element) {
    for (a, b) in orig.attrs.iter().zip(clone.attrs.iter()) {
        if b.used.get() {
            a.used.set(true);
        }
    }
    for (a, b) in orig.children.iter().zip(clone.children.iter()) {
        propagate_used(a, b);
    }
}

fn read_compress(s: &Element) -> Result<bool, ConfigError> {
    Ok(matches!(s.enum_or("compress", &["text", "gz", "gzip"], "text")?.as_str(), "gz" | "gzip"))
}

pub fn build(s: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    let path = s.required_str("path")?;
    let add_suffix = s.bool_or("add_path_suffix", true)?;
    let path_suffix = s.str_or("path_suffix", ".log");
    let append = s.bool_or("append", false)?;
    let gzip = read_compress(s)?;
    let _ = s.bool_or("recompress", false)?;
    let symlink_path = s.opt_str("symlink_path");
    let as_secondary = s.name == "secondary";
    let formatter = ctx.registry.formatter_of(s, "out_file", ctx)?;
    let formatter = Inject::wrap(s, ctx, InjectDefaults::default(), formatter)?;

    // Fluentd's <buffer> defaults for out_file: a file buffer cut by time, 1 day slices, kept under `path`.
    let mut conf = s.clone();
    if conf.section("buffer").is_none() {
        // v0.12 `buffer_type`/`buffer_path`/`time_slice_format` on the <match> make the <buffer>.
        let b = compat::buffer(s)?.unwrap_or_else(|| Element::new("buffer", "time", s.loc.clone()));
        conf.children.push(b);
    }
    let has_root = s.plugin_id().is_some() && ctx.system.root_dir.is_some();
    if let Some(b) = conf.children.iter_mut().find(|c| c.name == "buffer") {
        if !b.has("path") && !has_root {
            b.set("path", path.clone(), s.loc_of("path").clone());
        }
    }
    let defaults = BufferDefaults {
        buffer_type: "file",
        chunk_keys: "time",
        timekey: Some(Duration::from_secs(DEFAULT_TIMEKEY)),
        ..Default::default()
    };
    let keys = {
        let b = conf.section("buffer");
        ChunkKeys::from_section(b, &defaults)?
    };
    let template = path_template(&path, keys.timekey, append, gzip, if add_suffix { &path_suffix } else { "" })
        .map_err(|m| s.error_at("path", m))?;
    if !as_secondary {
        placeholders::check_keys(&template.replace(INDEX, ""), &keys, s, "path")?;
    }
    ctx.check_writable(&sluice_core::fs_check::static_dir(&template))
        .map_err(|e| s.error_at("path", format!("path: {e}")))?;
    if as_secondary && symlink_path.is_some() {
        return Err(s.error_at(
            "symlink_path",
            "symlink_path option is unavailable in <secondary>: consider to use secondary_file plugin",
        ));
    }
    let writer = Arc::new(FileWriter {
        template,
        append,
        gzip,
        formatter,
        symlink_path,
        file_perm: FILE_PERMISSION,
        dir_perm: DIR_PERMISSION,
    });
    if as_secondary {
        if let Some(b) = s.section("buffer") {
            b.mark_all_used();
        }
        return Ok(Arc::new(DirectFile { writer, metrics: Arc::default() }));
    }
    let out = BufferedOutput::build(&conf, ctx, defaults, writer);
    propagate_used(s, &conf);
    out
}

/// `file` as a `<secondary>`: writes what the primary hands over at once.
pub struct DirectFile {
    writer: Arc<FileWriter>,
    metrics: Arc<OutputMetrics>,
}

impl DirectFile {
    pub(crate) fn context() -> (ChunkMetadata, Zone, Option<[u8; 16]>) {
        match placeholders::current() {
            Some(FlushContext { zone, chunk_id, metadata }) => (metadata, zone, Some(chunk_id)),
            None => (ChunkMetadata::default(), Zone::Local, None),
        }
    }
}

impl Output for DirectFile {
    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        let (meta, zone, id) = Self::context();
        let n = events.len() as u64;
        let it = events.iter().map(|e| (tag, e.time, &e.record));
        match self.writer.write_events(&meta, &zone, id.as_ref(), it) {
            Ok(_) => {
                self.metrics.records_in.add(n);
                self.metrics.records_written.add(n);
                Ok(())
            }
            Err(e) => {
                self.metrics.write_errors.inc();
                self.metrics.set_last_error(&e.to_string());
                tracing::error!(error = %e, records = n, "file <secondary>: write failed");
                Err(EmitError::BufferOverflow { output: "file (secondary)".into(), reason: e.to_string() })
            }
        }
    }

    fn metrics(&self) -> Option<Arc<OutputMetrics>> {
        Some(self.metrics.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fluentd_path_templates() {
        let t = |p: &str, tk: Option<i64>, append: bool, gz: bool| path_template(p, tk, append, gz, ".log").unwrap();
        assert_eq!(t("/d/file", Some(86400), false, false), "/d/file.%Y%m%d_**.log");
        assert_eq!(t("/d/file", Some(3600), true, true), "/d/file.%Y%m%d%H.log.gz");
        assert_eq!(t("/d/file.*.data", Some(86400), false, false), "/d/file.%Y%m%d_**.data");
        assert_eq!(t("/d/%Y%m%d/file", Some(86400), true, false), "/d/%Y%m%d/file.log");
        assert_eq!(t("/d/file", None, false, false), "/d/file_**.log");
        assert!(path_template("/d/%Y/file", Some(86400), false, false, ".log").is_err());
        assert!(path_template("/d/f.*", None, false, false, ".log").is_err());
    }
}
