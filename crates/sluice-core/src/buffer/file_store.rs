//! On-disk layout of `@type file` buffers, Fluentd's names: `DIR/buffer.b<hex id>.log` (staged),
//! `buffer.q<hex id>.log` (queued) and a `.log.meta` file beside each (JSON: tag, timekey, variables,
//! created, compress; sluice's own format, not Fluentd's msgpack one).
use super::chunk::{entry_offsets, gunzip, gzip, ChunkMetadata};
use super::config::FileBufferConfig;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
    prefix: String,
    suffix: String,
    file_permission: u32,
    dir_permission: u32,
}

pub use crate::util::hex16 as hex;

fn unhex(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(id)
}

/// A chunk found on disk at start-up.
#[derive(Debug)]
pub struct Found {
    pub id: [u8; 16],
    pub staged: bool,
    pub path: PathBuf,
}

impl Layout {
    pub fn new(c: &FileBufferConfig) -> Self {
        let p = c.path.to_string_lossy().to_string();
        let (dir, prefix, suffix) = match p.rfind('*') {
            Some(i) => {
                let path = Path::new(&p[..i]);
                let (dir, prefix) = if p[..i].ends_with('/') {
                    (path.to_path_buf(), String::new())
                } else {
                    (
                        path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".")),
                        path.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default(),
                    )
                };
                (dir, prefix, p[i + 1..].to_string())
            }
            None => (c.path.clone(), "buffer.".to_string(), ".log".to_string()),
        };
        Layout { dir, prefix, suffix, file_permission: c.file_permission, dir_permission: c.dir_permission }
    }

    pub fn chunk_path(&self, id: &[u8; 16], staged: bool) -> PathBuf {
        let s = if staged { 'b' } else { 'q' };
        self.dir.join(format!("{}{}{}{}", self.prefix, s, hex(id), self.suffix))
    }

    pub fn meta_path(chunk: &Path) -> PathBuf {
        let mut s = chunk.as_os_str().to_owned();
        s.push(".meta");
        PathBuf::from(s)
    }

    /// Create the buffer directory (missing parents too) with `dir_permission`, or check the one that is
    /// there: see [`check_private_dir`].
    pub fn create_dir(&self) -> io::Result<()> {
        create_private_dir(&self.dir, self.dir_permission)
    }

    /// Create a new staged chunk file and its meta file.
    pub fn create(&self, id: &[u8; 16], meta: &ChunkMetadata, gzip: bool) -> io::Result<(File, PathBuf)> {
        let path = self.chunk_path(id, true);
        // Meta first: a chunk file without its meta file can only be an empty one.
        self.write_meta(&path, meta, gzip)?;
        // Append mode: after a failed write is cut back (set_len) the next write lands at the new end.
        let file = self.open_new(&path, true)?;
        Ok((file, path))
    }

    /// A chunk or meta file that must not exist yet: never opens a file (or follows a symlink) someone put
    /// there (O_EXCL, O_NOFOLLOW).
    fn new_file(&self, path: &Path) -> io::Result<File> {
        self.open_new(path, false)
    }

    fn open_new(&self, path: &Path, append: bool) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .append(append)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(self.file_permission)
            .open(path)
    }

    pub fn write_meta(&self, chunk: &Path, meta: &ChunkMetadata, gzip: bool) -> io::Result<()> {
        let created =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let v = serde_json::json!({
            "tag": meta.tag,
            "timekey": meta.timekey,
            "variables": meta.variables,
            "created": created,
            "compress": if gzip { "gzip" } else { "text" },
        });
        let mut f = self.new_file(&Self::meta_path(chunk))?;
        f.write_all(v.to_string().as_bytes())
    }

    /// Staged -> queued: make the data durable (fsync) and rename both files from `b` to `q`.
    pub fn enqueue(&self, id: &[u8; 16], file: &File) -> io::Result<PathBuf> {
        file.sync_data()?;
        let from = self.chunk_path(id, true);
        let to = self.chunk_path(id, false);
        fs::rename(Self::meta_path(&from), Self::meta_path(&to))?;
        if let Err(e) = fs::rename(&from, &to) {
            // Put the meta file back so that a retry (or the next start) finds the chunk whole.
            let _ = fs::rename(Self::meta_path(&to), Self::meta_path(&from));
            return Err(e);
        }
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(to)
    }

    /// Write a whole queued chunk at once (used to split a partially failed chunk).
    pub fn write_queued(&self, id: &[u8; 16], meta: &ChunkMetadata, gzip: bool, data: &[u8]) -> io::Result<PathBuf> {
        let path = self.chunk_path(id, false);
        let mut f = self.new_file(&path)?;
        f.write_all(data)?;
        f.sync_data()?;
        self.write_meta(&path, meta, gzip)?;
        Ok(path)
    }

    pub fn remove(path: &Path) {
        let _ = fs::remove_file(Self::meta_path(path));
        let _ = fs::remove_file(path);
    }

    /// Move a chunk and its meta aside as `<name>.corrupt`.
    pub fn set_aside(path: &Path) -> PathBuf {
        let mut c = path.as_os_str().to_owned();
        c.push(".corrupt");
        let c = PathBuf::from(c);
        let _ = fs::rename(path, &c);
        let meta = Self::meta_path(path);
        if meta.exists() {
            let mut m = meta.as_os_str().to_owned();
            m.push(".corrupt");
            let _ = fs::rename(&meta, PathBuf::from(m));
        }
        c
    }

    /// Every chunk file of this buffer.
    pub fn scan(&self) -> io::Result<Vec<Found>> {
        let mut out = Vec::new();
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for ent in rd.flatten() {
            let name = ent.file_name().to_string_lossy().to_string();
            let Some(rest) = name.strip_prefix(&self.prefix) else {
                continue;
            };
            let Some(mid) = rest.strip_suffix(&self.suffix) else {
                continue;
            };
            let staged = match mid.as_bytes().first() {
                Some(b'b') => true,
                Some(b'q') => false,
                _ => continue,
            };
            let Some(id) = unhex(&mid[1..]) else { continue };
            out.push(Found { id, staged, path: ent.path() });
        }
        Ok(out)
    }
}

/// A chunk file read back at start-up, under its queued name and ready to send.
#[derive(Debug)]
pub struct Recovered {
    pub id: [u8; 16],
    pub meta: ChunkMetadata,
    /// When the chunk was created (from its meta file).
    pub created: f64,
    pub records: usize,
    /// Bytes on disk, as counted against `total_limit_size`.
    pub bytes: u64,
    pub path: PathBuf,
}

/// What [`Layout::recover`] found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Oldest first.
    pub chunks: Vec<Recovered>,
    /// Chunk files found corrupt: moved aside as `.corrupt`, or cut to their readable entries with a copy of
    /// the original kept aside.
    pub corrupt: u64,
}

impl Layout {
    /// Read back the chunks a previous run left in the directory (`output` names the output in logs). A
    /// chunk not owned by sluice's user is left alone, an empty one removed, a staged one queued.
    pub fn recover(&self, output: &str) -> Recovery {
        let mut out = Recovery::default();
        let found = match self.scan() {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(output = %output, error = %e, "cannot list buffer directory; nothing resumed");
                return out;
            }
        };
        for f in found {
            if !owned_by_me(&f.path) {
                tracing::warn!(output = %output, path = %f.path.display(),
                    "buffer chunk not owned by sluice's user (or not a regular file); not resumed");
                continue;
            }
            match self.recover_one(&f, output, &mut out.corrupt) {
                Ok(Some(c)) => out.chunks.push(c),
                Ok(None) => {}
                Err(reason) => {
                    let aside = Layout::set_aside(&f.path);
                    out.corrupt += 1;
                    tracing::warn!(output = %output, chunk = %hex(&f.id), moved_to = %aside.display(), reason,
                        "corrupt buffer chunk moved aside");
                }
            }
        }
        out.chunks.sort_by(|a, b| a.created.total_cmp(&b.created));
        out
    }

    fn recover_one(&self, f: &Found, output: &str, corrupt: &mut u64) -> Result<Option<Recovered>, String> {
        let mf = match read_meta(&f.path) {
            Ok(m) => m,
            // A crash right after the chunk file was created: nothing was in it.
            Err(_) if fs::metadata(&f.path).map(|m| m.len() == 0).unwrap_or(false) => {
                Layout::remove(&f.path);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let raw = fs::read(&f.path).map_err(|e| format!("cannot read chunk: {e}"))?;
        let data = if mf.gzip { gunzip(&raw).map_err(|e| format!("corrupt gzip data: {e}"))? } else { raw.clone() };
        let (entries, valid) = entry_offsets(&data);
        if entries.is_empty() {
            if data.is_empty() {
                Layout::remove(&f.path);
                return Ok(None);
            }
            return Err("no readable entry".into());
        }
        let mut path = f.path.clone();
        if valid < data.len() {
            // A torn or damaged tail: keep the readable entries, keep the original aside for inspection.
            let aside = {
                let mut c = f.path.as_os_str().to_owned();
                c.push(".corrupt");
                PathBuf::from(c)
            };
            let _ = fs::write(&aside, &raw);
            *corrupt += 1;
            tracing::warn!(output = %output, chunk = %hex(&f.id), kept_records = entries.len(),
                lost_bytes = data.len() - valid, copy = %aside.display(), "damaged buffer chunk: readable entries kept");
            let body = if mf.gzip { gzip(&data[..valid]) } else { data[..valid].to_vec() };
            Layout::remove(&f.path);
            path =
                self.write_queued(&f.id, &mf.meta, mf.gzip, &body).map_err(|e| format!("cannot rewrite chunk: {e}"))?;
        } else if f.staged {
            let file = File::open(&f.path).map_err(|e| format!("cannot open chunk: {e}"))?;
            path = self.enqueue(&f.id, &file).map_err(|e| format!("cannot queue chunk: {e}"))?;
        }
        let bytes = fs::metadata(&path).map(|m| m.len()).unwrap_or(valid as u64);
        Ok(Some(Recovered { id: f.id, meta: mf.meta, created: mf.created, records: entries.len(), bytes, path }))
    }
}

/// Create `dir` (and missing parents, each with `mode`, 0700 by default) or accept an existing one only if
/// [`check_private_dir`] does. State directories hold data that sluice delivers on the next start, so one
/// another user could write to would let them plant records.
pub fn create_private_dir(dir: &Path, mode: u32) -> io::Result<()> {
    match fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new().recursive(true).mode(mode).create(dir)?;
            // The umask may have taken bits away: the configured mode, exactly.
            fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
        }
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    check_private_dir(dir, mode)
}

/// Refuse a state directory that is not a directory, is owned by another user than the one sluice runs
/// as, or is writable by others: by anyone (`o+w`) always, by its group (`g+w`) unless `mode` (the
/// configured `dir_permission`) grants that itself.
pub fn check_private_dir(dir: &Path, mode: u32) -> io::Result<()> {
    let m = fs::metadata(dir)?;
    let refuse = |why: String| Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
    if !m.is_dir() {
        return refuse("it is not a directory".into());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if m.uid() != me {
        return refuse(format!(
            "it is owned by uid {}, not by uid {me} that sluice runs as; files in it could have been planted by another user",
            m.uid()
        ));
    }
    let allowed = mode & 0o020;
    let others = m.mode() & 0o022 & !allowed;
    if others != 0 {
        return refuse(format!(
            "it is writable by {} (mode {:o}); files in it could have been planted by another user",
            if others & 0o002 != 0 { "every user" } else { "its group" },
            m.mode() & 0o7777
        ));
    }
    Ok(())
}

/// Whether the file at `path` belongs to the user sluice runs as (a chunk someone else wrote is not resumed).
pub fn owned_by_me(path: &Path) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    fs::symlink_metadata(path).map(|m| m.uid() == me && m.file_type().is_file()).unwrap_or(false)
}

/// Metadata read back from a `.meta` file.
pub struct MetaFile {
    pub meta: ChunkMetadata,
    pub created: f64,
    pub gzip: bool,
}

pub fn read_meta(chunk: &Path) -> Result<MetaFile, String> {
    let mut s = String::new();
    File::open(Layout::meta_path(chunk))
        .and_then(|mut f| f.read_to_string(&mut s))
        .map_err(|e| format!("cannot read meta file: {e}"))?;
    let v: serde_json::Value = serde_json::from_str(&s).map_err(|e| format!("corrupt meta file: {e}"))?;
    let tag = match v.get("tag") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Null) | None => None,
        _ => return Err("corrupt meta file: tag".into()),
    };
    let timekey = v.get("timekey").and_then(serde_json::Value::as_i64);
    let mut variables = Vec::new();
    if let Some(vars) = v.get("variables").and_then(serde_json::Value::as_array) {
        for p in vars {
            match (p.get(0).and_then(|x| x.as_str()), p.get(1).and_then(|x| x.as_str())) {
                (Some(k), Some(v)) => variables.push((k.to_string(), v.to_string())),
                _ => return Err("corrupt meta file: variables".into()),
            }
        }
    }
    Ok(MetaFile {
        meta: ChunkMetadata { tag, timekey, variables },
        created: v.get("created").and_then(serde_json::Value::as_f64).unwrap_or(0.0),
        gzip: v.get("compress").and_then(serde_json::Value::as_str) == Some("gzip"),
    })
}
