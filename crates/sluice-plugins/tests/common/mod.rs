//! Harness shared by the plugin tests: a `capture` output that keeps what reaches it, a registry of every
//! built-in plugin plus `capture`, and a configuration assembled into an engine.
#![allow(dead_code)] // each test binary uses a different part

pub mod tail;

use parking_lot::Mutex;
use sluice_core::config::{parse_str, ConfigError, Element};
use sluice_core::engine::{assemble, Engine};
use sluice_core::event::{Event, Events, Map, Value};
use sluice_core::plugin::{BuildCtx, EmitError, Output, Registry};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// `@type capture` + `run ID`: keeps every (tag, event) it is given in a sink the test reads
/// back with [`sink`].
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
    /// Look at the events without copying them (for polls over large captures).
    pub fn with_events<R>(&self, f: impl FnOnce(&[(String, Event)]) -> R) -> R {
        f(&self.events.lock())
    }
    /// (tag, record) pairs in arrival order.
    pub fn records(&self) -> Vec<(String, Map)> {
        self.events.lock().iter().map(|(t, e)| (t.clone(), e.record.clone())).collect()
    }
    /// Every record's `message` field as text.
    pub fn messages(&self) -> Vec<String> {
        self.events.lock().iter().map(|(_, e)| field(e, "message")).collect()
    }
}

/// The capture sink named `run` (created empty on first use).
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
    r.register_output("capture", build_capture);
    Arc::new(r)
}

/// Parse and assemble `conf` as if read from `file`: the engine, or every configuration error.
pub fn assemble_conf(conf: &str, file: &str) -> Result<Engine, Vec<ConfigError>> {
    let root = parse_str(conf, Path::new(file)).map_err(|e| vec![e])?;
    let a = assemble(&root, registry(), false);
    match a.engine {
        Some(e) if a.diagnostics.errors.is_empty() => Ok(e),
        _ => Err(a.diagnostics.errors),
    }
}

/// Like [`assemble_conf`], for configurations that must be valid.
pub fn engine(conf: &str, file: &str) -> Engine {
    assemble_conf(conf, file).unwrap_or_else(|e| panic!("config errors: {e:?}"))
}

/// The configuration errors of `conf` (it must have some), one per line.
pub fn config_errors(conf: &str, file: &str) -> String {
    match assemble_conf(conf, file) {
        Ok(_) => panic!("expected configuration errors for:\n{conf}"),
        Err(errors) => errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"),
    }
}

/// `record[k]` as text ("" when absent).
pub fn field(e: &Event, k: &str) -> String {
    e.record.get(k).map(|v| v.to_display_string()).unwrap_or_default()
}

/// `record[outer][inner]` as text.
pub fn nested(e: &Event, outer: &str, inner: &str) -> String {
    e.record
        .get(outer)
        .and_then(Value::as_map)
        .and_then(|m| m.get(inner))
        .map(|v| v.to_display_string())
        .unwrap_or_default()
}
