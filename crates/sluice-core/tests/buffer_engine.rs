//! The buffered output engine against a fake destination: chunking, flush modes, retries and backoff,
//! secondary, @ERROR, partial failures, timeouts, limits and overflow actions.
mod buffer_common;

use buffer_common::*;
use sluice_core::event::Events;
use sluice_core::plugin::{EmitError, Output};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_are_cut_by_tag_and_record_keys() {
    let fake = Fake::new(vec![], Resp::Ok);
    let h = build(
        "keys",
        "<match **>\n @type fake\n <buffer tag,host>\n  flush_mode immediate\n  flush_thread_interval 0.05\n </buffer>\n</match>\n",
        fake.clone(),
    )
    .unwrap();
    h.out.start().await.unwrap();
    let evs: Events = (0..6).map(|n| event_at(1_700_000_000, n, if n % 2 == 0 { "a" } else { "b" })).collect();
    h.out.emit("app.x", evs).unwrap();
    h.out.emit("app.y", vec![event_at(1_700_000_000, 6, "a")]).unwrap();
    assert!(wait_for(T, || fake.delivered_ns().len() == 7).await);
    let mut got: Vec<(Option<String>, String, Vec<i64>)> =
        fake.delivered.lock().iter().map(|(m, n)| (m.tag.clone(), m.variables[0].1.clone(), n.clone())).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (Some("app.x".into()), "a".into(), vec![0, 2, 4]),
            (Some("app.x".into()), "b".into(), vec![1, 3, 5]),
            (Some("app.y".into()), "a".into(), vec![6]),
        ]
    );
    h.out.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_key_slices_and_lazy_flush_after_timekey_wait() {
    let fake = Fake::new(vec![], Resp::Ok);
    let h = build(
        "time",
        "<match **>\n @type fake\n <buffer time>\n  timekey 60\n  timekey_wait 0\n  timekey_use_utc true\n  flush_thread_interval 0.05\n </buffer>\n</match>\n",
        fake.clone(),
    )
    .unwrap();
    h.out.start().await.unwrap();
    // Two old slices (long past timekey + timekey_wait): flushed by the lazy mode at once.
    let base = 1_700_000_040; // 1_700_000_040 is a multiple of 60
    let evs = vec![event_at(base + 1, 0, "h"), event_at(base + 59, 1, "h"), event_at(base + 60, 2, "h")];
    h.out.emit("t", evs).unwrap();
    assert!(wait_for(T, || fake.delivered_ns().len() == 3).await);
    let mut got: Vec<(Option<i64>, Vec<i64>)> =
        fake.delivered.lock().iter().map(|(m, n)| (m.timekey, n.clone())).collect();
    got.sort();
    assert_eq!(got, vec![(Some(base), vec![0, 1]), (Some(base + 60), vec![2])]);
    h.out.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_limit_records_and_size_split_chunks() {
    let fake = Fake::new(vec![], Resp::Ok);
    let h = build(
        "limits",
        "<match **>\n @type fake\n <buffer>\n  chunk_limit_records 3\n  flush_interval 1h\n  flush_thread_interval 0.05\n </buffer>\n</match>\n",
        fake.clone(),
    )
    .unwrap();
    h.out.start().await.unwrap();
    h.out.emit("t", events(0..10)).unwrap();
    // Three full chunks go at once; the last one waits for flush_interval or a flush.
    assert!(wait_for(T, || fake.delivered.lock().len() == 3).await);
    h.out.flush_now();
    assert!(wait_for(T, || fake.delivered.lock().len() == 4).await);
    let sizes: Vec<usize> = fake.delivered.lock().iter().map(|(_, n)| n.len()).collect();
    assert_eq!(sizes, vec![3, 3, 3, 1]);
    assert_eq!(fake.delivered_ns(), (0..10).collect::<Vec<_>>());

    let fake = Fake::new(vec![], Resp::Ok);
    let h = build(
        "limits2",
        "<match **>\n @type fake\n <buffer>\n  chunk_limit_size 200\n  flush_mode immediate\n  flush_thread_interval 0.05\n </buffer>\n</match>\n",
        fake.clone(),
    )
    .unwrap();
    h.out.start().await.unwrap();
    h.out.emit("t", events(0..20)).unwrap();
    assert!(wait_for(T, || fake.delivered_ns().len() == 20).await);
    assert!(fake.delivered.lock().len() > 1, "chunks split by size");
    h.out.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_follow_exponential_backoff_then_deliver_once() {
    let fake = Fake::new(vec![Resp::Retry, Resp::Retry, Resp::Retry], Resp::Ok);
    let h = build(
        "backoff",
        "<match **>\n @type fake\n <buffer>\n  flush_mode immediate\n  retry_wait 0.1\n  retry_exponential_backoff_base 2\n  retry_max_interval 0.3\n  retry_randomize false\n  flush_thread_interval 0.02\n </buffer>\n</match>\n",
        fake.clone(),
    )
    .unwrap();
    h.out.start().await.unwrap();
    h.out.emit("t", events(0..5)).unwrap();
    assert!(wait_for(T, || fake.delivered_ns().len() == 5).await);
    assert_eq!(fake.delivered_ns(), vec![0, 1, 2, 3, 4], "delivered exactly once");
    let at = fake.attempts.lock().clone();
    assert_eq!(at.len(), 4);
    // Waits: 0.1, 0.2, then capped at 0.3 (lower bounds only).
    let expected = [0.1, 0.2, 0.3];
    for (i, w) in expected.iter().enumerate() {
        let gap = at[i + 1].duration_since(at[i]).as_secs_f64();
        assert!(gap >= w - 0.01, "retry {} came after {gap:.3}s, expected >= {w}", i + 1);
    }
    let m = h.out.metrics().unwrap();
    assert_eq!(m.retries.get(), 3);
    assert_eq!(m.records_written.get(), 5);
    assert!(m.last_error.lock().as_deref().unwrap_or("").contains("503"));
    h.out.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_max_times_hands_chunk_to_secondary() {
    let fake = Fake::new(vec![], Resp::Retry);
    let h = build(
        "secondary",
        "<match **>\n @type fake\n <buffer>\n  flush_mode immediate\n  retry_wait 0.02\n  retry_max_times 3\n  retry_randomize false\n  flush_thread_interval 0.02\n </buffer>\n <secondary>\n  @type capture\n  sink secondary-sec\n </secondary>\n</match>\n",
        fake.clone(),
    )
    .unwrap();
    h.out.start().await.unwrap();
    h.out.emit("t", events(0..4)).unwrap();
    assert!(wait_for(T, || sink_ns("secondary-sec").len() == 4).await);
    assert_eq!(sink_ns("secondary-sec"), vec![0, 1, 2, 3]);
    assert!(fake.delivered.lock().is_empty());
    assert!(sink_ns(&h.errors).is_empty());
    let m = h.out.metrics().unwrap();
    assert_eq!(m.records_to_secondary.get(), 4);
    h.out.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_timeout_without_secondary_goes_to_error_label() {
    let fake = Fake::new(vec![], Resp::Retry);
    let h = build(
        "timeout",
        "<match **>\n @type fake\n <buffer>\n  flush_mode immediate\n  retry_wait 0.05\n  retry_timeout 0.3\n  retry_randomize false\n  flush_thread_interval 0.02\n </buffer>\n</match>\n",
        fake.clone(),
    )
    .unwrap();
    h.out.start().await.unwrap();
    h.out.emit("t", events(0..3)).unwrap();
    assert!(wait_for(T, || sink_ns(&h.errors).len() == 3).await);
    assert!(fake.attempts.lock().len() >= 2);
    let m = h.out.metrics().unwrap();
    assert_eq!(m.records_to_error_label.get(), 3);
    h.out.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrecoverable_error_is_not_retried() {
    let fake = Fake::new(vec![Resp::Unrecoverable], Resp::Ok);
    let h = build(
        "unrec",
        "<match **>\n @type fake\n <buffer>\n  flush_mode immediate\n  retry_wait 0.02\n  flush_thread_interval 0.02\n </buffer>\n</match>\n",
        fake.clone(),
    )
    .unwrap();
    h.out.start().await.unwrap();
    h.out.emit("t", events(0..3)).unwrap();
    assert!(wait_for(T, || sink_ns(&h.errors).len() == 3).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fake.attempts.lock().len(), 1);
    assert!(fake.delivered.lock().is_empty());
    h.out.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_failure_retries_only_listed_records() {
    let fake = Fake::new(vec![Resp::Partial { retry: vec![1], rejected: vec![2] }], Resp::Ok);
    let h = build(
        "partial",
        "<match **>\n @type fake\n <buffer>\n  flush_mode immediate\n  retry_wait 0.02\n  retry_randomize false\n  flush_thread_interval 0.02\n </buffer>\n</match>\n",
        fake.clone(),
    )
    .unwrap();
    h.out.start().await.unwrap();
    h.out.emit("t", events(0..4)).unwrap();
    assert!(wait_for(T, || fake.delivered_ns().len() == 3).await);
    assert_eq!(fake.delivered_ns(), vec![0, 1, 3]);
    let d = fake.delivered.lock().clone();
    assert_eq!(d[1].1, vec![1], "the retry carries only the failed record");
    assert_eq!(sink_ns(&h.errors), vec![2]);
    h.out.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_write_times_out_and_is_retried() {
    let fake = Fake::new(vec![Resp::Hang(Duration::from_secs(30))], Resp::Ok);
    let h = build(
        "hang",
        "<match **>\n @type fake\n <buffer>\n  flush_mode immediate\n  delayed_commit_timeout 0.2\n  retry_wait 0.02\n  flush_thread_interval 0.02\n </buffer>\n</match>\n",
        fake.clone(),
    )
    .unwrap();
    h.out.start().await.unwrap();
    h.out.emit("t", events(0..2)).unwrap();
    assert!(wait_for(T, || fake.delivered_ns().len() == 2).await);
    assert!(h.out.metrics().unwrap().last_error.lock().as_deref().unwrap_or("").contains("delayed_commit_timeout"));
    h.out.shutdown().await;
}

/// Fluentd's slow flush accounting: a write slower than `slow_flush_log_threshold` (on the `<match>`) is
/// counted, fast ones are not, and the time spent in writes adds up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_flushes_are_timed_and_counted() {
    let fake = Fake::new(vec![Resp::Hang(Duration::from_millis(300))], Resp::Ok);
    let h = build(
        "slowflush",
        "<match **>\n @type fake\n slow_flush_log_threshold 0.1\n <buffer>\n  flush_mode immediate\n  retry_wait 0.02\n  flush_thread_interval 0.02\n </buffer>\n</match>\n",
        fake.clone(),
    )
    .unwrap();
    h.out.start().await.unwrap();
    h.out.emit("t", events(0..2)).unwrap();
    assert!(wait_for(T, || fake.delivered_ns().len() == 2).await);
    let m = h.out.metrics().unwrap();
    assert_eq!(m.write_count.get(), 2, "the slow failed write, then the retry");
    assert_eq!(m.slow_flush_count.get(), 1, "only the 300 ms write is over the 0.1 s threshold");
    assert!(m.flush_time_ms.get() >= 300, "{}", m.flush_time_ms.get());
    h.out.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_throw_exception_refuses_emit() {
    let fake = Fake::new(vec![], Resp::Retry);
    let h = build(
        "throw",
        "<match **>\n @type fake\n <buffer>\n  total_limit_size 2k\n  chunk_limit_size 1k\n  flush_mode immediate\n  retry_wait 10\n  flush_thread_interval 0.02\n </buffer>\n</match>\n",
        fake.clone(),
    )
    .unwrap();
    h.out.start().await.unwrap();
    let mut refused = 0;
    for i in 0..200 {
        match h.out.emit("t", events(i * 10..i * 10 + 10)) {
            Ok(()) => {}
            Err(EmitError::BufferOverflow { .. }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused > 150, "most emits refused once full ({refused})");
    assert!(h.out.buffered_bytes() < 4096, "bounded: {}", h.out.buffered_bytes());
    h.out.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_drop_oldest_chunk_counts_drops() {
    let fake = Fake::new(vec![], Resp::Retry);
    let h = build(
        "dropold",
        "<match **>\n @type fake\n <buffer>\n  total_limit_size 2k\n  chunk_limit_size 512\n  overflow_action drop_oldest_chunk\n  retry_wait 10\n  flush_interval 1h\n  flush_thread_interval 0.02\n </buffer>\n</match>\n",
        fake.clone(),
    )
    .unwrap();
    h.out.start().await.unwrap();
    for i in 0..100 {
        h.out.emit("t", events(i * 10..i * 10 + 10)).unwrap();
    }
    let m = h.out.metrics().unwrap();
    assert!(m.records_dropped.get() > 500, "dropped {}", m.records_dropped.get());
    assert!(h.out.buffered_bytes() < 4096, "bounded: {}", h.out.buffered_bytes());
    let (_, pending) = h.out.pending();
    // Everything is either pending, dropped (counted) or in a chunk being written.
    assert!(pending as u64 + m.records_dropped.get() <= 1000);
    h.out.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_block_waits_for_space() {
    let fake = Fake::new(vec![Resp::Retry, Resp::Retry], Resp::Ok);
    let h = build(
        "block",
        "<match **>\n @type fake\n <buffer>\n  total_limit_size 1k\n  chunk_limit_size 512\n  overflow_action block\n  flush_mode immediate\n  retry_wait 0.05\n  retry_randomize false\n  flush_thread_interval 0.02\n </buffer>\n</match>\n",
        fake.clone(),
    )
    .unwrap();
    h.out.start().await.unwrap();
    let out = h.out.clone();
    let sent = tokio::task::spawn_blocking(move || {
        for i in 0..50 {
            out.emit("t", events(i * 10..i * 10 + 10)).unwrap();
        }
    });
    tokio::time::timeout(Duration::from_secs(30), sent).await.unwrap().unwrap();
    assert!(wait_for(T, || fake.delivered_ns().len() == 500).await);
    assert_eq!(fake.delivered_ns(), (0..500).collect::<Vec<_>>());
    assert_eq!(h.out.metrics().unwrap().records_dropped.get(), 0);
    h.out.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_buffer_flushes_at_shutdown_and_gzip_roundtrips() {
    let fake = Fake::new(vec![], Resp::Ok);
    let h = build(
        "shutdown",
        "<match **>\n @type fake\n <buffer>\n  compress gzip\n  flush_interval 1h\n </buffer>\n</match>\n",
        fake.clone(),
    )
    .unwrap();
    h.out.start().await.unwrap();
    h.out.emit("t", events(0..100)).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(fake.delivered.lock().is_empty());
    h.out.shutdown().await;
    assert_eq!(fake.delivered_ns(), (0..100).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unflushed_memory_buffer_at_shutdown_goes_to_error_label() {
    let fake = Fake::new(vec![], Resp::Retry);
    let h = build(
        "shutdown-fail",
        "<match **>\n @type fake\n <buffer>\n  flush_interval 1h\n  delayed_commit_timeout 1\n </buffer>\n</match>\n",
        fake.clone(),
    )
    .unwrap();
    h.out.start().await.unwrap();
    h.out.emit("t", events(0..7)).unwrap();
    h.out.shutdown().await;
    assert_eq!(sink_ns(&h.errors), (0..7).collect::<Vec<_>>(), "never silently dropped");
}

#[test]
fn config_errors_name_the_problem() {
    let fake = Fake::new(vec![], Resp::Ok);
    let e =
        build("cfg1", "<match **>\n @type fake\n <buffer time>\n </buffer>\n</match>\n", fake.clone()).err().unwrap();
    assert!(e.to_string().contains("timekey is not configured"), "{e}");
    let e = build(
        "cfg2",
        "<match **>\n @type fake\n <buffer>\n  overflow_action explode\n </buffer>\n</match>\n",
        fake.clone(),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("overflow_action"), "{e}");
    let e = build("cfg3", "<match **>\n @type fake\n <buffer>\n  @type file\n </buffer>\n</match>\n", fake.clone())
        .err()
        .unwrap();
    assert!(e.to_string().contains("'path' parameter is required"), "{e}");
    let e =
        build("cfg4", "<match **>\n @type fake\n <buffer>\n  @type redis\n </buffer>\n</match>\n", fake).err().unwrap();
    assert!(e.to_string().contains("unknown buffer plugin"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_then_recovery_delivers_everything_once() {
    let fake = Fake::new(vec![], Resp::Retry);
    let h = build(
        "outage",
        "<match **>\n @type fake\n <buffer tag>\n  flush_interval 0.1\n  flush_thread_count 2\n  chunk_limit_records 50\n  retry_wait 0.05\n  retry_max_interval 0.2\n  flush_thread_interval 0.02\n </buffer>\n</match>\n",
        fake.clone(),
    )
    .unwrap();
    h.out.start().await.unwrap();
    let out = h.out.clone();
    let producer = tokio::task::spawn_blocking(move || {
        for i in 0..200 {
            out.emit(if i % 2 == 0 { "a" } else { "b" }, events(i * 10..i * 10 + 10)).unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    // The destination is down for the first second or so, then comes back.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(fake.delivered.lock().is_empty());
    assert!(fake.attempts.lock().len() >= 2);
    fake.set_default(Resp::Ok);
    producer.await.unwrap();
    assert!(wait_for(T, || fake.delivered_ns().len() >= 2000).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fake.delivered_ns(), (0..2000).collect::<Vec<_>>(), "every record once");
    let m = h.out.metrics().unwrap();
    assert_eq!(m.records_written.get(), 2000);
    assert_eq!(m.records_dropped.get(), 0);
    h.out.shutdown().await;
}
