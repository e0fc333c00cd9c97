//! The position file, byte for byte in Fluentd's format: one line per file,
//! `PATH\tPOSITION\tINODE\n` with position and inode as 16 lowercase hex digits. Positions are updated in
//! place (the two numbers have a fixed width), new files are appended, and compaction rewrites the file
//! with only the live entries (through a temporary file and a rename, so a crash leaves either version).
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
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
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
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

/// Write `entries` to a temporary file next to `path`, rename it over `path`, and open it for updates.
fn write_fresh(path: &Path, entries: &[(String, u64, u64)]) -> io::Result<File> {
    let mut text = String::new();
    for (p, pos, ino) in entries {
        text.push_str(&entry_line(p, *pos, *ino));
    }
    let tmp = path.with_extension(format!(
        "{}sluice-tmp",
        path.extension().map(|e| format!("{}.", e.to_string_lossy())).unwrap_or_default()
    ));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    OpenOptions::new().read(true).write(true).open(path)
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
}
