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
