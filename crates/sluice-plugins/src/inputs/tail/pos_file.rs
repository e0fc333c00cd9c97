//! The position file, byte for byte in Fluentd's format: one line per file,
//! `PATH\tPOSITION\tINODE\n` with position and inode as 16 lowercase hex digits. Positions are updated in
//! place (the two numbers have a fixed width), new files are appended, and compaction rewrites the file
//! with only the live entries (through a temporary file and a rename, so a crash leaves either version).
//!
//! The directory may be shared with other users (a node's /var/log): it is created 0700, and one owned by
//! another user (not root) or writable by others is refused, since whoever controls it controls what is read next.
//! The temporary file is created exclusively with a random name (never through a planted symlink), and
//! the position file is 0600.
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Fluentd's position for a file that is no longer watched; such entries are dropped at compaction.
pub const UNWATCHED: u64 = u64::MAX;

/// What identifies a file in the position file: its path, or its inode with `follow_inodes`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PosKey {
    Path(String),
    Ino(u64),
}

#[derive(Debug, Clone)]
struct Entry {
    path: String,
    pos: u64,
    ino: u64,
    /// Offset of the line in the file.
    offset: u64,
}

pub type Slot = usize;

pub struct PosFile {
    path: PathBuf,
    file: File,
    entries: Vec<Entry>,
    index: HashMap<PosKey, Slot>,
    end: u64,
    follow_inodes: bool,
}

fn entry_line(path: &str, pos: u64, ino: u64) -> String {
    format!("{path}\t{pos:016x}\t{ino:016x}\n")
}

/// Parse a position file's text; malformed lines are skipped (and counted).
pub fn parse(text: &str) -> (Vec<(String, u64, u64)>, usize) {
    let mut out = Vec::new();
    let mut bad = 0;
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.rsplitn(3, '\t');
        let (Some(ino), Some(pos), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            bad += 1;
            continue;
        };
        match (u64::from_str_radix(pos.trim(), 16), u64::from_str_radix(ino.trim(), 16)) {
            (Ok(p), Ok(i)) => out.push((path.to_string(), p, i)),
            _ => bad += 1,
        }
    }
    (out, bad)
}

impl PosFile {
    /// Open (or create) the position file and compact it: unwatched entries and duplicates (the last
    /// one wins) are dropped, as Fluentd does at start.
    pub fn open(path: &Path, follow_inodes: bool) -> io::Result<PosFile> {
        let dir = dir_of(path);
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        check_dir(dir)?;
        let mut text = String::new();
        match File::open(path) {
            Ok(mut f) => {
                let mut bytes = Vec::new();
                f.read_to_end(&mut bytes)?;
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let (raw, bad) = parse(&text);
        if bad > 0 {
            tracing::warn!(pos_file = %path.display(), lines = bad, "tail: skipped malformed lines in pos_file");
        }
        let mut live: Vec<(String, u64, u64)> = Vec::new();
        let mut seen: HashMap<PosKey, usize> = HashMap::new();
        for (p, pos, ino) in raw {
            if pos == UNWATCHED {
                continue;
            }
            let key = if follow_inodes { PosKey::Ino(ino) } else { PosKey::Path(p.clone()) };
            match seen.get(&key) {
                Some(&i) => live[i] = (p, pos, ino),
                None => {
                    seen.insert(key, live.len());
                    live.push((p, pos, ino));
                }
            }
        }
        let file = write_fresh(path, &live)?;
        let mut pf = PosFile {
            path: path.to_path_buf(),
            file,
            entries: Vec::new(),
            index: HashMap::new(),
            end: 0,
            follow_inodes,
        };
        for (p, pos, ino) in live {
            pf.push_entry(p, pos, ino);
        }
        Ok(pf)
    }

    fn key(&self, path: &str, ino: u64) -> PosKey {
        if self.follow_inodes {
            PosKey::Ino(ino)
        } else {
            PosKey::Path(path.to_string())
        }
    }

    fn push_entry(&mut self, path: String, pos: u64, ino: u64) -> Slot {
        let len = entry_line(&path, pos, ino).len() as u64;
        let slot = self.entries.len();
        self.index.insert(self.key(&path, ino), slot);
        self.entries.push(Entry { path, pos, ino, offset: self.end });
        self.end += len;
        slot
    }

    /// The recorded (position, inode) for a path (or an inode with `follow_inodes`).
    pub fn lookup(&self, key: &PosKey) -> Option<(u64, u64)> {
        self.index.get(key).map(|&s| (self.entries[s].pos, self.entries[s].ino))
    }

    /// The entry for this file, created (and written) when it does not exist yet.
    pub fn slot(&mut self, path: &str, pos: u64, ino: u64) -> io::Result<Slot> {
        if let Some(&s) = self.index.get(&self.key(path, ino)) {
            self.update(s, pos, ino)?;
            return Ok(s);
        }
        let offset = self.end;
        let line = entry_line(path, pos, ino);
        self.file.write_all_at(line.as_bytes(), offset)?;
        Ok(self.push_entry(path.to_string(), pos, ino))
    }

    /// Record a new position (and inode) in place.
    pub fn update(&mut self, slot: Slot, pos: u64, ino: u64) -> io::Result<()> {
        let Some(e) = self.entries.get_mut(slot) else {
            return Ok(());
        };
        if e.pos == pos && e.ino == ino {
            return Ok(());
        }
        let old_key = if self.follow_inodes { Some(PosKey::Ino(e.ino)) } else { None };
        e.pos = pos;
        e.ino = ino;
        let at = e.offset + e.path.len() as u64 + 1;
        let text = format!("{pos:016x}\t{ino:016x}");
        self.file.write_all_at(text.as_bytes(), at)?;
        if let Some(k) = old_key {
            if k != PosKey::Ino(ino) {
                self.index.remove(&k);
                self.index.insert(PosKey::Ino(ino), slot);
            }
        }
        Ok(())
    }

    /// The file is no longer watched: its position becomes Fluentd's `ffffffffffffffff`.
    pub fn unwatch(&mut self, slot: Slot) -> io::Result<()> {
        let Some(e) = self.entries.get(slot) else {
            return Ok(());
        };
        let (path, ino) = (e.path.clone(), e.ino);
        let key = self.key(&path, ino);
        if self.index.get(&key) == Some(&slot) {
            self.index.remove(&key);
        }
        self.update(slot, UNWATCHED, ino)
    }

    /// Rewrite the file with only the watched entries. Returns the new slot of every old slot.
    pub fn compact(&mut self) -> io::Result<HashMap<Slot, Slot>> {
        let mut live = Vec::new();
        let mut remap = HashMap::new();
        for (i, e) in self.entries.iter().enumerate() {
            if e.pos != UNWATCHED {
                remap.insert(i, live.len());
                live.push((e.path.clone(), e.pos, e.ino));
            }
        }
        self.file = write_fresh(&self.path, &live)?;
        self.entries.clear();
        self.index.clear();
        self.end = 0;
        for (p, pos, ino) in live {
            self.push_entry(p, pos, ino);
        }
        Ok(remap)
    }
}

/// The directory of the position file `path`.
pub fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Refuse a directory that another user could change: owned by neither this process's user nor root, or
/// writable by others.
pub fn check_dir(dir: &Path) -> io::Result<()> {
    let meta = std::fs::metadata(dir)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let refuse = |why: String| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "refusing pos_file directory {}: {why}; use a directory only sluice's user can write",
                dir.display()
            ),
        ))
    };
    // root owns the system's directories (/var/log, /var/lib) and can change anything anyway.
    if meta.uid() != me && meta.uid() != 0 {
        return refuse(format!("it is owned by uid {}, not by sluice's uid {me}", meta.uid()));
    }
    if meta.permissions().mode() & 0o002 != 0 {
        return refuse(format!("it is writable by other users (mode {:o})", meta.permissions().mode() & 0o7777));
    }
    Ok(())
}

/// Write `entries` to a new temporary file next to `path` (created exclusively, mode 0600), rename it
/// over `path`, and keep it open for updates.
fn write_fresh(path: &Path, entries: &[(String, u64, u64)]) -> io::Result<File> {
    let mut text = String::new();
    for (p, pos, ino) in entries {
        text.push_str(&entry_line(p, *pos, *ino));
    }
    let dir = dir_of(path);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".sluice-tmp")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fluentd_format_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.pos");
        std::fs::write(
            &p,
            "/var/log/a.log\t0000000000000010\t0000000000001234\n\
             /var/log/b.log\tffffffffffffffff\t0000000000000001\n\
             /var/log/a.log\t0000000000000020\t0000000000001234\n",
        )
        .unwrap();
        let mut pf = PosFile::open(&p, false).unwrap();
        assert_eq!(pf.lookup(&PosKey::Path("/var/log/a.log".into())), Some((0x20, 0x1234)));
        assert_eq!(pf.lookup(&PosKey::Path("/var/log/b.log".into())), None);
        let s = pf.slot("/var/log/c.log", 5, 7).unwrap();
        pf.update(s, 0xabc, 7).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            "/var/log/a.log\t0000000000000020\t0000000000001234\n/var/log/c.log\t0000000000000abc\t0000000000000007\n"
        );
        pf.unwatch(0).unwrap();
        pf.compact().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "/var/log/c.log\t0000000000000abc\t0000000000000007\n");
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    /// The old temporary name was predictable: a symlink planted there redirected the rewrite into any file.
    #[test]
    fn a_symlink_planted_at_a_temporary_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let pos = dir.path().join("state/x.pos");
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        std::fs::set_permissions(dir.path().join("state"), std::fs::Permissions::from_mode(0o700)).unwrap();
        for name in ["x.pos.sluice-tmp", "x.sluice-tmp", ".x.pos.sluice-tmp"] {
            std::os::unix::fs::symlink(&victim, dir.path().join("state").join(name)).unwrap();
        }
        std::fs::write(&pos, "/var/log/a.log\t0000000000000010\t0000000000001234\n").unwrap();
        let mut pf = PosFile::open(&pos, false).unwrap();
        pf.compact().unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert_eq!(std::fs::read_to_string(&pos).unwrap(), "/var/log/a.log\t0000000000000010\t0000000000001234\n");
        assert!(!std::fs::symlink_metadata(&pos).unwrap().file_type().is_symlink());
    }

    #[test]
    fn the_directory_is_created_0700_and_the_file_0600() {
        let dir = tempfile::tempdir().unwrap();
        let pos = dir.path().join("new/deeper/x.pos");
        // An existing position file readable by everyone becomes 0600 too.
        let old = dir.path().join("y.pos");
        std::fs::write(&old, "").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        PosFile::open(&pos, false).unwrap();
        PosFile::open(&old, false).unwrap();
        assert_eq!(mode(&dir.path().join("new")), 0o700);
        assert_eq!(mode(&dir.path().join("new/deeper")), 0o700);
        assert_eq!(mode(&pos), 0o600);
        assert_eq!(mode(&old), 0o600);
    }

    #[test]
    fn a_directory_writable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let e = PosFile::open(&shared.join("x.pos"), false).err().expect("refused");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("writable by other users"), "{e}");
        assert!(!shared.join("x.pos").exists());
    }

    #[test]
    fn a_directory_owned_by_another_user_is_refused() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            println!("SKIPPED: only root can give a directory to another user");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let e = PosFile::open(&theirs.join("x.pos"), false).err().expect("refused");
        assert!(e.to_string().contains("owned by uid 65534"), "{e}");
    }
}
