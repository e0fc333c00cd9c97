//! A burst far larger than `total_limit_size` against a destination that is down: the process's resident
//! memory stays bounded for every `overflow_action` (its own test binary, so other tests add no noise).
mod buffer_common;

use buffer_common::*;
use sluice_core::event::{Event, EventTime, Value};
use sluice_core::plugin::Output;
use sluice_core::record;
use std::time::Duration;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_larger_than_total_limit_keeps_memory_bounded() {
    let payload = "x".repeat(1000);
    for action in ["throw_exception", "drop_oldest_chunk", "block"] {
        let fake = Fake::new(vec![], Resp::Retry);
        let h = build(
            &format!("rss-{action}"),
            &format!(
                "<match **>\n @type fake\n <buffer>\n  total_limit_size 4m\n  chunk_limit_size 256k\n  overflow_action {action}\n  flush_interval 0.1\n  retry_wait 30\n  flush_thread_interval 0.05\n </buffer>\n</match>\n"
            ),
            fake.clone(),
        )
        .unwrap();
        h.out.start().await.unwrap();
        let before = rss_kib();
        let out = h.out.clone();
        let p = payload.clone();
        let action_s = action.to_string();
        // 100 MB of records in batches of 100.
        let burst = tokio::task::spawn_blocking(move || {
            let mut accepted = 0u64;
            let mut refused = 0u64;
            for b in 0..1000i64 {
                let evs: Vec<Event> = (0..100)
                    .map(|i| {
                        Event::new(
                            EventTime::new(1_700_000_000, 0),
                            record! {"n" => b * 100 + i, "p" => Value::Str(p.as_str().into())},
                        )
                    })
                    .collect();
                match out.emit("t", evs) {
                    Ok(()) => accepted += 100,
                    Err(_) => refused += 100,
                }
                if action_s == "block" && b == 100 {
                    break;
                }
            }
            (accepted, refused)
        });
        let (accepted, refused) = if action == "block" {
            // The destination never recovers: block must hold the producer back, not grow the buffer.
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert!(!burst.is_finished(), "block lets the producer wait");
            assert!(h.out.buffered_bytes() <= 5 * 1024 * 1024, "{}", h.out.buffered_bytes());
            fake.set_default(Resp::Ok);
            h.out.flush_now();
            tokio::time::timeout(Duration::from_secs(30), burst).await.unwrap().unwrap()
        } else {
            burst.await.unwrap()
        };
        let grown_mib = rss_kib().saturating_sub(before) / 1024;
        assert!(grown_mib < 48, "{action}: resident memory grew by {grown_mib} MiB for a 4 MiB buffer");
        assert!(h.out.buffered_bytes() <= 5 * 1024 * 1024, "{action}: {}", h.out.buffered_bytes());
        let m = h.out.metrics().unwrap();
        match action {
            "throw_exception" => assert!(refused > 90_000, "refused {refused}"),
            "drop_oldest_chunk" => {
                assert_eq!(refused, 0);
                assert!(m.records_dropped.get() > 90_000, "dropped {}", m.records_dropped.get());
            }
            _ => assert_eq!(accepted, 10_100),
        }
        h.out.shutdown().await;
    }
}
