//! Staging: an emit appends its events to the staged chunk of their chunk keys, under the buffer's limits
//! and `overflow_action`, all or nothing (a failed emit is undone exactly, so the input can send the batch
//! again); chunks that are full or due move to the queue.
use super::{Body, Inner, Queued, State};
use crate::buffer::chunk::{gzip, new_id, ChunkMetadata};
use crate::buffer::config::{FlushMode, OverflowAction};
use crate::buffer::file_store::{self, Layout};
use crate::event::{write_entry, write_entry_json, Event, Events};
use crate::plugin::EmitError;
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most a memory chunk reserves up front (at most 1 MiB of address space per staged chunk).
const MAX_RESERVE: u64 = 1024 * 1024;
/// Room for the entry that crosses the limit before the chunk rolls over.
const RESERVE_SLACK: usize = 4096;

/// A chunk being filled, not yet queued.
pub(super) struct Staged {
    pub(super) id: [u8; 16],
    pub(super) meta: ChunkMetadata,
    /// Memory buffer: the chunk's entries. File buffer: entries not yet written to the file.
    pub(super) data: Vec<u8>,
    /// Uncompressed bytes in the chunk.
    pub(super) bytes: u64,
    pub(super) records: usize,
    /// Records in `data` not yet written to the file (file buffer).
    pub(super) pending_records: usize,
    pub(super) created: Instant,
    pub(super) file: Option<(File, PathBuf)>,
    /// Bytes of the chunk file that hold whole, accepted entries: a failed write is cut back to this.
    pub(super) written: u64,
}

/// A chunk's state before an emit touched it, to undo a failed emit exactly.
#[derive(Clone, Copy)]
struct Before {
    written: u64,
    data_len: usize,
    records: usize,
    bytes: u64,
    /// The emit created the chunk: undoing removes it.
    created: bool,
}

impl Before {
    const NEW: Before = Before { written: 0, data_len: 0, records: 0, bytes: 0, created: true };
}

/// What one emit changed, so that it can be undone or completed.
#[derive(Default)]
struct Tx {
    before: HashMap<[u8; 16], Before>,
    /// Chunks that filled up during the emit: queued when it succeeds, staged again when it fails.
    rolled: Vec<Staged>,
}

impl Inner {
    /// Bytes the buffer holds before `overflow_action` applies: `total_limit_size`, or the memory bound.
    fn limit(&self) -> u64 {
        self.cfg.read_ahead_limit.map_or(self.cfg.total_limit_size, |b| b.min(self.cfg.total_limit_size))
    }

    fn storable(&self, st: &State) -> bool {
        st.total_bytes < self.limit() && self.cfg.queue_limit_length.is_none_or(|q| st.queue.len() < q)
    }

    /// At the memory bound, staged data alone can hold the buffer full (a chunk key or `chunk_limit_size`
    /// that fills slowly, a long `timekey`): queue the largest staged chunk so the flush makes room.
    fn queue_staged_at_bound(&self, st: &mut State) -> bool {
        let Some(bound) = self.cfg.read_ahead_limit else {
            return false;
        };
        let staged: u64 = st.staged.values().map(|s| s.bytes).sum();
        if staged < bound / 2 {
            return false;
        }
        let largest = st.staged.iter().max_by_key(|(_, s)| s.bytes).map(|(k, _)| k.clone());
        largest.is_some_and(|k| self.enqueue_key(st, &k))
    }

    pub(super) fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        if events.is_empty() {
            return Ok(());
        }
        if self.layout.is_none() && self.closed.load(Ordering::Relaxed) {
            return Err(EmitError::ShuttingDown);
        }
        // Chunk metadata is computed before taking the lock, once per run of events that share it.
        let keys = &self.cfg.keys;
        let mut runs: Vec<(ChunkMetadata, std::ops::Range<usize>)> = Vec::new();
        if keys.per_batch() {
            let meta = ChunkMetadata { tag: keys.tag.then(|| tag.to_string()), timekey: None, variables: Vec::new() };
            runs.push((meta, 0..events.len()));
        } else {
            let mut slice: Option<(i64, i64)> = None;
            for (i, ev) in events.iter().enumerate() {
                let same_slice = match (slice, keys.timekey) {
                    (Some((start, tk)), Some(_)) if keys.records.is_empty() => {
                        ev.time.sec >= start && ev.time.sec < start + tk
                    }
                    _ => false,
                };
                if same_slice {
                    if let Some(r) = runs.last_mut() {
                        r.1.end = i + 1;
                        continue;
                    }
                }
                let meta = keys.metadata(tag, ev, &self.cfg.zone);
                slice = match (meta.timekey, keys.timekey) {
                    (Some(start), Some(tk)) => Some((start, tk)),
                    _ => None,
                };
                match runs.last_mut() {
                    Some(r) if r.0 == meta => r.1.end = i + 1,
                    _ => runs.push((meta, i..i + 1)),
                }
            }
        }
        let mut st = self.state.lock();
        while !self.storable(&st) {
            if self.queue_staged_at_bound(&mut st) {
                self.wake.notify_waiters();
            }
            match self.cfg.overflow_action {
                OverflowAction::ThrowException
                    if st.total_bytes < self.cfg.total_limit_size
                        && self.cfg.queue_limit_length.is_none_or(|q| st.queue.len() < q) =>
                {
                    // The memory bound, not a configured limit: ordinary backpressure, the input reads the
                    // batch again once the flush has made room.
                    drop(st);
                    tracing::debug!(output = %self.name, tag, records = events.len(),
                        "memory bound reached; emit refused until the buffer drains");
                    return Err(EmitError::BufferOverflow {
                        output: self.name.clone(),
                        reason: "memory bound reached; waiting for the flush".into(),
                    });
                }
                OverflowAction::ThrowException => {
                    drop(st);
                    if let Some(n) = self.warn.check("overflow") {
                        tracing::warn!(output = %self.name, tag, records = events.len(), suppressed = n,
                            "buffer full (total_limit_size/queue_limit_length); emit refused, the input will retry");
                    }
                    return Err(EmitError::BufferOverflow {
                        output: self.name.clone(),
                        reason: "buffer space has too many data".into(),
                    });
                }
                OverflowAction::Block => {
                    // Nobody will make room once the flush threads are gone.
                    if self.stopping.load(Ordering::Relaxed) {
                        return Err(EmitError::ShuttingDown);
                    }
                    self.wake.notify_waiters();
                    self.space.wait_for(&mut st, Duration::from_millis(200));
                }
                OverflowAction::DropOldestChunk => {
                    if !self.drop_oldest(&mut st) {
                        let keys: Vec<ChunkMetadata> = st.staged.keys().cloned().collect();
                        for k in keys {
                            self.enqueue_key(&mut st, &k);
                        }
                        if !self.drop_oldest(&mut st) {
                            break;
                        }
                    }
                }
            }
        }
        let mut too_large: Vec<Event> = Vec::new();
        let mut queued = false;
        let mut tx = Tx::default();
        let mut result = Ok(());
        for (meta, range) in &runs {
            if let Err(e) = self.append_run(&mut st, meta, tag, &events[range.clone()], &mut too_large, &mut tx) {
                result = Err(e);
                break;
            }
        }
        // File buffer: write what this emit added, so a kill -9 after we return loses nothing.
        if result.is_ok() && self.layout.is_some() {
            result = self.write_pending(&mut st);
        }
        // All or nothing: when the emit fails the input sends the whole batch again, so none of it may stay,
        // not even in a chunk that filled up on the way (it is queued only now).
        match &result {
            Ok(()) => {
                self.metrics.records_in.add(events.len() as u64);
                self.metrics.emit_count.inc();
                for s in tx.rolled.drain(..) {
                    queued |= self.enqueue_staged(&mut st, s);
                }
            }
            Err(_) => {
                self.rollback(&mut st, tx);
                too_large.clear();
            }
        }
        if self.cfg.flush_mode == FlushMode::Immediate {
            let keys: Vec<ChunkMetadata> = st.staged.keys().cloned().collect();
            for k in keys {
                queued |= self.enqueue_key(&mut st, &k);
            }
        }
        drop(st);
        if queued {
            self.wake.notify_waiters();
        }
        if !too_large.is_empty() {
            let n = too_large.len();
            self.metrics.records_to_error_label.add(n as u64);
            tracing::warn!(output = %self.name, tag, records = n, chunk_limit_size = self.cfg.chunk_limit_size,
                "record larger than chunk_limit_size; sent to @ERROR");
            self.fallback.route_errors(tag, too_large, "record is larger than chunk_limit_size");
        }
        result
    }

    /// Append events that share `meta` to its staged chunk, queuing chunks as they fill. The common case
    /// is one map lookup per run and one `write_entry` into the chunk's buffer per event.
    fn append_run(
        &self,
        st: &mut State,
        meta: &ChunkMetadata,
        tag: &str,
        evs: &[Event],
        too_large: &mut Vec<Event>,
        tx: &mut Tx,
    ) -> Result<(), EmitError> {
        let limit = self.cfg.chunk_limit_size;
        let max_records = self.cfg.chunk_limit_records.unwrap_or(usize::MAX);
        let mut i = 0;
        while i < evs.len() {
            if !st.staged.contains_key(meta) {
                let s = self.new_staged(meta)?;
                tx.before.insert(s.id, Before::NEW);
                st.staged.insert(meta.clone(), s);
            }
            let State { staged, total_bytes, .. } = &mut *st;
            let Some(chunk) = staged.get_mut(meta) else {
                return Ok(());
            };
            tx.before.entry(chunk.id).or_insert(Before {
                written: chunk.written,
                data_len: chunk.data.len(),
                records: chunk.records,
                bytes: chunk.bytes,
                created: false,
            });
            let mut roll = false;
            while i < evs.len() {
                if chunk.records >= max_records {
                    roll = true;
                    break;
                }
                let ev = &evs[i];
                let before = chunk.data.len();
                if self.json_records {
                    write_entry_json(tag, ev.time, &ev.record, &mut chunk.data);
                } else {
                    write_entry(tag, ev.time, &ev.record, &mut chunk.data);
                }
                let size = (chunk.data.len() - before) as u64;
                if size > limit {
                    chunk.data.truncate(before);
                    too_large.push(ev.clone());
                    i += 1;
                    continue;
                }
                if chunk.bytes + size > limit && chunk.records > 0 {
                    // Does not fit: it goes to a fresh chunk (encoded again there).
                    chunk.data.truncate(before);
                    roll = true;
                    break;
                }
                chunk.bytes += size;
                chunk.records += 1;
                chunk.pending_records += 1;
                *total_bytes += size;
                i += 1;
                if chunk.bytes >= limit || chunk.records >= max_records {
                    roll = true;
                    break;
                }
            }
            if roll {
                // A chunk that filled up is written now and set aside; it is queued when the whole emit has
                // succeeded (a later failure cuts it back like every other chunk of the batch).
                if let Some(mut chunk) = st.staged.remove(meta) {
                    if let Err(e) = Self::write_staged(&mut chunk, self.cfg.compress_gzip) {
                        tx.rolled.push(chunk);
                        let msg = format!("cannot write buffer chunk file: {e}");
                        self.note_error(&msg);
                        return Err(EmitError::BufferOverflow { output: self.name.clone(), reason: msg });
                    }
                    tx.rolled.push(chunk);
                }
            }
        }
        Ok(())
    }

    fn new_staged(&self, meta: &ChunkMetadata) -> Result<Staged, EmitError> {
        let id = new_id();
        let file = match &self.layout {
            None => None,
            Some(l) => match l.create(&id, meta, self.cfg.compress_gzip) {
                Ok(f) => Some(f),
                Err(e) => {
                    self.note_error(&format!("cannot create buffer chunk file: {e}"));
                    return Err(EmitError::BufferOverflow {
                        output: self.name.clone(),
                        reason: format!("cannot create buffer chunk file: {e}"),
                    });
                }
            },
        };
        // A memory chunk is filled to its limit: reserving it once saves growing (and copying) it by
        // doublings. Capped, since a large reservation is only address space until it is written.
        let data = match file {
            None => Vec::with_capacity(
                usize::try_from(self.cfg.chunk_limit_size.min(MAX_RESERVE)).unwrap_or(0).saturating_add(RESERVE_SLACK),
            ),
            Some(_) => Vec::new(),
        };
        Ok(Staged {
            id,
            meta: meta.clone(),
            data,
            bytes: 0,
            records: 0,
            pending_records: 0,
            created: Instant::now(),
            file,
            written: 0,
        })
    }

    /// Write the pending bytes of file-backed staged chunks; stops at the first failure (the caller rolls
    /// the whole emit back).
    fn write_pending(&self, st: &mut State) -> Result<(), EmitError> {
        let gz = self.cfg.compress_gzip;
        for s in st.staged.values_mut() {
            if let Err(e) = Self::write_staged(s, gz) {
                let msg = format!("cannot write buffer chunk file: {e}");
                self.note_error(&msg);
                return Err(EmitError::BufferOverflow { output: self.name.clone(), reason: msg });
            }
        }
        Ok(())
    }

    /// Undo a failed emit exactly: every chunk it touched goes back to its state before the emit (files cut
    /// back with `ftruncate`, which works on a full disk), chunks it created are removed, chunks that filled
    /// up during it are staged again instead of queued.
    fn rollback(&self, st: &mut State, mut tx: Tx) {
        let touched: Vec<ChunkMetadata> =
            st.staged.iter().filter(|(_, s)| tx.before.contains_key(&s.id)).map(|(k, _)| k.clone()).collect();
        let mut back: Vec<Staged> = Vec::new();
        for k in touched {
            if let Some(s) = st.staged.remove(&k) {
                back.extend(self.undo(st, s, &tx.before));
            }
        }
        for s in tx.rolled.drain(..) {
            back.extend(self.undo(st, s, &tx.before));
        }
        for s in back {
            st.staged.insert(s.meta.clone(), s);
        }
    }

    /// One chunk of [`Self::rollback`]: its state before the emit, or None when the emit created it.
    fn undo(&self, st: &mut State, mut s: Staged, before: &HashMap<[u8; 16], Before>) -> Option<Staged> {
        let b = before.get(&s.id).copied().unwrap_or(Before::NEW);
        st.total_bytes = st.total_bytes.saturating_sub(s.bytes.saturating_sub(b.bytes));
        if b.created {
            if let Some((_, p)) = &s.file {
                Layout::remove(p);
            }
            return None;
        }
        if let Some((f, path)) = &s.file {
            if let Err(e) = f.set_len(b.written) {
                tracing::error!(output = %self.name, path = %path.display(), error = %e,
                    "cannot cut back a buffer chunk after a failed write; its last records may be sent twice");
            }
        }
        s.written = b.written;
        s.data.truncate(b.data_len);
        s.records = b.records;
        s.pending_records = 0;
        s.bytes = b.bytes;
        Some(s)
    }

    /// Append the pending entries to the chunk file. A failed write (a full disk) is cut back to the last
    /// whole entry, so the file never holds a torn or half-accepted batch.
    fn write_staged(s: &mut Staged, gz: bool) -> std::io::Result<()> {
        let Some((file, _)) = s.file.as_mut() else {
            return Ok(());
        };
        if s.data.is_empty() {
            return Ok(());
        }
        let compressed;
        let bytes: &[u8] = if gz {
            compressed = gzip(&s.data);
            &compressed
        } else {
            &s.data
        };
        if let Err(e) = file.write_all(bytes) {
            // Cutting back frees space, so it works on a full disk; if it does not, say why in the error.
            return Err(match file.set_len(s.written) {
                Ok(()) => e,
                Err(te) => std::io::Error::new(e.kind(), format!("{e} (and the chunk could not be cut back: {te})")),
            });
        }
        s.written += bytes.len() as u64;
        s.data.clear();
        s.pending_records = 0;
        Ok(())
    }

    /// Move the staged chunk for `key` to the queue. True when something was queued.
    pub(super) fn enqueue_key(&self, st: &mut State, key: &ChunkMetadata) -> bool {
        match st.staged.remove(key) {
            Some(s) => self.enqueue_staged(st, s),
            None => false,
        }
    }

    /// Move a staged chunk (already out of the staged map) to the queue. True when something was queued.
    pub(super) fn enqueue_staged(&self, st: &mut State, mut s: Staged) -> bool {
        if s.records == 0 {
            if let Some((_, p)) = &s.file {
                Layout::remove(p);
            }
            return false;
        }
        let body = match &self.layout {
            Some(l) => {
                // A chunk that cannot be completed or renamed stays staged on disk and is tried again at the
                // next tick (and at the next start): never queued half-written or half-renamed.
                if let Err(e) = Self::write_staged(&mut s, self.cfg.compress_gzip) {
                    self.note_error(&format!("cannot write buffer chunk file (will retry): {e}"));
                    st.unqueued.push(s);
                    return false;
                }
                let Some((file, path)) = s.file.take() else {
                    return false;
                };
                match l.enqueue(&s.id, &file) {
                    Ok(p) => Body::File(p),
                    Err(e) => {
                        self.note_error(&format!("cannot queue buffer chunk file (will retry): {e}"));
                        s.file = Some((file, path));
                        st.unqueued.push(s);
                        return false;
                    }
                }
            }
            None => {
                let data = std::mem::take(&mut s.data);
                if self.cfg.compress_gzip {
                    let gz = gzip(&data);
                    st.total_bytes = st.total_bytes.saturating_sub(s.bytes) + gz.len() as u64;
                    s.bytes = gz.len() as u64;
                    Body::Mem(Arc::new(gz))
                } else {
                    Body::Mem(Arc::new(data))
                }
            }
        };
        self.metrics.chunks_queued.inc();
        self.metrics.bytes_queued.add(s.bytes);
        st.queue.push_back(Queued {
            id: s.id,
            meta: s.meta,
            records: s.records,
            bytes: s.bytes,
            body,
            inflight: false,
        });
        true
    }

    /// Drop the oldest queued chunk not being written (`overflow_action drop_oldest_chunk`).
    fn drop_oldest(&self, st: &mut State) -> bool {
        let Some(i) = st.queue.iter().position(|q| !q.inflight) else {
            return false;
        };
        let Some(q) = st.queue.remove(i) else {
            return false;
        };
        st.total_bytes = st.total_bytes.saturating_sub(q.bytes);
        if let Body::File(p) = &q.body {
            Layout::remove(p);
        }
        self.metrics.records_dropped.add(q.records as u64);
        if let Some(n) = self.warn.check("drop_oldest") {
            tracing::warn!(output = %self.name, chunk = %file_store::hex(&q.id), records = q.records, suppressed = n,
                "buffer full: dropped the oldest chunk (overflow_action drop_oldest_chunk)");
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::{BufferDefaults, BufferedOutput, Chunk, ChunkWriter, WriteError};
    use crate::event::{EventTime, Value};
    use crate::plugin::Registry;
    use crate::plugin::{BuildCtx, Output};
    use async_trait::async_trait;

    struct Nowhere;

    #[async_trait]
    impl ChunkWriter for Nowhere {
        async fn write(&self, _chunk: &Chunk) -> Result<(), WriteError> {
            Err(WriteError::retryable("not now"))
        }
    }

    fn ev(k: &str, n: i64) -> Event {
        let mut r = crate::event::Map::new();
        r.insert("k", Value::Str(k.into()));
        r.insert("n", Value::Int(n));
        r.insert("pad", Value::Str("x".repeat(200).as_str().into()));
        Event::new(EventTime::new(1, 0), r)
    }

    /// Every `n` in the chunk files of `dir`, sorted.
    fn stored(dir: &std::path::Path) -> Vec<i64> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !name.ends_with(".log") {
                continue;
            }
            let data = std::fs::read(e.path()).unwrap();
            let chunk = Chunk { id: [0; 16], metadata: ChunkMetadata::default(), data: data.into(), records: 0 };
            for e in chunk.events() {
                let e = e.unwrap_or_else(|err| panic!("{name}: {err} after {out:?}"));
                out.push(e.record.get("n").and_then(Value::as_i64).unwrap());
            }
        }
        out.sort_unstable();
        out
    }

    /// A batch fills chunk `x` (queued on the way) and then fails to write chunk `y` (a full disk): the input
    /// retries the whole batch, so the failed emit must leave nothing behind, not even in the filled chunk.
    #[test]
    fn a_failed_emit_is_rolled_back_exactly_even_across_a_filled_chunk() {
        let tmp = tempfile::tempdir().unwrap();
        let text = format!(
            "<match **>\n <buffer k>\n  @type file\n  path {}\n  chunk_limit_records 5\n  flush_interval 1h\n </buffer>\n</match>\n",
            tmp.path().display()
        );
        let root = crate::config::parse_str(&text, std::path::Path::new("t.conf")).unwrap();
        let conf = root.children[0].clone();
        let ctx = BuildCtx::new(Arc::new(Registry::new()));
        let out = BufferedOutput::build_engine(&conf, &ctx, BufferDefaults::default(), Arc::new(Nowhere)).unwrap();
        // Before: x holds 3 records, y 1.
        out.emit("t", vec![ev("x", 0), ev("x", 1), ev("x", 2), ev("y", 3)]).unwrap();
        assert_eq!(stored(tmp.path()), vec![0, 1, 2, 3]);
        // y's file now refuses writes, as a full disk would.
        let y_path = {
            let mut st = out.inner.state.lock();
            let y = st.staged.values_mut().find(|s| s.meta.variables[0].1 == "y").unwrap();
            let (f, p) = y.file.take().unwrap();
            drop(f);
            y.file = Some((File::open(&p).unwrap(), p.clone()));
            p
        };
        let batch = || vec![ev("x", 10), ev("x", 11), ev("x", 12), ev("x", 13), ev("y", 14)];
        assert!(out.emit("t", batch()).is_err());
        assert_eq!(stored(tmp.path()), vec![0, 1, 2, 3], "nothing of the failed batch is kept");
        assert_eq!(out.pending(), (0, 4), "the filled chunk is not queued");
        // The disk is back; the input sends the batch again: each record is stored once.
        {
            let mut st = out.inner.state.lock();
            let y = st.staged.values_mut().find(|s| s.meta.variables[0].1 == "y").unwrap();
            y.file = Some((std::fs::OpenOptions::new().append(true).open(&y_path).unwrap(), y_path.clone()));
        }
        out.emit("t", batch()).unwrap();
        assert_eq!(stored(tmp.path()), vec![0, 1, 2, 3, 10, 11, 12, 13, 14]);
        assert_eq!(out.pending(), (1, 9), "x filled up (5 records) and is queued now");
    }

    /// Moving a staged chunk to the queue fails (its directory refuses the rename for a while): the chunk is
    /// not queued under its staged name (a restart would send it again) but tried again at the next tick.
    #[test]
    fn a_chunk_that_failed_to_queue_is_queued_at_the_next_tick() {
        let tmp = tempfile::tempdir().unwrap();
        let text = format!(
            "<match **>\n <buffer>\n  @type file\n  path {}\n  flush_interval 1h\n </buffer>\n</match>\n",
            tmp.path().display()
        );
        let root = crate::config::parse_str(&text, std::path::Path::new("t.conf")).unwrap();
        let ctx = BuildCtx::new(Arc::new(Registry::new()));
        let out = BufferedOutput::build_engine(&root.children[0], &ctx, BufferDefaults::default(), Arc::new(Nowhere))
            .unwrap();
        out.emit("t", vec![ev("x", 0), ev("x", 1), ev("x", 2)]).unwrap();
        let id = out.inner.state.lock().staged.values().next().unwrap().id;
        let layout = out.inner.layout.clone().unwrap();
        // A directory where the queued meta file must go: the rename fails.
        let blocker = Layout::meta_path(&layout.chunk_path(&id, false));
        std::fs::create_dir(&blocker).unwrap();
        out.inner.enqueue_due(true);
        assert_eq!(out.pending(), (0, 3), "not queued while the rename fails");
        assert!(layout.chunk_path(&id, true).exists() && Layout::meta_path(&layout.chunk_path(&id, true)).exists());
        std::fs::remove_dir(&blocker).unwrap();
        out.inner.enqueue_due(false);
        assert_eq!(out.pending(), (1, 3), "queued at the next tick, without a restart");
        assert!(layout.chunk_path(&id, false).exists() && !layout.chunk_path(&id, true).exists());
        assert_eq!(stored(tmp.path()), vec![0, 1, 2]);
    }
}
