//! [`BufferedOutput`]: the engine behind every buffered output.
//!
//! Events are appended (msgpack entries) to a *staged* chunk chosen by the chunk keys, under one short lock.
//! A chunk is *queued* when it is full, when its flush time comes (`flush_mode`), on SIGUSR1 and at
//! shutdown. `flush_thread_count` tasks take queued chunks in order and hand them to the [`ChunkWriter`].
//! Failures start Fluentd's retry state machine; exhausted retries and unrecoverable errors hand the chunk
//! to `<secondary>`, and failing that to `@ERROR`. Nothing is dropped without being counted and logged.
use super::chunk::{Chunk, ChunkMetadata};
use super::config::{BufferConfig, BufferDefaults, FlushMode, OverflowAction};
use super::file_store::{self, Layout};
use super::placeholders::{self, FlushContext};
use super::retry::RetryState;
use super::{ChunkWriter, WriteError};
use crate::config::{ConfigError, Element};
use crate::event::{decode_entry, write_entry, Event, Events};
use crate::plugin::{BuildCtx, EmitError, ErrorEvents, Output, OutputMetrics, PluginError};
use crate::router::RouterHandle;
use crate::util::RateLimiter;
use async_trait::async_trait;
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How long `shutdown` keeps trying to flush before it gives up (file chunks stay on disk for the next
/// start; memory chunks that could not be sent are handed to `<secondary>`/`@ERROR`).
pub const SHUTDOWN_FLUSH_LIMIT: Duration = Duration::from_secs(30);

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
    queue: VecDeque<Queued>,
    total_bytes: u64,
    retry: Option<RetryState>,
}

struct Inner {
    name: String,
    cfg: BufferConfig,
    layout: Option<Layout>,
    writer: Arc<dyn ChunkWriter>,
    secondary: Option<Arc<dyn Output>>,
    router: RouterHandle,
    label: Arc<str>,
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

fn new_id() -> [u8; 16] {
    rand::random()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc =
        flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

fn gunzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() * 4);
    flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out)?;
    Ok(out)
}

/// Byte offsets of whole entries in `data`, and where the valid part ends.
fn entry_offsets(data: &[u8]) -> (Vec<(usize, usize)>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        match decode_entry(&data[pos..]) {
            Ok((_, _, _, used)) if used > 0 => {
                out.push((pos, pos + used));
                pos += used;
            }
            _ => break,
        }
    }
    (out, pos)
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Copy `used` flags from a clone back to the original so unused-parameter warnings stay right.
fn propagate_used(orig: &Element, clone: &Element) {
    for (a, b) in orig.attrs.iter().zip(clone.attrs.iter()) {
        if b.used.get() {
            a.used.set(true);
        }
    }
    for (a, b) in orig.children.iter().zip(clone.children.iter()) {
        propagate_used(a, b);
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
        let secondary = match conf.section("secondary") {
            None => None,
            Some(sec) => {
                let mut el = sec.clone();
                // A secondary cuts nothing itself: it sees the primary's chunks, so its placeholders are
                // checked against the primary's chunk keys.
                if el.section("buffer").is_none() {
                    let loc = conf.section("buffer").map(|b| b.loc.clone()).unwrap_or_else(|| sec.loc.clone());
                    let mut names: Vec<String> = Vec::new();
                    if cfg.keys.tag {
                        names.push("tag".into());
                    }
                    if cfg.keys.timekey.is_some() {
                        names.push("time".into());
                    }
                    names.extend(cfg.keys.record_names());
                    let arg = if names.is_empty() { "[]".to_string() } else { names.join(",") };
                    let mut b = Element::new("buffer", arg, loc.clone());
                    if let Some(tk) = cfg.keys.timekey {
                        b.set("timekey", tk.to_string(), loc.clone());
                    }
                    b.mark_all_used();
                    el.children.push(b);
                }
                let out = ctx.registry.build_output(&el, ctx);
                propagate_used(sec, &el);
                Some(out?)
            }
        };
        let layout = cfg.file.as_ref().map(Layout::new);
        let inner = Arc::new(Inner {
            name,
            layout,
            writer,
            secondary,
            router: ctx.router.clone(),
            label: ctx.label.clone(),
            metrics: Arc::default(),
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
                        .error_at("path", format!("cannot create buffer directory {}: {e}", l.dir.display()))
                })?;
                inner.resume();
            }
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
        let recs =
            st.staged.values().map(|s| s.records).sum::<usize>() + st.queue.iter().map(|q| q.records).sum::<usize>();
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

    fn resume(&self) {
        let Some(layout) = &self.layout else { return };
        let found = match layout.scan() {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(output = %self.name, error = %e, "cannot list buffer directory; nothing resumed");
                return;
            }
        };
        let mut recovered: Vec<(f64, Queued)> = Vec::new();
        for f in found {
            match self.recover_one(layout, &f) {
                Ok(Some(q)) => recovered.push(q),
                Ok(None) => {}
                Err(reason) => {
                    let aside = Layout::set_aside(&f.path);
                    self.corrupt_chunks.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(output = %self.name, chunk = %file_store::hex(&f.id), moved_to = %aside.display(), reason,
                        "corrupt buffer chunk moved aside");
                }
            }
        }
        recovered.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut st = self.state.lock();
        let n = recovered.len();
        let mut records = 0;
        for (_, q) in recovered {
            st.total_bytes += q.bytes;
            records += q.records;
            st.queue.push_back(q);
        }
        if n > 0 {
            tracing::info!(output = %self.name, chunks = n, records, "resumed buffer chunks from the last run");
        }
    }

    fn recover_one(&self, layout: &Layout, f: &file_store::Found) -> Result<Option<(f64, Queued)>, String> {
        let mf = match file_store::read_meta(&f.path) {
            Ok(m) => m,
            // A crash right after the chunk file was created: nothing was in it.
            Err(_) if std::fs::metadata(&f.path).map(|m| m.len() == 0).unwrap_or(false) => {
                Layout::remove(&f.path);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let raw = std::fs::read(&f.path).map_err(|e| format!("cannot read chunk: {e}"))?;
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
            let _ = std::fs::write(&aside, &raw);
            self.corrupt_chunks.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(output = %self.name, chunk = %file_store::hex(&f.id), kept_records = entries.len(),
                lost_bytes = data.len() - valid, copy = %aside.display(), "damaged buffer chunk: readable entries kept");
            let body = if mf.gzip { gzip(&data[..valid]) } else { data[..valid].to_vec() };
            Layout::remove(&f.path);
            path = layout
                .write_queued(&f.id, &mf.meta, mf.gzip, &body)
                .map_err(|e| format!("cannot rewrite chunk: {e}"))?;
        } else if f.staged {
            let file = File::open(&f.path).map_err(|e| format!("cannot open chunk: {e}"))?;
            path = layout.enqueue(&f.id, &file).map_err(|e| format!("cannot queue chunk: {e}"))?;
        }
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(valid as u64);
        Ok(Some((
            mf.created,
            Queued { id: f.id, meta: mf.meta, records: entries.len(), bytes, body: Body::File(path), inflight: false },
        )))
    }

    // ---- emit --------------------------------------------------------------------------------------

    fn storable(&self, st: &State) -> bool {
        st.total_bytes < self.cfg.total_limit_size && self.cfg.queue_limit_length.is_none_or(|q| st.queue.len() < q)
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
            match self.cfg.overflow_action {
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
        self.metrics.records_in.add(events.len() as u64);
        self.metrics.emit_count.inc();
        let mut too_large: Vec<Event> = Vec::new();
        let mut queued = false;
        let mut result = Ok(());
        for (meta, range) in &runs {
            if let Err(e) = self.append_run(&mut st, meta, tag, &events[range.clone()], &mut too_large, &mut queued) {
                result = Err(e);
                break;
            }
        }
        // File buffer: write what this emit added, so a kill -9 after we return loses nothing. When the emit
        // failed, the input sends the whole batch again: keep none of it.
        let write_result = match (&self.layout, &result) {
            (None, _) => Ok(()),
            (Some(_), Ok(())) => self.write_pending(&mut st),
            (Some(_), Err(_)) => {
                Self::discard_pending(&mut st);
                Ok(())
            }
        };
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
            self.route_errors(tag, too_large, "record is larger than chunk_limit_size");
        }
        result.and(write_result)
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
        queued: &mut bool,
    ) -> Result<(), EmitError> {
        let limit = self.cfg.chunk_limit_size;
        let max_records = self.cfg.chunk_limit_records.unwrap_or(usize::MAX);
        let mut i = 0;
        while i < evs.len() {
            if !st.staged.contains_key(meta) {
                let s = self.new_staged(meta)?;
                st.staged.insert(meta.clone(), s);
            }
            let State { staged, total_bytes, .. } = &mut *st;
            let Some(chunk) = staged.get_mut(meta) else {
                return Ok(());
            };
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
                // A chunk that filled up is written (and queued) now; if that fails the emit fails, before
                // any of its records count as accepted.
                if self.layout.is_some() {
                    if let Some(chunk) = st.staged.get_mut(meta) {
                        if let Err(e) = Self::write_staged(chunk, self.cfg.compress_gzip) {
                            let msg = format!("cannot write buffer chunk file: {e}");
                            self.note_error(&msg);
                            return Err(EmitError::BufferOverflow { output: self.name.clone(), reason: msg });
                        }
                    }
                }
                *queued |= self.enqueue_key(st, meta);
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

    /// Write the pending bytes of file-backed staged chunks, all or nothing: if one write fails, the chunks
    /// written before it are cut back too and every pending record is forgotten, so that the input's retry
    /// of the batch stores each record once.
    fn write_pending(&self, st: &mut State) -> Result<(), EmitError> {
        let gz = self.cfg.compress_gzip;
        let mut done: Vec<(ChunkMetadata, u64, usize, u64)> = Vec::new();
        let mut err = None;
        for (k, s) in st.staged.iter_mut() {
            if s.data.is_empty() {
                continue;
            }
            let undo = (k.clone(), s.written, s.pending_records, s.data.len() as u64);
            if let Err(e) = Self::write_staged(s, gz) {
                err = Some(e);
                break;
            }
            done.push(undo);
        }
        let Some(e) = err else {
            return Ok(());
        };
        for (k, written, records, bytes) in done {
            let Some(s) = st.staged.get_mut(&k) else { continue };
            if let Some((f, path)) = &s.file {
                if let Err(te) = f.set_len(written) {
                    tracing::error!(output = %self.name, path = %path.display(), error = %te,
                        "cannot cut back a buffer chunk after a failed write; its last records may be sent twice");
                }
            }
            s.written = written;
            s.records -= records;
            s.bytes = s.bytes.saturating_sub(bytes);
            st.total_bytes = st.total_bytes.saturating_sub(bytes);
        }
        Self::discard_pending(st);
        let msg = format!("cannot write buffer chunk file: {e}");
        self.note_error(&msg);
        Err(EmitError::BufferOverflow { output: self.name.clone(), reason: msg })
    }

    /// Forget the records of staged chunks that are not in their files yet (the emit that added them failed).
    fn discard_pending(st: &mut State) {
        let State { staged, total_bytes, .. } = st;
        for s in staged.values_mut() {
            if s.file.is_none() || s.data.is_empty() {
                continue;
            }
            let lost = s.data.len() as u64;
            s.bytes = s.bytes.saturating_sub(lost);
            s.records -= s.pending_records;
            s.pending_records = 0;
            s.data.clear();
            *total_bytes = total_bytes.saturating_sub(lost);
        }
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
        let Some(mut s) = st.staged.remove(key) else {
            return false;
        };
        if s.records == 0 {
            if let Some((_, p)) = &s.file {
                Layout::remove(p);
            }
            return false;
        }
        let body = match &self.layout {
            Some(l) => {
                if let Err(e) = Self::write_staged(&mut s, self.cfg.compress_gzip) {
                    self.note_error(&format!("cannot write buffer chunk file: {e}"));
                }
                let Some((file, path)) = s.file.take() else {
                    return false;
                };
                match l.enqueue(&s.id, &file) {
                    Ok(p) => Body::File(p),
                    Err(e) => {
                        self.note_error(&format!("cannot queue buffer chunk file: {e}"));
                        Body::File(path)
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
        let mut any = false;
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
        // Entries start with 0x93 (a msgpack array of 3): the gzip magic tells compressed chunks apart,
        // also those written by an earlier run with a different `compress`.
        let data = if raw.starts_with(&[0x1f, 0x8b]) {
            gunzip(&raw).map_err(|e| format!("corrupt gzip chunk: {e}"))?
        } else {
            Arc::try_unwrap(raw).unwrap_or_else(|a| (*a).clone())
        };
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
        let use_secondary = self.secondary.is_some() && {
            let st = self.state.lock();
            st.retry.as_ref().is_some_and(|r| r.secondary_due(&self.cfg.retry, Instant::now()))
        };
        if use_secondary {
            match self.to_secondary(&chunk, None) {
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
        let res = match tokio::time::timeout(self.cfg.delayed_commit_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(WriteError::retryable(format!(
                "write did not finish within delayed_commit_timeout ({:?})",
                self.cfg.delayed_commit_timeout
            ))),
        };
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
                self.dispose(&chunk, None, &message);
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
                    self.dispose(&chunk, Some(&rej), &reason);
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
            self.dispose(chunk, None, message);
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

    /// Entries of `chunk` (all, or those at `only`) grouped by tag, in order.
    fn events_by_tag(&self, chunk: &Chunk, only: Option<&[usize]>) -> Vec<(String, Events)> {
        let mut groups: Vec<(String, Events)> = Vec::new();
        let mut bad = 0u64;
        for (i, e) in chunk.events().enumerate() {
            if only.is_some_and(|o| o.binary_search(&i).is_err()) {
                continue;
            }
            match e {
                Ok(ev) => {
                    let event = Event { time: ev.time, record: ev.record };
                    match groups.last_mut() {
                        Some((t, v)) if t.as_str() == ev.tag.as_str() => v.push(event),
                        _ => groups.push((ev.tag.to_string(), vec![event])),
                    }
                }
                Err(_) => bad += 1,
            }
        }
        if bad > 0 {
            self.metrics.records_dropped.add(bad);
        }
        groups
    }

    fn to_secondary(&self, chunk: &Chunk, only: Option<&[usize]>) -> Result<(), String> {
        let Some(sec) = &self.secondary else {
            return Err("no <secondary>".into());
        };
        for (tag, events) in self.events_by_tag(chunk, only) {
            placeholders::sync_scope(self.flush_ctx(chunk), || sec.emit(&tag, events)).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Hand a chunk (or some of its entries) to `<secondary>`, or to `@ERROR` when there is none or it fails.
    fn dispose(&self, chunk: &Chunk, only: Option<&[usize]>, reason: &str) {
        let n = only.map(|o| o.len()).unwrap_or(chunk.records) as u64;
        if self.secondary.is_some() {
            match self.to_secondary(chunk, only) {
                Ok(()) => {
                    self.metrics.records_to_secondary.add(n);
                    return;
                }
                Err(e) => {
                    tracing::error!(output = %self.name, chunk = %chunk.id_hex(), records = n, error = %e,
                        "<secondary> failed too; records go to @ERROR");
                }
            }
        }
        self.metrics.records_to_error_label.add(n);
        for (tag, events) in self.events_by_tag(chunk, only) {
            self.route_errors(&tag, events, reason);
        }
    }

    fn route_errors(&self, tag: &str, events: Events, reason: &str) {
        if self.router.get().is_none() {
            self.metrics.records_dropped.add(events.len() as u64);
            tracing::error!(output = %self.name, tag, records = events.len(), reason, "no router to take error events; dropped");
            return;
        }
        let mut errs = ErrorEvents::default();
        for e in events {
            errs.push(e, reason);
        }
        self.router.emit_errors(&self.label, tag, errs);
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
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
        self.space.notify_all();
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock());
        let wait = self.cfg.delayed_commit_timeout + Duration::from_secs(1);
        for t in tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(wait, t).await.is_err() {
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
            if tokio::time::timeout(SHUTDOWN_FLUSH_LIMIT, drain).await.is_err() {
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
            let left: usize = st.staged.values().map(|s| s.records).sum::<usize>()
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
                    self.dispose(&chunk, None, "not flushed at shutdown");
                }
            }
        } else if left > 0 {
            tracing::info!(output = %self.name, records = left, "records kept in the file buffer for the next start");
        }
        self.closed.store(true, Ordering::SeqCst);
        self.writer.close().await;
        if let Some(s) = &self.secondary {
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
        if let Some(s) = &self.inner.secondary {
            s.start().await?;
        }
        let mut tasks = self.inner.tasks.lock();
        for _ in 0..self.inner.cfg.flush_thread_count {
            // In the caller's span, so a plugin's `@log_level` covers its flushes.
            tasks.push(tokio::spawn(tracing::Instrument::in_current_span(self.inner.clone().worker())));
        }
        tasks.push(tokio::spawn(tracing::Instrument::in_current_span(self.inner.clone().ticker())));
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
