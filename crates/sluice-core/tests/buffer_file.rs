//! `@type file` buffers: file names and permissions, recovery after a crash (including a real kill -9 of a
//! child process in the middle of emitting), corrupt chunk files set aside, gzip chunks.
mod buffer_common;

use buffer_common::*;
use sluice_core::plugin::Output;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn conf(dir: &Path, extra: &str) -> String {
    format!(
        "<match **>\n @type fake\n <buffer tag>\n  @type file\n  path {}\n  flush_thread_interval 0.05\n  retry_wait 0.05\n{extra} </buffer>\n</match>\n",
        dir.display()
    )
}

fn chunk_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_chunks_survive_an_unclean_stop_and_are_delivered_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("buf");
    {
        let fake = Fake::new(vec![], Resp::Ok);
        let h = build("crash1", &conf(&dir, "  flush_interval 1h\n  chunk_limit_records 40\n"), fake.clone()).unwrap();
        // Not started: nothing is flushed; then dropped as a crash would.
        for i in 0..10 {
            h.out.emit(if i % 2 == 0 { "a" } else { "b" }, events(i * 10..i * 10 + 10)).unwrap();
        }
        assert!(fake.delivered.lock().is_empty());
    }
    let files = chunk_files(&dir);
    assert!(files.iter().any(|f| f.starts_with("buffer.b") && f.ends_with(".log")), "{files:?}");
    assert!(files.iter().any(|f| f.starts_with("buffer.q") && f.ends_with(".log")), "full chunks queued: {files:?}");
    assert!(files.iter().any(|f| f.ends_with(".log.meta")), "{files:?}");
    for f in &files {
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f} has mode {mode:o}");
    }
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);

    let fake = Fake::new(vec![Resp::Retry], Resp::Ok);
    let h = build("crash1b", &conf(&dir, "  flush_interval 1h\n"), fake.clone()).unwrap();
    h.out.start().await.unwrap();
    assert!(wait_for(T, || fake.delivered_ns().len() >= 100).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fake.delivered_ns(), (0..100).collect::<Vec<_>>(), "each record exactly once");
    for (m, ns) in fake.delivered.lock().iter() {
        let tag = m.tag.as_deref().unwrap();
        assert!(ns.iter().all(|n| ((n / 10) % 2 == 0) == (tag == "a")), "records kept their chunk's tag");
    }
    h.out.shutdown().await;
    assert!(chunk_files(&dir).iter().all(|f| !f.contains(".log")), "delivered chunks removed: {:?}", chunk_files(&dir));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_buffer_keeps_unsent_chunks_at_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("buf");
    let fake = Fake::new(vec![], Resp::Retry);
    let h = build("keep", &conf(&dir, "  flush_interval 1h\n  compress gzip\n"), fake.clone()).unwrap();
    h.out.start().await.unwrap();
    h.out.emit("x", events(0..50)).unwrap();
    h.out.flush_now();
    assert!(wait_for(T, || !fake.attempts.lock().is_empty()).await);
    h.out.shutdown().await;
    assert!(sink_ns(&h.errors).is_empty(), "file chunks are not sent to @ERROR at shutdown");
    let fake2 = Fake::new(vec![], Resp::Ok);
    let h2 = build("keep2", &conf(&dir, "  flush_interval 1h\n  compress gzip\n"), fake2.clone()).unwrap();
    h2.out.start().await.unwrap();
    assert!(wait_for(T, || fake2.delivered_ns().len() == 50).await);
    assert_eq!(fake2.delivered_ns(), (0..50).collect::<Vec<_>>());
    h2.out.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_chunk_files_are_set_aside_and_the_rest_delivered() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("buf");
    {
        let fake = Fake::new(vec![], Resp::Ok);
        let h = build("corrupt1", &conf(&dir, "  flush_interval 1h\n  chunk_limit_records 10\n"), fake).unwrap();
        h.out.emit("t", events(0..30)).unwrap();
    }
    let mut qs: Vec<String> =
        chunk_files(&dir).into_iter().filter(|f| f.starts_with("buffer.q") && f.ends_with(".log")).collect();
    qs.sort();
    assert_eq!(qs.len(), 3);
    // One chunk destroyed entirely, one with a torn tail (as a crash in the middle of a write leaves it).
    std::fs::write(dir.join(&qs[0]), b"\xc1\xc1garbage not msgpack").unwrap();
    let p = dir.join(&qs[1]);
    let data = std::fs::read(&p).unwrap();
    std::fs::write(&p, &data[..data.len() - 5]).unwrap();

    let fake = Fake::new(vec![], Resp::Ok);
    let h = build("corrupt2", &conf(&dir, "  flush_interval 1h\n"), fake.clone()).unwrap();
    assert_eq!(h.out.corrupt_chunks(), 2);
    h.out.start().await.unwrap();
    // 10 from the intact chunk, 9 readable from the torn one.
    assert!(wait_for(T, || fake.delivered_ns().len() == 19).await);
    let files = chunk_files(&dir);
    assert_eq!(files.iter().filter(|f| f.ends_with(".corrupt") && !f.contains(".meta")).count(), 2, "{files:?}");
    h.out.shutdown().await;
}

/// The child half of the kill -9 test: emits batches into a file buffer and reports each accepted one.
#[test]
fn kill9_child_main() {
    let Ok(dir) = std::env::var("SLUICE_KILL9_DIR") else {
        return;
    };
    let fake = Fake::new(vec![], Resp::Ok);
    let h = build("kill9child", &conf(Path::new(&dir), "  flush_interval 1h\n  chunk_limit_size 64k\n"), fake).unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0..100_000i64 {
        h.out.emit("k", events(i * 10..i * 10 + 10)).unwrap();
        use std::io::Write;
        let _ = writeln!(out, "accepted {}", i * 10 + 10);
        let _ = out.flush();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_emitting_loses_nothing_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("buf");
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", "kill9_child_main", "--nocapture", "--test-threads", "1"])
        .env("SLUICE_KILL9_DIR", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut accepted = 0i64;
    let mut lines = BufReader::new(stdout).lines();
    while let Some(Ok(l)) = lines.next() {
        if let Some(n) = l.strip_prefix("accepted ") {
            accepted = n.trim().parse().unwrap();
            if accepted >= 100_000 {
                break;
            }
        }
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
    // Lines printed after our last read were also accepted: read what is left.
    for l in lines.map_while(Result::ok) {
        if let Some(n) = l.strip_prefix("accepted ") {
            accepted = n.trim().parse().unwrap_or(accepted);
        }
    }
    assert!(accepted >= 100_000);

    let fake = Fake::new(vec![], Resp::Ok);
    let h = build("kill9parent", &conf(&dir, "  flush_interval 1h\n"), fake.clone()).unwrap();
    h.out.start().await.unwrap();
    assert!(wait_for(Duration::from_secs(40), || fake.delivered_ns().len() as i64 >= accepted).await);
    let got = fake.delivered_ns();
    let mut dedup = got.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), got.len(), "no record twice");
    assert_eq!(&got[..accepted as usize], &(0..accepted).collect::<Vec<_>>()[..], "every accepted record delivered");
    h.out.shutdown().await;
}
