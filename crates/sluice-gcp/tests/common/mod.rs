//! Test harness: start tests/python/gcp_fake.py on a free 127.0.0.1 port and talk to its control API.
#![allow(dead_code)]
use serde_json::{json, Value as J};
use sluice_core::buffer::{Chunk, ChunkMetadata};
use sluice_core::config::{parse_str, Element};
use sluice_core::event::{write_entry, EventTime, Map, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn python() -> PathBuf {
    match std::env::var_os("SLUICE_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_root().join(".venv/bin/python"),
    }
}

pub fn fake_script() -> PathBuf {
    workspace_root().join("tests/python/gcp_fake.py")
}

pub struct Fake {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub key: PathBuf,
    http: reqwest::Client,
}

impl Fake {
    pub fn start() -> Fake {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("key.json");
        let mut child = Command::new(python())
            .arg(fake_script())
            .arg("serve")
            .arg("--genkey")
            .arg(&key)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gcp_fake.py (set SLUICE_TEST_PYTHON to a python with the test requirements)");
        let mut line = String::new();
        let out = child.stdout.take().expect("stdout");
        BufReader::new(out).read_line(&mut line).expect("read port");
        let port = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("gcp_fake.py did not start: {line:?}")
        });
        Fake { child, port, dir, key, http: reqwest::Client::new() }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn state(&self) -> J {
        self.http.get(format!("{}/_control/state", self.url())).send().await.unwrap().json().await.unwrap()
    }

    pub async fn queue(&self, answers: J) {
        self.http.post(format!("{}/_control/queue", self.url())).json(&answers).send().await.unwrap();
    }

    pub async fn config(&self, cfg: J) {
        self.http.post(format!("{}/_control/config", self.url())).json(&cfg).send().await.unwrap();
    }

    /// The fake's entries so far, after checking it saw no schema or auth problem.
    pub async fn entries(&self) -> Vec<J> {
        let s = self.state().await;
        assert_eq!(s["schema_errors"], json!([]), "schema errors: {}", s["schema_errors"]);
        s["entries"].as_array().cloned().unwrap_or_default()
    }

    /// A `<match>` for this fake with the generated key; `extra` adds parameters.
    pub fn conf(&self, extra: &str) -> Element {
        let text = format!(
            "<match **>\n  @type google_cloud\n  credentials_path {}\n  logging_api_url {}\n  use_metadata_service false\n{extra}\n</match>\n",
            self.key.display(),
            self.url()
        );
        let root = parse_str(&text, Path::new("test.conf")).expect("config parses");
        root.children.into_iter().next().expect("match section")
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn rec(v: J) -> Map {
    match Value::from(v) {
        Value::Map(m) => m,
        _ => panic!("record must be an object"),
    }
}

pub const T0: EventTime = EventTime::new(1_764_000_000, 123_456_789);

/// A chunk holding `events` (tag, record), all at T0 + index seconds.
pub fn chunk(events: &[(&str, J)]) -> Chunk {
    let mut data = Vec::new();
    for (i, (tag, r)) in events.iter().enumerate() {
        let t = EventTime::new(T0.sec + i as i64, T0.nsec);
        write_entry(tag, t, &rec(r.clone()), &mut data);
    }
    Chunk {
        id: [7; 16],
        metadata: ChunkMetadata { tag: events.first().map(|e| e.0.to_string()), ..Default::default() },
        data: data.into(),
        records: events.len(),
    }
}
