//! Test harness: moto_server and the fault proxy on free 127.0.0.1 ports, SDK clients, chunks, configs.
#![allow(dead_code)]
use sluice_core::buffer::{Chunk, ChunkMetadata};
use sluice_core::config::Element;
use sluice_core::event::{write_entry, EventTime, Map};
use sluice_core::plugin::{BuildCtx, Registry, SystemConfig};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn python() -> PathBuf {
    match std::env::var("SLUICE_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_root().join(".venv/bin/python"),
    }
}

/// A child process killed (and reaped) when dropped.
pub struct Proc {
    child: Child,
    pub port: u16,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A tiny blocking HTTP/1.1 request (the tests' control plane).
pub fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// Start moto_server on a free port and wait until it answers.
pub fn start_moto() -> Proc {
    for _ in 0..3 {
        let port = free_port();
        let child = Command::new(python())
            .args([
                "-c",
                "import sys; from moto.server import main; sys.exit(main(sys.argv[1:]))",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server (set SLUICE_TEST_PYTHON to a python with moto 5.2.5)");
        let mut p = Proc { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok((200, _)) = http(port, "GET", "/moto-api/", "") {
                return p;
            }
            if let Ok(Some(_)) = p.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(p);
    }
    panic!("moto_server did not start");
}

/// Start the fault-injecting proxy in front of `upstream`.
pub fn start_proxy(upstream: &str) -> Proc {
    let script = workspace_root().join("tests/python/aws_fault_proxy.py");
    let mut child = Command::new(python())
        .arg(script)
        .arg(upstream)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aws_fault_proxy.py");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout).read_line(&mut line).expect("proxy port line");
    let port = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).expect("PORT line");
    Proc { child, port }
}

pub fn fault(proxy: &Proc, json: &str) {
    let (st, _) = http(proxy.port, "POST", "/__fault", json).expect("fault control");
    assert_eq!(st, 200);
}

pub fn proxy_stats(proxy: &Proc) -> serde_json::Value {
    let (_, body) = http(proxy.port, "GET", "/__stats", "").expect("stats");
    serde_json::from_str(&body).expect("stats json")
}

pub fn ctx() -> BuildCtx {
    let mut reg = Registry::new();
    sluice_plugins::register_all(&mut reg);
    sluice_aws::register(&mut reg);
    BuildCtx {
        system: Arc::new(SystemConfig { hostname: "testhost".into(), ..Default::default() }),
        ..BuildCtx::new(Arc::new(reg))
    }
}

/// The first `<match>` of a config text.
pub fn match_conf(text: &str) -> Element {
    let root = sluice_core::config::parse_str(text, std::path::Path::new("test.conf")).expect("config parses");
    root.section("match").expect("a <match>").clone()
}

pub fn chunk(tag: &str, timekey: Option<i64>, records: &[Map]) -> Chunk {
    let mut data = Vec::new();
    for (i, r) in records.iter().enumerate() {
        write_entry(tag, EventTime { sec: 1_764_050_400 + i as i64, nsec: 0 }, r, &mut data);
    }
    let mut id = [0u8; 16];
    for b in id.iter_mut() {
        *b = rand::random();
    }
    Chunk {
        id,
        metadata: ChunkMetadata { tag: Some(tag.into()), timekey, variables: vec![] },
        data,
        records: records.len(),
    }
}

pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

/// Everything tracing logged in this test binary (all levels), to check nothing secret leaks.
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
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn logs_text() -> String {
    let l = captured_logs();
    let v = l.lock().map(|v| v.clone()).unwrap_or_default();
    String::from_utf8_lossy(&v).into_owned()
}
