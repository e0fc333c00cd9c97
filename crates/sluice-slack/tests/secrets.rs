//! The webhook URL and the token are secrets: absent from every log line (at TRACE, all crates
//! included) and from every error, whatever happens to the request.
mod common;
use common::*;
use serde_json::json;
use sluice_core::buffer::ChunkWriter;
use sluice_core::record;
use sluice_slack::build_writer;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_in_logs_or_errors() {
    let cap = Capture::default();
    let writer = cap.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let fake = FakeSlack::start();
    let mut errors: Vec<String> = Vec::new();
    let w = build_writer(&conf(&[
        ("webhook_url", &fake.webhook_url()),
        ("min_interval", "0"),
        ("request_timeout", "1s"),
        ("max_429_waits", "1"),
        ("dedup_window", "0"),
    ]))
    .unwrap();
    let c = chunk("alert.s", &[record! {"message" => "boom"}]);
    // Success, 429 twice (handed back), 500, 400, a timeout.
    w.write(&c).await.unwrap();
    fake.script(json!([{"status": 429, "retry_after": 0}, {"status": 429, "retry_after": 0}, {"status": 500},
        {"status": 400, "error": "invalid_payload"}, {"hang": 2}]))
        .await;
    for _ in 0..4 {
        if let Err(e) = w.write(&c).await {
            errors.push(format!("{e} {e:?}"));
        }
    }
    assert!(errors.len() >= 3, "{errors:?}");
    // Refused connection.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let w2 = build_writer(&conf(&[("webhook_url", &format!("http://127.0.0.1:{dead}{WEBHOOK_PATH}"))])).unwrap();
    if let Err(e) = w2.write(&c).await {
        errors.push(format!("{e} {e:?}"));
    }
    // Token mode: success and a refusal.
    let w3 = build_writer(&conf(&[
        ("token", TOKEN),
        ("channel", "#c"),
        ("slack_api_url", &fake.api_url()),
        ("min_interval", "0"),
    ]))
    .unwrap();
    w3.write(&c).await.unwrap();
    fake.script(json!([{"status": 500}])).await;
    if let Err(e) = w3.write(&chunk("alert.s", &[record! {"message" => "other"}])).await {
        errors.push(format!("{e} {e:?}"));
    }
    // Debug output of the configuration.
    let cfg = sluice_slack::SlackConfig::from_element(&conf(&[("webhook_url", &fake.webhook_url())])).unwrap();
    errors.push(format!("{cfg:?}"));

    let logs = String::from_utf8_lossy(&cap.0.lock().unwrap()).to_string();
    if std::env::var_os("SLACK_TEST_SHOW_LOGS").is_some() {
        eprintln!("{logs}");
    }
    assert!(logs.contains("slack:"), "the scenario should have logged something: {logs}");
    for needle in ["s3cr3tW3bh00kT0k3nXYZ", "B0SLUICE", TOKEN] {
        for line in logs.lines() {
            assert!(!line.contains(needle), "secret in log line: {line}");
        }
        for e in &errors {
            assert!(!e.contains(needle), "secret in error: {e}");
        }
    }
}

/// `--dry-run` goes through `engine::assemble(.., dry_run = true)`: its diagnostics (errors and
/// unused-parameter warnings) must not show the secrets, even when the configuration is wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_diagnostics_redact_secrets() {
    use sluice_core::config::parse_str;
    use sluice_core::plugin::Registry;
    use std::path::Path;
    let secret_url = format!("https://hooks.slack.com{WEBHOOK_PATH}");
    for body in [
        format!("webhook_url {secret_url}\n  dedup_window soon\n"),
        format!("webhook_url {secret_url}\n  token {TOKEN}\n"),
        format!("webhook_url notaurl{WEBHOOK_PATH}\n"),
        format!("token {TOKEN}\n  slack_api_url ftp://x{WEBHOOK_PATH}\n  channel #c\n"),
        format!("webhook_url {secret_url}\n  webhok_url {secret_url}\n  message %s %s\n  message_keys a\n"),
        format!("webhook_url {secret_url}\n  unknown_param 1\n"),
    ] {
        let text = format!("<match alert.**>\n  @type slack\n  {body}</match>\n");
        let root = parse_str(&text, Path::new("test.conf")).unwrap();
        let mut reg = Registry::new();
        sluice_slack::register(&mut reg);
        let a = sluice_core::engine::assemble(&root, std::sync::Arc::new(reg), true);
        let all: Vec<String> =
            a.diagnostics.errors.iter().chain(a.diagnostics.warnings.iter()).map(|e| format!("{e} {e:?}")).collect();
        assert!(!all.is_empty() || body.contains("unknown_param"), "{body}: expected a diagnostic");
        for d in &all {
            for needle in ["s3cr3tW3bh00kT0k3nXYZ", TOKEN] {
                assert!(!d.contains(needle), "secret in diagnostic: {d}");
            }
        }
    }
}
