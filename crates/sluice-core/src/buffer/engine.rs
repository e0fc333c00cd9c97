//! [`BufferedOutput`]: the engine behind every buffered output.
//!
//! Events are appended (msgpack entries) to a *staged* chunk chosen by the chunk keys, under one short lock.
//! A chunk is *queued* when it is full, when its flush time comes (`flush_mode`), on SIGUSR1 and at
//! shutdown. `flush_thread_count` tasks take queued chunks in order and hand them to the [`ChunkWriter`].
//! Failures start Fluentd's retry state machine; exhausted retries and unrecoverable errors hand the chunk
//! to `<secondary>`, and failing that to `@ERROR`. Nothing is dropped without being counted and logged.
mod stage;

use super::chunk::{entry_offsets, gzip, new_id, stored_entries, Chunk, ChunkMetadata};
use super::config::{BufferConfig, BufferDefaults, FlushMode};
use super::fallback::Fallback;
use super::file_store::{self, Layout};
use super::placeholders::{self, FlushContext};
use super::retry::RetryState;
use super::{ChunkWriter, WriteError};
use crate::config::{ConfigError, Element};
use crate::event::Events;
use crate::plugin::{BuildCtx, EmitError, Output, OutputMetrics, PluginError};
use crate::util::RateLimiter;
use async_trait::async_trait;
use parking_lot::{Condvar, Mutex};
use stage::Staged;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
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
    /// Entries hold each record's JSON text ([`ChunkWriter::records_as_json`]).
    json_records: bool,
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
            json_records: writer.records_as_json(),
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

    fn note_error(&self, msg: &str) {
        self.metrics.write_errors.inc();
        self.metrics.set_last_error(msg);
        if let Some(n) = self.warn.check(msg) {
            tracing::error!(output = %self.name, error = msg, suppressed = n, "buffer error");
        }
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
                let rest = Chunk {
                    id: new_id(),
                    metadata: chunk.metadata.clone(),
                    data: Arc::new(data),
                    records: again.len(),
                };
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
        let stored = if self.cfg.compress_gzip { Arc::new(gzip(&rest.data)) } else { rest.data.clone() };
        let stored_len = stored.len() as u64;
        let body = match &self.layout {
            Some(l) => match l.write_queued(&rest.id, &rest.metadata, self.cfg.compress_gzip, &stored) {
                Ok(p) => Body::File(p),
                Err(e) => {
                    self.note_error(&format!("cannot write buffer chunk file: {e}"));
                    Body::Mem(stored)
                }
            },
            None => Body::Mem(stored),
        };
        let mut st = self.state.lock();
        if let Some(q) = st.queue.iter_mut().find(|q| q.id == job.id) {
            if let Body::File(p) = &q.body {
                Layout::remove(p);
            }
            let old = q.bytes;
            q.id = rest.id;
            q.records = rest.records;
            q.bytes = stored_len;
            q.body = body;
            q.inflight = true;
            st.total_bytes = st.total_bytes.saturating_sub(old) + stored_len;
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
