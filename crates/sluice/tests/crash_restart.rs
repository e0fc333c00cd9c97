//! kill -9 at random points while tail → file buffer → file output runs over 100,000 lines, restart each
//! time: every line arrives at least once, and the duplicates stay within what one in-flight chunk per
//! kill can explain (the output wrote it, then died before the chunk was committed).
mod common;

use common::delivered_messages;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LINES: usize = 100_000;
const KILLS: usize = 6;
const CHUNK_RECORDS: usize = 5_000;

fn start(conf: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("-q")
        .arg("-c")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sluice")
}

/// A small deterministic generator, seeded per run and printed, so a failure can be replayed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[test]
fn kill_9_at_random_points_loses_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let input: PathBuf = dir.path().join("app.log");
    let out = dir.path().join("out");
    std::fs::File::create(&input).unwrap();
    let conf = dir.path().join("fluent.conf");
    std::fs::write(
        &conf,
        format!(
            r#"<source>
  @type tail
  path {input}
  pos_file {dir}/app.pos
  read_from_head true
  refresh_interval 1s
  tag app
  <parse>
    @type none
  </parse>
</source>
<match app>
  @type file
  path {out}/app
  append true
  <format>
    @type json
  </format>
  <buffer>
    @type file
    path {dir}/buffer
    flush_mode interval
    flush_interval 0.2s
    chunk_limit_records {CHUNK_RECORDS}
  </buffer>
</match>
"#,
            input = input.display(),
            dir = dir.path().display(),
            out = out.display(),
        ),
    )
    .unwrap();

    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("seed {seed}");
    let mut rng = Lcg(seed);

    // The application writes its lines over about three seconds while sluice is killed and restarted.
    let writer_path = input.clone();
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new().append(true).open(&writer_path).unwrap();
        for batch in 0..(LINES / 1000) {
            let mut buf = String::with_capacity(1000 * 16);
            for i in 0..1000 {
                buf.push_str(&format!("line-{:06}\n", batch * 1000 + i));
            }
            f.write_all(buf.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(30));
        }
    });

    for _ in 0..KILLS {
        let mut child = start(&conf);
        std::thread::sleep(Duration::from_millis(200 + rng.next(800)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    writer.join().unwrap();
    let before_last_run = delivered_messages(&out).len();
    eprintln!("{before_last_run} lines delivered by the killed runs");

    // The last run goes on until every line is out, then stops gracefully.
    let mut child = start(&conf);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = delivered_messages(&out);
    while seen.len() < LINES && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        seen = delivered_messages(&out);
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    child.wait().unwrap();
    let seen = delivered_messages(&out);

    let missing: Vec<String> =
        (0..LINES).map(|i| format!("line-{i:06}")).filter(|l| !seen.contains_key(l)).take(10).collect();
    assert!(missing.is_empty(), "lines lost after {KILLS} kills (first ones): {missing:?}");
    assert_eq!(seen.len(), LINES, "unexpected records in the output");
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    eprintln!("{KILLS} kills: {LINES} lines delivered, {duplicates} duplicates");
    assert!(
        duplicates <= KILLS * CHUNK_RECORDS,
        "{duplicates} duplicates: more than one in-flight chunk ({CHUNK_RECORDS} records) per kill"
    );
}
