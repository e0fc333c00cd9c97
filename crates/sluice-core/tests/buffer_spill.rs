//! A memory buffer that cannot deliver everything before sluice stops writes what is left to a spill
//! directory under `<system> root_dir` and sends it at the next start, instead of handing it to
//! `<secondary>`/`@ERROR` (or dropping it): nothing is lost on a normal stop.
mod buffer_common;

use buffer_common::*;
use sluice_core::buffer::BufferDefaults;
use sluice_core::plugin::Output;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn conf(extra: &str) -> String {
    format!(
        "<match **>\n @type fake\n @id slow_sink\n <buffer tag>\n  @type memory\n  flush_thread_interval 0.05\n  retry_wait 30\n  chunk_limit_records 25\n{extra} </buffer>\n</match>\n"
    )
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelivered_memory_chunks_are_spilled_and_sent_at_the_next_start() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let spill = root.join("worker0/slow_sink/spill");
    {
        // The destination fails the whole time sluice runs.
        let fake = Fake::new(vec![], Resp::Retry);
        let h = build_in("spill1", &conf(""), fake.clone(), BufferDefaults::default(), Some(root)).unwrap();
        h.out.start().await.unwrap();
        h.out.emit("a", events(0..60)).unwrap();
        h.out.emit("b", events(60..100)).unwrap();
        assert!(wait_for(T, || !fake.attempts.lock().is_empty()).await);
        h.out.shutdown().await;
        assert!(fake.delivered.lock().is_empty());
        assert!(sink_ns(&h.errors).is_empty(), "nothing handed to @ERROR: {:?}", sink_ns(&h.errors));
    }
    let spilled = files(&spill);
    assert!(spilled.iter().any(|f| f.ends_with(".log")) && spilled.iter().any(|f| f.ends_with(".meta")), "{spilled:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&spill).unwrap().permissions().mode() & 0o777, 0o700);

    // Next start, destination back: every record once, with its tag; the spill directory is emptied.
    let fake = Fake::new(vec![], Resp::Ok);
    let h = build_in("spill2", &conf(""), fake.clone(), BufferDefaults::default(), Some(root)).unwrap();
    assert_eq!(h.out.pending().1, 100);
    h.out.start().await.unwrap();
    assert!(wait_for(T, || fake.delivered_ns().len() >= 100).await, "{:?}", fake.delivered_ns());
    assert_eq!(fake.delivered_ns(), (0..100).collect::<Vec<_>>());
    for (m, ns) in fake.delivered.lock().iter() {
        let tag = m.tag.as_deref().unwrap();
        assert!(ns.iter().all(|n| (*n < 60) == (tag == "a")), "records kept their chunk's tag");
    }
    h.out.shutdown().await;
    assert!(files(&spill).iter().all(|f| !f.contains(".log")), "{:?}", files(&spill));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spilled_chunk_not_sent_again_stays_spilled() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for run in 0..2 {
        let fake = Fake::new(vec![], Resp::Retry);
        let h = build_in(&format!("again{run}"), &conf(""), fake, BufferDefaults::default(), Some(root)).unwrap();
        h.out.start().await.unwrap();
        if run == 0 {
            h.out.emit("a", events(0..10)).unwrap();
        }
        h.out.shutdown().await;
        assert!(sink_ns(&h.errors).is_empty());
    }
    let fake = Fake::new(vec![], Resp::Ok);
    let h = build_in("again2", &conf(""), fake.clone(), BufferDefaults::default(), Some(root)).unwrap();
    h.out.start().await.unwrap();
    assert!(wait_for(T, || fake.delivered_ns().len() >= 10).await);
    assert_eq!(fake.delivered_ns(), (0..10).collect::<Vec<_>>());
    h.out.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spill_at_shutdown_false_hands_records_to_error_as_before() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Fake::new(vec![], Resp::Retry);
    let h =
        build_in("nospill", &conf("  spill_at_shutdown false\n"), fake, BufferDefaults::default(), Some(tmp.path()))
            .unwrap();
    h.out.start().await.unwrap();
    h.out.emit("a", events(0..10)).unwrap();
    h.out.shutdown().await;
    assert_eq!(sink_ns(&h.errors), (0..10).collect::<Vec<_>>());
    assert!(!tmp.path().join("worker0/slow_sink/spill").exists());
}

/// Without `<system> root_dir`, the state directory (`SLUICE_STATE_DIR`, as the Helm chart sets it) keeps
/// the spill; with neither, sluice writes nowhere and hands the records to `@ERROR`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_directory_keeps_the_spill_without_root_dir() {
    use sluice_core::plugin::SystemConfig;
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let sys = || SystemConfig { state_dir: Some(state.clone()), ..Default::default() };
    {
        let fake = Fake::new(vec![], Resp::Retry);
        let h = build_with_system("state1", &conf(""), fake.clone(), BufferDefaults::default(), sys()).unwrap();
        h.out.start().await.unwrap();
        h.out.emit("a", events(0..30)).unwrap();
        assert!(wait_for(T, || !fake.attempts.lock().is_empty()).await);
        h.out.shutdown().await;
        assert!(sink_ns(&h.errors).is_empty(), "nothing handed to @ERROR: {:?}", sink_ns(&h.errors));
    }
    assert!(files(&state.join("worker0/slow_sink/spill")).iter().any(|f| f.ends_with(".log")));
    let fake = Fake::new(vec![], Resp::Ok);
    let h = build_with_system("state2", &conf(""), fake.clone(), BufferDefaults::default(), sys()).unwrap();
    h.out.start().await.unwrap();
    assert!(wait_for(T, || fake.delivered_ns().len() >= 30).await);
    assert_eq!(fake.delivered_ns(), (0..30).collect::<Vec<_>>());
    h.out.shutdown().await;

    // Neither root_dir nor a state directory: @ERROR gets them, nothing is written anywhere.
    let fake = Fake::new(vec![], Resp::Retry);
    let h = build_with_system("state3", &conf(""), fake.clone(), BufferDefaults::default(), SystemConfig::default())
        .unwrap();
    h.out.start().await.unwrap();
    h.out.emit("a", events(0..5)).unwrap();
    h.out.shutdown().await;
    assert_eq!(sink_ns(&h.errors), (0..5).collect::<Vec<_>>());
}
