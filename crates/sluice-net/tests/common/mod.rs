//! Harness for the network plugin tests: a `capture` output that keeps what reaches it (and can refuse,
//! like a full buffer), a registry with every plugin, an engine running in the background, and the
//! captured Fluentd wire bytes.
#![allow(dead_code)] // each test binary uses a different part

use parking_lot::Mutex;
use sluice_core::config::{parse_str, ConfigError, Element};
use sluice_core::engine::{assemble, Engine};
use sluice_core::event::{Event, Events, Map, Value};
use sluice_core::plugin::{BuildCtx, EmitError, Output, Registry, Shutdown};
use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Capture {
    events: Mutex<Vec<(String, Event)>>,
    /// Refuse this many emits (a full buffer) before accepting.
    pub refuse: AtomicUsize,
    pub refused: AtomicUsize,
}

impl Output for Capture {
    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        if self.refuse.load(Ordering::SeqCst) > 0 {
            self.refuse.fetch_sub(1, Ordering::SeqCst);
            self.refused.fetch_add(1, Ordering::SeqCst);
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
}

pub fn sink(run: &str) -> Arc<Capture> {
    static SINKS: OnceLock<Mutex<HashMap<String, Arc<Capture>>>> = OnceLock::new();
    SINKS.get_or_init(Default::default).lock().entry(run.to_string()).or_default().clone()
}

fn build_capture(s: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    Ok(sink(&s.required_str("run")?))
}

pub fn registry() -> Arc<Registry> {
    let mut r = Registry::new();
    sluice_plugins::register_all(&mut r);
    sluice_net::register(&mut r);
    r.register_output("capture", build_capture);
    Arc::new(r)
}

pub fn assemble_conf(conf: &str) -> Result<Engine, Vec<ConfigError>> {
    let root = parse_str(conf, Path::new("test.conf")).map_err(|e| vec![e])?;
    let a = assemble(&root, registry(), false);
    match a.engine {
        Some(e) if a.diagnostics.errors.is_empty() => Ok(e),
        _ => Err(a.diagnostics.errors),
    }
}

pub fn config_errors(conf: &str) -> String {
    match assemble_conf(conf) {
        Ok(_) => panic!("expected configuration errors for:\n{conf}"),
        Err(errors) => errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"),
    }
}

/// An engine running on its own runtime thread until dropped.
pub struct Running {
    shutdown: Shutdown,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    pub fn stop(mut self) {
        self.stop_inner();
    }
    fn stop_inner(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

pub fn start(conf: &str) -> Running {
    let engine = assemble_conf(conf).unwrap_or_else(|e| panic!("config errors: {e:?}"));
    let shutdown = engine.ctx.shutdown.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            if let Err(e) = engine.run().await {
                panic!("engine failed: {e}");
            }
        });
    });
    Running { shutdown, thread: Some(thread) }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Wait until something accepts TCP connections on `port`.
pub fn wait_listening(port: u16) {
    wait_until("listening", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
}

pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn captures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/forward-captures")
}

pub fn capture(folder: &str, file: &str) -> Vec<u8> {
    std::fs::read(captures_dir().join(folder).join(file)).unwrap_or_else(|e| panic!("{folder}/{file}: {e}"))
}

/// The test peers' interpreter: `SLUICE_TEST_PYTHON`, else the workspace's `.venv`.
pub fn python() -> PathBuf {
    match std::env::var_os("SLUICE_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"),
    }
}

/// A record from JSON text.
pub fn rec(json: &str) -> Map {
    sluice_core::event::parse_json_map(json.as_bytes()).expect("test JSON")
}

pub fn s(v: &str) -> Value {
    Value::Str(v.into())
}
