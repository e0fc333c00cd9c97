//! What a message looks like: escaping, truncation at Slack's limits, message_keys/title_keys formatting,
//! fields, color, configuration errors.
mod common;
use common::*;
use serde_json::Value as Json;
use sluice_core::buffer::ChunkWriter;
use sluice_core::record;
use sluice_slack::build_writer;

fn section_texts(body: &Json) -> Vec<String> {
    let blocks = body["blocks"].as_array().or_else(|| body["attachments"][0]["blocks"].as_array()).unwrap();
    blocks
        .iter()
        .filter(|b| b["type"] == "section")
        .filter_map(|b| b["text"]["text"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escaping_truncation_and_fields() {
    let fake = FakeSlack::start();
    let w = build_writer(&conf(&[("webhook_url", &fake.webhook_url()), ("min_interval", "0")])).unwrap();
    let long = format!("<!channel> Tom & Jerry <script> {}", "x".repeat(5000));
    let rec = record! {
        "severity" => "critical",
        "message" => long,
        "kubernetes" => record! {
            "pod_name" => "api-5f<b>", "namespace_name" => "prod", "container_name" => "api", "host" => "node-1"
        },
        "trace_id" => "4bf92f3577b34da6a3ce929d0e0e4736",
    };
    w.write(&chunk("alert.api", &[rec])).await.unwrap();
    let got = fake.received().await;
    assert_eq!(got.len(), 1);
    let body = &got[0];
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    // Header: severity and service (the container name here).
    assert_eq!(blocks[0]["text"]["text"], "CRITICAL · api");
    let text = section_texts(body).remove(0);
    assert!(text.starts_with("&lt;!channel&gt; Tom &amp; Jerry &lt;script&gt; xxx"), "{}", &text[..80]);
    assert!(!text.contains("<!channel>"));
    assert_eq!(text.chars().count(), 3000);
    assert!(text.ends_with(" chars]"), "visible truncation marker");
    assert!(text.contains("… [truncated "));
    // Fields: pod, namespace, container, host, time, trace id; values escaped.
    let fields: Vec<&str> =
        blocks[2]["fields"].as_array().unwrap().iter().map(|f| f["text"].as_str().unwrap()).collect();
    assert_eq!(fields[0], "*pod*\napi-5f&lt;b&gt;");
    assert_eq!(fields[1], "*namespace*\nprod");
    assert_eq!(fields[2], "*container*\napi");
    assert_eq!(fields[3], "*host*\nnode-1");
    assert!(fields[4].starts_with("*time*\n2026-"), "{}", fields[4]);
    assert_eq!(fields[5], "*trace id*\n4bf92f3577b34da6a3ce929d0e0e4736");
    // Fallback text: plain, escaped, short.
    let fb = body["text"].as_str().unwrap();
    assert!(fb.starts_with("CRITICAL · api: &lt;!channel&gt; Tom &amp; Jerry"), "{fb}");
    assert!(fb.chars().count() <= 300);
    assert_eq!(body["link_names"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_keys_title_keys_color_and_multiline() {
    let fake = FakeSlack::start();
    let w = build_writer(&conf(&[
        ("webhook_url", &fake.webhook_url()),
        ("min_interval", "0"),
        ("message", "*%s* on %s: %s (100%%)"),
        ("message_keys", "level,host,msg"),
        ("title", "%s alert in %s"),
        ("title_keys", "level,tag"),
        ("color", "danger"),
        ("verbose_fallback", "true"),
        ("channel", "#ops"),
    ]))
    .unwrap();
    let rec = record! {"level" => "FATAL", "host" => "db-1", "msg" => "a < b\n  at frame1\n  at frame2"};
    w.write(&chunk("alert.db", &[rec, record! {"level" => "ERROR"}])).await.unwrap();
    let got = fake.received().await;
    assert_eq!(got.len(), 2);
    let body = &got[0];
    assert!(body.get("blocks").is_none() && body.get("text").is_none());
    let att = &body["attachments"][0];
    assert_eq!(att["color"], "danger");
    assert_eq!(att["blocks"][0]["text"]["text"], "FATAL alert in alert.db");
    let text = section_texts(body).remove(0);
    assert_eq!(text, "```*FATAL* on db-1: a &lt; b\n  at frame1\n  at frame2 (100%)```");
    assert!(att["fallback"].as_str().unwrap().contains("at frame2"), "verbose_fallback");
    assert_eq!(body["channel"], "#ops");
    // Missing keys render empty, as fluent-plugin-slack does.
    assert_eq!(section_texts(&got[1]).remove(0), "*ERROR* on :  (100%)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_and_time_keys_as_fluent_plugin_slack_injects_them() {
    let fake = FakeSlack::start();
    let w = build_writer(&conf(&[
        ("webhook_url", &fake.webhook_url()),
        ("min_interval", "0"),
        ("message", "%s [%s] %s"),
        ("message_keys", "tag,time,message"),
        ("time_format", "%Y-%m-%d %H:%M:%S"),
        ("utc", "true"),
        ("channel", "%s-alerts"),
        ("channel_keys", "team"),
    ]))
    .unwrap();
    // chunk() stamps the first record with 1_795_000_000 = 2026-11-18T11:06:40Z.
    w.write(&chunk("alert.web", &[record! {"message" => "down", "team" => "web"}])).await.unwrap();
    let got = fake.received().await;
    assert_eq!(section_texts(&got[0]).remove(0), "alert.web [2026-11-18 11:06:40] down");
    assert_eq!(got[0]["channel"], "#web-alerts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_key_in_a_named_timezone_with_ruby_strftime() {
    let fake = FakeSlack::start();
    let w = build_writer(&conf(&[
        ("webhook_url", &fake.webhook_url()),
        ("min_interval", "0"),
        ("message", "%s %s"),
        ("message_keys", "time,message"),
        ("time_format", "%Y-%m-%dT%H:%M:%S.%L%z"),
        ("timezone", "Asia/Seoul"),
    ]))
    .unwrap();
    w.write(&chunk("alert.web", &[record! {"message" => "down"}])).await.unwrap();
    let got = fake.received().await;
    assert_eq!(section_texts(&got[0]).remove(0), "2026-11-18T20:06:40.000+0900 down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_truncated_at_150_and_plain_text_mode() {
    let fake = FakeSlack::start();
    let w = build_writer(&conf(&[
        ("webhook_url", &fake.webhook_url()),
        ("min_interval", "0"),
        ("mrkdwn", "false"),
        ("title", "%s"),
        ("title_keys", "t"),
    ]))
    .unwrap();
    w.write(&chunk("alert.x", &[record! {"t" => "T".repeat(400), "message" => "a & b"}])).await.unwrap();
    let got = fake.received().await;
    let h = got[0]["blocks"][0]["text"]["text"].as_str().unwrap();
    assert_eq!(h.chars().count(), 150);
    assert!(h.ends_with('…'));
    assert_eq!(got[0]["blocks"][1]["text"]["type"], "plain_text");
    assert_eq!(got[0]["mrkdwn"], false);
}

#[test]
fn configuration_errors() {
    let e = build_writer(&conf(&[])).err().unwrap();
    assert!(e.to_string().contains("one of 'webhook_url' or 'token' is required"), "{e}");
    let e = build_writer(&conf(&[("token", "xoxb-1")])).err().unwrap();
    assert!(e.to_string().contains("'channel' is required"), "{e}");
    let e = build_writer(&conf(&[("webhook_url", "https://h/x"), ("message", "%s %s"), ("message_keys", "a")]))
        .err()
        .unwrap();
    assert!(e.to_string().contains("test.conf:"), "{e}");
    assert!(e.to_string().contains("'%s'"), "{e}");
    let e = build_writer(&conf(&[("webhook_url", "not a url /services/T/B/supersecret")])).err().unwrap();
    assert!(!e.to_string().contains("supersecret"), "secret echoed: {e}");
    let e = build_writer(&conf(&[("webhook_url", "https://h/x"), ("parse", "weird")])).err().unwrap();
    assert!(e.to_string().contains("parse"), "{e}");
    let e = build_writer(&conf(&[("webhook_url", "https://h/x"), ("icon_emoji", ":x:"), ("icon_url", "https://i")]))
        .err()
        .unwrap();
    assert!(e.to_string().contains("icon_url"), "{e}");
    let e = build_writer(&conf(&[("webhook_url", "https://h/x"), ("timezone", "Mars/Olympus")])).err().unwrap();
    assert!(e.to_string().contains("timezone") && e.to_string().contains("Mars/Olympus"), "{e}");
    let e = build_writer(&conf(&[("webhook_url", "https://h/x"), ("https_proxy", "::nope::")])).err().unwrap();
    assert!(e.to_string().contains("https_proxy"), "{e}");
    assert!(build_writer(&conf(&[("webhook_url", "https://h/x"), ("https_proxy", "http://127.0.0.1:3128")])).is_ok());
    // fluent-plugin-slack's defaults: message from the `message` key.
    assert!(build_writer(&conf(&[("webhook_url", "https://hooks.slack.com/services/T/B/x")])).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_records_still_make_valid_messages() {
    use sluice_core::event::Value;
    let fake = FakeSlack::start();
    let w = build_writer(&conf(&[("webhook_url", &fake.webhook_url()), ("min_interval", "0"), ("dedup_window", "0")]))
        .unwrap();
    let recs = vec![
        record! {},
        record! {"message" => ""},
        record! {"message" => "   "},
        record! {"message" => 42i64, "level" => Value::Null},
        record! {"message" => record! {"nested" => "map <x>"}, "level" => 3i64},
        record! {"message" => Value::Bytes(vec![0xff, 0xfe, b'a']), "host" => Value::Array(vec![Value::from("a")])},
        record! {"message" => "\u{0}\u{7}control\r\n\ttabs", "service" => "\n\n"},
        record! {"message" => "```already fenced```\nsecond line"},
    ];
    let n = recs.len();
    w.write(&chunk("alert.odd", &recs)).await.unwrap();
    let got = fake.received().await;
    assert_eq!(got.len(), n);
    assert!(section_texts(&got[0]).remove(0).contains("(empty message)"));
    assert!(section_texts(&got[4]).remove(0).contains("&lt;x&gt;"));
}
