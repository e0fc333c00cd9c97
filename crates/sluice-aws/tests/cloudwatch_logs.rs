//! cloudwatch_logs against moto_server: groups and streams, time order, batch limits, auto_create_stream,
//! events CloudWatch rejects, and the engine routing undeliverable events to `@ERROR`.
mod common;

use aws_sdk_cloudwatchlogs::Client;
use common::*;
use sluice_aws::cloudwatch_logs::{self, CloudwatchLogsWriter};
use sluice_core::buffer::{Chunk, ChunkMetadata, ChunkWriter, WriteError};
use sluice_core::event::{parse_json_map, write_entry, Event, EventTime, Map, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SECRET: &str = "cw/SeCrEt+KeyThatMustNeverBeLogged99";

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn at(ms: i64) -> EventTime {
    EventTime { sec: ms.div_euclid(1000), nsec: (ms.rem_euclid(1000) * 1_000_000) as u32 }
}

fn rec(pairs: &[(&str, Value)]) -> Map {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert(*k, v.clone());
    }
    m
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

/// A chunk of (time in ms, record) entries under `tag`.
fn chunk_at(tag: &str, entries: &[(i64, Map)]) -> Chunk {
    let mut data = Vec::new();
    for (ms, r) in entries {
        write_entry(tag, at(*ms), r, &mut data);
    }
    Chunk {
        id: rand::random(),
        metadata: ChunkMetadata { tag: Some(tag.into()), timekey: None, variables: vec![] },
        data: data.into(),
        records: entries.len(),
    }
}

fn conf(endpoint: &str, extra: &str) -> String {
    format!(
        "<match **>\n  @type cloudwatch_logs\n  region us-east-1\n  endpoint {endpoint}\n  aws_key_id AKIDCWTEST\n  aws_sec_key {SECRET}\n{extra}\n</match>\n"
    )
}

fn writer(endpoint: &str, extra: &str) -> Arc<CloudwatchLogsWriter> {
    cloudwatch_logs::writer(&match_conf(&conf(endpoint, extra)), &ctx()).expect("writer")
}

async fn client(endpoint: &str) -> Client {
    Client::new(&sdk_config(endpoint).await)
}

/// Every event of a stream, oldest first: (timestamp, message).
async fn stream_events(c: &Client, group: &str, stream: &str) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let r = c
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("get_log_events");
        if r.events().is_empty() {
            break;
        }
        out.extend(r.events().iter().map(|e| (e.timestamp().unwrap_or(0), e.message().unwrap_or("").to_string())));
        let next = r.next_forward_token().map(str::to_string);
        if next == token {
            break;
        }
        token = next;
    }
    out
}

async fn create(c: &Client, group: &str, stream: &str) {
    if let Err(e) = c.create_log_group().log_group_name(group).send().await {
        assert!(e.as_service_error().is_some_and(|s| s.is_resource_already_exists_exception()), "create group: {e:?}");
    }
    c.create_log_stream().log_group_name(group).log_stream_name(stream).send().await.expect("create stream");
}

fn json(msg: &str) -> Map {
    parse_json_map(msg.as_bytes()).expect("message is a JSON object")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_and_streams_from_record_keys_in_time_order_with_auto_create() {
    let _logs = captured_logs();
    let moto = start_moto();
    let c = client(&moto.url()).await;
    let w = writer(
        &moto.url(),
        "  log_group_name_key group\n  log_stream_name_key stream\n  remove_log_group_name_key true\n  remove_log_stream_name_key true\n  auto_create_stream true\n  retention_in_days 7\n  log_rejected_request true",
    );
    let t0 = now_ms() - 60_000;
    // Out of order on purpose; two groups, three streams; one empty field that the message leaves out.
    let mut entries = Vec::new();
    for (i, off) in [5_000i64, 1_000, 3_000, 2_000, 4_000, 0].iter().enumerate() {
        let (g, st) = match i % 3 {
            0 => ("/app/a", "pod-1"),
            1 => ("/app/a", "pod-2"),
            _ => ("/app/b", "pod-1"),
        };
        entries.push((
            t0 + off,
            rec(&[
                ("group", s(g)),
                ("stream", s(st)),
                ("n", Value::Int(i as i64)),
                ("empty", s("")),
                ("msg", s("ünï")),
            ]),
        ));
    }
    w.write(&chunk_at("app.x", &entries)).await.expect("write");
    for (g, st, want) in
        [("/app/a", "pod-1", vec![3, 0]), ("/app/a", "pod-2", vec![1, 4]), ("/app/b", "pod-1", vec![5, 2])]
    {
        let got = stream_events(&c, g, st).await;
        let ns: Vec<i64> = got.iter().map(|(_, m)| json(m).get("n").and_then(Value::as_i64).expect("n")).collect();
        assert_eq!(ns, want, "{g}/{st} in time order");
        for (ts, m) in &got {
            let n = json(m).get("n").and_then(Value::as_i64).expect("n") as usize;
            assert_eq!(*ts, entries[n].0, "timestamp in milliseconds");
            let want = rec(&[("n", Value::Int(n as i64)), ("msg", s("ünï"))]);
            assert_eq!(json(m), want, "group/stream keys removed, empty field left out");
        }
    }
    let groups = c.describe_log_groups().log_group_name_prefix("/app/").send().await.expect("groups");
    let names: Vec<(String, Option<i32>)> = groups
        .log_groups()
        .iter()
        .map(|g| (g.log_group_name().unwrap_or("").to_string(), g.retention_in_days()))
        .collect();
    assert_eq!(names, vec![("/app/a".to_string(), Some(7)), ("/app/b".to_string(), Some(7))]);
    assert_eq!(w.stats.records_delivered.load(Ordering::Relaxed), 6);
    assert_eq!(w.stats.requests.load(Ordering::Relaxed), 3 + 3, "one refused PutLogEvents and one sent per stream");
    // A second write finds the stream there.
    w.write(&chunk_at("app.x", &entries[..1])).await.expect("write again");
    assert_eq!(stream_events(&c, "/app/a", "pod-1").await.len(), 3);
    assert!(!logs_text().contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_split_at_count_size_and_24_hours_and_oversize_rejected() {
    let moto = start_moto();
    let c = client(&moto.url()).await;
    create(&c, "g", "s").await;
    let w =
        writer(&moto.url(), "  log_group_name g\n  log_stream_name s\n  max_events_per_batch 4\n  message_keys msg");
    let t0 = now_ms() - 3_600_000;
    let small: Vec<(i64, Map)> = (0..10).map(|i| (t0 + i, rec(&[("msg", s(&format!("line {i}")))]))).collect();
    w.write(&chunk_at("t", &small)).await.expect("write");
    assert_eq!(w.stats.requests.load(Ordering::Relaxed), 3, "10 events in batches of at most 4");
    let got = stream_events(&c, "g", "s").await;
    assert_eq!(
        got.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>(),
        (0..10).map(|i| format!("line {i}")).collect::<Vec<_>>()
    );

    // 1 MiB per request: events of 250,000 bytes go four to a request. One of 300,000 bytes is refused.
    create(&c, "g", "big").await;
    let w = writer(&moto.url(), "  log_group_name g\n  log_stream_name big\n  message_keys msg");
    let mut big: Vec<(i64, Map)> = (0..6).map(|i| (t0 + i, rec(&[("msg", s(&"x".repeat(250_000)))]))).collect();
    big.insert(2, (t0, rec(&[("msg", s(&"y".repeat(300_000)))])));
    match w.write(&chunk_at("t", &big)).await {
        Err(WriteError::Partial { retry, rejected, .. }) => {
            assert!(retry.is_empty());
            assert_eq!(rejected.len(), 1);
            assert_eq!(rejected[0].0, 2, "the oversize entry");
            assert!(rejected[0].1.contains("300026 bytes"), "{}", rejected[0].1);
        }
        other => panic!("expected the oversize event rejected, got {other:?}"),
    }
    assert_eq!(w.stats.requests.load(Ordering::Relaxed), 2, "6 x 250,000 bytes in two requests");
    assert_eq!(w.stats.records_oversize.load(Ordering::Relaxed), 1);
    let got = stream_events(&c, "g", "big").await;
    assert_eq!(got.len(), 6);
    assert!(got.iter().all(|(_, m)| m.len() == 250_000));

    // A batch spans less than 24 hours: three days of events, one a day, go in three requests.
    create(&c, "g", "days").await;
    let w = writer(&moto.url(), "  log_group_name g\n  log_stream_name days\n  message_keys msg");
    let day = 86_400_000;
    let spread: Vec<(i64, Map)> =
        [3, 1, 2].iter().map(|d| (now_ms() - d * day, rec(&[("msg", s(&format!("{d} days ago")))]))).collect();
    w.write(&chunk_at("t", &spread)).await.expect("write");
    assert_eq!(w.stats.requests.load(Ordering::Relaxed), 3);
    let got = stream_events(&c, "g", "days").await;
    assert_eq!(got.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>(), vec!["3 days ago", "2 days ago", "1 days ago"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_old_and_too_new_events_are_rejected_not_dropped() {
    let moto = start_moto();
    let c = client(&moto.url()).await;
    create(&c, "g", "s").await;
    let w =
        writer(&moto.url(), "  log_group_name g\n  log_stream_name s\n  message_keys msg\n  log_rejected_request true");
    let now = now_ms();
    let day = 86_400_000;
    // moto reports the last too-new index rather than the first, so one too-new event keeps this test exact.
    let entries = vec![
        (now - 20 * day, rec(&[("msg", s("old-1"))])),
        (now - 60_000, rec(&[("msg", s("ok-1"))])),
        (now + 3 * 3_600_000, rec(&[("msg", s("future"))])),
        (now - 20 * day + 5, rec(&[("msg", s("old-2"))])),
        (now - 30_000, rec(&[("msg", s("ok-2"))])),
    ];
    match w.write(&chunk_at("t", &entries)).await {
        Err(WriteError::Partial { retry, mut rejected, .. }) => {
            assert!(retry.is_empty());
            rejected.sort();
            let idx: Vec<usize> = rejected.iter().map(|(i, _)| *i).collect();
            assert_eq!(idx, vec![0, 2, 3]);
            assert!(rejected[0].1.contains("too old"), "{}", rejected[0].1);
            assert!(rejected[1].1.contains("too new"), "{}", rejected[1].1);
        }
        other => panic!("expected a partial failure, got {other:?}"),
    }
    assert_eq!(w.rejected.too_old.load(Ordering::Relaxed), 2);
    assert_eq!(w.rejected.too_new.load(Ordering::Relaxed), 1);
    assert_eq!(w.stats.records_delivered.load(Ordering::Relaxed), 2);
    let got = stream_events(&c, "g", "s").await;
    assert_eq!(got.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>(), vec!["ok-1", "ok-2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_group_without_auto_create_and_bad_records_are_rejected() {
    let moto = start_moto();
    let c = client(&moto.url()).await;
    create(&c, "there", "app.one").await;
    // use_tag_as_stream; the group from a record key (kept in the message).
    let w = writer(
        &moto.url(),
        "  log_group_name_key g\n  use_tag_as_stream true\n  message_keys a,b\n  max_message_length 5",
    );
    let t = now_ms() - 1000;
    let entries = vec![
        (t, rec(&[("g", s("there")), ("a", s("héllo")), ("b", s("wörld"))])),
        (t, rec(&[("g", s("missing")), ("a", s("x"))])),
        (t, rec(&[("a", s("no group"))])),
        (t, rec(&[("g", s("there")), ("c", s("no message keys"))])),
        (t + 1, rec(&[("g", s("there")), ("b", Value::Int(42))])),
    ];
    match w.write(&chunk_at("app.one", &entries)).await {
        Err(WriteError::Partial { retry, mut rejected, .. }) => {
            assert!(retry.is_empty());
            rejected.sort();
            assert_eq!(rejected.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![1, 2, 3]);
            assert!(rejected[0].1.contains("does not exist"), "{}", rejected[0].1);
            assert!(rejected[1].1.contains("no log group"), "{}", rejected[1].1);
            assert!(rejected[2].1.contains("empty message"), "{}", rejected[2].1);
        }
        other => panic!("expected a partial failure, got {other:?}"),
    }
    let got = stream_events(&c, "there", "app.one").await;
    // "héllo wörld" cut to 5 characters; 42 alone (the missing key adds nothing).
    assert_eq!(got.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>(), vec!["héllo", "42"]);
    let groups = c.describe_log_groups().send().await.expect("groups");
    assert!(groups.log_groups().iter().all(|g| g.log_group_name() != Some("missing")), "not created");
}

#[test]
fn config_errors_name_the_line() {
    let ctx = ctx();
    let bad = |extra: &str| {
        let text = conf("http://127.0.0.1:1", extra);
        match cloudwatch_logs::writer(&match_conf(&text), &ctx) {
            Ok(_) => panic!("accepted: {extra}"),
            Err(e) => e.to_string(),
        }
    };
    assert!(bad("  log_group_name g\n  use_tag_as_group true\n  log_stream_name s")
        .contains("Set only one of log_group_name"));
    assert!(bad("  log_group_name g").contains("log_stream_name"));
    assert!(bad("  log_group_name g\n  log_stream_name s\n  retention_in_days 8").contains("retention_in_days"));
    assert!(bad("  log_group_name g\n  log_stream_name s\n  max_events_per_batch 10001").contains("10000"));
    let e = bad("  log_group_name g\n  log_stream_name s\n  http_proxy http://proxy:3128");
    assert!(e.contains("http_proxy") && e.contains("test.conf:"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_routes_rejected_events_to_error_label_and_delivers_the_rest() {
    let moto = start_moto();
    let c = client(&moto.url()).await;
    let out_conf = match_conf(&conf(
        &moto.url(),
        "  log_group_name /eng/${tag}\n  log_stream_name ${tag[1]}\n  auto_create_stream true\n  <buffer tag>\n    flush_interval 0.2s\n  </buffer>",
    ));
    let ctx = ctx();
    let out = ctx.registry.build_output(&out_conf, &ctx).expect("output");
    out.start().await.expect("start");
    let now = now_ms();
    let mut events = Vec::new();
    for i in 0..20 {
        let ms = if i == 7 { now - 30 * 86_400_000 } else { now - 1000 + i };
        events.push(Event::new(at(ms), rec(&[("id", Value::Int(i))])));
    }
    out.emit("k8s.kubelet", events).expect("emit");
    let deadline = Instant::now() + Duration::from_secs(20);
    let m = out.metrics().expect("metrics");
    loop {
        let disposed = m.records_to_error_label.get() + m.records_to_secondary.get();
        if (disposed >= 1 && m.records_written.get() >= 19) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(m.records_to_error_label.get() + m.records_to_secondary.get(), 1, "the 30-day-old event");
    let got = stream_events(&c, "/eng/k8s.kubelet", "kubelet").await;
    let ids: Vec<i64> = got.iter().map(|(_, m)| json(m).get("id").and_then(Value::as_i64).expect("id")).collect();
    assert_eq!(ids, (0..20).filter(|i| *i != 7).collect::<Vec<_>>());
    out.shutdown().await;
}
