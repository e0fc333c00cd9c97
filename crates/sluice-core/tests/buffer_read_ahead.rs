//! The memory bound: a memory buffer with no `total_limit_size` refuses emits once it holds
//! `DEFAULT_READ_AHEAD_LIMIT` bytes, so an input waits instead of reading far ahead of a slow destination;
//! nothing is lost, and explicit limits keep Fluentd's behaviour.
mod buffer_common;

use buffer_common::*;
use sluice_core::buffer::config::DEFAULT_READ_AHEAD_LIMIT;
use sluice_core::buffer::{BufferConfig, BufferDefaults};
use sluice_core::config::parse_str;
use sluice_core::event::{Event, EventTime, Value};
use sluice_core::plugin::Output;
use sluice_core::record;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH: i64 = 100;

fn batch(b: i64, payload: &str) -> Vec<Event> {
    // Now: a time-keyed chunk of the current hour is not due for flushing until the hour is over.
    let now = EventTime::now();
    (0..BATCH).map(|i| Event::new(now, record! {"n" => b * BATCH + i, "p" => Value::Str(payload.into())})).collect()
}

/// Emit batches `from..to` as an input does: a refused batch is offered again after a pause. Returns the
/// largest buffered size seen after an accepted emit and how many emits were refused.
fn produce(out: &Arc<sluice_core::buffer::BufferedOutput>, from: i64, to: i64, payload: &str) -> (u64, u64) {
    let give_up = Instant::now() + Duration::from_secs(60);
    let (mut peak, mut refused) = (0u64, 0u64);
    let mut b = from;
    while b < to {
        assert!(Instant::now() < give_up, "the producer made no progress for a minute (batch {b})");
        match out.emit("t", batch(b, payload)) {
            Ok(()) => b += 1,
            Err(_) => {
                refused += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        peak = peak.max(out.buffered_bytes());
    }
    (peak, refused)
}

fn conf(keys: &str, params: &str) -> String {
    format!(
        "<match **>\n @type fake\n <buffer {keys}>\n{params}  flush_interval 0.1\n  flush_thread_interval 0.05\n  retry_wait 0.05\n  retry_max_interval 0.1\n </buffer>\n</match>\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_buffer_without_limits_holds_no_more_than_the_bound_and_loses_nothing() {
    let payload = "x".repeat(1000);
    // 48 MiB of records, half again the bound, while the destination first fails and then recovers.
    let batches = (48 * 1024 * 1024 / (BATCH as usize * 1024)) as i64;
    let fake = Fake::new(vec![], Resp::Retry);
    let h = build("read-ahead", &conf("", ""), fake.clone()).unwrap();
    h.out.start().await.unwrap();
    let out = h.out.clone();
    let p = payload.clone();
    // Until the bound: everything is taken while the destination is down, then emits are refused.
    let first = tokio::task::spawn_blocking(move || {
        let mut b = 0;
        while out.emit("t", batch(b, &p)).is_ok() {
            b += 1;
            assert!(b < batches, "a buffer of {} bytes never refused", out.buffered_bytes());
        }
        (b, out.buffered_bytes())
    })
    .await
    .unwrap();
    let (accepted, held) = first;
    let batch_bytes = 110 * 1024 * BATCH as u64 / 100;
    assert!(held >= DEFAULT_READ_AHEAD_LIMIT, "refused at {held} bytes, before the bound");
    assert!(held <= DEFAULT_READ_AHEAD_LIMIT + batch_bytes, "held {held} bytes, more than the bound and one batch");
    assert_eq!(h.out.metrics().unwrap().records_dropped.get(), 0);

    // The destination recovers: the producer goes on where it was refused, and every record arrives once.
    fake.set_default(Resp::Ok);
    let out = h.out.clone();
    let (peak, _) = tokio::task::spawn_blocking(move || produce(&out, accepted, batches, &payload)).await.unwrap();
    assert!(peak <= DEFAULT_READ_AHEAD_LIMIT + batch_bytes, "peak {peak} bytes");
    h.out.flush_now();
    let want: Vec<i64> = (0..batches * BATCH).collect();
    assert!(wait_for(Duration::from_secs(30), || fake.delivered_ns().len() >= want.len()).await);
    assert_eq!(fake.delivered_ns(), want, "every record exactly once");
    assert!(sink_ns(&h.errors).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_that_never_fills_is_queued_at_the_bound() {
    // `chunk_limit_size` above the bound and a one-hour time key: without queuing the staged chunk early,
    // the bound would refuse every emit until the hour ends.
    let payload = "y".repeat(1000);
    let batches = (40 * 1024 * 1024 / (BATCH as usize * 1024)) as i64;
    let fake = Fake::new(vec![], Resp::Ok);
    let h =
        build("read-ahead-timekey", &conf("time", "  timekey 3600\n  chunk_limit_size 64m\n"), fake.clone()).unwrap();
    h.out.start().await.unwrap();
    let out = h.out.clone();
    // Without the early queue the producer gives up after a minute of refusals.
    let (peak, _) = tokio::task::spawn_blocking(move || produce(&out, 0, batches, &payload)).await.unwrap();
    assert!(peak <= DEFAULT_READ_AHEAD_LIMIT + 200 * 1024, "peak {peak} bytes");
    h.out.flush_now();
    let want: Vec<i64> = (0..batches * BATCH).collect();
    assert!(wait_for(Duration::from_secs(30), || fake.delivered_ns().len() >= want.len()).await);
    assert_eq!(fake.delivered_ns(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_total_limit_size_is_honoured_as_fluentd_does() {
    let payload = "z".repeat(1000);
    let fake = Fake::new(vec![], Resp::Retry);
    let h = build("read-ahead-explicit", &conf("", "  total_limit_size 48m\n"), fake.clone()).unwrap();
    h.out.start().await.unwrap();
    let out = h.out.clone();
    let held = tokio::task::spawn_blocking(move || {
        let mut b = 0;
        while out.emit("t", batch(b, &payload)).is_ok() {
            b += 1;
        }
        out.buffered_bytes()
    })
    .await
    .unwrap();
    assert!(held >= 48 * 1024 * 1024, "an explicit 48m limit refused at {held} bytes");
}

#[test]
fn the_bound_applies_only_where_the_user_left_the_memory_limits_to_sluice() {
    let cfg = |text: &str, defaults: &BufferDefaults| {
        let root = parse_str(text, Path::new("t.conf")).unwrap();
        BufferConfig::from_conf(&root.children[0], defaults, None).unwrap()
    };
    let s3 = BufferDefaults { chunk_limit_size: 256 << 20, ..BufferDefaults::default() };
    let c = cfg("<match **>\n @type x\n</match>\n", &s3);
    assert_eq!(c.read_ahead_limit, Some(DEFAULT_READ_AHEAD_LIMIT));
    assert_eq!(c.chunk_limit_size, DEFAULT_READ_AHEAD_LIMIT / 4, "a default chunk fits the bound four times");
    let c = cfg("<match **>\n @type x\n <buffer>\n  chunk_limit_size 64m\n </buffer>\n</match>\n", &s3);
    assert_eq!(c.chunk_limit_size, 64 << 20, "an explicit chunk_limit_size is kept");
    let c = cfg("<match **>\n @type x\n <buffer>\n  total_limit_size 1g\n </buffer>\n</match>\n", &s3);
    assert_eq!((c.read_ahead_limit, c.chunk_limit_size), (None, 256 << 20));
    let c = cfg("<match **>\n @type x\n <buffer>\n  overflow_action drop_oldest_chunk\n </buffer>\n</match>\n", &s3);
    assert_eq!(c.read_ahead_limit, None);
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "<match **>\n @type x\n <buffer>\n  @type file\n  path {}\n </buffer>\n</match>\n",
        dir.path().display()
    );
    assert_eq!(cfg(&text, &BufferDefaults::default()).read_ahead_limit, None, "file buffers keep their data on disk");
}
