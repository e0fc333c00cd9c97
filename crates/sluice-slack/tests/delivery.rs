//! Delivery: 429 with Retry-After waited out, 5xx and timeouts handed to the engine's retry without
//! resending what already went out, chat.postMessage with a token, refusals.
mod common;
use common::*;
use serde_json::json;
use sluice_core::buffer::{ChunkWriter, WriteError};
use sluice_core::record;
use sluice_slack::build_writer;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_of_a_429_is_waited_out() {
    let fake = FakeSlack::start();
    let w = build_writer(&conf(&[("webhook_url", &fake.webhook_url()), ("min_interval", "0")])).unwrap();
    fake.script(json!([{"status": 429, "retry_after": 2}])).await;
    w.write(&chunk("alert.a", &[record! {"message" => "boom"}])).await.unwrap();
    let st = fake.state().await;
    let reqs = st["requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 2, "one 429, then the message");
    let waited = reqs[1]["t"].as_f64().unwrap() - reqs[0]["t"].as_f64().unwrap();
    assert!(waited >= 1.9, "Retry-After 2 not honoured: resent after {waited}s");
    assert_eq!(fake.received().await.len(), 1);
    assert_eq!(w.metrics().failed.get(), 1);
    assert_eq!(w.metrics().sent.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_429_goes_back_to_the_engine_with_retry_after() {
    let fake = FakeSlack::start();
    let w = build_writer(&conf(&[("webhook_url", &fake.webhook_url()), ("min_interval", "0"), ("max_429_waits", "1")]))
        .unwrap();
    fake.script(json!([{"status": 429, "retry_after": 1}, {"status": 429, "retry_after": 1}])).await;
    let c = chunk("alert.a", &[record! {"message" => "boom"}]);
    match w.write(&c).await {
        Err(WriteError::Retryable { after, .. }) => assert_eq!(after, Some(Duration::from_secs(1))),
        other => panic!("expected Retryable, got {other:?}"),
    }
    w.write(&c).await.unwrap();
    assert_eq!(fake.received().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_is_retried_without_duplicates() {
    let fake = FakeSlack::start();
    let w = build_writer(&conf(&[("webhook_url", &fake.webhook_url()), ("min_interval", "0")])).unwrap();
    let c = chunk(
        "alert.a",
        &[
            record! {"message" => "first distinct failure"},
            record! {"message" => "second different problem"},
            record! {"message" => "first distinct failure"},
        ],
    );
    // The first message goes through, the second gets a 500.
    fake.script(json!([{}, {"status": 500}])).await;
    let e = w.write(&c).await.unwrap_err();
    assert!(matches!(e, WriteError::Retryable { .. }), "{e:?}");
    assert!(e.to_string().contains("500"), "{e}");
    assert_eq!(fake.received().await.len(), 1);
    // The engine retries the same chunk: only the missing message is sent, the repeat is not recounted.
    w.write(&c).await.unwrap();
    let got = fake.received().await;
    assert_eq!(got.len(), 2);
    assert!(all_text(&got[0]).contains("first distinct failure"));
    assert!(all_text(&got[1]).contains("second different problem"));
    assert_eq!(w.metrics().suppressed.get(), 1);
    assert_eq!(w.metrics().failed.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_and_refused_connection_are_retryable() {
    let fake = FakeSlack::start();
    let w =
        build_writer(&conf(&[("webhook_url", &fake.webhook_url()), ("min_interval", "0"), ("request_timeout", "1s")]))
            .unwrap();
    fake.script(json!([{"hang": 3}])).await;
    let c = chunk("alert.a", &[record! {"message" => "slow"}]);
    let e = w.write(&c).await.unwrap_err();
    assert!(matches!(e, WriteError::Retryable { .. }), "{e:?}");
    assert!(e.to_string().contains("timeout"), "{e}");
    assert!(!e.to_string().contains("s3cr3t"), "{e}");

    // Nobody listening.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let w = build_writer(&conf(&[
        ("webhook_url", &format!("http://127.0.0.1:{dead}{WEBHOOK_PATH}")),
        ("min_interval", "0"),
    ]))
    .unwrap();
    let e = w.write(&c).await.unwrap_err();
    assert!(matches!(e, WriteError::Retryable { .. }), "{e:?}");
    assert!(e.to_string().contains("connection failed"), "{e}");
    assert!(e.to_string().contains("refused"), "{e}");
    assert!(!e.to_string().contains("s3cr3t"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_post_message_with_token() {
    let fake = FakeSlack::start();
    let w = build_writer(&conf(&[
        ("token", TOKEN),
        ("channel", "#ops-critical"),
        ("slack_api_url", &fake.api_url()),
        ("username", "sluice"),
        ("icon_emoji", ":rotating_light:"),
        ("min_interval", "0"),
    ]))
    .unwrap();
    w.write(&chunk("alert.a", &[record! {"level" => "fatal", "message" => "db down"}])).await.unwrap();
    let got = fake.received().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["channel"], "#ops-critical");
    assert_eq!(got[0]["username"], "sluice");
    assert_eq!(got[0]["icon_emoji"], ":rotating_light:");
    assert!(got[0]["text"].as_str().unwrap().starts_with("FATAL · alert.a: db down"));

    // A wrong token: Slack refuses for good, the records are rejected (to <secondary>/@ERROR), no retry.
    let w = build_writer(&conf(&[
        ("token", "xoxb-wrong"),
        ("channel", "#ops-critical"),
        ("slack_api_url", &fake.api_url()),
        ("min_interval", "0"),
    ]))
    .unwrap();
    match w.write(&chunk("alert.a", &[record! {"message" => "x"}, record! {"message" => "y"}])).await {
        Err(WriteError::Partial { retry, rejected, message }) => {
            assert!(retry.is_empty());
            assert_eq!(rejected.len(), 2);
            assert!(rejected[0].1.contains("invalid_auth"), "{rejected:?}");
            assert!(!message.contains("xoxb"), "{message}");
        }
        other => panic!("expected Partial, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_4xx_is_not_retried() {
    let fake = FakeSlack::start();
    let w = build_writer(&conf(&[("webhook_url", &fake.webhook_url()), ("min_interval", "0")])).unwrap();
    fake.script(json!([{"status": 404, "error": "channel_not_found"}])).await;
    match w.write(&chunk("alert.a", &[record! {"message" => "x"}])).await {
        Err(WriteError::Partial { rejected, .. }) => {
            assert_eq!(rejected.len(), 1);
            assert!(rejected[0].1.contains("404 (channel_not_found)"), "{rejected:?}");
        }
        other => panic!("expected Partial, got {other:?}"),
    }
    assert_eq!(w.metrics().failed.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_proxy_carries_the_request_and_never_sees_the_secret_path() {
    // A proxy that records the CONNECT line and then refuses the tunnel, as a corporate proxy that is down would.
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = proxy.local_addr().unwrap().port();
    let seen = std::thread::spawn(move || {
        use std::io::{Read, Write};
        // Give up after 10 s so a client that bypasses the proxy fails the test instead of hanging it.
        proxy.set_nonblocking(true).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut s = loop {
            match proxy.accept() {
                Ok((s, _)) => break s,
                Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => return String::new(),
            }
        };
        s.set_nonblocking(false).unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).unwrap_or(0);
        let _ = s.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
        String::from_utf8_lossy(&buf[..n]).to_string()
    });
    let w = build_writer(&conf(&[
        ("webhook_url", "https://hooks.slack.com/services/T000/B000/s3cr3t"),
        ("https_proxy", &format!("http://127.0.0.1:{port}")),
        ("min_interval", "0"),
        ("request_timeout", "5s"),
    ]))
    .unwrap();
    let c = chunk("alert.a", &[record! {"message" => "via proxy"}]);
    let e = w.write(&c).await.unwrap_err();
    assert!(matches!(e, WriteError::Retryable { .. }), "{e:?}");
    assert!(!e.to_string().contains("s3cr3t"), "{e}");
    let request = seen.join().unwrap();
    // The proxy is asked for a tunnel to Slack's host; the webhook's secret path stays inside TLS.
    assert!(request.starts_with("CONNECT hooks.slack.com:443 "), "{request:?}");
    assert!(!request.contains("s3cr3t"), "{request:?}");
}
