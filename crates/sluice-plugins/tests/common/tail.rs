//! A `tail` input run on its own, wired straight to a capture, with helpers for writing files and waiting.
use super::Capture;
use parking_lot::Mutex;
use sluice_core::config::{parse_str, Element};
use sluice_core::pattern::TagMatcher;
use sluice_core::plugin::{BuildCtx, Emitter, Input, Output, Shutdown};
use sluice_core::router::{Pipeline, Router, RouterHandle, Step};
use sluice_plugins::inputs::tail::{Tail, TailStats};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(30);

/// A running tail input wired to a capturing output.
pub struct Running {
    pub cap: Arc<Capture>,
    pub stats: Arc<TailStats>,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<()>,
    _router: Arc<Router>,
}

impl Running {
    pub async fn stop(mut self) -> Arc<Capture> {
        self.shutdown.trigger();
        tokio::time::timeout(WAIT, &mut self.task).await.expect("tail stops").expect("task");
        self.cap.clone()
    }
}

/// A test that fails while tail runs must not hang: the runtime waits for tail's reader thread when it
/// shuts down, so tell that thread to stop.
impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// The first `<source>` of `conf`.
pub fn source(conf: &str) -> Element {
    let root = parse_str(conf, Path::new("test.conf")).expect("config parses");
    root.section("source").expect("a <source>").clone()
}

pub fn start_with(conf: &str, cap: Arc<Capture>) -> Running {
    let handle = RouterHandle::new();
    let out: Arc<dyn Output> = cap.clone();
    let router = Arc::new(Router::new(vec![Pipeline::new(
        "@ROOT",
        vec![Step::Match { matcher: TagMatcher::new("**").expect("pattern"), output: out }],
    )]));
    handle.set(&router);
    let ctx = BuildCtx { router: handle.clone(), ..BuildCtx::new(super::registry()) };
    let tail = Tail::from_element(&source(conf), &ctx).expect("tail builds");
    let stats = tail.stats();
    let emitter = Emitter::new(handle, Arc::from("@ROOT"));
    let shutdown = ctx.shutdown.clone();
    let task = tokio::spawn(async move {
        Box::new(tail).run(emitter, ctx).await.expect("tail runs");
    });
    Running { cap, stats, shutdown, task, _router: router }
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

/// Wait a while so that anything more (a duplicate) would have arrived.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(1200)).await;
}

pub fn append(path: &Path, text: &[u8]) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("open for append");
    f.write_all(text).expect("append");
}

/// `PREFIX0\nPREFIX1\n...` for the range.
pub fn lines(prefix: &str, range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("{prefix}{i}\n")).collect()
}

/// A `<source>` tailing `path` with tag `test`, a fast stat timer and `extra` parameters.
pub fn conf(path: &Path, extra: &str) -> String {
    format!(
        "<source>\n  @type tail\n  path {}\n  tag test\n  stat_interval_ms 50\n{extra}\n</source>\n",
        path.display()
    )
}

pub fn p(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// The log output of this test binary (every test shares it; each test looks for its own paths).
pub fn log_buffer() -> Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf: Arc<Mutex<Vec<u8>>> = Arc::default();
        let b = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || LogWriter(b.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
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
