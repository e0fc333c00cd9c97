//! `<storage>` for the journal cursor, in the file format of Fluentd's `local` storage plugin
//! (`{"journal":"s=...;i=...;..."}`), so a cursor Fluentd wrote is picked up and the other way round.
use sluice_core::config::{ConfigError, Element};
use sluice_core::plugin::BuildCtx;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const KEY: &str = "journal";

/// Where and how the cursor is kept.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// None: kept in memory only (no `path`, no `<system> root_dir` with `@id`).
    pub path: Option<PathBuf>,
    /// `persistent true`: written after every batch; otherwise every `autosave_interval` and at shutdown.
    pub persistent: bool,
    pub autosave: bool,
    pub autosave_interval: Duration,
    pub save_at_shutdown: bool,
    pub mode: u32,
    pub dir_mode: u32,
    pub pretty_print: bool,
}

impl StorageConfig {
    /// Read `<storage>` of `source` (Fluentd's defaults when absent). The path rules are Fluentd's: an
    /// existing file or a name ending in `.json` is the file; a directory gets `worker0/storage.json`;
    /// without `path`, `<system> root_dir` + the source's `@id` give `ROOT/worker0/ID/storage.json`.
    pub fn from_conf(source: &Element, ctx: &BuildCtx) -> Result<Self, ConfigError> {
        let empty;
        let s = match source.section("storage") {
            Some(s) => s,
            None => {
                empty = Element::new("storage", "", source.loc.clone());
                &empty
            }
        };
        if let Some(t) = s.get("@type") {
            if t != "local" {
                return Err(s
                    .error_at("@type", format!("storage type '{t}' is not supported by sluice"))
                    .with_hint("use @type local"));
            }
        }
        let _ = s.get("usage");
        let persistent = s.bool_or("persistent", false)?;
        let octal = |key: &str, default: u32| -> Result<u32, ConfigError> {
            match s.get(key) {
                None => Ok(default),
                Some(v) => u32::from_str_radix(v.trim(), 8)
                    .map_err(|_| s.error_at(key, format!("'{key}' must be an octal file mode such as 0644"))),
            }
        };
        let path = match s.opt_str("path").filter(|p| !p.is_empty()) {
            Some(p) => Some(resolve(Path::new(&p))),
            None => match (&ctx.system.root_dir, source.plugin_id()) {
                (Some(root), Some(id)) => {
                    let name =
                        if s.arg.is_empty() { "storage.json".to_string() } else { format!("storage.{}.json", s.arg) };
                    Some(root.join("worker0").join(id).join(name))
                }
                _ if persistent => {
                    return Err(s
                        .error("Plugin @id or path for <storage> required when 'persistent' is true")
                        .with_hint("add path /var/log/fluentd-journald-cursor.json to <storage>"))
                }
                _ => None,
            },
        };
        if let Some(file) = &path {
            let dir = file.parent().unwrap_or(Path::new("."));
            ctx.check_writable(dir).map_err(|e| s.error_at("path", format!("storage path: {e}")))?;
        }
        Ok(StorageConfig {
            path,
            persistent,
            autosave: s.bool_or("autosave", true)?,
            autosave_interval: Duration::from_secs_f64(s.time_or("autosave_interval", 10.0)?.max(0.1)),
            save_at_shutdown: s.bool_or("save_at_shutdown", true)?,
            mode: octal("mode", 0o644)?,
            dir_mode: octal("dir_mode", 0o755)?,
            pretty_print: s.bool_or("pretty_print", false)?,
        })
    }
}

fn resolve(p: &Path) -> PathBuf {
    if p.is_file() || (!p.exists() && p.extension().is_some_and(|e| e == "json")) {
        p.to_path_buf()
    } else {
        p.join("worker0").join("storage.json")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} does not hold a JSON object")]
    Invalid { path: String },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

/// The cursor of the last entry handed to the router, and when it was last written out.
pub struct CursorStore {
    cfg: StorageConfig,
    /// The other keys of the file, kept as they are.
    doc: serde_json::Map<String, serde_json::Value>,
    dirty: bool,
    saved_at: Instant,
}

impl CursorStore {
    /// Load the stored cursor (none when the file does not exist yet).
    pub fn open(cfg: StorageConfig) -> Result<Self, StorageError> {
        let mut doc = serde_json::Map::new();
        if let Some(p) = &cfg.path {
            match std::fs::read(p) {
                Ok(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
                    Ok(serde_json::Value::Object(m)) => doc = m,
                    _ => return Err(StorageError::Invalid { path: p.display().to_string() }),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::Read { path: p.display().to_string(), source: e }),
            }
        }
        Ok(CursorStore { cfg, doc, dirty: false, saved_at: Instant::now() })
    }

    pub fn path(&self) -> Option<&Path> {
        self.cfg.path.as_deref()
    }

    pub fn cursor(&self) -> Option<String> {
        self.doc.get(KEY).and_then(|v| v.as_str()).map(str::to_string)
    }

    /// Record the cursor of the last entry the router accepted; written now with `persistent`, else when
    /// the autosave interval has passed.
    pub fn put(&mut self, cursor: &str) -> Result<(), StorageError> {
        self.doc.insert(KEY.into(), serde_json::Value::String(cursor.into()));
        self.dirty = true;
        if self.cfg.persistent || (self.cfg.autosave && self.saved_at.elapsed() >= self.cfg.autosave_interval) {
            self.save()?;
        }
        Ok(())
    }

    /// Write out a pending cursor when the autosave interval has passed (called while idle).
    pub fn tick(&mut self) -> Result<(), StorageError> {
        if self.dirty && self.cfg.autosave && self.saved_at.elapsed() >= self.cfg.autosave_interval {
            self.save()?;
        }
        Ok(())
    }

    /// At shutdown.
    pub fn close(&mut self) -> Result<(), StorageError> {
        if self.dirty && (self.cfg.save_at_shutdown || self.cfg.persistent) {
            self.save()?;
        }
        Ok(())
    }

    /// Write the file atomically (temporary file, fsync, rename), as Fluentd's `local` storage does.
    fn save(&mut self) -> Result<(), StorageError> {
        self.saved_at = Instant::now();
        let Some(path) = &self.cfg.path else {
            self.dirty = false;
            return Ok(());
        };
        let err = |source| StorageError::Write { path: path.display().to_string(), source };
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new().recursive(true).mode(self.cfg.dir_mode).create(dir).map_err(err)?;
            }
        }
        let doc = serde_json::Value::Object(self.doc.clone());
        let text = if self.cfg.pretty_print { serde_json::to_vec_pretty(&doc) } else { serde_json::to_vec(&doc) }
            .map_err(|e| err(std::io::Error::other(e)))?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(self.cfg.mode)
                .open(&tmp)
                .map_err(err)?;
            f.write_all(&text).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, path).map_err(err)?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(path: Option<PathBuf>, persistent: bool) -> StorageConfig {
        StorageConfig {
            path,
            persistent,
            autosave: true,
            autosave_interval: Duration::from_secs(3600),
            save_at_shutdown: true,
            mode: 0o644,
            dir_mode: 0o755,
            pretty_print: false,
        }
    }

    #[test]
    fn fluentd_format_and_other_keys_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/cursor.json");
        let mut s = CursorStore::open(cfg(Some(p.clone()), true)).unwrap();
        assert_eq!(s.cursor(), None);
        s.put("s=abc;i=1").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), r#"{"journal":"s=abc;i=1"}"#);
        std::fs::write(&p, r#"{"other":1,"journal":"s=x;i=9"}"#).unwrap();
        let mut s = CursorStore::open(cfg(Some(p.clone()), false)).unwrap();
        assert_eq!(s.cursor().as_deref(), Some("s=x;i=9"));
        s.put("s=x;i=10").unwrap();
        // not persistent: written at shutdown
        assert!(std::fs::read_to_string(&p).unwrap().contains("i=9"));
        s.close().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), r#"{"other":1,"journal":"s=x;i=10"}"#);
        std::fs::write(&p, "[1]").unwrap();
        assert!(matches!(CursorStore::open(cfg(Some(p), false)), Err(StorageError::Invalid { .. })));
    }

    #[test]
    fn path_rules() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(resolve(&dir.path().join("c.json")), dir.path().join("c.json"));
        assert_eq!(resolve(dir.path()), dir.path().join("worker0/storage.json"));
        assert_eq!(resolve(&dir.path().join("new")), dir.path().join("new/worker0/storage.json"));
    }
}
