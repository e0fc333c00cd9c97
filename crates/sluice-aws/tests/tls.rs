//! `ssl_verify_peer`: an HTTPS endpoint with a self-signed certificate (the fault proxy with TLS in front of
//! moto) is refused while certificates are verified, and used when `ssl_verify_peer false` (Kinesis and S3).
mod common;

use common::*;
use sluice_aws::kinesis_streams;
use sluice_core::buffer::{ChunkWriter, WriteError};

fn conf(endpoint: &str, extra: &str) -> sluice_core::config::Element {
    match_conf(&format!(
        "<match **>\n  @type kinesis_streams\n  stream_name tls\n  region us-east-1\n  endpoint {endpoint}\n  aws_key_id AKIDTLSTEST\n  aws_sec_key tls-test-secret\n  http_max_attempts 1\n  http_connect_timeout 5s\n{extra}\n</match>\n"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_verify_peer_false_accepts_a_self_signed_certificate() {
    let _logs = captured_logs();
    let moto = start_moto();
    let dir = tempfile::tempdir().expect("tempdir");
    let proxy = start_tls_proxy(&moto.url(), dir.path());
    let https = format!("https://127.0.0.1:{}", proxy.port);
    let c = aws_sdk_kinesis::Client::new(&sdk_config(&moto.url()).await);
    c.create_stream().stream_name("tls").shard_count(1).send().await.expect("create stream");

    // Verified by default: the self-signed certificate is refused, and the chunk is retryable.
    let w = kinesis_streams::writer(&conf(&https, ""), &ctx()).expect("writer");
    match w.write(&chunk("app.tls", None, &id_records(0..2))).await {
        Err(WriteError::Retryable { message, .. }) => {
            assert!(message.to_lowercase().contains("certificate"), "{message}")
        }
        other => panic!("expected a certificate error, got {other:?}"),
    }
    let w = kinesis_streams::writer(&conf(&https, "  ssl_verify_peer true"), &ctx()).expect("writer");
    assert!(w.write(&chunk("app.tls", None, &id_records(0..2))).await.is_err(), "ssl_verify_peer true verifies");
    assert!(stream_data(&c, "tls").await.is_empty());

    let w = kinesis_streams::writer(&conf(&https, "  ssl_verify_peer false"), &ctx()).expect("writer");
    assert!(logs_text().contains("certificates of the AWS endpoints (and STS) are NOT verified"), "warned at start");
    w.write(&chunk("app.tls", None, &id_records(0..3))).await.expect("write over unverified TLS");
    assert_eq!(ids_of(&stream_data(&c, "tls").await), vec![0, 1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_with_ssl_verify_peer_false_writes_through_a_self_signed_endpoint() {
    let moto = start_moto();
    let dir = tempfile::tempdir().expect("tempdir");
    let proxy = start_tls_proxy(&moto.url(), dir.path());
    let conf = |verify: &str| {
        match_conf(&format!(
            "<match **>\n  @type s3\n  s3_bucket tls-logs\n  s3_region us-east-1\n  s3_endpoint https://127.0.0.1:{}\n  aws_key_id AKIDTLSTEST\n  aws_sec_key tls-test-secret\n  http_max_attempts 1\n  store_as json\n  <format>\n    @type json\n  </format>\n{verify}\n</match>\n",
            proxy.port
        ))
    };
    let ch = chunk("app.tls", Some(1_764_050_400), &id_records(0..4));
    let w = sluice_aws::s3::writer(&conf(""), &ctx()).expect("writer");
    let err = w.write(&ch).await.expect_err("the self-signed certificate is refused by default");
    assert!(format!("{err:?}").to_lowercase().contains("certificate"), "{err:?}");
    let w = sluice_aws::s3::writer(&conf("  ssl_verify_peer false"), &ctx()).expect("writer");
    w.write(&ch).await.expect("write over unverified TLS");
    let cfg = sdk_config(&moto.url()).await;
    let c = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&cfg).force_path_style(true).build());
    let list = c.list_objects_v2().bucket("tls-logs").send().await.expect("list");
    assert_eq!(list.contents().len(), 1, "one object for the chunk");
    let key = list.contents()[0].key().expect("key").to_string();
    let body = c.get_object().bucket("tls-logs").key(&key).send().await.expect("get").body.collect().await;
    let body = body.expect("body").into_bytes().to_vec();
    let lines: Vec<Vec<u8>> = body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
    assert_eq!(ids_of(&lines), vec![0, 1, 2, 3]);
}
