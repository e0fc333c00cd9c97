//! No floods: de-duplication with summaries, distinct alerts kept apart, the rate-limit digest.
mod common;
use common::*;
use sluice_core::buffer::ChunkWriter;
use sluice_core::event::Map;
use sluice_core::record;
use sluice_slack::build_writer;
use std::time::Duration;

fn fatal(i: usize) -> Map {
    record! {
        "level" => "FATAL",
        "service" => "payments",
        "message" => format!(
            "2026-11-25T06:{:02}:{:02}Z charge failed for order {} (request id={:08x}-{:04x}, txn 0x{:x})",
            i / 60 % 60, i % 60, 100_000 + i, i * 7919, i % 65536, i * 31
        ),
        "kubernetes" => record! {"pod_name" => format!("payments-7d9f-{i}"), "namespace_name" => "shop"},
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_identical_fatals_is_one_message_and_one_summary() {
    let fake = FakeSlack::start();
    let w = build_writer(&conf(&[("webhook_url", &fake.webhook_url()), ("dedup_window", "3s"), ("min_interval", "0")]))
        .unwrap();
    let mut first: Vec<Map> = (0..500).map(fatal).collect();
    // Distinct errors in the same burst: never merged with the FATALs or each other.
    first.push(record! {"level" => "ERROR", "service" => "payments", "message" => "disk full on /var/lib/db"});
    first.push(record! {"level" => "ERROR", "service" => "payments", "message" => "connection refused by ledger"});
    w.write(&chunk("alert.payments", &first)).await.unwrap();
    let second: Vec<Map> = (500..1000).map(fatal).collect();
    w.write(&chunk("alert.payments", &second)).await.unwrap();

    let got = fake.received().await;
    assert_eq!(got.len(), 3, "one FATAL + two distinct errors, got {got:#?}");
    let texts: Vec<String> = got.iter().map(all_text).collect();
    assert!(texts[0].contains("FATAL · payments") && texts[0].contains("charge failed for order 100000"));
    assert!(texts[1].contains("disk full on /var/lib/db"));
    assert!(texts[2].contains("connection refused by ledger"));

    // When the window closes: one summary for the 999 repeats.
    let got = fake.wait_received(4, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 4, "{got:#?}");
    let summary = all_text(&got[3]);
    assert!(summary.contains("×999 more in the last 3 s"), "{summary}");
    assert!(summary.contains("FATAL · payments"), "{summary}");
    // Nothing else arrives (the distinct errors had no repeats).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.received().await.len(), 4);

    let m = w.metrics();
    assert_eq!(m.sent.get(), 4);
    assert_eq!(m.suppressed.get(), 999);
    assert_eq!(m.summaries.get(), 1);
    assert_eq!(m.failed.get(), 0);

    // After the window, the same error is news again.
    w.write(&chunk("alert.payments", &[fatal(5000)])).await.unwrap();
    assert_eq!(fake.received().await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingerprint_keys_decide_what_is_the_same() {
    let fake = FakeSlack::start();
    let w = build_writer(&conf(&[
        ("webhook_url", &fake.webhook_url()),
        ("fingerprint_keys", "service,error_code"),
        ("dedup_window", "1h"),
        ("min_interval", "0"),
    ]))
    .unwrap();
    let recs = vec![
        record! {"service" => "a", "error_code" => "E1", "message" => "totally different text 1"},
        record! {"service" => "a", "error_code" => "E1", "message" => "another text"},
        record! {"service" => "a", "error_code" => "E2", "message" => "another text"},
        record! {"service" => "b", "error_code" => "E1", "message" => "another text"},
    ];
    w.write(&chunk("alert.x", &recs)).await.unwrap();
    assert_eq!(fake.received().await.len(), 3);
    assert_eq!(w.metrics().suppressed.get(), 1);
    // Shutdown closes open windows: the repeat is summed up, not lost.
    w.close().await;
    let got = fake.received().await;
    assert_eq!(got.len(), 4);
    assert!(all_text(&got[3]).contains("×1 more in the last 1 h"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_replaces_the_rest_with_one_digest_within_50_blocks() {
    let fake = FakeSlack::start();
    let w = build_writer(&conf(&[
        ("webhook_url", &fake.webhook_url()),
        ("channel", "#alerts"),
        ("rate_limit_per_minute", "3"),
        ("min_interval", "0"),
    ]))
    .unwrap();
    // 80 distinct alerts (different words, so the fingerprints differ), 2 of them twice.
    let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"];
    let mut recs: Vec<Map> = Vec::new();
    for a in words {
        for b in ["red", "green", "blue", "cyan", "pink", "gold", "gray", "teal"] {
            recs.push(record! {"level" => "ERROR", "message" => format!("{a} {b} subsystem failed")});
        }
    }
    w.write(&chunk("alert.many", &recs)).await.unwrap();
    let got = fake.received().await;
    assert_eq!(got.len(), 3, "2 alerts + 1 digest");
    let digest = &got[2];
    let blocks = digest["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 50);
    let text = all_text(digest);
    assert!(text.contains("78 alerts held back by the rate limit"), "{text}");
    assert!(text.contains("and 30 more alerts of 30 other kinds"), "{text}");
    assert_eq!(digest["channel"], "#alerts");
    let m = w.metrics();
    assert_eq!(m.digested.get(), 78);
    assert_eq!(m.sent.get(), 3);
    // The bucket is empty now: the next flush waits for a token instead of flooding (20 s per token at
    // 3/min would be slow, so only check that nothing more went out immediately).
    assert_eq!(fake.received().await.len(), 3);
}
