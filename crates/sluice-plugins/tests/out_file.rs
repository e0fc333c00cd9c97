//! `file` and `secondary_file` outputs through real configuration text and the engine assembly:
//! Fluentd's file naming, placeholders per chunk, append, gzip, an outage of the destination directory
//! followed by recovery, and `<secondary>` dumps.
use sluice_core::config::parse_str;
use sluice_core::engine::{assemble, Engine};
use sluice_core::event::{read_value, Event, EventTime, Events, Value};
use sluice_core::plugin::{Output, Registry};
use sluice_core::record;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

// 2023-11-14T22:13:20Z
const BASE: i64 = 1_700_000_000;

fn registry() -> Arc<Registry> {
    let mut r = Registry::new();
    sluice_plugins::register_all(&mut r);
    Arc::new(r)
}

fn engine(text: &str) -> Engine {
    let root = parse_str(text, Path::new("test.conf")).unwrap();
    let a = assemble(&root, registry(), false);
    match a.engine {
        Some(e) => e,
        None => panic!("config errors: {:?}", a.diagnostics),
    }
}

fn config_error(text: &str) -> String {
    let root = parse_str(text, Path::new("test.conf")).unwrap();
    let a = assemble(&root, registry(), false);
    assert!(a.engine.is_none(), "expected a configuration error");
    format!("{:?}", a.diagnostics)
}

fn evs(range: std::ops::Range<i64>) -> Events {
    range.map(|n| Event::new(EventTime::new(BASE + n, 0), record! {"n" => n, "msg" => "hi"})).collect()
}

async fn start(e: &Engine) -> Vec<Arc<dyn Output>> {
    let outs = e.router.outputs();
    for o in &outs {
        o.start().await.unwrap();
    }
    outs
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

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn gunzip(p: &Path) -> String {
    let data = std::fs::read(p).unwrap();
    let mut s = String::new();
    flate2::read::MultiGzDecoder::new(&data[..]).read_to_string(&mut s).unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_naming_daily_file_with_index() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("out/app");
    let e = engine(&format!(
        "<match app.**>\n @type file\n path {}\n <buffer>\n  timekey_use_utc true\n  flush_thread_interval 0.05\n </buffer>\n</match>\n",
        path.display()
    ));
    let outs = start(&e).await;
    e.router.emit_to_label("@ROOT", "app.web", evs(0..3)).unwrap();
    e.flusher().flush_all();
    let f0 = tmp.path().join("out/app.20231114_0.log");
    assert!(wait_for(|| f0.exists()).await, "{:?}", files(&tmp.path().join("out")));
    let text = std::fs::read_to_string(&f0).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].contains("\tapp.web\t{\"n\":0,\"msg\":\"hi\"}"), "{}", lines[0]);
    // A second chunk for the same day gets the next free index.
    e.router.emit_to_label("@ROOT", "app.web", evs(3..4)).unwrap();
    e.flusher().flush_all();
    let f1 = tmp.path().join("out/app.20231114_1.log");
    assert!(wait_for(|| f1.exists()).await, "{:?}", files(&tmp.path().join("out")));
    // The file buffer lives under `path` (Fluentd's default) and is emptied after delivery.
    assert!(path.is_dir());
    assert!(wait_for(|| files(&path).is_empty()).await, "{:?}", files(&path));
    for o in outs {
        o.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_placeholders_append_and_gzip() {
    let tmp = tempfile::tempdir().unwrap();
    let e = engine(&format!(
        "<match **>\n @type file\n path {}/${{tag[0]}}/${{tag}}/%Y%m%d%H/log\n append true\n compress gzip\n <buffer tag,time>\n  @type memory\n  timekey 1h\n  timekey_use_utc true\n  flush_mode immediate\n  flush_thread_interval 0.05\n </buffer>\n</match>\n",
        tmp.path().display()
    ));
    let outs = start(&e).await;
    e.router.emit_to_label("@ROOT", "web.a", evs(0..2)).unwrap();
    e.router.emit_to_label("@ROOT", "db.b", evs(2..3)).unwrap();
    let fa: PathBuf = tmp.path().join("web/web.a/2023111422/log.log.gz");
    let fb: PathBuf = tmp.path().join("db/db.b/2023111422/log.log.gz");
    assert!(wait_for(|| fa.exists() && fb.exists()).await);
    e.router.emit_to_label("@ROOT", "web.a", evs(5..6)).unwrap();
    assert!(wait_for(|| gunzip(&fa).lines().count() == 3).await, "appended as a second gzip member");
    let t = gunzip(&fa);
    assert!(t.contains("\"n\":0") && t.contains("\"n\":5") && !t.contains("\"n\":2"));
    assert_eq!(gunzip(&fb).lines().count(), 1);
    for o in outs {
        o.shutdown().await;
    }
}

#[test]
fn placeholder_not_covered_by_chunk_keys_is_a_config_error() {
    let e = config_error("<match **>\n @type file\n path /tmp/sluice-never/${tag}/x\n <buffer time>\n  timekey 1d\n </buffer>\n</match>\n");
    assert!(e.contains("has tag placeholders, but chunk key 'tag' is not configured"), "{e}");
    let e = config_error("<match **>\n @type file\n path /tmp/sluice-never/${host}/x\n <buffer tag,time>\n  timekey 1d\n </buffer>\n</match>\n");
    assert!(e.contains("chunk keys doesn't have keys host"), "{e}");
    let e = config_error("<match **>\n @type file\n path /tmp/sluice-never/x.*\n <buffer tag>\n </buffer>\n</match>\n");
    assert!(e.contains("path including '*' must be used with buffer chunk key 'time'"), "{e}");
    let e = config_error("<match **>\n @type file\n path /tmp/sluice-never/%Y/x\n</match>\n");
    assert!(e.contains("insufficient timestamp placeholders in path"), "{e}");
    let e = config_error("<match **>\n @type secondary_file\n directory /tmp/x\n</match>\n");
    assert!(e.contains("can only be used in the <secondary> section"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_of_the_target_directory_then_recovery() {
    let tmp = tempfile::tempdir().unwrap();
    let blocker = tmp.path().join("target");
    // A regular file where the directory should be: every write fails (ENOTDIR) until it is removed.
    std::fs::write(&blocker, b"not a dir").unwrap();
    let e = engine(&format!(
        "<match **>\n @type file\n path {}/out\n append true\n <buffer>\n  @type file\n  path {}/buf\n  timekey_use_utc true\n  flush_mode immediate\n  retry_wait 0.1\n  retry_max_interval 0.2\n  flush_thread_interval 0.05\n </buffer>\n</match>\n",
        blocker.display(),
        tmp.path().display()
    ));
    let outs = start(&e).await;
    e.router.emit_to_label("@ROOT", "t", evs(0..50)).unwrap();
    let m = outs[0].metrics().unwrap();
    assert!(wait_for(|| m.retries.get() >= 2).await);
    assert!(m.last_error.lock().as_deref().unwrap_or("").contains("cannot write"));
    std::fs::remove_file(&blocker).unwrap();
    let out = tmp.path().join("target/out.20231114.log");
    assert!(wait_for(|| std::fs::read_to_string(&out).map(|t| t.lines().count() == 50).unwrap_or(false)).await);
    let text = std::fs::read_to_string(&out).unwrap();
    for n in 0..50 {
        assert_eq!(text.matches(&format!("\"n\":{n},")).count(), 1, "record {n} exactly once");
    }
    for o in outs {
        o.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secondary_file_dumps_chunks_the_primary_cannot_write() {
    let tmp = tempfile::tempdir().unwrap();
    let blocker = tmp.path().join("blocked");
    std::fs::write(&blocker, b"x").unwrap();
    let dump = tmp.path().join("failed");
    let e = engine(&format!(
        "<match **>\n @type file\n path {}/out\n <buffer tag,time>\n  @type memory\n  timekey 1d\n  timekey_use_utc true\n  flush_mode immediate\n  retry_wait 0.02\n  retry_max_times 1\n  flush_thread_interval 0.02\n </buffer>\n <secondary>\n  @type secondary_file\n  directory {}/${{tag}}\n </secondary>\n</match>\n",
        blocker.display(),
        dump.display()
    ));
    let outs = start(&e).await;
    e.router.emit_to_label("@ROOT", "app.x", evs(0..4)).unwrap();
    let f = dump.join("app.x/dump.bin.0");
    assert!(wait_for(|| f.exists()).await, "{:?}", files(&dump));
    let data = std::fs::read(&f).unwrap();
    let mut pos = 0;
    let mut ns = Vec::new();
    while pos < data.len() {
        let (v, used) = read_value(&data[pos..]).unwrap();
        pos += used;
        let Value::Array(a) = v else { panic!("entry is not an array") };
        assert_eq!(a.len(), 2, "[time, record]");
        ns.push(a[1].as_map().unwrap().get("n").unwrap().as_i64().unwrap());
    }
    assert_eq!(ns, vec![0, 1, 2, 3]);
    assert_eq!(outs[0].metrics().unwrap().records_to_secondary.get(), 4);
    for o in outs {
        o.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_as_secondary_writes_formatted_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let blocker = tmp.path().join("blocked");
    std::fs::write(&blocker, b"x").unwrap();
    let e = engine(&format!(
        "<match **>\n @type file\n path {}/out\n <buffer>\n  @type memory\n  timekey_use_utc true\n  flush_mode immediate\n  retry_wait 0.02\n  retry_max_times 1\n  flush_thread_interval 0.02\n </buffer>\n <secondary>\n  @type file\n  path {}/fallback\n  <format>\n   @type json\n  </format>\n </secondary>\n</match>\n",
        blocker.display(),
        tmp.path().display()
    ));
    let outs = start(&e).await;
    e.router.emit_to_label("@ROOT", "t", evs(0..3)).unwrap();
    let f = tmp.path().join("fallback.20231114_0.log");
    assert!(wait_for(|| f.exists()).await, "{:?}", files(tmp.path()));
    let text = std::fs::read_to_string(&f).unwrap();
    assert_eq!(text.lines().next().unwrap(), "{\"n\":0,\"msg\":\"hi\"}");
    assert_eq!(text.lines().count(), 3);
    for o in outs {
        o.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_a_memory_buffer_and_keeps_a_file_buffer() {
    let tmp = tempfile::tempdir().unwrap();
    let e = engine(&format!(
        "<match mem.**>\n @type file\n path {dir}/mem\n <buffer>\n  @type memory\n  timekey_use_utc true\n </buffer>\n</match>\n<match disk.**>\n @type file\n path {dir}/disk\n <buffer>\n  path {dir}/diskbuf\n  timekey_use_utc true\n </buffer>\n</match>\n",
        dir = tmp.path().display()
    ));
    let router = e.router.clone();
    let shutdown = e.ctx.shutdown.clone();
    let run = tokio::spawn(e.run());
    router.emit_to_label("@ROOT", "mem.x", evs(0..5)).unwrap();
    // Recent events: their daily slice is not due, so only shutdown could flush them.
    let now = EventTime::now();
    let recent: Events = (0..7).map(|n| Event::new(now, record! {"n" => n})).collect();
    router.emit_to_label("@ROOT", "disk.x", recent).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(30), run).await.unwrap().unwrap().unwrap();
    // Memory: flush_at_shutdown defaults to true.
    let mem = std::fs::read_to_string(tmp.path().join("mem.20231114_0.log")).unwrap();
    assert_eq!(mem.lines().count(), 5);
    // File buffer: flush_at_shutdown defaults to false; the chunk waits on disk for the next start.
    let disk_files = || -> Vec<String> { files(tmp.path()).into_iter().filter(|f| f.starts_with("disk.")).collect() };
    assert!(disk_files().is_empty(), "{:?}", disk_files());
    assert!(files(&tmp.path().join("diskbuf")).iter().any(|f| f.starts_with("buffer.b")));
    let e2 = engine(&format!(
        "<match disk.**>\n @type file\n path {dir}/disk\n <buffer>\n  path {dir}/diskbuf\n  timekey_use_utc true\n  flush_thread_interval 0.05\n </buffer>\n</match>\n",
        dir = tmp.path().display()
    ));
    let outs = start(&e2).await;
    assert!(wait_for(|| disk_files().len() == 1).await);
    let f = tmp.path().join(&disk_files()[0]);
    assert!(f.to_string_lossy().ends_with("_0.log"));
    assert!(wait_for(|| std::fs::read_to_string(&f).map(|t| t.lines().count() == 7).unwrap_or(false)).await);
    for o in outs {
        o.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v012_parameters_and_inject_as_fluentd_maps_them() {
    // A td-agent 2 era <match>: buffer_type/buffer_path/time_slice_format/format json/include_time_key/
    // include_tag_key/utc on the plugin. Fluentd 1.x turns them into <buffer time> with a file buffer at
    // buffer_path (timekey 1h from %H), <format> @type json and <inject> time_key time (string, UTC,
    // ISO 8601) + tag_key tag.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("out/app");
    let buf = tmp.path().join("buf/app.*.buffer");
    let e = engine(&format!(
        "<match app.**>\n @type file\n path {}\n buffer_type file\n buffer_path {}\n time_slice_format %Y%m%d%H\n \
         format json\n include_time_key true\n include_tag_key true\n utc\n try_flush_interval 0.05\n</match>\n",
        path.display(),
        buf.display()
    ));
    let outs = start(&e).await;
    e.router.emit_to_label("@ROOT", "app.web", evs(0..1)).unwrap();
    // Staged in the file buffer named by buffer_path before any flush.
    assert!(wait_for(|| !files(&tmp.path().join("buf")).is_empty()).await, "no chunk under buffer_path");
    e.flusher().flush_all();
    let f0 = tmp.path().join("out/app.2023111422_0.log");
    assert!(wait_for(|| f0.exists()).await, "{:?}", files(&tmp.path().join("out")));
    let text = std::fs::read_to_string(&f0).unwrap();
    assert_eq!(text, "{\"n\":0,\"msg\":\"hi\",\"tag\":\"app.web\",\"time\":\"2023-11-14T22:13:20Z\"}\n");
    for o in outs {
        o.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inject_section_in_the_file_output() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("out/app");
    let e = engine(&format!(
        "<match app.**>\n @type file\n path {}\n <format>\n  @type json\n </format>\n <inject>\n  tag_key t\n  \
         time_key ts\n  time_type unixtime\n  hostname_key h\n  hostname box\n </inject>\n <buffer>\n  \
         timekey_use_utc true\n  flush_thread_interval 0.05\n </buffer>\n</match>\n",
        path.display()
    ));
    let outs = start(&e).await;
    e.router.emit_to_label("@ROOT", "app.web", evs(0..1)).unwrap();
    e.flusher().flush_all();
    let f0 = tmp.path().join("out/app.20231114_0.log");
    assert!(wait_for(|| f0.exists()).await, "{:?}", files(&tmp.path().join("out")));
    let text = std::fs::read_to_string(&f0).unwrap();
    assert_eq!(text, "{\"n\":0,\"msg\":\"hi\",\"h\":\"box\",\"t\":\"app.web\",\"ts\":1700000000}\n");
    for o in outs {
        o.shutdown().await;
    }
}
