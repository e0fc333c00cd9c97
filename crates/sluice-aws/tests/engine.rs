//! The outputs driven by the buffered output engine, as sluice runs them: the endpoint unreachable for
//! 20 seconds, then back; an oversize record disposed of while the rest of the chunk is delivered.
mod common;

use common::*;
use sluice_core::event::{Event, EventTime, Map, Value};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_through_engine_survives_20s_outage_and_disposes_oversize() {
    let moto = start_moto();
    let proxy = start_proxy(&moto.url());
    let c = aws_sdk_kinesis::Client::new(&sdk_config(&moto.url()).await);
    c.create_stream().stream_name("eng").shard_count(2).send().await.expect("stream");
    let conf = match_conf(&format!(
        "<match **>\n  @type kinesis_streams\n  stream_name eng\n  region us-east-1\n  endpoint {}\n  aws_key_id AKIDTEST\n  aws_sec_key SECRETTEST\n  max_record_size 2k\n  http_max_attempts 1\n  http_connect_timeout 2s\n  <buffer>\n    flush_interval 0.3s\n    retry_wait 1s\n    retry_max_interval 3s\n    retry_forever true\n  </buffer>\n</match>\n",
        proxy.url()
    ));
    let ctx = ctx();
    let out = ctx.registry.build_output(&conf, &ctx).expect("output");
    out.start().await.expect("start");
    fault(&proxy, r#"{"mode":"reset","seconds":20}"#);
    let started = Instant::now();
    let mut events = Vec::new();
    for i in 0..20 {
        let mut m = Map::new();
        m.insert("id", Value::Int(i));
        if i == 5 {
            m.insert("blob", Value::Str("z".repeat(5000).into()));
        }
        events.push(Event::new(EventTime { sec: 1_764_050_400, nsec: 0 }, m));
    }
    out.emit("app.engine", events).expect("emit");
    let deadline = Instant::now() + Duration::from_secs(45);
    let got = loop {
        let got = stream_data(&c, "eng").await;
        if got.len() >= 19 || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(started.elapsed() >= Duration::from_secs(19), "delivered during the outage?");
    assert_eq!(got.len(), 19, "19 records once each (the oversize one disposed)");
    let mut ids: Vec<i64> = got
        .iter()
        .map(|d| {
            let m = sluice_core::event::parse_json_map(String::from_utf8_lossy(d).trim().as_bytes()).expect("json");
            m.get("id").and_then(Value::as_i64).expect("id")
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..20).filter(|i| *i != 5).collect::<Vec<_>>());
    assert!(proxy_stats(&proxy)["resets"].as_u64().unwrap_or(0) >= 2, "the engine retried");
    let m = out.metrics().expect("metrics");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // no @ERROR label in this test: the engine counts the record as sent there (and dropped)
    let disposed = m.records_to_error_label.get() + m.records_to_secondary.get();
    assert_eq!(disposed, 1, "the oversize record went to @ERROR/secondary");
    assert!(m.retries.get() >= 2);
    out.shutdown().await;
}

/// Records buffered as their JSON text come back as records where the destination refuses them: the
/// oversize one reaches `<secondary>` with its fields and time, the rest reach the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_record_reaches_secondary_as_the_record_it_was() {
    let moto = start_moto();
    let c = aws_sdk_kinesis::Client::new(&sdk_config(&moto.url()).await);
    c.create_stream().stream_name("sec").shard_count(1).send().await.expect("stream");
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = match_conf(&format!(
        "<match **>\n  @type kinesis_streams\n  stream_name sec\n  region us-east-1\n  endpoint {}\n  aws_key_id AKIDTEST\n  aws_sec_key SECRETTEST\n  max_record_size 1k\n  <buffer>\n    flush_interval 0.2s\n  </buffer>\n  <secondary>\n    @type secondary_file\n    directory {}\n    basename refused\n    append true\n  </secondary>\n</match>\n",
        moto.url(),
        dir.path().display()
    ));
    let ctx = ctx();
    let out = ctx.registry.build_output(&conf, &ctx).expect("output");
    out.start().await.expect("start");
    let t = EventTime { sec: 1_764_050_400, nsec: 250_000_000 };
    let big = "é".repeat(800);
    let mut events = Vec::new();
    for i in 0..3 {
        let mut m = Map::new();
        m.insert("id", Value::Int(i));
        m.insert("f", Value::Float(0.5));
        if i == 1 {
            let mut nested = Map::new();
            nested.insert("text", Value::Str(big.as_str().into()));
            m.insert("nested", Value::Map(nested));
        }
        events.push(Event::new(t, m));
    }
    out.emit("app.sec", events).expect("emit");
    let dump = dir.path().join("refused");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dump.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bytes = std::fs::read(&dump).expect("the refused record was dumped");
    // One msgpack [time, record].
    let (v, used) = sluice_core::event::read_value(&bytes).expect("msgpack");
    assert_eq!(used, bytes.len(), "exactly one record dumped");
    let Value::Array(items) = v else { panic!("not [time, record]: {v:?}") };
    let Some(Value::Map(rec)) = items.get(1) else { panic!("no record: {items:?}") };
    assert_eq!(rec.get("id"), Some(&Value::Int(1)));
    assert_eq!(rec.get("f"), Some(&Value::Float(0.5)));
    let Some(Value::Map(nested)) = rec.get("nested") else { panic!("nested map lost: {rec:?}") };
    assert_eq!(nested.get("text"), Some(&Value::Str(big.as_str().into())));
    let (time, _) = sluice_core::event::read_time(&bytes[1..]).expect("event time");
    assert_eq!(time, t);
    let got = stream_data(&c, "sec").await;
    assert_eq!(got.len(), 2, "the other two records were delivered");
    out.shutdown().await;
}
