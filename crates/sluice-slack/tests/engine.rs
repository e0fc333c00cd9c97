//! `@type slack` through the registry and the buffered engine: flushes in fluent-plugin-slack's rhythm
//! (1 s) and the engine retries a 500.
mod common;
use common::*;
use serde_json::json;
use sluice_core::config::parse_str;
use sluice_core::event::{Event, EventTime};
use sluice_core::plugin::{BuildCtx, EofTracker, Registry, Shutdown, SystemConfig};
use sluice_core::record;
use sluice_core::router::RouterHandle;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_flushes_and_retries_500() {
    let fake = FakeSlack::start();
    let text = format!(
        r#"
<match alert.**>
  @type slack
  webhook_url {url}
  channel critical
  username sluice
  message_keys message
  dedup_window 5m
  min_interval 0
  <buffer>
    retry_wait 0.3s
  </buffer>
</match>
"#,
        url = fake.webhook_url()
    );
    let root = parse_str(&text, Path::new("test.conf")).unwrap();
    let conf = root.children.first().expect("<match>").clone();
    let mut reg = Registry::new();
    sluice_slack::register(&mut reg);
    let reg = Arc::new(reg);
    let ctx = BuildCtx::new(reg.clone());
    let out = reg.build_output(&conf, &ctx).unwrap();
    let unused: Vec<String> = conf.unused_attrs().iter().map(|(_, a)| a.key.clone()).collect();
    assert!(unused.is_empty(), "unused parameters: {unused:?}");
    out.start().await.unwrap();
    fake.script(json!([{"status": 500}])).await;
    let t = EventTime::new(1_795_000_000, 0);
    let events = vec![
        Event::new(t, record! {"level" => "FATAL", "message" => "payment 1 failed"}),
        Event::new(t, record! {"level" => "FATAL", "message" => "payment 2 failed"}),
        Event::new(t, record! {"level" => "ERROR", "message" => "cache unavailable"}),
    ];
    out.emit("alert.pay", events).unwrap();
    // Not written at once: the buffer flushes after flush_interval (1 s), the 500 is retried.
    let got = fake.wait_received(2, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(all_text(&got[0]).contains("payment 1 failed"));
    assert_eq!(got[0]["channel"], "#critical", "fluent-plugin-slack adds the '#'");
    assert!(all_text(&got[1]).contains("cache unavailable"));
    let st = fake.state().await;
    assert!(st["requests"].as_array().unwrap().len() >= 3, "the 500 was answered and retried");
    out.shutdown().await;
    // Shutdown sums up the open window (one repeat of the payment failure).
    let got = fake.wait_received(3, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 3);
    assert!(all_text(&got[2]).contains("×1 more in the last 5 min"));
}

/// The `@type slack` sections of docs/plugins/slack.md build (dry run) with every parameter used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_examples_build() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/plugins/slack.md")).unwrap();
    let lines: Vec<&str> = doc.lines().collect();
    let mut found = 0;
    for (i, l) in lines.iter().enumerate() {
        if !(l.trim_start().starts_with("<match") && lines.get(i + 1).is_some_and(|n| n.trim() == "@type slack")) {
            continue;
        }
        let end = (i..lines.len()).find(|&j| lines[j].trim() == "</match>").expect("closing </match>");
        let text = lines[i..=end].join("\n");
        let root = parse_str(&text, Path::new("slack.md")).unwrap();
        let conf = root.children.first().unwrap().clone();
        let mut reg = Registry::new();
        sluice_slack::register(&mut reg);
        let reg = Arc::new(reg);
        let ctx = BuildCtx {
            registry: reg.clone(),
            router: RouterHandle::new(),
            label: Arc::from("@ROOT"),
            system: Arc::new(SystemConfig::default()),
            shutdown: Shutdown::new(),
            eof: EofTracker::default(),
            dry_run: true,
            check_dirs: false,
            metrics: sluice_core::metrics::Hub::new(),
        };
        if let Err(e) = reg.build_output(&conf, &ctx) {
            panic!("{text}\n{e}");
        }
        let unused: Vec<String> = conf.unused_attrs().iter().map(|(_, a)| a.key.clone()).collect();
        assert!(unused.is_empty(), "unused parameters {unused:?} in\n{text}");
        found += 1;
    }
    assert_eq!(found, 2);
}
