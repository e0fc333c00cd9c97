//! `<buffer>` parameters (Fluentd's names and defaults) and the chunk keys they declare.
use super::chunk::ChunkMetadata;
use crate::config::{ConfigError, Element};
use crate::event::{Event, Map, Value};
/// The zone time slices and strftime placeholders are computed in (`timekey_use_utc`, `timekey_zone`).
pub use crate::timefmt::Zone;
use std::path::PathBuf;
use std::time::Duration;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// How many bytes a memory buffer without an explicit `total_limit_size` holds before its emits are refused
/// (the inputs wait, their data still in their files). Fluentd's 512 MiB default would let `tail` read half
/// a gigabyte ahead of a slow destination; see docs/buffer.md, "Memory bound".
pub const DEFAULT_READ_AHEAD_LIMIT: u64 = 32 * MIB;

/// How chunks are moved to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushMode {
    /// `lazy` when `time` is a chunk key, `interval` otherwise.
    Default,
    Lazy,
    Interval,
    Immediate,
}

/// What `emit` does when the buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverflowAction {
    ThrowException,
    Block,
    DropOldestChunk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryType {
    ExponentialBackoff,
    Periodic,
}

/// Per-plugin defaults for `<buffer>`; a plugin overrides what Fluentd's plugin overrides (for example
/// `flush_interval`, `chunk_limit_size`). Values the user writes in `<buffer>` always win.
#[derive(Debug, Clone)]
pub struct BufferDefaults {
    /// `chunk_limit_size` for `@type memory` (Fluentd: 8 MiB).
    pub chunk_limit_size: u64,
    /// `chunk_limit_size` for `@type file` (Fluentd: 256 MiB).
    pub file_chunk_limit_size: u64,
    pub chunk_limit_records: Option<usize>,
    /// `total_limit_size` for `@type memory` (Fluentd: 512 MiB).
    pub total_limit_size: u64,
    /// `total_limit_size` for `@type file` (Fluentd: 64 GiB).
    pub file_total_limit_size: u64,
    pub flush_interval: Duration,
    pub flush_mode: FlushMode,
    pub flush_thread_count: usize,
    /// The buffer `@type` when `<buffer>` names none (`memory`).
    pub buffer_type: &'static str,
    /// Chunk keys when the output has no `<buffer>` section (Fluentd plugins may default to `tag`/`time`).
    pub chunk_keys: &'static str,
    /// `timekey` when `time` is a chunk key and none is given (Fluentd requires one; out_file uses 1d).
    pub timekey: Option<Duration>,
    pub retry_max_interval: Option<Duration>,
}

impl Default for BufferDefaults {
    fn default() -> Self {
        BufferDefaults {
            chunk_limit_size: 8 * MIB,
            file_chunk_limit_size: 256 * MIB,
            chunk_limit_records: None,
            total_limit_size: 512 * MIB,
            file_total_limit_size: 64 * GIB,
            flush_interval: Duration::from_secs(60),
            flush_mode: FlushMode::Default,
            flush_thread_count: 1,
            buffer_type: "memory",
            chunk_keys: "",
            timekey: None,
            retry_max_interval: None,
        }
    }
}

/// A record-key chunk key: its name as written (`$.a.b` or `host`) and the accessor to its value.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordKey {
    pub name: String,
    accessor: crate::accessor::Accessor,
}

impl RecordKey {
    pub fn parse(name: &str) -> Result<Self, String> {
        let accessor = crate::accessor::Accessor::parse(name).map_err(|e| e.to_string())?;
        Ok(RecordKey { name: name.to_string(), accessor })
    }

    pub fn value_of<'a>(&self, record: &'a Map) -> Option<&'a Value> {
        self.accessor.get(record)
    }
}

/// What chunks are cut by: `<buffer tag,time,key1,$.a.b>`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChunkKeys {
    pub tag: bool,
    /// `timekey` in seconds when `time` is a chunk key.
    pub timekey: Option<i64>,
    pub records: Vec<RecordKey>,
}

impl ChunkKeys {
    pub fn is_empty(&self) -> bool {
        !self.tag && self.timekey.is_none() && self.records.is_empty()
    }

    /// The names of the record keys, as placeholders name them.
    pub fn record_names(&self) -> Vec<String> {
        self.records.iter().map(|k| k.name.clone()).collect()
    }

    /// Whether every event of a batch lands in the same chunk (no per-event work needed).
    pub fn per_batch(&self) -> bool {
        self.timekey.is_none() && self.records.is_empty()
    }

    /// The metadata of the chunk an event belongs to.
    pub fn metadata(&self, tag: &str, ev: &Event, zone: &Zone) -> ChunkMetadata {
        ChunkMetadata {
            tag: self.tag.then(|| tag.to_string()),
            timekey: self.timekey.map(|tk| zone.slice_start(ev.time.sec, tk)),
            variables: self
                .records
                .iter()
                .map(|k| (k.name.clone(), k.value_of(&ev.record).map(Value::to_display_string).unwrap_or_default()))
                .collect(),
        }
    }

    /// Parse the argument of `<buffer ARG>` plus `timekey`.
    pub fn from_section(b: Option<&Element>, defaults: &BufferDefaults) -> Result<Self, ConfigError> {
        // `<buffer>` with no argument takes the plugin's default chunk keys (out_file: time); `<buffer []>`
        // says "none" explicitly; `["tag","time"]` is accepted as well as `tag,time`.
        let arg = match b.map(|b| b.arg.trim()) {
            Some(a) if !a.is_empty() => a.trim_start_matches('[').trim_end_matches(']').replace(['"', '\''], ""),
            _ => defaults.chunk_keys.to_string(),
        };
        let mut keys = ChunkKeys::default();
        let mut time = false;
        for k in arg.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            match k {
                "tag" => keys.tag = true,
                "time" => time = true,
                _ => {
                    let rk = RecordKey::parse(k).map_err(|e| match b {
                        Some(b) => b.error(e),
                        None => ConfigError::new(None, e),
                    })?;
                    keys.records.push(rk);
                }
            }
        }
        if time {
            let tk = match b.map(|b| b.opt_time("timekey")).transpose()?.flatten() {
                Some(t) => t,
                None => match defaults.timekey {
                    Some(d) => d.as_secs_f64(),
                    None => {
                        let err = "<buffer ...> argument includes 'time', but timekey is not configured";
                        return Err(match b {
                            Some(b) => b.error(err).with_hint("add 'timekey 1h' (or another slice) inside <buffer>"),
                            None => ConfigError::new(None, err),
                        });
                    }
                },
            };
            if tk < 1.0 {
                return Err(b
                    .map(|b| b.error_at("timekey", "timekey must be at least 1s"))
                    .unwrap_or_else(|| ConfigError::new(None, "timekey must be at least 1s")));
            }
            keys.timekey = Some(tk as i64);
        }
        Ok(keys)
    }
}

/// Everything the engine reads from `<buffer>` (and the retry parameters).
#[derive(Debug, Clone)]
pub struct BufferConfig {
    pub keys: ChunkKeys,
    /// `None` for `@type memory`, the chunk path pattern for `@type file`.
    pub file: Option<FileBufferConfig>,
    pub chunk_limit_size: u64,
    pub chunk_limit_records: Option<usize>,
    pub total_limit_size: u64,
    /// The memory bound: a memory buffer with no `total_limit_size` (and not `drop_oldest_chunk`) refuses
    /// emits once it holds this many bytes. `None` when the user set the limits (Fluentd's behaviour).
    pub read_ahead_limit: Option<u64>,
    pub queue_limit_length: Option<usize>,
    pub compress_gzip: bool,
    pub flush_mode: FlushMode,
    pub flush_interval: Duration,
    pub flush_thread_count: usize,
    pub flush_thread_interval: Duration,
    pub flush_at_shutdown: bool,
    /// Memory buffer: write what is left at shutdown to a spill directory and send it at the next start
    /// (sluice's `spill_at_shutdown`, default true; needs `<system> root_dir`).
    pub spill_at_shutdown: bool,
    pub delayed_commit_timeout: Duration,
    /// The output's `slow_flush_log_threshold` (seconds, on the `<match>`): a write slower than this is logged
    /// and counted (`slow_flush_count`).
    pub slow_flush_log_threshold: Duration,
    pub overflow_action: OverflowAction,
    pub timekey_wait: i64,
    pub zone: Zone,
    pub retry: RetryConfig,
}

#[derive(Debug, Clone)]
pub struct FileBufferConfig {
    /// A directory (chunks are `DIR/buffer.b<id>.log`) or a pattern with one `*` (`/var/buf/x.*.log`).
    pub path: PathBuf,
    pub dir_permission: u32,
    pub file_permission: u32,
}

#[derive(Debug, Clone)]
pub struct RetryConfig {
    pub kind: RetryType,
    pub wait: Duration,
    pub base: f64,
    pub max_interval: Option<Duration>,
    pub randomize: bool,
    pub timeout: Duration,
    pub max_times: Option<u32>,
    pub forever: bool,
    pub secondary_threshold: f64,
}

fn secs(f: f64) -> Duration {
    Duration::from_secs_f64(f.max(0.0))
}

fn octal(e: &Element, key: &str, default: u32) -> Result<u32, ConfigError> {
    match e.get(key) {
        None => Ok(default),
        Some(v) => u32::from_str_radix(v.trim().trim_start_matches("0o"), 8)
            .map_err(|_| e.error_at(key, format!("'{key}' parameter: {v:?} is not an octal permission such as 0600"))),
    }
}

impl BufferConfig {
    /// Read `<buffer>` of `conf` (the `<match>`). Retry parameters are read from `<buffer>` and, for old
    /// configurations, from the `<match>` itself.
    pub fn from_conf(
        conf: &Element,
        defaults: &BufferDefaults,
        root_dir: Option<&std::path::Path>,
    ) -> Result<Self, ConfigError> {
        // v0.12 `buffer_type file`, `buffer_path ...` on the <match> become a <buffer> as in Fluentd.
        let converted = crate::config::compat::buffer(conf)?;
        let b = conf.section("buffer").or(converted.as_ref());
        let empty = Element::new("buffer", "", conf.loc.clone());
        let e = b.unwrap_or(&empty);
        // Parameters may be written on <buffer> (v1) or on the <match> (v0.12 style).
        let pick = |key: &str| -> &Element {
            if e.has(key) || !conf.has(key) {
                e
            } else {
                conf
            }
        };
        let keys = ChunkKeys::from_section(b, defaults)?;
        let btype = e.plugin_type().unwrap_or(defaults.buffer_type).to_string();
        let file = match btype.as_str() {
            "memory" => None,
            "file" => {
                let path = match e.opt_str("path") {
                    Some(p) => PathBuf::from(p),
                    None => match (root_dir, conf.plugin_id()) {
                        (Some(r), Some(id)) => r.join("worker0").join(id).join("buffer"),
                        _ => return Err(e.error("'path' parameter is required for @type file buffer").with_hint(
                            "add 'path /var/lib/sluice/buffer/NAME' inside <buffer>, or set <system> root_dir and @id",
                        )),
                    },
                };
                Some(FileBufferConfig {
                    path,
                    // Fluentd creates 0755; buffered records are as private as the chunks (0600).
                    dir_permission: octal(e, "dir_permission", 0o700)?,
                    file_permission: octal(e, "file_permission", 0o600)?,
                })
            }
            other => {
                return Err(e
                    .error_at("@type", format!("unknown buffer plugin '{other}'"))
                    .with_hint("known buffer plugins: file, memory"))
            }
        };
        let persistent = file.is_some();
        let overflow_action = match e
            .enum_or("overflow_action", &["throw_exception", "block", "drop_oldest_chunk"], "throw_exception")?
            .as_str()
        {
            "block" => OverflowAction::Block,
            "drop_oldest_chunk" => OverflowAction::DropOldestChunk,
            _ => OverflowAction::ThrowException,
        };
        // The memory bound applies when the user left the memory limits to sluice; `drop_oldest_chunk` asks
        // for new data to be taken and old dropped, which a bound that refuses would defeat.
        let read_ahead_limit =
            (!persistent && !e.has("total_limit_size") && overflow_action != OverflowAction::DropOldestChunk)
                .then_some(DEFAULT_READ_AHEAD_LIMIT);
        // Under the bound a default chunk is at most a quarter of it, so full chunks are queued (and flushed)
        // long before the bound is reached (s3's 256 MiB default would otherwise never fill).
        let chunk_default = match (persistent, read_ahead_limit) {
            (true, _) => defaults.file_chunk_limit_size,
            (false, Some(bound)) => defaults.chunk_limit_size.min(bound / 4),
            (false, None) => defaults.chunk_limit_size,
        };
        let chunk_limit_size = e.size_or("chunk_limit_size", chunk_default)?;
        let chunk_limit_records = match e.opt_int("chunk_limit_records")? {
            Some(n) if n <= 0 => return Err(e.error_at("chunk_limit_records", "chunk_limit_records must be positive")),
            Some(n) => Some(n as usize),
            None => defaults.chunk_limit_records,
        };
        let total_limit_size = e.size_or(
            "total_limit_size",
            if persistent { defaults.file_total_limit_size } else { defaults.total_limit_size },
        )?;
        let queue_limit_length = match e.opt_int("queue_limit_length")? {
            Some(n) if n <= 0 => None,
            Some(n) => Some(n as usize),
            None => None,
        };
        let compress_gzip = e.enum_or("compress", &["text", "gzip"], "text")? == "gzip";
        let flush_mode =
            match pick("flush_mode").enum_or("flush_mode", &["default", "lazy", "interval", "immediate"], "")?.as_str()
            {
                "lazy" => FlushMode::Lazy,
                "interval" => FlushMode::Interval,
                "immediate" => FlushMode::Immediate,
                "default" => FlushMode::Default,
                _ => defaults.flush_mode,
            };
        let flush_mode = match flush_mode {
            // Fluentd: flush_interval written outside <buffer> keeps the old behaviour.
            FlushMode::Default if conf.has("flush_interval") => FlushMode::Interval,
            FlushMode::Default if keys.timekey.is_some() => FlushMode::Lazy,
            FlushMode::Default => FlushMode::Interval,
            m => m,
        };
        let flush_interval = match pick("flush_interval").opt_time("flush_interval")? {
            Some(t) => secs(t),
            None => defaults.flush_interval,
        };
        let flush_thread_count =
            pick("flush_thread_count").int_or("flush_thread_count", defaults.flush_thread_count as i64)?;
        if flush_thread_count < 1 {
            return Err(e.error_at("flush_thread_count", "flush_thread_count must be 1 or more"));
        }
        let zone = if e.bool_or("timekey_use_utc", false)? {
            Zone::Utc
        } else if let Some(z) = e.opt_str("timekey_zone") {
            Zone::parse(&z).map_err(|_| {
                e.error_at("timekey_zone", format!("invalid timekey_zone {z:?}"))
                    .with_hint("use an offset such as +09:00 or a zone name such as Asia/Tokyo")
            })?
        } else {
            Zone::Local
        };
        let retry_kind = match pick("retry_type")
            .enum_or("retry_type", &["exponential_backoff", "periodic"], "exponential_backoff")?
            .as_str()
        {
            "periodic" => RetryType::Periodic,
            _ => RetryType::ExponentialBackoff,
        };
        let base = pick("retry_exponential_backoff_base").float_or("retry_exponential_backoff_base", 2.0)?;
        if base < 1.0 {
            return Err(
                e.error_at("retry_exponential_backoff_base", "retry_exponential_backoff_base must be 1 or more")
            );
        }
        let threshold = pick("retry_secondary_threshold").float_or("retry_secondary_threshold", 0.8)?;
        if !(0.0..=1.0).contains(&threshold) || threshold == 0.0 {
            return Err(e.error_at("retry_secondary_threshold", "retry_secondary_threshold must be > 0 and <= 1"));
        }
        let retry = RetryConfig {
            kind: retry_kind,
            wait: secs(pick("retry_wait").time_or("retry_wait", 1.0)?),
            base,
            max_interval: pick("retry_max_interval")
                .opt_time("retry_max_interval")?
                .map(secs)
                .or(defaults.retry_max_interval),
            randomize: pick("retry_randomize").bool_or("retry_randomize", true)?,
            timeout: secs(pick("retry_timeout").time_or("retry_timeout", 72.0 * 3600.0)?),
            max_times: pick("retry_max_times").opt_int("retry_max_times")?.map(|n| n.max(0) as u32),
            forever: pick("retry_forever").bool_or("retry_forever", false)?,
            secondary_threshold: threshold,
        };
        // Read for compatibility; see docs/buffer.md.
        let _ = e.bool_or("disable_chunk_backup", false)?;
        let _ = e.float_or("chunk_full_threshold", 0.95)?;
        let _ = e.opt_int("queued_chunks_limit_size")?;
        let _ = e.opt_time("flush_thread_burst_interval")?;
        Ok(BufferConfig {
            keys,
            chunk_limit_size: chunk_limit_size.max(1),
            chunk_limit_records,
            total_limit_size,
            read_ahead_limit,
            queue_limit_length,
            compress_gzip,
            flush_mode,
            flush_interval,
            flush_thread_count: flush_thread_count as usize,
            flush_thread_interval: secs(pick("flush_thread_interval").time_or("flush_thread_interval", 1.0)?.max(0.01)),
            flush_at_shutdown: pick("flush_at_shutdown").bool_or("flush_at_shutdown", !persistent)?,
            spill_at_shutdown: e.bool_or("spill_at_shutdown", true)?,
            delayed_commit_timeout: secs(
                pick("delayed_commit_timeout").time_or("delayed_commit_timeout", 60.0)?.max(0.001),
            ),
            slow_flush_log_threshold: secs(conf.time_or("slow_flush_log_threshold", 20.0)?),
            overflow_action,
            timekey_wait: e.time_or("timekey_wait", 600.0)? as i64,
            zone,
            retry,
            file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_key_paths() {
        let k = RecordKey::parse("$.a.b").unwrap();
        let mut inner = Map::new();
        inner.insert("b", Value::Str("x".into()));
        let mut r = Map::new();
        r.insert("a", Value::Map(inner));
        assert_eq!(k.value_of(&r).and_then(Value::as_str), Some("x"));
        let k = RecordKey::parse("$['a']['b']").unwrap();
        assert_eq!(k.value_of(&r).and_then(Value::as_str), Some("x"));
        assert!(RecordKey::parse("$.").is_err());
    }
}
