//! Discovery: which files the `path` patterns match now (globs as Ruby's Dir.glob, `exclude_path`,
//! `limit_recently_modified`, no FIFOs or devices), refreshed every `refresh_interval`; new matches are
//! followed, files no longer matched are read to their end and let go.
use super::watcher::{WKey, Worker};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Instant, SystemTime};

/// Like Ruby's Dir.glob: `*` does not match a leading dot.
const GLOB_OPTIONS: glob::MatchOptions =
    glob::MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: true };

fn has_glob(p: &str) -> bool {
    p.contains(['*', '?', '['])
}

impl Worker {
    /// The files the `path` patterns match now.
    fn expand(&mut self) -> Vec<String> {
        let cfg = &self.env.cfg;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let now = SystemTime::now();
        for pat in &cfg.paths {
            let candidates: Vec<String> = if has_glob(pat) {
                match glob::glob_with(pat, GLOB_OPTIONS) {
                    Ok(paths) => paths.filter_map(Result::ok).map(|p| p.to_string_lossy().into_owned()).collect(),
                    Err(_) => Vec::new(),
                }
            } else {
                vec![pat.clone()]
            };
            for p in candidates {
                if cfg.excluded(&p) || seen.contains(&p) {
                    continue;
                }
                match std::fs::metadata(&p) {
                    Ok(m) => {
                        if m.is_dir() {
                            continue;
                        }
                        if !m.is_file() {
                            // A FIFO would block the reader, a device (a symlink to /dev/zero) never ends.
                            if self.special_warned.insert(p.clone()) {
                                self.env.stats.special_files_skipped.fetch_add(1, Relaxed);
                                tracing::warn!(path = %p, "tail: not a regular file (FIFO, socket or device); not followed");
                            }
                            continue;
                        }
                        if let Some(limit) = cfg.limit_recently_modified {
                            let old = m
                                .modified()
                                .ok()
                                .and_then(|t| now.duration_since(t).ok())
                                .is_some_and(|age| age > limit);
                            if old {
                                continue;
                            }
                        }
                    }
                    Err(_) if has_glob(pat) => continue,
                    // A literal path that does not exist yet is watched for its creation.
                    Err(_) => {}
                }
                seen.insert(p.clone());
                out.push(p);
            }
        }
        out
    }

    pub(super) fn refresh(&mut self) {
        self.last_refresh = Instant::now();
        self.refresh_requested = false;
        let startup = !self.started;
        self.started = true;
        let matched = self.expand();
        if self.env.cfg.follow_inodes {
            self.refresh_inodes(&matched, startup);
            return;
        }
        let set: HashSet<&String> = matched.iter().collect();
        for p in &matched {
            let key = WKey::Path(p.clone());
            if !self.files.contains_key(&key) {
                let mut t = self.new_tailed(p);
                self.open_path(&mut t, startup);
                self.files.insert(key, t);
            } else if self.files.get(&key).is_some_and(|t| t.detached) {
                // Matched again: continue where it was (its position is still in memory and in the pos_file).
                let Some(mut t) = self.files.remove(&key) else {
                    continue;
                };
                t.detached = false;
                if t.cur.is_none() {
                    let ino = std::fs::metadata(p).map(|m| m.ino()).ok();
                    match t.rotated.iter().position(|(h, _)| Some(h.ino) == ino) {
                        Some(i) => t.cur = Some(t.rotated.remove(i).0),
                        None => self.open_path(&mut t, false),
                    }
                }
                self.files.insert(key, t);
            }
        }
        let gone: Vec<WKey> = self
            .files
            .iter()
            .filter(|(k, _)| matches!(k, WKey::Path(p) if !set.contains(p)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            let Some(t) = self.files.get_mut(&k) else {
                continue;
            };
            t.detached = true;
            if let Some(h) = t.cur.take() {
                // No longer matched (deleted, excluded, or not modified recently): read it to its end.
                let deadline = Instant::now() + self.env.cfg.rotate_wait;
                t.rotated.push((h, deadline));
            }
            if t.rotated.is_empty() {
                let exists = Path::new(&t.stream.path).exists();
                if let (Some(pf), Some(slot), false) = (self.pos.as_mut(), t.slot, exists) {
                    let _ = pf.unwatch(slot);
                }
                let mut t = self.files.remove(&k);
                if let Some(t) = t.as_mut() {
                    let _ = t.stream.flush_parser(&self.env);
                }
            }
        }
    }

    fn refresh_inodes(&mut self, matched: &[String], startup: bool) {
        let mut live = HashSet::new();
        for p in matched {
            let Ok(m) = std::fs::metadata(p) else {
                continue;
            };
            let key = WKey::Ino(m.dev(), m.ino());
            live.insert(key.clone());
            if let Some(t) = self.files.get_mut(&key) {
                t.gone_since = None;
                continue;
            }
            let mut t = self.new_tailed(p);
            self.open_path(&mut t, startup);
            if let Some(h) = &t.cur {
                let key = WKey::Ino(h.dev, h.ino);
                live.insert(key.clone());
                self.files.entry(key).or_insert(t);
            }
        }
        let now = Instant::now();
        for (k, t) in self.files.iter_mut() {
            if !live.contains(k) && t.gone_since.is_none() {
                t.gone_since = Some(now);
            }
        }
    }
}
