//! Following one file: opening it where its pos_file entry says, reading it each tick, and noticing
//! rotation (rename-and-create), truncation (copytruncate) and removal; rotated-away files are read to their
//! end for `rotate_wait`. Path mode keys a file by its path, `follow_inodes` by its inode.
use super::pos_file::{PosKey, Slot};
use super::reader::Handle;
use super::stream::{finish_pending, read_handle, Commit, ReadOutcome, Stream};
use super::watcher::{Stop, WKey, Worker};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// One followed file: its stream, its pos_file slot, the open handle and the rotated-away ones.
pub(super) struct Tailed {
    pub(super) stream: Stream,
    pub(super) slot: Option<Slot>,
    pub(super) cur: Option<Handle>,
    /// Rotated-away files still read until their deadline (`rotate_wait`).
    pub(super) rotated: Vec<(Handle, Instant)>,
    pub(super) next_open_try: Instant,
    pub(super) perm_warned: bool,
    /// follow_inodes: since when no matched path points to this inode.
    pub(super) gone_since: Option<Instant>,
    /// Path mode: no longer matched by the globs (excluded, not modified recently, removed): not reopened.
    pub(super) detached: bool,
    /// Path mode: the followed file left its path; a file that appears there next is the rotated-in one.
    pub(super) renamed_away: bool,
}

impl Worker {
    /// A newly matched file, not yet opened.
    pub(super) fn new_tailed(&self, path: &str) -> Tailed {
        Tailed {
            stream: Stream::new(&self.env.cfg, path, self.proto.as_ref()),
            slot: None,
            cur: None,
            rotated: Vec::new(),
            next_open_try: Instant::now(),
            perm_warned: false,
            gone_since: None,
            detached: false,
            renamed_away: false,
        }
    }

    /// Open the file of `t` at the position its pos_file entry, or the startup rule, gives.
    pub(super) fn open_path(&mut self, t: &mut Tailed, startup: bool) {
        let cfg = self.env.cfg.clone();
        let path = t.stream.path.clone();
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                self.open_failed(t, &e);
                return;
            }
        };
        let key = if cfg.follow_inodes { PosKey::Ino(meta.ino()) } else { PosKey::Path(path.clone()) };
        let want = match self.pos.as_ref().and_then(|pf| pf.lookup(&key)) {
            Some((pos, ino)) if ino == meta.ino() => Some(pos),
            // The file was replaced while sluice was not running: read the new one from its start.
            Some(_) => Some(0),
            None if startup && !cfg.read_from_head => None,
            None => Some(0),
        };
        match Handle::open(Path::new(&path), want) {
            Ok((mut h, _size)) => {
                h.committed = h.consumed();
                if let Some(pf) = self.pos.as_mut() {
                    match pf.slot(&path, h.committed, h.ino) {
                        Ok(s) => t.slot = Some(s),
                        Err(e) => tracing::warn!(error = %e, "tail: cannot write pos_file"),
                    }
                }
                tracing::info!(path = %path, pos = h.committed, "tail: following file");
                self.env.stats.files_opened.fetch_add(1, Relaxed);
                t.perm_warned = false;
                t.cur = Some(h);
            }
            Err(e) => self.open_failed(t, &e),
        }
    }

    fn open_failed(&self, t: &mut Tailed, e: &io::Error) {
        let cfg = &self.env.cfg;
        match e.kind() {
            io::ErrorKind::NotFound => {
                t.next_open_try = Instant::now() + cfg.stat_interval;
            }
            io::ErrorKind::PermissionDenied => {
                self.env.stats.permission_errors.fetch_add(1, Relaxed);
                t.next_open_try = Instant::now() + cfg.refresh_interval.max(Duration::from_secs(1));
                if !(cfg.ignore_repeated_permission_error && t.perm_warned) {
                    tracing::warn!(path = %t.stream.path, "tail: permission denied; will retry at the next refresh");
                }
                t.perm_warned = true;
            }
            _ => {
                t.next_open_try = Instant::now() + cfg.refresh_interval.max(Duration::from_secs(1));
                if let Some(suppressed) = self.env.warn_key(&format!("open:{}", t.stream.path)) {
                    tracing::warn!(path = %t.stream.path, error = %e, suppressed, "tail: cannot open file");
                }
            }
        }
    }

    /// One pass over every file. True when some file has more to read right away.
    pub(super) fn tick(&mut self) -> Result<bool, Stop> {
        let keys: Vec<WKey> = self.files.keys().cloned().collect();
        let mut busy = false;
        let mut remove = Vec::new();
        for k in keys {
            let Some(mut t) = self.files.remove(&k) else {
                continue;
            };
            let r = if self.env.cfg.follow_inodes { self.tick_inode(&mut t) } else { self.tick_path(&mut t) };
            let keep = match r {
                Ok((b, keep)) => {
                    busy |= b;
                    keep
                }
                Err(Stop) => {
                    self.files.insert(k, t);
                    return Err(Stop);
                }
            };
            if keep {
                self.files.insert(k, t);
            } else {
                remove.push(t);
            }
            if self.env.ctx.shutdown.is_triggered() {
                return Err(Stop);
            }
        }
        for mut t in remove {
            if t.cur.is_some() {
                self.env.stats.files_closed.fetch_add(1, Relaxed);
            }
            if let (Some(pf), Some(slot)) = (self.pos.as_mut(), t.slot) {
                let _ = pf.unwatch(slot);
            }
            t.stream.flush_parser(&self.env)?;
        }
        Ok(busy)
    }

    fn read_cur(&mut self, t: &mut Tailed) -> Result<bool, Stop> {
        let Some(h) = t.cur.as_mut() else {
            return Ok(false);
        };
        if !h.is_open() {
            match h.reopen(Path::new(&t.stream.path)) {
                Ok(true) => {}
                _ => return Ok(false),
            }
        }
        let mut c = Commit { pos: self.pos.as_mut().zip(t.slot) };
        let out = read_handle(&self.env, &mut t.stream, h, &mut c)?;
        if self.env.cfg.open_on_every_update && matches!(out, ReadOutcome::Idle) {
            h.close();
        }
        Ok(matches!(out, ReadOutcome::More))
    }

    /// multiline_flush_interval: emit what the parser holds when the file has been quiet that long.
    fn after_read(&mut self, t: &mut Tailed) -> Result<(), Stop> {
        if let Some(iv) = self.env.cfg.multiline_flush_interval {
            if t.stream.held && t.stream.last_line_at.elapsed() >= iv && t.stream.flush_parser(&self.env)? {
                if let Some(h) = t.cur.as_mut() {
                    h.hold_start = None;
                    Commit { pos: self.pos.as_mut().zip(t.slot) }.commit(h);
                }
            }
        }
        Ok(())
    }

    fn drain_rotated(&mut self, t: &mut Tailed) -> Result<bool, Stop> {
        let mut busy = false;
        let now = Instant::now();
        let mut i = 0;
        while i < t.rotated.len() {
            let (h, deadline) = &mut t.rotated[i];
            let mut c = Commit { pos: None };
            let out = if h.is_open() { read_handle(&self.env, &mut t.stream, h, &mut c)? } else { ReadOutcome::Idle };
            busy |= matches!(out, ReadOutcome::More);
            let expired = now >= *deadline || (self.env.cfg.exit_on_eof && h.at_eof);
            if expired && matches!(out, ReadOutcome::Idle) {
                let (mut h, _) = t.rotated.remove(i);
                finish_pending(&self.env, &mut t.stream, &mut h, &mut c)?;
                tracing::info!(path = %t.stream.path, "tail: done with rotated file");
            } else {
                i += 1;
            }
        }
        Ok(busy)
    }

    /// Path mode: the file at the path may be replaced (rotation), truncated or removed.
    fn tick_path(&mut self, t: &mut Tailed) -> Result<(bool, bool), Stop> {
        let mut busy = self.drain_rotated(t)?;
        let mut unchanged = false;
        let cfg = self.env.cfg.clone();
        let path = t.stream.path.clone();
        match std::fs::metadata(&path) {
            Ok(m) => {
                let replaced = t.cur.as_ref().map(|h| h.ino != m.ino() || h.dev != m.dev());
                match replaced {
                    Some(true) => {
                        // Rotation: finish what the old file has now, keep it for rotate_wait, start the new one.
                        self.read_cur(t)?;
                        if let Some(h) = t.cur.take() {
                            self.env.stats.rotations.fetch_add(1, Relaxed);
                            tracing::info!(path = %path, "tail: file rotated; reading the new file from its start");
                            t.rotated.push((h, Instant::now() + cfg.rotate_wait));
                        }
                        self.open_new(t)?;
                    }
                    Some(false) => {
                        let h = t.cur.as_mut().expect("checked");
                        if h.truncated(m.len()) {
                            self.env.stats.truncations.fetch_add(1, Relaxed);
                            tracing::info!(path = %path, "tail: file truncated; reading it again from its start");
                            let _ = h.rewind(0);
                            let mut c = Commit { pos: self.pos.as_mut().zip(t.slot) };
                            c.commit(h);
                        } else {
                            // Nothing new since the last read: spare the read (and the open).
                            unchanged = h.at_eof && m.len() == h.read_offset();
                        }
                    }
                    None => {
                        if !t.detached && Instant::now() >= t.next_open_try {
                            self.open_new(t)?;
                            if t.cur.is_some() {
                                // A rename seen before the new file was created is a rotation all the same.
                                if std::mem::take(&mut t.renamed_away) {
                                    self.env.stats.rotations.fetch_add(1, Relaxed);
                                    tracing::info!(path = %path, "tail: file rotated; reading the new file from its start");
                                } else {
                                    tracing::info!(path = %path, pos = 0, "tail: following file");
                                }
                            }
                        }
                    }
                }
            }
            Err(e) => {
                if let Some(h) = t.cur.take() {
                    if e.kind() == io::ErrorKind::NotFound {
                        let mut h = h;
                        let mut c = Commit { pos: self.pos.as_mut().zip(t.slot) };
                        read_handle(&self.env, &mut t.stream, &mut h, &mut c)?;
                        tracing::info!(path = %path, "tail: file removed or renamed; reading it for rotate_wait");
                        t.rotated.push((h, Instant::now() + cfg.rotate_wait));
                        t.renamed_away = true;
                    } else {
                        t.cur = Some(h);
                    }
                }
            }
        }
        if !unchanged {
            busy |= self.read_cur(t)?;
        }
        self.after_read(t)?;
        Ok((busy, true))
    }

    /// A file appeared at the path after start (or after a rotation): read it from its start.
    fn open_new(&mut self, t: &mut Tailed) -> Result<(), Stop> {
        let path = t.stream.path.clone();
        match Handle::open(Path::new(&path), Some(0)) {
            Ok((mut h, _)) => {
                h.committed = 0;
                if let Some(pf) = self.pos.as_mut() {
                    match pf.slot(&path, 0, h.ino) {
                        Ok(s) => t.slot = Some(s),
                        Err(e) => tracing::warn!(error = %e, "tail: cannot write pos_file"),
                    }
                }
                self.env.stats.files_opened.fetch_add(1, Relaxed);
                t.perm_warned = false;
                t.cur = Some(h);
            }
            Err(e) => self.open_failed(t, &e),
        }
        Ok(())
    }

    /// follow_inodes: a watcher is one inode, whatever its name is now.
    fn tick_inode(&mut self, t: &mut Tailed) -> Result<(bool, bool), Stop> {
        if let Some(h) = t.cur.as_mut() {
            match std::fs::metadata(&t.stream.path) {
                Ok(m) if m.ino() == h.ino && m.dev() == h.dev => {
                    if h.size().is_some_and(|s| h.truncated(s)) {
                        self.env.stats.truncations.fetch_add(1, Relaxed);
                        let _ = h.rewind(0);
                        let mut c = Commit { pos: self.pos.as_mut().zip(t.slot) };
                        c.commit(h);
                    }
                }
                // Renamed or replaced: find where it went at the next refresh.
                _ => self.refresh_requested = true,
            }
        }
        let busy = self.read_cur(t)?;
        self.after_read(t)?;
        if let Some(since) = t.gone_since {
            let done = since.elapsed() >= self.env.cfg.rotate_wait
                || (self.env.cfg.exit_on_eof && t.cur.as_ref().is_none_or(|h| h.at_eof));
            if done && !busy {
                if let Some(h) = t.cur.as_mut() {
                    let mut c = Commit { pos: self.pos.as_mut().zip(t.slot) };
                    finish_pending(&self.env, &mut t.stream, h, &mut c)?;
                }
                return Ok((false, false));
            }
        }
        Ok((busy, true))
    }
}
