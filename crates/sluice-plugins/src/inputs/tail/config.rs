//! in_tail's parameters, with Fluentd's names and defaults.
use sluice_core::config::{ConfigError, Element};
use std::path::PathBuf;
use std::time::Duration;

/// Fluentd raises `read_bytes_limit_per_second` below this to this.
const MIN_READ_BYTES_LIMIT: u64 = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Lines are UTF-8; invalid sequences are replaced with U+FFFD.
    Utf8,
    /// Bytes (`ascii-8bit`/`binary`): kept as they are when they are UTF-8, else replaced as above.
    Binary,
    /// Another ASCII-compatible charset (EUC-KR, Shift_JIS, ISO-8859-1, GB18030, ...): each line is decoded
    /// to UTF-8; bytes invalid in that charset become U+FFFD.
    Charset(&'static encoding_rs::Encoding),
}

impl Encoding {
    fn is_unicode(self) -> bool {
        matches!(self, Encoding::Utf8 | Encoding::Binary)
    }
}

#[derive(Debug, Clone)]
pub struct TailConfig {
    pub paths: Vec<String>,
    pub exclude: Vec<glob::Pattern>,
    /// `tag` split at its first `*`: (prefix, suffix) when there is one.
    pub tag: String,
    pub tag_split: Option<(String, String)>,
    pub refresh_interval: Duration,
    pub read_from_head: bool,
    pub pos_file: Option<PathBuf>,
    pub pos_file_compaction_interval: Option<Duration>,
    pub follow_inodes: bool,
    pub rotate_wait: Duration,
    pub limit_recently_modified: Option<Duration>,
    pub skip_refresh_on_startup: bool,
    pub read_lines_limit: usize,
    pub read_bytes_limit_per_second: Option<u64>,
    pub max_line_size: Option<usize>,
    pub path_key: Option<String>,
    pub emit_unmatched_lines: bool,
    pub ignore_repeated_permission_error: bool,
    pub open_on_every_update: bool,
    pub multiline_flush_interval: Option<Duration>,
    pub exit_on_eof: bool,
    pub encoding: Encoding,
    /// How often each watched file is checked for growth, rotation and truncation.
    pub stat_interval: Duration,
}

fn secs(f: f64) -> Duration {
    Duration::from_secs_f64(f.max(0.0))
}

/// A Ruby encoding name as Fluentd accepts it. Ruby's names and the WHATWG labels encoding_rs knows mostly
/// agree (`EUC-KR`, `Shift_JIS`, `Windows-31J`, `ISO-8859-1`, `GB18030`, `Big5`, `EUC-JP`, ...).
fn encoding_of(s: &Element, key: &str) -> Result<Option<Encoding>, ConfigError> {
    let Some(v) = s.opt_str(key) else {
        return Ok(None);
    };
    let name = v.trim().to_ascii_lowercase();
    match name.as_str() {
        "utf-8" | "utf8" | "us-ascii" | "ascii" => return Ok(Some(Encoding::Utf8)),
        "ascii-8bit" | "binary" => return Ok(Some(Encoding::Binary)),
        _ => {}
    }
    let label = match name.as_str() {
        "cp932" | "windows-31j" | "sjis" => "shift_jis",
        "cp949" => "euc-kr",
        "eucjp-ms" | "cp51932" => "euc-jp",
        "cp936" => "gbk",
        other => other,
    };
    match encoding_rs::Encoding::for_label(label.as_bytes()) {
        // Lines are split at the byte 0x0A, which is only a newline in ASCII-compatible charsets.
        Some(e) if e.is_ascii_compatible() && e != encoding_rs::REPLACEMENT => Ok(Some(Encoding::Charset(e))),
        Some(e) => Err(s
            .error_at(key, format!("'{key}' parameter: encoding {v:?} ({}) is not supported by sluice", e.name()))
            .with_hint("tail splits lines at the byte 0x0A: UTF-16/UTF-32 files must be converted before tailing")),
        None => Err(s
            .error_at(key, format!("'{key}' parameter: unknown encoding {v:?}"))
            .with_hint("use a name such as utf-8, ascii-8bit, EUC-KR, Shift_JIS, ISO-8859-1 or GB18030")),
    }
}

impl TailConfig {
    pub fn from_element(s: &Element) -> Result<Self, ConfigError> {
        let tag = s.required_str("tag")?;
        let delimiter = s.str_or("path_delimiter", ",");
        if delimiter.chars().count() != 1 {
            return Err(s.error_at("path_delimiter", "'path_delimiter' must be a single character"));
        }
        let raw = s.required_str("path")?;
        let paths: Vec<String> =
            raw.split(delimiter.as_str()).map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect();
        if paths.is_empty() {
            return Err(s.error_at("path", "'path' parameter has no path"));
        }
        for p in &paths {
            if p.contains('%') {
                return Err(s
                    .error_at("path", format!("strftime placeholders in path ({p:?}) are not supported by sluice"))
                    .with_hint("use a glob such as /var/log/app-*.log instead"));
            }
            if let Err(e) = glob::Pattern::new(p) {
                return Err(s.error_at("path", format!("invalid glob {p:?}: {e}")));
            }
        }
        let mut exclude = Vec::new();
        for p in s.array_or_empty("exclude_path")? {
            exclude.push(
                glob::Pattern::new(p.trim())
                    .map_err(|e| s.error_at("exclude_path", format!("invalid glob {p:?}: {e}")))?,
            );
        }
        let tag_split = tag.split_once('*').map(|(a, b)| (a.to_string(), b.to_string()));
        let pos_file = s.opt_str("pos_file").map(PathBuf::from);
        if let Some(p) = &pos_file {
            // A directory that exists now is checked now, so the error points at the parameter.
            let dir = super::pos_file::dir_of(p);
            if dir.is_dir() {
                super::pos_file::check_dir(dir).map_err(|e| s.error_at("pos_file", e.to_string()))?;
            }
        }
        let follow_inodes = s.bool_or("follow_inodes", false)?;
        if follow_inodes && pos_file.is_none() {
            return Err(s.error_at("follow_inodes", "Can't follow inodes without pos_file configuration parameter"));
        }
        let read_lines_limit = s.int_or("read_lines_limit", 1000)?;
        if read_lines_limit < 1 {
            return Err(s.error_at("read_lines_limit", "'read_lines_limit' must be at least 1"));
        }
        let read_bytes_limit_per_second = match s.opt_size("read_bytes_limit_per_second") {
            Ok(v) => v,
            // `-1` (Fluentd's "no limit") is not a size.
            Err(_) if s.get("read_bytes_limit_per_second").map(str::trim) == Some("-1") => None,
            Err(e) => return Err(e),
        }
        .filter(|v| *v > 0)
        .map(|v| v.max(MIN_READ_BYTES_LIMIT));
        let max_line_size = s.opt_size("max_line_size")?.filter(|v| *v > 0).map(|v| v as usize);
        let encoding = encoding_of(s, "encoding")?;
        let from_encoding = encoding_of(s, "from_encoding")?;
        if from_encoding.is_some() && encoding.is_none() {
            return Err(
                s.error_at("from_encoding", "'from_encoding' parameter must be specified with 'encoding' parameter")
            );
        }
        // Fluentd would transcode into `encoding`; sluice's records hold UTF-8 text, so only UTF-8 (or bytes)
        // can be the target. With `encoding` alone it names the file's charset, which sluice decodes.
        if let (Some(_), Some(target)) = (from_encoding, encoding) {
            if !target.is_unicode() {
                return Err(s
                    .error_at(
                        "encoding",
                        "'encoding' other than utf-8 with 'from_encoding': sluice emits UTF-8 text only",
                    )
                    .with_hint(
                        "set 'encoding utf-8' (or drop 'from_encoding' when 'encoding' names the file's charset)",
                    ));
            }
        }
        if let Some(g) = s.section("group") {
            g.mark_all_used();
            tracing::warn!(at = %g.loc, "tail: <group> (per-group read limits) is not supported by sluice; ignored");
        }
        // Accepted for compatibility: sluice always polls with a short stat timer.
        let _ = s.bool_or("enable_watch_timer", true)?;
        let _ = s.bool_or("enable_stat_watcher", true)?;
        let _ = s.opt_str("glob_policy");
        let _ = s.opt_str("path_timezone");
        let stat_ms = s.int_or("stat_interval_ms", 250)?.clamp(10, 60_000) as u64;
        Ok(TailConfig {
            paths,
            exclude,
            tag,
            tag_split,
            refresh_interval: secs(s.time_or("refresh_interval", 60.0)?),
            read_from_head: s.bool_or("read_from_head", false)?,
            pos_file,
            pos_file_compaction_interval: s.opt_time("pos_file_compaction_interval")?.map(secs),
            follow_inodes,
            rotate_wait: secs(s.time_or("rotate_wait", 5.0)?),
            limit_recently_modified: s.opt_time("limit_recently_modified")?.map(secs),
            skip_refresh_on_startup: s.bool_or("skip_refresh_on_startup", false)?,
            read_lines_limit: read_lines_limit as usize,
            read_bytes_limit_per_second,
            max_line_size,
            path_key: s.opt_str("path_key"),
            emit_unmatched_lines: s.bool_or("emit_unmatched_lines", false)?,
            ignore_repeated_permission_error: s.bool_or("ignore_repeated_permission_error", false)?,
            open_on_every_update: s.bool_or("open_on_every_update", false)?,
            multiline_flush_interval: s.opt_time("multiline_flush_interval")?.map(secs),
            exit_on_eof: s.bool_or("exit_on_eof", false)?,
            encoding: from_encoding.or(encoding).unwrap_or(Encoding::Utf8),
            stat_interval: Duration::from_millis(stat_ms),
        })
    }

    /// The tag of events read from `path`: `*` becomes the path with `/` turned into `.`.
    pub fn tag_for(&self, path: &str) -> String {
        match &self.tag_split {
            None => self.tag.clone(),
            Some((pre, suf)) => {
                let mut t = String::with_capacity(pre.len() + path.len() + suf.len());
                t.push_str(pre);
                let mut last_dot = true;
                for c in path.chars() {
                    let c = if c == '/' { '.' } else { c };
                    if c == '.' {
                        if last_dot {
                            continue;
                        }
                        last_dot = true;
                    } else {
                        last_dot = false;
                    }
                    t.push(c);
                }
                t.push_str(suf);
                t
            }
        }
    }

    pub fn excluded(&self, path: &str) -> bool {
        self.exclude.iter().any(|p| p.matches(path))
    }
}
