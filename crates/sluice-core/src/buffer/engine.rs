//! [`BufferedOutput`]: the engine behind every buffered output.
//!
//! Events are appended (msgpack entries) to a *staged* chunk chosen by the chunk keys, under one short lock.
//! A chunk is *queued* when it is full, when its flush time comes (`flush_mode`), on SIGUSR1 and at
//! shutdown. `flush_thread_count` tasks take queued chunks in order and hand them to the [`ChunkWriter`].
//! Failures start Fluentd's retry state machine; exhausted retries and unrecoverable errors hand the chunk
//! to `<secondary>`, and failing that to `@ERROR`. Nothing is dropped without being counted and logged.
use super::chunk::{entry_offsets, gzip, new_id, stored_entries, Chunk, ChunkMetadata};
use super::config::{BufferConfig, BufferDefaults, FlushMode, OverflowAction};
use super::fallback::Fallback;
use super::file_store::{self, Layout};
use super::placeholders::{self, FlushContext};
use super::retry::RetryState;
use super::{ChunkWriter, WriteError};
use crate::config::{ConfigError, Element};
use crate::event::{write_entry, Event, Events};
use crate::plugin::{BuildCtx, EmitError, Output, OutputMetrics, PluginError};
use crate::util::RateLimiter;
use async_trait::async_trait;
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How long after the stop signal (or after `shutdown` is called, without one) a buffer keeps waiting for a
/// write in progress and trying to flush. Every buffer of an engine shares the same deadline, so with the
/// inputs' 10 s it fits Kubernetes' 30 s grace period. Then file chunks stay on disk, memory chunks are
/// spilled to disk (or handed to `<secondary>`/`@ERROR`), all for the next start.
pub const SHUTDOWN_FLUSH_LIMIT: Duration = Duration::from_secs(15);

struct Staged {
    id: [u8; 16],
    meta: ChunkMetadata,
    /// Memory buffer: the chunk's entries. File buffer: entries not yet written to the file.
    data: Vec<u8>,
    /// Uncompressed bytes in the chunk.
    bytes: u64,
    records: usize,
    /// Records in `data` not yet written to the file (file buffer).
    pending_records: usize,
    created: Instant,
    file: Option<(File, PathBuf)>,
    /// Bytes of the chunk file that hold whole, accepted entries: a failed write is cut back to this.
    written: u64,
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

enum Body {
    /// Possibly gzip-compressed entries.
    Mem(Arc<Vec<u8>>),
    File(PathBuf),
}

struct Queued {
    id: [u8; 16],
    meta: ChunkMetadata,
    records: usize,
    /// Bytes counted against `total_limit_size`.
    bytes: u64,
    body: Body,
    inflight: bool,
}

struct Job {
    id: [u8; 16],
    meta: ChunkMetadata,
    records: usize,
    body: Result<Arc<Vec<u8>>, PathBuf>,
}

#[derive(Default)]
struct State {
    staged: HashMap<ChunkMetadata, Staged>,
    /// File chunks whose move to the queue failed (an unwritable directory): tried again at every tick.
    unqueued: Vec<Staged>,
    queue: VecDeque<Queued>,
    total_bytes: u64,
    retry: Option<RetryState>,
}

struct Inner {
    name: String,
    cfg: BufferConfig,
    layout: Option<Layout>,
    /// Memory buffer: where chunks left at shutdown are written, and read back at the next start.
    spill: Option<Layout>,
    /// When the engine's stop signal was seen: the shutdown deadline counts from it.
    stop_seen: Arc<Mutex<Option<Instant>>>,
    stop_signal: crate::plugin::Shutdown,
    writer: Arc<dyn ChunkWriter>,
    /// `<secondary>` and `@ERROR`: where records go that the destination will not take.
    fallback: Fallback,
    metrics: Arc<OutputMetrics>,
    state: Mutex<State>,
    space: Condvar,
    wake: Notify,
    stopping: AtomicBool,
    /// Shut down: a memory buffer refuses emits from now on (they could never be flushed).
    closed: AtomicBool,
    started: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    corrupt_chunks: AtomicU64,
    warn: RateLimiter,
}

/// A buffered output: the engine plus the plugin's [`ChunkWriter`].
pub struct BufferedOutput {
    inner: Arc<Inner>,
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The spill directory of a memory buffer: `ROOT/worker0/ID/spill` with an `@id` (as file buffers), else
/// a name made from the label and the output (stable as long as the configuration is).
fn spill_dir(root: &std::path::Path, id: Option<&str>, label: &str, name: &str) -> PathBuf {
    let safe = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') { c } else { '_' }).collect()
    };
    match id {
        Some(id) => root.join("worker0").join(safe(id)).join("spill"),
        None => root.join("worker0").join("spill").join(format!("{}.{}", safe(label), safe(name))),
    }
}

impl BufferedOutput {
    /// Build the engine for the output `conf` (a `<match>` or `<secondary>`): reads `<buffer>`, the retry
    /// parameters and `<secondary>`, and recovers chunks a file buffer left behind.
    pub fn build(
        conf: &Element,
        ctx: &BuildCtx,
        defaults: BufferDefaults,
        writer: Arc<dyn ChunkWriter>,
    ) -> Result<Arc<dyn Output>, ConfigError> {
        Ok(Arc::new(Self::build_engine(conf, ctx, defaults, writer)?))
    }

    /// [`BufferedOutput::build`] returning the concrete type (tests and callers that want its extras).
    pub fn build_engine(
        conf: &Element,
        ctx: &BuildCtx,
        defaults: BufferDefaults,
        writer: Arc<dyn ChunkWriter>,
    ) -> Result<BufferedOutput, ConfigError> {
        let cfg = BufferConfig::from_conf(conf, &defaults, ctx.system.root_dir.as_deref())?;
        let name = conf
            .plugin_id()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}({})", conf.plugin_type().unwrap_or("output"), conf.arg.trim()));
        let metrics: Arc<OutputMetrics> = Arc::default();
        let fallback = Fallback::build(conf, ctx, &cfg, &name, metrics.clone())?;
        let layout = cfg.file.as_ref().map(Layout::new);
        let spill = match (&layout, cfg.spill_at_shutdown, ctx.system.state_root()) {
            (None, true, Some(root)) => Some(Layout::new(&super::config::FileBufferConfig {
                path: spill_dir(root, conf.plugin_id(), &ctx.label, &name),
                dir_permission: 0o700,
                file_permission: 0o600,
            })),
            _ => None,
        };
        let inner = Arc::new(Inner {
            name,
            layout,
            spill,
            stop_seen: Arc::default(),
            stop_signal: ctx.shutdown.clone(),
            writer,
            fallback,
            metrics,
            state: Mutex::new(State::default()),
            space: Condvar::new(),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            started: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
            corrupt_chunks: AtomicU64::new(0),
            warn: RateLimiter::new(Duration::from_secs(30)),
            cfg,
        });
        if !ctx.dry_run {
            if let Some(l) = &inner.layout {
                l.create_dir().map_err(|e| {
                    conf.section("buffer")
                        .unwrap_or(conf)
                        .error_at("path", format!("cannot use buffer directory {}: {e}", l.dir.display()))
                        .with_hint("give sluice a directory of its own: owned by its user, not writable by others")
                })?;
                inner.resume(l);
            }
            // Records a memory buffer spilled at the last stop are sent first.
            if let Some(l) = inner.spill.as_ref().filter(|l| l.dir.exists()) {
                file_store::check_private_dir(&l.dir, 0o700).map_err(|e| {
                    conf.section("buffer")
                        .unwrap_or(conf)
                        .error(format!("cannot use the shutdown spill directory {}: {e}", l.dir.display()))
                })?;
                inner.resume(l);
            }
        } else if let Some(l) = &inner.layout {
            ctx.check_writable(&l.dir)
                .map_err(|e| conf.section("buffer").unwrap_or(conf).error_at("path", format!("buffer path: {e}")))?;
        }
        Ok(BufferedOutput { inner })
    }

    /// Chunk files found corrupt at start-up (moved aside as `.corrupt`).
    pub fn corrupt_chunks(&self) -> u64 {
        self.inner.corrupt_chunks.load(Ordering::Relaxed)
    }

    /// Chunks waiting in the queue, and records staged or queued.
    pub fn pending(&self) -> (usize, usize) {
        let st = self.inner.state.lock();
        let recs = st.staged.values().chain(&st.unqueued).map(|s| s.records).sum::<usize>()
            + st.queue.iter().map(|q| q.records).sum::<usize>();
        (st.queue.len(), recs)
    }

    /// Bytes held (staged and queued), as counted against `total_limit_size`.
    pub fn buffered_bytes(&self) -> u64 {
        self.inner.state.lock().total_bytes
    }

    /// The buffer's state for monitoring, read under the state lock (scrape time only).
    pub fn status(&self) -> crate::metrics::BufferStatus {
        let limit = self.inner.cfg.total_limit_size;
        let (now, unix) = (Instant::now(), SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default());
        let at = |i: Instant| {
            let secs = unix.as_secs_f64();
            if i >= now {
                secs + (i - now).as_secs_f64()
            } else {
                secs - (now - i).as_secs_f64()
            }
        };
        let st = self.inner.state.lock();
        let stage_bytes: u64 = st.staged.values().map(|s| s.bytes).sum();
        let queue_bytes: u64 = st.queue.iter().map(|q| q.bytes).sum();
        let mut timekeys: Vec<i64> =
            st.staged.keys().chain(st.queue.iter().map(|q| &q.meta)).filter_map(|m| m.timekey).collect();
        timekeys.sort_unstable();
        timekeys.dedup();
        let used = if limit == 0 { 1.0 } else { (st.total_bytes as f64 / limit as f64).min(1.0) };
        crate::metrics::BufferStatus {
            queue_length: st.queue.len() as u64,
            total_bytes: st.total_bytes,
            stage_length: st.staged.len() as u64,
            stage_bytes,
            queue_bytes,
            total_limit_size: limit,
            available_space_ratio: (1.0 - used) * 100.0,
            timekeys,
            retry: st.retry.as_ref().map(|r| crate::metrics::RetryStatus {
                start: at(r.start),
                steps: r.steps,
                next_time: at(r.next),
            }),
        }
    }
}

impl Inner {
    // ---- start-up recovery -------------------------------------------------------------------------

    fn resume(&self, layout: &Layout) {
        let found = layout.recover(&self.name);
        self.corrupt_chunks.fetch_add(found.corrupt, Ordering::Relaxed);
        let mut st = self.state.lock();
        let n = found.chunks.len();
        let mut records = 0;
        for c in found.chunks {
            st.total_bytes += c.bytes;
            records += c.records;
            st.queue.push_back(Queued {
                id: c.id,
                meta: c.meta,
                records: c.records,
                bytes: c.bytes,
                body: Body::File(c.path),
                inflight: false,
            });
        }
        if n > 0 {
            tracing::info!(output = %self.name, chunks = n, records, "resumed buffer chunks from the last run");
        }
    }

    // ---- emit --------------------------------------------------------------------------------------

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

    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
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
                write_entry(tag, ev.time, &ev.record, &mut chunk.data);
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
        Ok(Staged {
            id,
            meta: meta.clone(),
            data: Vec::new(),
            bytes: 0,
            records: 0,
            pending_records: 0,
            created: Instant::now(),
            file,
            written: 0,
        })
    }

    fn note_error(&self, msg: &str) {
        self.metrics.write_errors.inc();
        self.metrics.set_last_error(msg);
        if let Some(n) = self.warn.check(msg) {
            tracing::error!(output = %self.name, error = msg, suppressed = n, "buffer error");
        }
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
    fn enqueue_key(&self, st: &mut State, key: &ChunkMetadata) -> bool {
        match st.staged.remove(key) {
            Some(s) => self.enqueue_staged(st, s),
            None => false,
        }
    }

    /// Move a staged chunk (already out of the staged map) to the queue. True when something was queued.
    fn enqueue_staged(&self, st: &mut State, mut s: Staged) -> bool {
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

    // ---- flushing ----------------------------------------------------------------------------------

    /// Queue staged chunks whose time has come.
    fn enqueue_due(&self, force: bool) {
        let mut st = self.state.lock();
        let mut any = false;
        for s in std::mem::take(&mut st.unqueued) {
            any |= self.enqueue_staged(&mut st, s);
        }
        let now = Instant::now();
        let unix = unix_now();
        let due: Vec<ChunkMetadata> = st
            .staged
            .iter()
            .filter(|(_, s)| {
                if force {
                    return true;
                }
                let by_time = match (s.meta.timekey, self.cfg.keys.timekey) {
                    (Some(start), Some(tk)) => unix >= start + tk + self.cfg.timekey_wait,
                    _ => false,
                };
                let by_interval = matches!(self.cfg.flush_mode, FlushMode::Interval | FlushMode::Immediate)
                    && now.duration_since(s.created) >= self.cfg.flush_interval;
                by_time || by_interval
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            any |= self.enqueue_key(&mut st, &k);
        }
        drop(st);
        if any {
            self.wake.notify_waiters();
        }
    }

    /// Take the next chunk to write, or say how long to wait.
    fn next_job(&self) -> Result<Job, Option<Instant>> {
        let mut st = self.state.lock();
        if let Some(r) = &st.retry {
            if Instant::now() < r.next {
                return Err(Some(r.next));
            }
        }
        let Some(q) = st.queue.iter_mut().find(|q| !q.inflight) else {
            return Err(None);
        };
        q.inflight = true;
        Ok(Job {
            id: q.id,
            meta: q.meta.clone(),
            records: q.records,
            body: match &q.body {
                Body::Mem(d) => Ok(d.clone()),
                Body::File(p) => Err(p.clone()),
            },
        })
    }

    async fn load(&self, job: &Job) -> Result<Chunk, String> {
        let raw: Arc<Vec<u8>> = match &job.body {
            Ok(d) => d.clone(),
            Err(p) => Arc::new(tokio::fs::read(p).await.map_err(|e| format!("cannot read chunk file: {e}"))?),
        };
        let data = stored_entries(raw).map_err(|e| format!("corrupt gzip chunk: {e}"))?;
        Ok(Chunk { id: job.id, metadata: job.meta.clone(), data, records: job.records })
    }

    fn flush_ctx(&self, chunk: &Chunk) -> FlushContext {
        FlushContext { zone: self.cfg.zone.clone(), chunk_id: chunk.id, metadata: chunk.metadata.clone() }
    }

    /// Write one chunk (or hand it to the secondary), and settle the outcome.
    async fn process(self: &Arc<Self>, job: Job, once: bool) -> bool {
        let chunk = match self.load(&job).await {
            Ok(c) => c,
            Err(e) => {
                self.note_error(&e);
                let mut st = self.state.lock();
                if let Some(i) = st.queue.iter().position(|q| q.id == job.id) {
                    if let Some(q) = st.queue.remove(i) {
                        st.total_bytes = st.total_bytes.saturating_sub(q.bytes);
                        if let Body::File(p) = &q.body {
                            Layout::set_aside(p);
                        }
                    }
                }
                self.corrupt_chunks.fetch_add(1, Ordering::Relaxed);
                self.metrics.records_dropped.add(job.records as u64);
                tracing::error!(output = %self.name, chunk = %file_store::hex(&job.id), records = job.records, error = %e,
                    "unreadable buffer chunk set aside");
                self.space.notify_all();
                return true;
            }
        };
        let use_secondary = self.fallback.secondary().is_some() && {
            let st = self.state.lock();
            st.retry.as_ref().is_some_and(|r| r.secondary_due(&self.cfg.retry, Instant::now()))
        };
        if use_secondary {
            match self.fallback.to_secondary(&chunk, None, &self.flush_ctx(&chunk)) {
                Ok(()) => {
                    self.metrics.records_to_secondary.add(chunk.records as u64);
                    tracing::warn!(output = %self.name, chunk = %chunk.id_hex(), records = chunk.records,
                        "retry_secondary_threshold reached: chunk written to <secondary>");
                    self.complete(&job, true);
                    return true;
                }
                Err(e) => {
                    self.fail(&chunk, &format!("secondary failed: {e}"), None, once);
                    return false;
                }
            }
        }
        self.metrics.write_count.inc();
        let fut = placeholders::scope(self.flush_ctx(&chunk), self.writer.write(&chunk));
        let started = Instant::now();
        let res = match tokio::time::timeout(self.cfg.delayed_commit_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(WriteError::retryable(format!(
                "write did not finish within delayed_commit_timeout ({:?})",
                self.cfg.delayed_commit_timeout
            ))),
        };
        self.time_flush(&chunk, started.elapsed());
        match res {
            Ok(()) => {
                self.metrics.records_written.add(chunk.records as u64);
                self.complete(&job, true);
                true
            }
            Err(WriteError::Retryable { message, after }) => {
                self.fail(&chunk, &message, after, once);
                false
            }
            Err(WriteError::Unrecoverable { message }) => {
                self.note_error(&message);
                tracing::error!(output = %self.name, chunk = %chunk.id_hex(), records = chunk.records, error = %message,
                    "unrecoverable error: chunk handed to <secondary>/@ERROR without retrying");
                self.fallback.dispose(&chunk, None, &message, &self.flush_ctx(&chunk));
                self.complete(&job, false);
                true
            }
            Err(WriteError::Partial { message, retry, rejected }) => {
                self.note_error(&message);
                let (offs, _) = entry_offsets(&chunk.data);
                let mut rej: Vec<usize> = rejected.iter().map(|(i, _)| *i).filter(|i| *i < offs.len()).collect();
                rej.sort_unstable();
                rej.dedup();
                let mut again: Vec<usize> =
                    retry.into_iter().filter(|i| *i < offs.len() && rej.binary_search(i).is_err()).collect();
                again.sort_unstable();
                again.dedup();
                let delivered = offs.len().saturating_sub(rej.len() + again.len());
                self.metrics.records_written.add(delivered as u64);
                if !rej.is_empty() {
                    let reason = rejected.first().map(|(_, r)| r.clone()).unwrap_or_default();
                    tracing::warn!(output = %self.name, chunk = %chunk.id_hex(), records = rej.len(), error = %message,
                        "records rejected by the destination; handed to <secondary>/@ERROR");
                    self.fallback.dispose(&chunk, Some(&rej), &reason, &self.flush_ctx(&chunk));
                }
                if again.is_empty() {
                    self.complete(&job, true);
                    return true;
                }
                let mut data = Vec::new();
                for i in &again {
                    let (a, b) = offs[*i];
                    data.extend_from_slice(&chunk.data[a..b]);
                }
                let rest = Chunk { id: new_id(), metadata: chunk.metadata.clone(), data, records: again.len() };
                self.replace(&job, &rest);
                self.fail(&rest, &message, None, once);
                false
            }
        }
    }

    /// The chunk is done (written, or handed elsewhere): remove it for good.
    fn complete(&self, job: &Job, success: bool) {
        let mut st = self.state.lock();
        if let Some(i) = st.queue.iter().position(|q| q.id == job.id) {
            if let Some(q) = st.queue.remove(i) {
                st.total_bytes = st.total_bytes.saturating_sub(q.bytes);
                if let Body::File(p) = &q.body {
                    Layout::remove(p);
                }
            }
        }
        if success {
            st.retry = None;
        }
        drop(st);
        self.space.notify_all();
    }

    /// Put `rest` (the entries of a partially failed chunk still to retry) in place of `job`'s chunk.
    fn replace(&self, job: &Job, rest: &Chunk) {
        let stored = if self.cfg.compress_gzip { gzip(&rest.data) } else { rest.data.clone() };
        let body = match &self.layout {
            Some(l) => match l.write_queued(&rest.id, &rest.metadata, self.cfg.compress_gzip, &stored) {
                Ok(p) => Body::File(p),
                Err(e) => {
                    self.note_error(&format!("cannot write buffer chunk file: {e}"));
                    Body::Mem(Arc::new(stored.clone()))
                }
            },
            None => Body::Mem(Arc::new(stored.clone())),
        };
        let mut st = self.state.lock();
        if let Some(q) = st.queue.iter_mut().find(|q| q.id == job.id) {
            if let Body::File(p) = &q.body {
                Layout::remove(p);
            }
            let old = q.bytes;
            q.id = rest.id;
            q.records = rest.records;
            q.bytes = stored.len() as u64;
            q.body = body;
            q.inflight = true;
            st.total_bytes = st.total_bytes.saturating_sub(old) + stored.len() as u64;
        }
        drop(st);
        self.space.notify_all();
    }

    /// A retryable failure of `chunk`: step the retry state; when retries are exhausted hand it over.
    /// Fluentd's flush timing: total time in writes, and a warning for each write slower than
    /// `slow_flush_log_threshold`.
    fn time_flush(&self, chunk: &Chunk, took: Duration) {
        self.metrics.flush_time_ms.add(u64::try_from(took.as_millis()).unwrap_or(u64::MAX));
        if took > self.cfg.slow_flush_log_threshold {
            self.metrics.slow_flush_count.inc();
            tracing::warn!(output = %self.name, chunk = %chunk.id_hex(), elapsed_time = took.as_secs_f64(),
                slow_flush_log_threshold = self.cfg.slow_flush_log_threshold.as_secs_f64(),
                "buffer flush took longer time than slow_flush_log_threshold");
        }
    }

    fn fail(&self, chunk: &Chunk, message: &str, after: Option<Duration>, once: bool) {
        self.note_error(message);
        let now = Instant::now();
        let mut st = self.state.lock();
        let r = RetryState::step(st.retry.take(), &self.cfg.retry, now, after);
        let exhausted = r.exhausted(&self.cfg.retry, now);
        let steps = r.steps;
        let next = r.next.saturating_duration_since(now);
        if let Some(q) = st.queue.iter_mut().find(|q| q.id == chunk.id) {
            q.inflight = false;
        }
        if exhausted {
            st.retry = None;
            drop(st);
            tracing::error!(output = %self.name, chunk = %chunk.id_hex(), records = chunk.records, retry_times = steps - 1, error = %message,
                "failed to flush the buffer, and hit limit for retries; chunk handed to <secondary>/@ERROR");
            self.fallback.dispose(chunk, None, message, &self.flush_ctx(chunk));
            let job =
                Job { id: chunk.id, meta: chunk.metadata.clone(), records: chunk.records, body: Err(PathBuf::new()) };
            self.complete(&job, false);
            return;
        }
        st.retry = Some(r);
        drop(st);
        if !once {
            self.metrics.retries.inc();
        }
        tracing::warn!(output = %self.name, chunk = %chunk.id_hex(), records = chunk.records, retry_times = steps,
            next_retry_seconds = next.as_secs_f64(), error = %message, "failed to flush the buffer");
    }

    async fn worker(self: Arc<Self>) {
        loop {
            if self.stopping.load(Ordering::Relaxed) {
                return;
            }
            let notified = self.wake.notified();
            match self.next_job() {
                Ok(job) => {
                    // In a task of its own so a panicking writer cannot take the flush thread with it.
                    let id = job.id;
                    let me = self.clone();
                    let task = tracing::Instrument::in_current_span(async move { me.process(job, false).await });
                    if let Err(e) = tokio::spawn(task).await {
                        if e.is_panic() {
                            self.note_error("writer panicked");
                            let mut st = self.state.lock();
                            let r = RetryState::step(st.retry.take(), &self.cfg.retry, Instant::now(), None);
                            st.retry = Some(r);
                            if let Some(q) = st.queue.iter_mut().find(|q| q.id == id) {
                                q.inflight = false;
                            }
                        }
                    }
                }
                Err(until) => {
                    let wait = match until {
                        Some(t) => t.saturating_duration_since(Instant::now()).min(self.cfg.flush_thread_interval),
                        None => self.cfg.flush_thread_interval,
                    };
                    let _ = tokio::time::timeout(wait, notified).await;
                }
            }
        }
    }

    /// Write the chunks a memory buffer has left at shutdown to its spill directory, for the next start.
    /// Returns those that could not be spilled (no spill directory, or a write failed).
    fn spill_chunks(&self, chunks: Vec<Queued>) -> Vec<Queued> {
        let Some(spill) = &self.spill else {
            return chunks;
        };
        if chunks.is_empty() {
            return chunks;
        }
        if let Err(e) = spill.create_dir() {
            tracing::error!(output = %self.name, dir = %spill.dir.display(), error = %e,
                "cannot use the shutdown spill directory");
            return chunks;
        }
        let mut rest = Vec::new();
        let (mut n, mut records) = (0usize, 0usize);
        for q in chunks {
            match &q.body {
                // Spilled by an earlier run and not sent yet: already there.
                Body::File(_) => {
                    n += 1;
                    records += q.records;
                }
                Body::Mem(data) => match spill.write_queued(&q.id, &q.meta, self.cfg.compress_gzip, data) {
                    Ok(_) => {
                        n += 1;
                        records += q.records;
                    }
                    Err(e) => {
                        tracing::error!(output = %self.name, dir = %spill.dir.display(), error = %e,
                            "cannot spill a memory chunk at shutdown");
                        rest.push(q);
                    }
                },
            }
        }
        if n > 0 {
            if let Ok(d) = File::open(&spill.dir) {
                let _ = d.sync_all();
            }
            tracing::warn!(output = %self.name, chunks = n, records, dir = %spill.dir.display(),
                "memory buffer not flushed at shutdown; records spilled to disk and sent at the next start");
        }
        rest
    }

    async fn ticker(self: Arc<Self>) {
        loop {
            if self.stopping.load(Ordering::Relaxed) {
                return;
            }
            let notified = self.wake.notified();
            self.enqueue_due(false);
            let _ = tokio::time::timeout(self.cfg.flush_thread_interval, notified).await;
        }
    }

    async fn shutdown(self: &Arc<Self>) {
        let deadline = self.stop_seen.lock().unwrap_or_else(Instant::now) + SHUTDOWN_FLUSH_LIMIT;
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
        self.space.notify_all();
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock());
        let wait = self.cfg.delayed_commit_timeout + Duration::from_secs(1);
        for t in tasks {
            let abort = t.abort_handle();
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(wait.min(left), t).await.is_err() {
                abort.abort();
            }
        }
        if self.cfg.flush_at_shutdown {
            self.enqueue_due(true);
            // Each chunk gets one attempt (retry waits are skipped), all within SHUTDOWN_FLUSH_LIMIT.
            let drain = async {
                let ids: Vec<[u8; 16]> = self.state.lock().queue.iter().map(|q| q.id).collect();
                for id in ids {
                    let job = {
                        let mut st = self.state.lock();
                        st.retry = None;
                        match st.queue.iter_mut().find(|q| q.id == id) {
                            Some(q) => {
                                q.inflight = true;
                                Job {
                                    id: q.id,
                                    meta: q.meta.clone(),
                                    records: q.records,
                                    body: match &q.body {
                                        Body::Mem(d) => Ok(d.clone()),
                                        Body::File(p) => Err(p.clone()),
                                    },
                                }
                            }
                            None => continue,
                        }
                    };
                    self.process(job, true).await;
                }
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, drain).await.is_err() {
                tracing::warn!(output = %self.name, limit = ?SHUTDOWN_FLUSH_LIMIT, "flush at shutdown did not finish in time");
            }
        } else if self.layout.is_some() {
            // Staged chunks stay on disk; make them durable.
            let st = self.state.lock();
            for s in st.staged.values() {
                if let Some((f, _)) = &s.file {
                    let _ = f.sync_data();
                }
            }
        }
        let (left, left_chunks) = {
            let mut st = self.state.lock();
            for q in st.queue.iter_mut() {
                q.inflight = false;
            }
            let left: usize = st.staged.values().chain(&st.unqueued).map(|s| s.records).sum::<usize>()
                + st.queue.iter().map(|q| q.records).sum::<usize>();
            let mut chunks = Vec::new();
            if self.layout.is_none() && left > 0 {
                let keys: Vec<ChunkMetadata> = st.staged.keys().cloned().collect();
                for k in keys {
                    self.enqueue_key(&mut st, &k);
                }
                chunks = st.queue.drain(..).collect();
                st.total_bytes = 0;
            }
            (left, chunks)
        };
        if self.layout.is_none() {
            let left_chunks = self.spill_chunks(left_chunks);
            let left: usize = left_chunks.iter().map(|q| q.records).sum();
            if left > 0 {
                tracing::error!(output = %self.name, records = left,
                    "memory buffer not flushed at shutdown; records handed to <secondary>/@ERROR");
            }
            for q in left_chunks {
                let body = match q.body {
                    Body::Mem(d) => Ok(d),
                    Body::File(p) => Err(p),
                };
                let job = Job { id: q.id, meta: q.meta, records: q.records, body };
                if let Ok(chunk) = self.load(&job).await {
                    self.fallback.dispose(&chunk, None, "not flushed at shutdown", &self.flush_ctx(&chunk));
                }
            }
        } else if left > 0 {
            tracing::info!(output = %self.name, records = left, "records kept in the file buffer for the next start");
        }
        self.closed.store(true, Ordering::SeqCst);
        self.writer.close().await;
        if let Some(s) = self.fallback.secondary() {
            s.shutdown().await;
        }
    }
}

#[async_trait]
impl Output for BufferedOutput {
    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        self.inner.emit(tag, events)
    }

    async fn start(&self) -> Result<(), PluginError> {
        if self.inner.started.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        if let Some(s) = self.inner.fallback.secondary() {
            s.start().await?;
        }
        let mut tasks = self.inner.tasks.lock();
        for _ in 0..self.inner.cfg.flush_thread_count {
            // In the caller's span, so a plugin's `@log_level` covers its flushes.
            tasks.push(tokio::spawn(tracing::Instrument::in_current_span(self.inner.clone().worker())));
        }
        tasks.push(tokio::spawn(tracing::Instrument::in_current_span(self.inner.clone().ticker())));
        drop(tasks);
        // The shutdown deadline counts from the engine's stop signal (shared by every buffer).
        let (signal, seen) = (self.inner.stop_signal.clone(), self.inner.stop_seen.clone());
        tokio::spawn(async move {
            signal.wait().await;
            seen.lock().get_or_insert_with(Instant::now);
        });
        Ok(())
    }

    async fn shutdown(&self) {
        self.inner.shutdown().await;
    }

    fn flush_now(&self) {
        self.inner.enqueue_due(true);
        if let Some(r) = self.inner.state.lock().retry.as_mut() {
            r.next = Instant::now();
        }
        self.inner.wake.notify_waiters();
    }

    fn metrics(&self) -> Option<Arc<OutputMetrics>> {
        Some(self.inner.metrics.clone())
    }

    fn buffer_status(&self) -> Option<crate::metrics::BufferStatus> {
        Some(self.status())
    }

    fn report(&self, sink: &mut dyn crate::metrics::MetricSink) {
        self.inner.writer.report(sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventTime, Value};
    use crate::plugin::Registry;

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
            let chunk = Chunk { id: [0; 16], metadata: ChunkMetadata::default(), data, records: 0 };
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
