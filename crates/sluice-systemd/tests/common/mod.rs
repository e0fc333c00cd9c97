//! Harness: journal files written by systemd's own `systemd-journal-remote` from the journal export format,
//! `journalctl` as the reference reader, and a `systemd` source wired straight to a capturing output.
#![allow(dead_code)]
use parking_lot::Mutex;
use sluice_core::config::{parse_str, Element};
use sluice_core::event::{Event, Events, Map, Value};
use sluice_core::pattern::TagMatcher;
use sluice_core::plugin::{BuildCtx, EmitError, Emitter, Input, Output, Registry, Shutdown};
use sluice_core::router::{Pipeline, Router, RouterHandle, Step};
use sluice_systemd::input::{SystemdInput, SystemdStats};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(30);
pub const BOOT: &str = "0123456789abcdef0123456789abcdef";

/// `systemd-journal-remote`, or None (the test prints SKIPPED and returns).
pub fn journal_remote() -> Option<PathBuf> {
    let found = ["/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        println!("SKIPPED: systemd-journal-remote is not installed (Debian package systemd-journal-remote)");
    }
    found
}

/// One journal entry: its wall-clock time in microseconds and its fields.
pub struct Entry {
    pub usec: u64,
    pub fields: Vec<(String, Vec<u8>)>,
}

pub fn entry(usec: u64, fields: &[(&str, &str)]) -> Entry {
    Entry { usec, fields: fields.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect() }
}

/// The journal export format of `entries` (binary-safe fields use the length-prefixed form).
pub fn export(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        // One boot: the monotonic clock advances with the wall clock, as journald writes it.
        let mono = e.usec.saturating_sub(1_700_000_000_000_000);
        write!(out, "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={mono}\n_BOOT_ID={BOOT}\n", e.usec).unwrap();
        for (k, v) in &e.fields {
            if v.contains(&b'\n') || std::str::from_utf8(v).is_err() {
                out.extend_from_slice(k.as_bytes());
                out.push(b'\n');
                out.extend_from_slice(&(v.len() as u64).to_le_bytes());
                out.extend_from_slice(v);
                out.push(b'\n');
            } else {
                write!(out, "{k}=").unwrap();
                out.extend_from_slice(v);
                out.push(b'\n');
            }
        }
        out.push(b'\n');
    }
    out
}

/// Write (or append) `entries` to the journal file `file` with systemd-journal-remote.
pub fn write_journal(remote: &Path, file: &Path, entries: &[Entry]) {
    let mut child = Command::new(remote)
        .arg("-o")
        .arg(file)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start systemd-journal-remote");
    child.stdin.take().expect("stdin").write_all(&export(entries)).expect("write export format");
    let out = child.wait_with_output().expect("systemd-journal-remote");
    assert!(out.status.success(), "systemd-journal-remote failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// What `journalctl -o json` reads from the journal files of `dir` with `matches` (journalctl syntax), or
/// None when journalctl is not installed.
pub fn journalctl(dir: &Path, matches: &[&str]) -> Option<Vec<serde_json::Map<String, serde_json::Value>>> {
    let out = Command::new("journalctl")
        .arg("--directory")
        .arg(dir)
        .args(["-o", "json", "--all", "--no-pager"])
        .args(matches)
        .output()
        .ok()?;
    assert!(out.status.success(), "journalctl failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .expect("journalctl json")
                    .as_object()
                    .cloned()
                    .expect("object")
            })
            .collect(),
    )
}

/// A journalctl JSON entry as the input's record: the data fields (not `__CURSOR` and the other
/// address fields) as text.
pub fn journalctl_record(j: &serde_json::Map<String, serde_json::Value>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = j
        .iter()
        .filter(|(k, _)| !k.starts_with("__"))
        .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
        .collect();
    v.sort();
    v
}

pub fn record_text(m: &Map) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = m.iter().map(|(k, v)| (k.to_string(), v.to_display_string())).collect();
    v.sort();
    v
}

#[derive(Default)]
pub struct Capture {
    events: Mutex<Vec<(String, Event)>>,
    /// Refuse this many emits (a full buffer) before accepting.
    pub refuse: AtomicUsize,
}

impl Output for Capture {
    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        if self.refuse.load(Ordering::SeqCst) > 0 {
            self.refuse.fetch_sub(1, Ordering::SeqCst);
            return Err(EmitError::BufferOverflow { output: "capture".into(), reason: "test".into() });
        }
        self.events.lock().extend(events.into_iter().map(|e| (tag.to_string(), e)));
        Ok(())
    }
}

impl Capture {
    pub fn len(&self) -> usize {
        self.events.lock().len()
    }
    pub fn events(&self) -> Vec<(String, Event)> {
        self.events.lock().clone()
    }
    pub fn messages(&self) -> Vec<String> {
        self.events
            .lock()
            .iter()
            .map(|(_, e)| e.record.get("MESSAGE").map(Value::to_display_string).unwrap_or_default())
            .collect()
    }
}

/// A running systemd source wired to a capture.
pub struct Running {
    pub cap: Arc<Capture>,
    pub stats: Arc<SystemdStats>,
    shutdown: Shutdown,
    task: Option<tokio::task::JoinHandle<()>>,
    _router: Arc<Router>,
}

impl Running {
    pub async fn stop(mut self) -> Arc<Capture> {
        self.shutdown.trigger();
        let task = self.task.take().expect("running");
        tokio::time::timeout(WAIT, task).await.expect("the source stops").expect("task");
        self.cap.clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

pub fn registry() -> Arc<Registry> {
    let mut r = Registry::new();
    sluice_systemd::register(&mut r);
    Arc::new(r)
}

pub fn source(conf: &str) -> Element {
    let root = parse_str(conf, Path::new("test.conf")).expect("config parses");
    root.section("source").expect("a <source>").clone()
}

/// `<source>` reading the journal directory `dir` with tag `journal` and `extra` parameters.
pub fn conf(dir: &Path, extra: &str) -> String {
    format!("<source>\n  @type systemd\n  path {}\n  tag journal\n{extra}\n</source>\n", dir.display())
}

pub fn start_with(conf: &str, cap: Arc<Capture>) -> Running {
    let handle = RouterHandle::new();
    let out: Arc<dyn Output> = cap.clone();
    let router = Arc::new(Router::new(vec![Pipeline::new(
        "@ROOT",
        vec![Step::Match { matcher: TagMatcher::new("**").expect("pattern"), output: out }],
    )]));
    handle.set(&router);
    let ctx = BuildCtx { router: handle.clone(), ..BuildCtx::new(registry()) };
    let input = SystemdInput::from_element(&source(conf), &ctx).expect("systemd source builds");
    let stats = input.stats();
    let emitter = Emitter::new(handle, Arc::from("@ROOT"));
    let shutdown = ctx.shutdown.clone();
    let task = tokio::spawn(async move {
        Box::new(input).run(emitter, ctx).await.expect("source runs");
    });
    Running { cap, stats, shutdown, task: Some(task), _router: router }
}

pub fn start(conf: &str) -> Running {
    start_with(conf, Arc::default())
}

pub async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Long enough for anything more (a duplicate) to arrive.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(1200)).await;
}

/// Everything logged through tracing in this test binary.
pub fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b2 = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || LogWriter(b2.clone()))
            .try_init();
        buf
    })
    .clone()
}

pub struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn logs_text() -> String {
    String::from_utf8_lossy(&captured_logs().lock()).into_owned()
}
