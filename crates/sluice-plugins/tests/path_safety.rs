//! Record content cannot choose where an output writes: chunk-key values (`${KEY}`) and tags taken from
//! records by `rewrite_tag_filter` (`${tag}`, `${tag[N]}`) are escaped when they form a file path, for the
//! `file` output, `file` as a `<secondary>` and `secondary_file`.
mod common;

use sluice_core::event::{Event, EventTime, Events, Map};
use sluice_core::plugin::Output;
use sluice_core::record;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HOSTILE: &[&str] = &["../../../escaped", "..", "../x", "a/../../../../b", "/abs", "nul\0byte", "%2e%2e"];

fn evs(records: Vec<Map>) -> Events {
    records.into_iter().map(|r| Event::new(EventTime::new(1_700_000_000, 0), r)).collect()
}

/// Every regular file under `dir`, recursively.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(_) => out.push(p),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

async fn wait_for(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(15);
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    f()
}

async fn start(e: &sluice_core::engine::Engine) -> Vec<Arc<dyn Output>> {
    let outs = e.router.outputs();
    for o in &outs {
        o.start().await.unwrap();
    }
    outs
}

/// The directory the output may write in, deep enough that `../../..` would still land inside the test's
/// temporary directory (so a regression is caught, not written to `/`).
fn jail(tmp: &Path) -> PathBuf {
    let d = tmp.join("a/b/c/d/out");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn assert_all_inside(tmp: &Path, out: &Path, expect: usize) {
    let files = all_files(tmp);
    let outside: Vec<&PathBuf> = files.iter().filter(|p| !p.starts_with(out)).collect();
    assert!(outside.is_empty(), "files written outside {}: {outside:?}", out.display());
    assert_eq!(files.len(), expect, "{files:?}");
    for f in &files {
        let rel = f.strip_prefix(out).unwrap();
        assert!(rel.components().all(|c| matches!(c, std::path::Component::Normal(_))), "{}", f.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_chunk_keys_cannot_leave_the_file_path() {
    let tmp = tempfile::tempdir().unwrap();
    let out = jail(tmp.path());
    let e = common::engine(
        &format!(
            "<match **>\n @type file\n path {}/${{svc}}/x\n append true\n <buffer svc>\n  @type memory\n  flush_mode immediate\n  flush_thread_interval 0.05\n </buffer>\n</match>\n",
            out.display()
        ),
        "path.conf",
    );
    let outs = start(&e).await;
    let records: Vec<Map> = HOSTILE.iter().map(|v| record! {"svc" => *v, "msg" => "m"}).collect();
    e.router.emit_to_label("@ROOT", "app", evs(records)).unwrap();
    // One file per distinct value, all of them under `out`.
    assert!(wait_for(|| all_files(tmp.path()).len() >= HOSTILE.len()).await, "{:?}", all_files(tmp.path()));
    for o in outs {
        o.shutdown().await;
    }
    assert_all_inside(tmp.path(), &out, HOSTILE.len());
    // The value is still recognisable in the name.
    assert!(out.join("%2E%2E%2F%2E%2E%2F%2E%2E%2Fescaped/x.log").is_file(), "{:?}", all_files(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_taken_from_records_cannot_leave_the_file_path() {
    let tmp = tempfile::tempdir().unwrap();
    let out = jail(tmp.path());
    let conf = format!(
        r#"
<match app.**>
  @type rewrite_tag_filter
  <rule>
    key svc
    pattern /^(.+)$/
    tag out.$1
  </rule>
</match>
<match out.**>
  @type file
  path {}/${{tag[1]}}/${{tag}}/x
  <buffer tag,time>
    @type memory
    timekey 1d
    timekey_use_utc true
    flush_mode immediate
    flush_thread_interval 0.05
  </buffer>
</match>
"#,
        out.display()
    );
    let e = common::engine(&conf, "path.conf");
    let outs = start(&e).await;
    for v in HOSTILE {
        e.router.emit_to_label("@ROOT", "app.web", evs(vec![record! {"svc" => *v}])).unwrap();
    }
    assert!(wait_for(|| all_files(tmp.path()).len() >= HOSTILE.len()).await, "{:?}", all_files(tmp.path()));
    for o in outs {
        o.shutdown().await;
    }
    assert_all_inside(tmp.path(), &out, HOSTILE.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secondary_outputs_escape_values_too() {
    let tmp = tempfile::tempdir().unwrap();
    let out = jail(tmp.path());
    // The primary cannot write (a file where its directory should be): every chunk goes to <secondary>.
    let blocker = tmp.path().join("blocked");
    std::fs::write(&blocker, b"x").unwrap();
    for (n, secondary) in [
        format!("@type secondary_file\n  directory {}/sf/${{svc}}", out.display()),
        format!("@type file\n  path {}/f/${{svc}}/x\n  append true", out.display()),
    ]
    .iter()
    .enumerate()
    {
        let e = common::engine(
            &format!(
                "<match **>\n @type file\n path {}/p\n <buffer svc>\n  @type memory\n  flush_mode immediate\n  retry_max_times 0\n  flush_thread_interval 0.02\n </buffer>\n <secondary>\n  {secondary}\n </secondary>\n</match>\n",
                blocker.display()
            ),
            "path.conf",
        );
        let outs = start(&e).await;
        e.router.emit_to_label("@ROOT", "app", evs(vec![record! {"svc" => "../../../escaped"}])).unwrap();
        let m = outs[0].metrics().unwrap();
        assert!(wait_for(|| m.records_to_secondary.get() == 1).await, "secondary {n} not used");
        for o in outs {
            o.shutdown().await;
        }
        assert_all_inside(tmp.path().join("a").as_path(), &out, n + 1);
    }
}
