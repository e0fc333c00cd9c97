//! Helpers for the binary's end-to-end tests: the test peers (moto, the Cloud Logging and Slack fakes) as
//! child processes on free 127.0.0.1 ports, a minimal HTTP client, and test-data generators.
#![allow(dead_code)]
use serde_json::Value as J;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The test peers' interpreter: `SLUICE_TEST_PYTHON`, else the workspace's `.venv` (scripts/test.sh).
pub fn python() -> PathBuf {
    match std::env::var_os("SLUICE_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_root().join(".venv/bin/python"),
    }
}

pub fn script(name: &str) -> PathBuf {
    workspace_root().join("tests/python").join(name)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A child process killed (and reaped) when dropped.
pub struct Peer {
    pub name: &'static str,
    pub child: Child,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `python ARGS`, read its first stdout line and return it with the process.
pub fn spawn_python_with_banner(name: &'static str, args: &[&str]) -> (Peer, String) {
    let mut child =
        Command::new(python()).args(args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {name} with {} (set SLUICE_TEST_PYTHON or run scripts/test.sh): {e}",
                python().display()
            )
        });
    let out = child.stdout.take().expect("stdout piped");
    let mut line = String::new();
    let _ = BufReader::new(out).read_line(&mut line);
    (Peer { name, child }, line.trim().to_string())
}

/// A plain HTTP/1.0 request to 127.0.0.1:port; returns (status, body).
pub fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

pub fn get_json(port: u16, path: &str) -> J {
    let (status, body) = http(port, "GET", path, "").expect("HTTP GET");
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).expect("JSON answer")
}

/// moto (Kinesis, Firehose, S3) on a free port.
pub struct Moto {
    pub peer: Peer,
    pub port: u16,
}

impl Moto {
    pub fn start() -> Moto {
        let port = free_port();
        let child = Command::new(python())
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto with {}: {e}", python().display()));
        let peer = Peer { name: "moto", child };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = http(port, "GET", "/moto-api/", "") {
                break;
            }
            assert!(Instant::now() < end, "moto did not start on port {port}");
            std::thread::sleep(Duration::from_millis(200));
        }
        Moto { peer, port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Run tests/python/e2e_aws.py CMD against this moto; its JSON answer.
    pub fn aws(&self, cmd: &str, stream: &str) -> J {
        let out = Command::new(python())
            .arg(script("e2e_aws.py"))
            .args([cmd, "--endpoint", &self.endpoint(), "--stream", stream])
            .envs(aws_env())
            .output()
            .expect("run e2e_aws.py");
        assert!(out.status.success(), "e2e_aws.py {cmd}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("e2e_aws.py JSON")
    }
}

/// Static test credentials for moto (it accepts any signature by default).
pub fn aws_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
}

/// Wait until `f` returns Some, polling every 500 ms, or panic with `what` after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A small deterministic generator (xorshift) so the data is the same on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn digits(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(b'0' + self.below(10) as u8)).collect()
    }
}

/// Korean mobile number, `010-NNNN-NNNN`.
pub fn phone(r: &mut Rng) -> String {
    format!("010-{}-{}", 2000 + r.below(8000), r.digits(4))
}

/// Resident registration number `YYMMDD-GNNNNNN` with a real date and gender digit 1–4.
pub fn rrn(r: &mut Rng) -> String {
    let (yy, g) = if r.below(2) == 0 {
        (60 + r.below(40), 1 + r.below(2)) // 1960–1999
    } else {
        (r.below(20), 3 + r.below(2)) // 2000–2019
    };
    format!("{yy:02}{:02}{:02}-{g}{}", 1 + r.below(12), 1 + r.below(28), r.digits(6))
}

/// A Visa card number with a valid Luhn digit, in groups of four.
pub fn card(r: &mut Rng) -> String {
    let mut d: Vec<u32> = vec![4];
    for _ in 0..14 {
        d.push(r.below(10) as u32);
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 0 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    d.push((10 - sum % 10) % 10);
    let s: String = d.iter().map(|x| char::from_digit(*x, 10).unwrap_or('0')).collect();
    format!("{}-{}-{}-{}", &s[0..4], &s[4..8], &s[8..12], &s[12..16])
}

pub fn luhn_ok(digits: &str) -> bool {
    let sum: u32 = digits
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, x)| {
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum % 10 == 0
}

/// Now as `YYYY-MM-DDTHH:MM:SS.mmm+0000` (the application's format) and as CRI's RFC 3339 nanoseconds.
pub fn now_stamps(offset_ms: u64) -> (String, String) {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970") + Duration::from_millis(offset_ms);
    let secs = d.as_secs() as i64;
    let (y, m, day) = sluice_core::timefmt::civil::civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let app = format!("{y:04}-{m:02}-{day:02}T{hh:02}:{mm:02}:{ss:02}.{:03}+0000", d.subsec_millis());
    let cri = format!("{y:04}-{m:02}-{day:02}T{hh:02}:{mm:02}:{ss:02}.{:09}Z", d.subsec_nanos());
    (app, cri)
}

/// Every file under `dir` (recursively).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// How often each `message` appears in the JSON lines of the files in `out` (a file output's directory).
/// A line that is not whole JSON (cut by a kill) does not count: its record is delivered again.
pub fn delivered_messages(out: &Path) -> std::collections::HashMap<String, usize> {
    let mut seen = std::collections::HashMap::new();
    for f in std::fs::read_dir(out).into_iter().flatten().flatten() {
        for line in std::fs::read_to_string(f.path()).unwrap_or_default().lines() {
            if let Some(m) =
                serde_json::from_str::<J>(line).ok().and_then(|v| v.get("message")?.as_str().map(str::to_string))
            {
                *seen.entry(m).or_insert(0) += 1;
            }
        }
    }
    seen
}

/// Run sluice (`cmd`) until a file under `out_dir` has a line (10 s at most), then stop it with SIGTERM:
/// the first line written and how sluice ended. Panics with sluice's stderr when nothing was written.
pub fn run_until_first_line(mut cmd: Command, out_dir: &Path) -> (String, std::process::Output) {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn sluice");
    let start = Instant::now();
    let line = loop {
        let found = std::fs::read_dir(out_dir).ok().and_then(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .find_map(|text| text.lines().next().map(str::to_string))
        });
        if found.is_some() || start.elapsed() > Duration::from_secs(10) || child.try_wait().expect("wait").is_some() {
            break found;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().expect("output");
    let line = line.unwrap_or_else(|| {
        panic!("no output written under {}: {}", out_dir.display(), String::from_utf8_lossy(&out.stderr))
    });
    (line, out)
}
