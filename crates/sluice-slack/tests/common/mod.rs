//! Shared test harness: the fake Slack (tests/python/slack_fake.py) on a free port, configs and chunks.
#![allow(dead_code)]
use serde_json::Value as Json;
use sluice_core::buffer::{Chunk, ChunkMetadata};
use sluice_core::config::{Element, Location};
use sluice_core::event::{write_entry, EventTime, Map};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub const WEBHOOK_PATH: &str = "/services/T0SLUICE/B0SLUICE/s3cr3tW3bh00kT0k3nXYZ";
pub const TOKEN: &str = "xoxb-sluice-test-7f3a9c";

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn python() -> PathBuf {
    match std::env::var_os("SLUICE_TEST_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join(".venv/bin/python"),
    }
}

pub struct FakeSlack {
    child: Child,
    pub port: u16,
    http: reqwest::Client,
}

impl FakeSlack {
    pub fn start() -> FakeSlack {
        let script = workspace_root().join("tests/python/slack_fake.py");
        let mut child = Command::new(python())
            .arg(&script)
            .args(["--port", "0", "--webhook-path", WEBHOOK_PATH, "--token", TOKEN])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} (set SLUICE_TEST_PYTHON): {e}", python().display()));
        let stdout = child.stdout.take().expect("stdout piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("fake slack output");
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("fake slack did not start: {line:?}"));
        FakeSlack { child, port, http: reqwest::Client::new() }
    }

    pub fn webhook_url(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.port, WEBHOOK_PATH)
    }

    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/", self.port)
    }

    pub async fn script(&self, cmds: Json) {
        self.http
            .post(format!("http://127.0.0.1:{}/_script", self.port))
            .json(&cmds)
            .send()
            .await
            .expect("script fake");
    }

    pub async fn state(&self) -> Json {
        self.http
            .get(format!("http://127.0.0.1:{}/_state", self.port))
            .send()
            .await
            .expect("state")
            .json()
            .await
            .expect("state json")
    }

    /// Bodies the fake accepted, after checking that it never saw an invalid payload.
    pub async fn received(&self) -> Vec<Json> {
        let st = self.state().await;
        let invalid = st["invalid"].as_array().cloned().unwrap_or_default();
        assert!(invalid.is_empty(), "fake Slack got invalid payloads: {invalid:#?}");
        st["received"].as_array().cloned().unwrap_or_default().into_iter().map(|r| r["body"].clone()).collect()
    }

    /// Wait until the fake accepted `n` messages (or `limit` passes); returns what it has.
    pub async fn wait_received(&self, n: usize, limit: Duration) -> Vec<Json> {
        let end = tokio::time::Instant::now() + limit;
        loop {
            let r = self.received().await;
            if r.len() >= n || tokio::time::Instant::now() >= end {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `<match>` section with these parameters.
pub fn conf(pairs: &[(&str, &str)]) -> Element {
    let loc = Location::new("test.conf", 1);
    let mut e = Element::new("match", "alert.**", loc.clone());
    e.set("@type", "slack", loc.clone());
    for (i, (k, v)) in pairs.iter().enumerate() {
        e.set(*k, *v, Location::new("test.conf", i as u32 + 2));
    }
    e
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub fn chunk(tag: &str, records: &[Map]) -> Chunk {
    let mut data = Vec::new();
    for (i, r) in records.iter().enumerate() {
        write_entry(tag, EventTime { sec: 1_795_000_000 + i as i64, nsec: 0 }, r, &mut data);
    }
    let n = NEXT_ID.fetch_add(1, Ordering::SeqCst);
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id[8..].copy_from_slice(&(std::process::id() as u64).to_be_bytes());
    Chunk {
        id,
        metadata: ChunkMetadata { tag: Some(tag.to_string()), ..Default::default() },
        data: data.into(),
        records: records.len(),
    }
}

/// Every text in a message (header, sections, fields, context, fallback), for searching.
pub fn all_text(body: &Json) -> String {
    let mut out = String::new();
    fn walk(v: &Json, out: &mut String) {
        match v {
            Json::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            Json::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Json::Object(m) => m.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(body, &mut out);
    out
}
