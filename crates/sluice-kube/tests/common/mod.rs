//! Harness: the Kubernetes API fake (tests/python/kube_fake.py) over HTTPS on 127.0.0.1, a `capture`
//! output, and engines assembled with every plugin (sluice-plugins, then sluice-kube's filter).
#![allow(dead_code)]
use parking_lot::Mutex;
use serde_json::{json, Value as J};
use sluice_core::config::{parse_str, ConfigError, Element};
use sluice_core::engine::{assemble, Engine};
use sluice_core::event::{Event, EventTime, Events, Map};
use sluice_core::plugin::{BuildCtx, EmitError, Output, Registry};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn python() -> PathBuf {
    match std::env::var_os("SLUICE_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_root().join(".venv/bin/python"),
    }
}

/// Does the interpreter have the `kubernetes` client? (A missing peer skips the test, loudly.)
pub fn have_peer() -> bool {
    let ok = Command::new(python())
        .args(["-c", "import kubernetes, cryptography"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!(
            "SKIPPED: {} has no kubernetes/cryptography (pip install -r tests/requirements.txt)",
            python().display()
        );
    }
    ok
}

pub struct Fake {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Fake {
    pub fn start() -> Fake {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(python())
            .arg(workspace_root().join("tests/python/kube_fake.py"))
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kube_fake.py (set SLUICE_TEST_PYTHON to a python with the test requirements)");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read port");
        let port = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("kube_fake.py did not start: {line:?}")
        });
        Fake { child, stdin, stdout, port, dir }
    }

    pub fn cmd(&mut self, c: J) -> J {
        writeln!(self.stdin, "{c}").expect("write command");
        self.stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read answer");
        let a: J = serde_json::from_str(&line).expect("answer is JSON");
        assert!(a.get("error").is_none(), "fake refused {c}: {a}");
        a
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/api", self.port)
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    pub fn pod(&mut self, pod: J, event: Option<&str>) {
        self.cmd(json!({"op": "pod", "pod": pod, "event": event}));
    }

    pub fn namespace(&mut self, ns: J, event: Option<&str>) {
        self.cmd(json!({"op": "namespace", "ns": ns, "event": event}));
    }

    /// Every request so far: (path with query, Authorization header).
    pub fn requests(&mut self) -> Vec<(String, Option<String>)> {
        let a = self.cmd(json!({"op": "requests"}));
        a["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["path"].as_str().unwrap().to_string(), r["auth"].as_str().map(String::from)))
            .collect()
    }

    /// Per request, the common name of the client certificate it came with.
    pub fn client_names(&mut self) -> Vec<Option<String>> {
        let a = self.cmd(json!({"op": "requests"}));
        a["requests"].as_array().unwrap().iter().map(|r| r["client"].as_str().map(String::from)).collect()
    }

    pub fn watchers(&mut self) -> (u64, u64) {
        let a = self.cmd(json!({"op": "watchers"}));
        (a["pods"].as_u64().unwrap(), a["namespaces"].as_u64().unwrap())
    }

    /// Wait until `n` pod watches (and `ns` namespace watches) are open.
    pub fn wait_watchers(&mut self, pods: u64, namespaces: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let w = self.watchers();
            if w.0 >= pods && w.1 >= namespaces {
                return;
            }
            assert!(Instant::now() < deadline, "watches never opened: {w:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Poll `f` until it gives `Some` (10 s at most).
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[derive(Default)]
pub struct Capture {
    events: Mutex<Vec<(String, Event)>>,
}

impl Output for Capture {
    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        self.events.lock().extend(events.into_iter().map(|e| (tag.to_string(), e)));
        Ok(())
    }
}

impl Capture {
    /// Take the records received so far.
    pub fn take(&self) -> Vec<Map> {
        std::mem::take(&mut *self.events.lock()).into_iter().map(|(_, e)| e.record).collect()
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
    sluice_kube::register(&mut r);
    r.register_output("capture", build_capture);
    Arc::new(r)
}

/// The process environment is shared by the tests of a binary: builds take this lock.
pub fn env_lock() -> &'static Mutex<()> {
    static L: OnceLock<Mutex<()>> = OnceLock::new();
    L.get_or_init(Default::default)
}

/// Assemble `<filter **> @type kubernetes_metadata BODY </filter>` + a capture `run`, with `env` set
/// while the filter is built; start the filters (as Engine::run does).
pub fn engine(run: &str, body: &str, env: &[(&str, &str)]) -> Result<Engine, Vec<ConfigError>> {
    let conf = format!(
        "<filter **>\n  @type kubernetes_metadata\n{body}\n</filter>\n<match **>\n  @type capture\n  run {run}\n</match>\n"
    );
    let root = parse_str(&conf, Path::new("kube.conf")).map_err(|e| vec![e])?;
    let _g = env_lock().lock();
    for (k, v) in env {
        std::env::set_var(k, v);
    }
    let a = assemble(&root, registry(), false);
    for (k, _) in env {
        std::env::remove_var(k);
    }
    match a.engine {
        Some(e) if a.diagnostics.errors.is_empty() => {
            for f in e.router.filters() {
                f.start();
            }
            Ok(e)
        }
        _ => Err(a.diagnostics.errors),
    }
}

/// Emit one batch of records under `tag`, return what the capture got.
pub fn emit(engine: &Engine, run: &str, tag: &str, records: Vec<Map>) -> Vec<Map> {
    let events = records.into_iter().map(|r| Event::new(EventTime::new(1_700_000_000, 0), r)).collect();
    engine.router.emit_to_label("@ROOT", tag, events).expect("emit");
    sink(run).take()
}
