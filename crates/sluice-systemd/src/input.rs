//! The reading loop: open the journal, seek to the stored cursor (or the head or tail), hand entries to
//! the router in batches, store the cursor of the last entry the router accepted, and wait for more.
//!
//! The journal is the source of truth: when the router refuses a batch (a full buffer) the reader seeks
//! back to the last stored cursor and reads the batch again later, so nothing is held in memory twice.
use crate::config::SystemdConfig;
use crate::ffi::{self, Journal, SD_JOURNAL_INVALIDATE};
use crate::storage::CursorStore;
use async_trait::async_trait;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Event, EventTime, Value};
use sluice_core::plugin::{BuildCtx, EmitError, Emitter, Input, PluginError, Shutdown};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH_ENTRIES: usize = 1000;
const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// How long one `sd_journal_wait` blocks: the longest a stop waits for the reader.
const WAIT_USEC: u64 = 300_000;
/// How often a missing journal directory is looked for again.
const ABSENT_RETRY: Duration = Duration::from_secs(5);

/// Counters the tests and monitoring read; none holds entry content.
#[derive(Debug, Default)]
pub struct SystemdStats {
    pub entries_emitted: AtomicU64,
    /// Batches the router refused (full buffer) and that were read again.
    pub emit_retries: AtomicU64,
    /// Entries libsystemd could not read (corrupt data): counted and logged, then skipped.
    pub unreadable_entries: AtomicU64,
    /// Journal reopenings after an error.
    pub reopens: AtomicU64,
    /// Times journal files were added or removed (rotation, vacuum) while reading.
    pub file_changes: AtomicU64,
}

pub struct SystemdInput {
    cfg: SystemdConfig,
    stats: Arc<SystemdStats>,
}

impl SystemdInput {
    pub fn from_element(s: &Element, ctx: &BuildCtx) -> Result<Self, ConfigError> {
        Ok(SystemdInput { cfg: SystemdConfig::from_conf(s, ctx)?, stats: Arc::default() })
    }

    pub fn stats(&self) -> Arc<SystemdStats> {
        self.stats.clone()
    }
}

pub fn build(s: &Element, ctx: &BuildCtx) -> Result<Box<dyn Input>, ConfigError> {
    Ok(Box::new(SystemdInput::from_element(s, ctx)?))
}

#[async_trait]
impl Input for SystemdInput {
    async fn run(self: Box<Self>, emitter: Emitter, ctx: BuildCtx) -> Result<(), PluginError> {
        let span = tracing::Span::current();
        let SystemdInput { cfg, stats } = *self;
        let shutdown = ctx.shutdown.clone();
        let task = tokio::task::spawn_blocking(move || {
            span.in_scope(|| Reader::new(cfg, emitter, shutdown, stats).run());
        });
        let _ = task.await;
        Ok(())
    }
}

/// The reader stopped (shutdown).
struct Stop;

struct Reader {
    cfg: SystemdConfig,
    emitter: Emitter,
    shutdown: Shutdown,
    stats: Arc<SystemdStats>,
    store: Option<CursorStore>,
    /// The cursor of the last entry the router accepted (or, when reading started at the tail, the last
    /// entry that was there).
    position: Option<String>,
    /// Reading started at the tail of an empty journal: a reopen without a position starts at the head.
    from_head: bool,
    /// Skip the first entry read if it is this one (the entry a cursor seek lands on was already sent).
    skip: Option<String>,
    backoff: Duration,
    warned_absent: bool,
}

impl Reader {
    fn new(cfg: SystemdConfig, emitter: Emitter, shutdown: Shutdown, stats: Arc<SystemdStats>) -> Reader {
        let from_head = cfg.read_from_head;
        Reader {
            cfg,
            emitter,
            shutdown,
            stats,
            store: None,
            position: None,
            from_head,
            skip: None,
            backoff: Duration::from_millis(100),
            warned_absent: false,
        }
    }

    fn run(mut self) {
        if let Err(why) = ffi::available() {
            tracing::warn!(
                path = %self.cfg.path.display(),
                "systemd: {why}; this source reads nothing (install libsystemd0, or set {} to the library)",
                ffi::LIBSYSTEMD_ENV
            );
            while self.sleep(Duration::from_secs(1)).is_ok() {}
            return;
        }
        match CursorStore::open(self.cfg.storage.clone()) {
            Ok(s) => {
                self.position = s.cursor();
                self.store = Some(s);
            }
            Err(e) => {
                let from = if self.cfg.read_from_head { "head" } else { "tail" };
                tracing::error!("systemd: {e}; reading from the {from} of the journal instead");
                if let Ok(s) =
                    CursorStore::open(crate::storage::StorageConfig { path: None, ..self.cfg.storage.clone() })
                {
                    self.store = Some(s);
                }
            }
        }
        let _ = self.read_loop();
        if let Some(s) = &mut self.store {
            if let Err(e) = s.close() {
                tracing::error!("systemd: {e}");
            }
        }
    }

    fn read_loop(&mut self) -> Result<(), Stop> {
        loop {
            self.check_stop()?;
            let Some(mut j) = self.open()? else { continue };
            loop {
                self.check_stop()?;
                match self.drain(&mut j)? {
                    Drained::More => continue,
                    Drained::Refused => {
                        self.reseek(&mut j)?;
                        continue;
                    }
                    Drained::Broken => break,
                    Drained::End => {}
                }
                if let Some(s) = &mut self.store {
                    if let Err(e) = s.tick() {
                        tracing::error!("systemd: {e}");
                    }
                }
                match j.wait(WAIT_USEC) {
                    Ok(SD_JOURNAL_INVALIDATE) => {
                        // Files were added or removed (rotation, vacuum): libsystemd has already taken them
                        // into its set and keeps our position, as `journalctl -f` relies on.
                        self.stats.file_changes.fetch_add(1, Relaxed);
                        tracing::debug!("systemd: journal files changed");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!("systemd: waiting for the journal failed: {e}; reopening");
                        self.sleep(Duration::from_secs(1))?;
                        break;
                    }
                }
            }
            self.stats.reopens.fetch_add(1, Relaxed);
        }
    }

    /// Open the journal and seek to where reading goes on; None (after a pause) when it cannot be opened.
    fn open(&mut self) -> Result<Option<Journal>, Stop> {
        let path = self.cfg.path.clone();
        if !path.is_dir() {
            if !self.warned_absent {
                tracing::warn!(path = %path.display(),
                    "systemd: no journal directory here (is journald's storage elsewhere, e.g. /run/log/journal?); \
                     looking again every {}s", ABSENT_RETRY.as_secs());
                self.warned_absent = true;
            }
            self.sleep(ABSENT_RETRY)?;
            return Ok(None);
        }
        match self.try_open() {
            Ok(j) => {
                if self.warned_absent {
                    tracing::info!(path = %path.display(), "systemd: journal found; reading");
                    self.warned_absent = false;
                }
                Ok(Some(j))
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "systemd: cannot open the journal: {e}; retrying in 1s");
                self.sleep(Duration::from_secs(1))?;
                Ok(None)
            }
        }
    }

    fn try_open(&mut self) -> io::Result<Journal> {
        let mut j = Journal::open_directory(&self.cfg.path)?;
        for (i, term) in self.cfg.matches.iter().enumerate() {
            if i > 0 {
                j.add_disjunction()?;
            }
            for m in term {
                j.add_match(m)?;
            }
        }
        self.seek(&mut j)?;
        Ok(j)
    }

    /// Position `j` so that the next entry read is the first one not handed on yet.
    fn seek(&mut self, j: &mut Journal) -> io::Result<()> {
        self.skip = None;
        if let Some(c) = self.position.clone() {
            match j.seek_cursor(&c) {
                Ok(()) => {
                    self.skip = Some(c);
                    return Ok(());
                }
                Err(e) => {
                    let from = if self.from_head { "head" } else { "tail" };
                    tracing::warn!("systemd: could not seek to the stored cursor ({e}); reading from the {from}");
                }
            }
        }
        if self.from_head {
            return j.seek_head();
        }
        j.seek_tail()?;
        if j.previous_entry()? {
            // Start after the last entry there is; remember it so a reopen resumes from here.
            self.position = Some(j.cursor()?);
        } else {
            self.from_head = true;
            j.seek_head()?;
        }
        Ok(())
    }

    /// After a refused batch: wait, then go back to the last accepted entry.
    fn reseek(&mut self, j: &mut Journal) -> Result<(), Stop> {
        self.sleep(self.backoff)?;
        self.backoff = (self.backoff * 2).min(Duration::from_secs(5));
        if let Err(e) = self.seek(j) {
            tracing::warn!("systemd: seeking back after a refused batch failed: {e}");
        }
        Ok(())
    }

    /// Read up to one batch and hand it on.
    fn drain(&mut self, j: &mut Journal) -> Result<Drained, Stop> {
        let mut events = Vec::new();
        let mut last = None;
        let mut bytes = 0usize;
        let mut full = false;
        let mut broken = false;
        loop {
            match j.next_entry() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    tracing::warn!("systemd: error moving to the next journal entry: {e}; reopening");
                    broken = true;
                    break;
                }
            }
            if let Some(c) = self.skip.take() {
                if j.test_cursor(&c).unwrap_or(false) {
                    continue;
                }
            }
            match read_entry(j) {
                Ok((time, fields, size)) => {
                    bytes += size;
                    events.push(Event::new(time, self.cfg.entry.record(fields)));
                }
                Err(e) => {
                    self.stats.unreadable_entries.fetch_add(1, Relaxed);
                    tracing::warn!("systemd: journal entry cannot be read ({e}); skipped");
                }
            }
            match j.cursor() {
                Ok(c) => last = Some(c),
                Err(e) => {
                    tracing::warn!("systemd: journal entry has no cursor ({e}); reopening");
                    broken = true;
                    break;
                }
            }
            if events.len() >= BATCH_ENTRIES || bytes >= BATCH_BYTES {
                full = true;
                break;
            }
        }
        if !events.is_empty() {
            let n = events.len() as u64;
            match self.emitter.emit(&self.cfg.tag, events) {
                Ok(()) => {
                    self.stats.entries_emitted.fetch_add(n, Relaxed);
                    self.backoff = Duration::from_millis(100);
                }
                Err(EmitError::ShuttingDown) => return Err(Stop),
                Err(e @ EmitError::BufferOverflow { .. }) => {
                    self.stats.emit_retries.fetch_add(1, Relaxed);
                    tracing::warn!(tag = %self.cfg.tag, entries = n, error = %e, "systemd: batch refused; will read it again");
                    return Ok(Drained::Refused);
                }
            }
        }
        if let Some(c) = last {
            if let Some(s) = &mut self.store {
                if let Err(e) = s.put(&c) {
                    tracing::error!("systemd: {e}");
                }
            }
            self.position = Some(c);
        }
        Ok(if broken {
            Drained::Broken
        } else if full {
            Drained::More
        } else {
            Drained::End
        })
    }

    fn check_stop(&self) -> Result<(), Stop> {
        if self.shutdown.is_triggered() {
            Err(Stop)
        } else {
            Ok(())
        }
    }

    fn sleep(&self, d: Duration) -> Result<(), Stop> {
        let end = Instant::now() + d;
        loop {
            self.check_stop()?;
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }
}

enum Drained {
    /// A full batch was handed on; there may be more.
    More,
    /// At the end of the journal.
    End,
    /// The router refused the batch: seek back and read it again later.
    Refused,
    /// The journal returned an error: reopen it.
    Broken,
}

/// The current entry: its time, its fields (values that are not UTF-8 kept as bytes) and their size.
/// An entry's fields in stored order.
type Fields = Vec<(String, Value)>;

fn read_entry(j: &mut Journal) -> io::Result<(EventTime, Fields, usize)> {
    let usec = j.realtime_usec()?;
    let sec = i64::try_from(usec / 1_000_000).map_err(|_| io::Error::other("time out of range"))?;
    let time = EventTime { sec, nsec: ((usec % 1_000_000) * 1000) as u32 };
    let mut fields = Vec::with_capacity(24);
    let mut size = 0usize;
    j.for_each_field(|d| {
        let Some(eq) = d.iter().position(|&b| b == b'=') else { return };
        size += d.len();
        let name = String::from_utf8_lossy(&d[..eq]).into_owned();
        let v = &d[eq + 1..];
        let value = match std::str::from_utf8(v) {
            Ok(s) => Value::Str(s.into()),
            Err(_) => Value::Bytes(v.to_vec()),
        };
        fields.push((name, value));
    })?;
    Ok((time, fields, size))
}
