//! kinesis_streams and kinesis_firehose against moto_server (and the fault proxy in front of it).
mod common;

use common::*;
use sluice_aws::firehose;
use sluice_aws::kinesis_streams;
use sluice_core::buffer::{ChunkWriter, WriteError};
use sluice_core::event::{parse_json_map, Map, Value};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

const SECRET: &str = "sEcReT/KeY+ThatMustNeverBeLogged42";

fn rec(id: i64, user: &str) -> Map {
    let mut m = Map::new();
    m.insert("id", Value::Int(id));
    m.insert("user", Value::Str(user.into()));
    m.insert("msg", Value::Str(format!("hello {id} ünïcode").into()));
    m
}

async fn kinesis_client(endpoint: &str) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(&sdk_config(endpoint).await)
}

async fn create_stream(c: &aws_sdk_kinesis::Client, name: &str, shards: i32) {
    c.create_stream().stream_name(name).shard_count(shards).send().await.expect("create stream");
}

fn streams_conf(endpoint: &str, stream: &str, extra: &str) -> String {
    format!(
        "<match **>\n  @type kinesis_streams\n  stream_name {stream}\n  region us-east-1\n  endpoint {endpoint}\n  aws_key_id AKIDSLUICETEST\n  aws_sec_key {SECRET}\n  partition_key user\n  batch_request_backoff_base 0.05\n{extra}\n</match>\n"
    )
}

fn decode(data: &[u8]) -> Map {
    let text = std::str::from_utf8(data).expect("utf8");
    parse_json_map(text.trim_end_matches('\n').as_bytes()).expect("json record")
}

fn by_id(records: Vec<(String, Vec<u8>)>) -> BTreeMap<i64, (String, Map)> {
    let mut out = BTreeMap::new();
    for (k, d) in records {
        let m = decode(&d);
        let id = m.get("id").and_then(Value::as_i64).expect("id");
        assert!(out.insert(id, (k, m)).is_none(), "record {id} delivered twice");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_happy_path_several_shards_and_keys() {
    let _logs = captured_logs();
    let moto = start_moto();
    let c = kinesis_client(&moto.url()).await;
    create_stream(&c, "logs", 3).await;
    let users = ["alice", "bob", "carol", "dave", "erin"];
    let mut records: Vec<Map> = (0..40).map(|i| rec(i, users[i as usize % users.len()])).collect();
    // one record without the partition key field: a random key is used
    records[7].remove("user");
    let conf = match_conf(&streams_conf(&moto.url(), "logs", "  batch_request_max_count 16"));
    let w = kinesis_streams::writer(&conf, &ctx()).expect("writer");
    w.write(&chunk("app.access", None, &records)).await.expect("write");
    assert_eq!(w.stats.requests.load(Ordering::Relaxed), 3, "40 records in requests of at most 16");
    let got = by_id(stream_records(&c, "logs").await);
    assert_eq!(got.len(), 40);
    let mut shards_used = std::collections::BTreeSet::new();
    let shards = c.list_shards().stream_name("logs").send().await.expect("shards");
    for s in shards.shards() {
        shards_used.insert(s.shard_id().to_string());
    }
    assert_eq!(shards_used.len(), 3);
    for (i, sent) in records.iter().enumerate() {
        let (key, m) = &got[&(i as i64)];
        assert_eq!(m, sent, "record {i} differs");
        match sent.get("user") {
            Some(Value::Str(u)) => assert_eq!(key, u.as_str()),
            _ => assert_eq!(key.len(), 32, "random partition key"),
        }
    }
    // data is the json formatter's output: one line
    let raw = stream_records(&c, "logs").await;
    assert!(raw.iter().all(|(_, d)| d.ends_with(b"}\n")));
    assert!(!logs_text().contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_data_key_inject_and_zlib() {
    let moto = start_moto();
    let c = kinesis_client(&moto.url()).await;
    create_stream(&c, "s2", 1).await;
    let conf = match_conf(&streams_conf(
        &moto.url(),
        "s2",
        "  compression zlib\n  <inject>\n    tag_key tag\n    time_key time\n    time_type unixtime\n  </inject>",
    ));
    let w = kinesis_streams::writer(&conf, &ctx()).expect("writer");
    w.write(&chunk("app.x", None, &[rec(1, "a")])).await.expect("write");
    let got = stream_records(&c, "s2").await;
    assert_eq!(got.len(), 1);
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&got[0].1[..]), &mut plain).expect("zlib");
    let m = decode(&plain);
    assert_eq!(m.get("tag"), Some(&Value::Str("app.x".into())));
    assert_eq!(m.get("time"), Some(&Value::Int(1_764_050_400)));
    assert_eq!(m.get("id"), Some(&Value::Int(1)));

    create_stream(&c, "s3", 1).await;
    let conf = match_conf(&streams_conf(&moto.url(), "s3", "  data_key msg"));
    let w = kinesis_streams::writer(&conf, &ctx()).expect("writer");
    let mut no_msg = rec(3, "a");
    no_msg.remove("msg");
    match w.write(&chunk("app.x", None, &[rec(2, "a"), no_msg])).await {
        Err(WriteError::Partial { retry, rejected, .. }) => {
            assert!(retry.is_empty());
            assert_eq!(rejected.len(), 1);
            assert_eq!(rejected[0].0, 1);
            assert!(rejected[0].1.contains("data_key"));
        }
        other => panic!("expected a partial failure, got {other:?}"),
    }
    let got = stream_records(&c, "s3").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, "hello 2 ünïcode".as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_partial_failure_resends_only_failed_records() {
    let moto = start_moto();
    let proxy = start_proxy(&moto.url());
    let c = kinesis_client(&moto.url()).await;
    create_stream(&c, "p", 2).await;
    // every 3rd record of the next 3 PutRecords fails
    fault(&proxy, r#"{"mode":"partial","fail_every":3,"times":3,"code":"ProvisionedThroughputExceededException"}"#);
    let records: Vec<Map> = (0..30).map(|i| rec(i, &format!("u{}", i % 4))).collect();
    let conf = match_conf(&streams_conf(&proxy.url(), "p", ""));
    let w = kinesis_streams::writer(&conf, &ctx()).expect("writer");
    w.write(&chunk("app.p", None, &records)).await.expect("write succeeds after retries");
    let st = proxy_stats(&proxy);
    assert!(st["injected_record_failures"].as_u64().unwrap_or(0) >= 10, "{st}");
    assert_eq!(st["forwarded_records"].as_u64(), Some(30), "each record forwarded exactly once: {st}");
    let got = by_id(stream_records(&c, "p").await);
    assert_eq!(got.len(), 30);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(&got[&(i as i64)].1, r);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_records_failing_after_retries_are_rejected_not_dropped() {
    let moto = start_moto();
    let proxy = start_proxy(&moto.url());
    let c = kinesis_client(&moto.url()).await;
    create_stream(&c, "r", 1).await;
    // records whose message mentions "hello 1 " always fail (base64 of the JSON is matched on "hello 1 ")
    fault(&proxy, r#"{"mode":"partial_match","substring":"hello 1 ","code":"InternalFailure"}"#);
    let records: Vec<Map> = (0..4).map(|i| rec(i, "u")).collect();
    let conf = match_conf(&streams_conf(&proxy.url(), "r", "  retries_on_batch_request 2"));
    let w = kinesis_streams::writer(&conf, &ctx()).expect("writer");
    match w.write(&chunk("app.r", None, &records)).await {
        Err(WriteError::Partial { retry, rejected, message }) => {
            assert!(retry.is_empty(), "{message}");
            assert_eq!(rejected.len(), 1);
            assert_eq!(rejected[0].0, 1);
            assert!(rejected[0].1.contains("InternalFailure"));
            assert!(!rejected[0].1.contains("hello"));
        }
        other => panic!("expected a partial failure, got {other:?}"),
    }
    // 1 + 2 retries
    assert_eq!(w.stats.requests.load(Ordering::Relaxed), 3);
    let got = by_id(stream_records(&c, "r").await);
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), vec![0, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_500_429_and_unreachable_are_retried_and_delivered_once() {
    let moto = start_moto();
    let proxy = start_proxy(&moto.url());
    let c = kinesis_client(&moto.url()).await;
    create_stream(&c, "e", 1).await;
    let conf = match_conf(&streams_conf(&proxy.url(), "e", "  http_max_attempts 2\n  http_read_timeout 5s"));
    let w = kinesis_streams::writer(&conf, &ctx()).expect("writer");

    // 500 on more requests than the SDK retries: the chunk comes back retryable, nothing delivered
    fault(&proxy, r#"{"mode":"status","status":500,"times":2,"type":"InternalFailure"}"#);
    let ch = chunk("app.e", None, &[rec(0, "a"), rec(1, "b")]);
    match w.write(&ch).await {
        Err(WriteError::Retryable { message, .. }) => {
            assert!(message.contains("InternalFailure"), "{message}")
        }
        other => panic!("expected retryable, got {other:?}"),
    }
    // the engine retries the chunk later: it arrives once
    w.write(&ch).await.expect("second try");

    // 429 throttling: the SDK's own retry gets through
    fault(&proxy, r#"{"mode":"status","status":400,"times":1,"type":"ProvisionedThroughputExceededException"}"#);
    w.write(&chunk("app.e", None, &[rec(2, "a")])).await.expect("retried by the SDK");
    fault(&proxy, r#"{"mode":"status","status":429,"times":5,"type":"ThrottlingException"}"#);
    let ch3 = chunk("app.e", None, &[rec(3, "a")]);
    assert!(matches!(w.write(&ch3).await, Err(WriteError::Retryable { .. })));
    fault(&proxy, r#"{"mode":"pass"}"#);
    w.write(&ch3).await.expect("after throttling");

    // connections reset for a while, then reachable again: retry like the engine does until it works
    fault(&proxy, r#"{"mode":"reset","seconds":6}"#);
    let ch4 = chunk("app.e", None, &[rec(4, "a"), rec(5, "c")]);
    let start = std::time::Instant::now();
    let mut failures = 0;
    loop {
        match w.write(&ch4).await {
            Ok(()) => break,
            Err(WriteError::Retryable { .. }) => {
                failures += 1;
                assert!(start.elapsed() < Duration::from_secs(40), "never recovered");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(failures >= 1);
    assert!(proxy_stats(&proxy)["resets"].as_u64().unwrap_or(0) >= 1);
    let got = by_id(stream_records(&c, "e").await);
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_oversize_record_rejected_without_content() {
    let _logs = captured_logs();
    let moto = start_moto();
    let c = kinesis_client(&moto.url()).await;
    create_stream(&c, "o", 1).await;
    let conf = match_conf(&streams_conf(&moto.url(), "o", "  max_record_size 1k"));
    let w = kinesis_streams::writer(&conf, &ctx()).expect("writer");
    let mut big = rec(1, "u");
    big.insert("msg", Value::Str(format!("PERSONAL-DATA-{}", "x".repeat(2000)).into()));
    let records = vec![rec(0, "u"), big, rec(2, "u")];
    match w.write(&chunk("app.big", None, &records)).await {
        Err(WriteError::Partial { retry, rejected, .. }) => {
            assert!(retry.is_empty());
            assert_eq!(rejected.len(), 1);
            let (idx, why) = &rejected[0];
            assert_eq!(*idx, 1);
            assert!(why.contains("app.big") && why.contains("max_record_size"), "{why}");
            assert!(!why.contains("PERSONAL-DATA"));
        }
        other => panic!("expected a partial failure, got {other:?}"),
    }
    assert_eq!(w.stats.records_oversize.load(Ordering::Relaxed), 1);
    let got = by_id(stream_records(&c, "o").await);
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), vec![0, 2]);
    let logs = logs_text();
    assert!(logs.contains("max_record_size"), "the rejection is logged");
    assert!(!logs.contains("PERSONAL-DATA"), "record content must never be logged");
    assert!(!logs.contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firehose_delivers_to_s3_exactly_and_retries_partial_failures() {
    let moto = start_moto();
    let proxy = start_proxy(&moto.url());
    let cfg = sdk_config(&moto.url()).await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&cfg).force_path_style(true).build());
    s3.create_bucket().bucket("fh-dest").send().await.expect("bucket");
    let fh = aws_sdk_firehose::Client::new(&cfg);
    fh.create_delivery_stream()
        .delivery_stream_name("fh")
        .extended_s3_destination_configuration(
            aws_sdk_firehose::types::ExtendedS3DestinationConfiguration::builder()
                .bucket_arn("arn:aws:s3:::fh-dest")
                .role_arn("arn:aws:iam::123456789012:role/firehose")
                .build()
                .expect("dest"),
        )
        .send()
        .await
        .expect("delivery stream");
    fault(&proxy, r#"{"mode":"partial","fail_every":2,"times":2,"code":"ServiceUnavailableException"}"#);
    let conf = match_conf(&format!(
        "<match **>\n  @type kinesis_firehose\n  delivery_stream_name fh\n  region us-east-1\n  aws_key_id AKIDSLUICETEST\n  aws_sec_key {SECRET}\n  endpoint {}\n  batch_request_backoff_base 0.05\n  <format>\n    @type json\n  </format>\n</match>\n",
        proxy.url()
    ));
    let w = firehose::writer(&conf, &ctx()).expect("writer");
    let records: Vec<Map> = (0..25).map(|i| rec(i, "u")).collect();
    w.write(&chunk("app.fh", None, &records)).await.expect("write");
    assert_eq!(proxy_stats(&proxy)["forwarded_records"].as_u64(), Some(25));
    // moto writes one object per PutRecordBatch: the records' bytes concatenated
    let list = s3.list_objects_v2().bucket("fh-dest").send().await.expect("list");
    let mut lines = Vec::new();
    for o in list.contents() {
        let obj = s3.get_object().bucket("fh-dest").key(o.key().unwrap_or_default()).send().await.expect("get");
        let body = obj.body.collect().await.expect("body").into_bytes();
        let text = String::from_utf8(body.to_vec()).expect("utf8");
        assert!(text.ends_with('\n'));
        lines.extend(text.lines().map(str::to_string));
    }
    let got = by_id(lines.into_iter().map(|l| (String::new(), l.into_bytes())).collect());
    assert_eq!(got.len(), 25);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(&got[&(i as i64)].1, r);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_errors_and_no_secrets_in_debug() {
    let c = ctx();
    let e = kinesis_streams::writer(&match_conf("<match **>\n  @type kinesis_streams\n</match>\n"), &c)
        .err()
        .expect("stream_name is required");
    assert!(e.to_string().contains("stream_name"), "{e}");
    let e = kinesis_streams::writer(
        &match_conf("<match **>\n  @type kinesis_streams\n  stream_name x\n  batch_request_max_count 501\n</match>\n"),
        &c,
    )
    .err()
    .expect("501 is over the limit");
    assert!(e.to_string().contains("batch_request_max_count"), "{e}");
    let e = kinesis_streams::writer(
        &match_conf("<match **>\n  @type kinesis_streams\n  stream_name x\n  aws_key_id AKID\n</match>\n"),
        &c,
    )
    .err()
    .expect("key without secret");
    assert!(!e.to_string().contains("AKID"));
    let conf = match_conf(&streams_conf("http://127.0.0.1:9", "x", ""));
    let p = sluice_aws::client::AwsParams::from_conf(&conf, "region", "endpoint").expect("params");
    assert!(!format!("{p:?}").contains(SECRET));
    // the whole output builds through the registry (engine included) in dry-run mode
    let mut dry = ctx();
    dry.dry_run = true;
    c.registry.build_output(&match_conf(&streams_conf("http://127.0.0.1:9", "x", "")), &dry).expect("builds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assume_role_credentials_are_used() {
    let moto = start_moto();
    let c = kinesis_client(&moto.url()).await;
    create_stream(&c, "ar", 1).await;
    let conf = match_conf(&streams_conf(
        &moto.url(),
        "ar",
        &format!("  <assume_role_credentials>\n    role_arn arn:aws:iam::123456789012:role/sluice\n    role_session_name sluice-test\n    duration_seconds 900\n    sts_endpoint_url {}\n  </assume_role_credentials>", moto.url()),
    ));
    let w = kinesis_streams::writer(&conf, &ctx()).expect("writer");
    w.write(&chunk("app.ar", None, &[rec(1, "a")])).await.expect("write with an assumed role");
    assert_eq!(stream_records(&c, "ar").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_timeout_is_retryable() {
    let moto = start_moto();
    let proxy = start_proxy(&moto.url());
    let c = kinesis_client(&moto.url()).await;
    create_stream(&c, "to", 1).await;
    let conf = match_conf(&streams_conf(&proxy.url(), "to", "  http_read_timeout 1s\n  http_max_attempts 1"));
    let w = kinesis_streams::writer(&conf, &ctx()).expect("writer");
    fault(&proxy, r#"{"mode":"hang","seconds":3,"times":1}"#);
    let ch = chunk("app.to", None, &[rec(0, "a")]);
    match w.write(&ch).await {
        Err(WriteError::Retryable { message, .. }) => {
            assert!(message.contains("timed out"), "{message}")
        }
        other => panic!("expected a retryable timeout, got {other:?}"),
    }
    w.write(&ch).await.expect("next try");
    assert_eq!(proxy_stats(&proxy)["hangs"].as_u64(), Some(1));
    assert_eq!(stream_records(&c, "to").await.len(), 1);
}
