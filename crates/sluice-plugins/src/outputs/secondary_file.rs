//! `secondary_file`: only inside `<secondary>`. Dumps the records of chunks the primary could not deliver
//! to `directory/basename` (placeholders allowed: `${tag}`, `${tag[N]}`, `${KEY}`, `${chunk_id}`, strftime
//! with a time chunk key), as msgpack `[time, record]` entries (what `fluent-binlog-reader` reads).
//! Without `append` each chunk gets a new file `dump.bin.N` (first free N); `compress gzip` adds `.gz`.
use super::file::DirectFile;
use sluice_core::buffer::placeholders;
use sluice_core::buffer::ChunkKeys;
use sluice_core::buffer::{BufferDefaults, ChunkMetadata, Zone};
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{write_event_time, write_map, Events};
use sluice_core::plugin::{BuildCtx, EmitError, Output, OutputMetrics};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Arc;

const FILE_PERMISSION: u32 = 0o644;
const DIR_PERMISSION: u32 = 0o755;

pub struct SecondaryFile {
    template: String,
    append: bool,
    gzip: bool,
    metrics: Arc<OutputMetrics>,
}

pub fn build(s: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    if s.name != "secondary" {
        return Err(s
            .error("This plugin can only be used in the <secondary> section")
            .with_hint("put '@type secondary_file' inside the <secondary> of a buffered output"));
    }
    let directory = s.required_str("directory")?;
    let basename = s.str_or("basename", "dump.bin");
    if basename.contains('/') {
        return Err(s.error_at("basename", "basename should not include `/`"));
    }
    let append = s.bool_or("append", false)?;
    let gzip = match s.get("compress").map(str::trim) {
        None | Some("text") => false,
        Some("gz") | Some("gzip") => true,
        Some(other) => return Err(s.error_at("compress", format!("Unsupported compression algorithm '{other}'"))),
    };
    let template = PathBuf::from(&directory).join(&basename).to_string_lossy().to_string();
    // The primary's chunk keys (copied into a <buffer> of this section by the engine).
    let defaults = BufferDefaults { timekey: Some(std::time::Duration::from_secs(86400)), ..Default::default() };
    let keys = ChunkKeys::from_section(s.section("buffer"), &defaults)?;
    if let Some(b) = s.section("buffer") {
        b.mark_all_used();
    }
    placeholders::check_keys(&template.replace("${chunk_id}", ""), &keys, s, "directory")?;
    ctx.check_writable(&sluice_core::fs_check::static_dir(&template))
        .map_err(|e| s.error_at("directory", format!("directory: {e}")))?;
    Ok(Arc::new(SecondaryFile { template, append, gzip, metrics: Arc::default() }))
}

impl SecondaryFile {
    fn path_for(&self, meta: &ChunkMetadata, zone: &Zone, id: Option<&[u8; 16]>) -> PathBuf {
        let base = placeholders::expand_in(&self.template, meta, zone, id);
        let sfx = if self.gzip { ".gz" } else { "" };
        if self.append {
            return PathBuf::from(format!("{base}{sfx}"));
        }
        let mut i = 0u64;
        loop {
            let p = PathBuf::from(format!("{base}.{i}{sfx}"));
            if !p.exists() {
                return p;
            }
            i += 1;
        }
    }

    fn write(&self, events: &Events) -> io::Result<PathBuf> {
        let (meta, zone, id) = DirectFile::context();
        let mut buf = Vec::with_capacity(events.len() * 128);
        for e in events {
            buf.push(0x92);
            write_event_time(e.time, &mut buf);
            write_map(&e.record, &mut buf);
        }
        let path = self.path_for(&meta, &zone, id.as_ref());
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                fs::DirBuilder::new().recursive(true).mode(DIR_PERMISSION).create(dir)?;
            }
        }
        let data = if self.gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&buf)?;
            enc.finish()?
        } else {
            buf
        };
        let mut f = OpenOptions::new().create(true).append(true).mode(FILE_PERMISSION).open(&path)?;
        f.write_all(&data)?;
        Ok(path)
    }
}

impl Output for SecondaryFile {
    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        let n = events.len() as u64;
        match self.write(&events) {
            Ok(path) => {
                self.metrics.records_in.add(n);
                self.metrics.records_written.add(n);
                tracing::warn!(tag, records = n, path = %path.display(), "secondary_file: records dumped");
                Ok(())
            }
            Err(e) => {
                self.metrics.write_errors.inc();
                self.metrics.set_last_error(&e.to_string());
                tracing::error!(tag, records = n, error = %e, "secondary_file: write failed");
                Err(EmitError::BufferOverflow { output: "secondary_file".into(), reason: e.to_string() })
            }
        }
    }

    fn metrics(&self) -> Option<Arc<OutputMetrics>> {
        Some(self.metrics.clone())
    }
}
