//! s3 against moto_server.
mod common;

use common::*;
use sluice_aws::s3;
use sluice_core::buffer::{ChunkWriter, WriteError};
use sluice_core::event::{parse_json_map, Map, Value};
use std::io::Read;
use std::sync::atomic::Ordering;

const TIMEKEY: i64 = 1_764_050_400; // 2025-11-25 06:00:00 UTC

fn rec(id: i64) -> Map {
    let mut m = Map::new();
    m.insert("id", Value::Int(id));
    m.insert("msg", Value::Str(format!("line {id}").into()));
    m
}

async fn client(endpoint: &str) -> aws_sdk_s3::Client {
    let cfg = sdk_config(endpoint).await;
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&cfg).force_path_style(true).build())
}

async fn keys(c: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let l = c.list_objects_v2().bucket(bucket).send().await.expect("list");
    let mut k: Vec<String> = l.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect();
    k.sort();
    k
}

async fn get(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> (Vec<u8>, Option<String>) {
    let o = c.get_object().bucket(bucket).key(key).send().await.expect("get");
    let ct = o.content_type().map(str::to_string);
    (o.body.collect().await.expect("body").into_bytes().to_vec(), ct)
}

fn gunzip(b: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(b).read_to_string(&mut s).expect("gzip");
    s
}

fn conf(endpoint: &str, extra: &str) -> String {
    format!(
        "<match **>\n  @type s3\n  s3_bucket logs\n  s3_region us-east-1\n  s3_endpoint {endpoint}\n  aws_key_id AKIDTEST\n  aws_sec_key SECRETTEST\n  utc true\n{extra}\n</match>\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_follow_format_and_gzip_holds_exactly_the_records() {
    let moto = start_moto();
    let c = client(&moto.url()).await;
    let w = s3::writer(
        &match_conf(&conf(&moto.url(), "  path logs/${tag}/\n  <format>\n    @type json\n  </format>")),
        &ctx(),
    )
    .expect("writer");
    let records: Vec<Map> = (0..50).map(rec).collect();
    // the bucket does not exist yet: auto_create_bucket creates it
    w.write(&chunk("app.web", Some(TIMEKEY), &records)).await.expect("write");
    assert_eq!(keys(&c, "logs").await, vec!["logs/app.web/2025112506_0.gz".to_string()]);
    let (body, ct) = get(&c, "logs", "logs/app.web/2025112506_0.gz").await;
    assert_eq!(ct.as_deref(), Some("application/x-gzip"));
    let text = gunzip(&body);
    let got: Vec<Map> = text.lines().map(|l| parse_json_map(l.as_bytes()).expect("json")).collect();
    assert_eq!(got, records);

    // the default format is out_file: time, tag, json separated by tabs; other placeholders expand
    let w = s3::writer(
        &match_conf(&conf(
            &moto.url(),
            "  store_as text\n  s3_object_key_format %{path}%{hostname}/%{time_slice}-%{chunk_id}-%{hex_random}.%{file_extension}\n  path raw/\n  time_slice_format %Y/%m/%d/%H",
        )),
        &ctx(),
    )
    .expect("writer");
    let ch = chunk("app.raw", Some(TIMEKEY), &records[..2]);
    w.write(&ch).await.expect("write");
    let want = format!("raw/testhost/2025/11/25/06-{}-{}.txt", ch.id_hex(), &ch.id_hex()[..4]);
    assert!(keys(&c, "logs").await.contains(&want), "{:?}", keys(&c, "logs").await);
    let (body, ct) = get(&c, "logs", &want).await;
    assert_eq!(ct.as_deref(), Some("text/plain"));
    let text = String::from_utf8(body).expect("utf8");
    let first = text.lines().next().expect("a line");
    let cols: Vec<&str> = first.split('\t').collect();
    assert_eq!(cols.len(), 3);
    assert!(cols[0].starts_with("2025-11-25T06:00:00"), "{}", cols[0]);
    assert_eq!(cols[1], "app.raw");
    assert_eq!(parse_json_map(cols[2].as_bytes()).expect("json"), records[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_object_never_overwrites() {
    let moto = start_moto();
    let c = client(&moto.url()).await;
    c.create_bucket().bucket("logs").send().await.expect("bucket");
    let w = s3::writer(
        &match_conf(&conf(&moto.url(), "  path a/\n  store_as json\n  <format>\n    @type json\n  </format>")),
        &ctx(),
    )
    .expect("writer");
    for i in 0..3 {
        w.write(&chunk("t", Some(TIMEKEY), &[rec(i)])).await.expect("write");
    }
    let k = keys(&c, "logs").await;
    assert_eq!(k, vec!["a/2025112506_0.json", "a/2025112506_1.json", "a/2025112506_2.json"]);
    for (i, key) in k.iter().enumerate() {
        let (b, _) = get(&c, "logs", key).await;
        assert_eq!(parse_json_map(String::from_utf8(b).expect("utf8").trim().as_bytes()).expect("json"), rec(i as i64));
    }

    // a format without %{index}: the second chunk is refused instead of overwriting
    let w = s3::writer(
        &match_conf(&conf(
            &moto.url(),
            "  s3_object_key_format fixed/%{time_slice}.%{file_extension}\n  store_as json",
        )),
        &ctx(),
    )
    .expect("writer");
    w.write(&chunk("t", Some(TIMEKEY), &[rec(10)])).await.expect("first");
    let before = get(&c, "logs", "fixed/2025112506.json").await.0;
    match w.write(&chunk("t", Some(TIMEKEY), &[rec(11)])).await {
        Err(WriteError::Unrecoverable { message }) => {
            assert!(message.contains("%{index}"), "{message}")
        }
        other => panic!("expected an unrecoverable error, got {other:?}"),
    }
    assert_eq!(get(&c, "logs", "fixed/2025112506.json").await.0, before);

    // overwrite true: replaced, as the plugin does
    let w = s3::writer(
        &match_conf(&conf(
            &moto.url(),
            "  s3_object_key_format fixed/%{time_slice}.%{file_extension}\n  store_as json\n  overwrite true",
        )),
        &ctx(),
    )
    .expect("writer");
    w.write(&chunk("t", Some(TIMEKEY), &[rec(12)])).await.expect("overwrite");
    assert_ne!(get(&c, "logs", "fixed/2025112506.json").await.0, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_for_a_large_chunk_and_sse_params() {
    let moto = start_moto();
    let c = client(&moto.url()).await;
    let w = s3::writer(
        &match_conf(&conf(
            &moto.url(),
            "  store_as text\n  multipart_threshold 5m\n  multipart_chunk_size 5m\n  use_server_side_encryption AES256\n  storage_class STANDARD_IA\n  <format>\n    @type single_value\n    message_key msg\n  </format>",
        )),
        &ctx(),
    )
    .expect("writer");
    // about 12 MiB of incompressible text in one chunk
    let mut records = Vec::new();
    let mut want = String::new();
    for i in 0..3000 {
        let s: String = (0..4000).map(|_| char::from(b'a' + rand::random::<u8>() % 26)).collect();
        let mut m = Map::new();
        m.insert("msg", Value::Str(s.clone().into()));
        m.insert("id", Value::Int(i));
        records.push(m);
        want.push_str(&s);
        want.push('\n');
    }
    w.write(&chunk("big", Some(TIMEKEY), &records)).await.expect("multipart write");
    // CreateMultipartUpload + 3 parts + Complete
    assert_eq!(w.stats.requests.load(Ordering::Relaxed), 5);
    let k = keys(&c, "logs").await;
    assert_eq!(k, vec!["2025112506_0.txt"]);
    let head = c.head_object().bucket("logs").key(&k[0]).send().await.expect("head");
    assert_eq!(head.server_side_encryption().map(|s| s.as_str()), Some("AES256"));
    assert_eq!(head.storage_class().map(|s| s.as_str()), Some("STANDARD_IA"));
    let (body, _) = get(&c, "logs", &k[0]).await;
    assert_eq!(body.len(), want.len());
    assert!(body == want.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retryable_and_nothing_half_written() {
    let moto = start_moto();
    let proxy = start_proxy(&moto.url());
    let c = client(&moto.url()).await;
    c.create_bucket().bucket("logs").send().await.expect("bucket");
    let w = s3::writer(&match_conf(&conf(&proxy.url(), "  http_max_attempts 1")), &ctx()).expect("writer");
    fault(&proxy, r#"{"mode":"status","status":503,"times":100,"type":"SlowDown"}"#);
    let ch = chunk("t", Some(TIMEKEY), &[rec(1)]);
    assert!(matches!(w.write(&ch).await, Err(WriteError::Retryable { .. })));
    fault(&proxy, r#"{"mode":"pass"}"#);
    w.write(&ch).await.expect("after recovery");
    assert_eq!(keys(&c, "logs").await, vec!["2025112506_0.gz"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_checks() {
    let c = ctx();
    let e = s3::writer(&match_conf("<match **>\n  @type s3\n</match>\n"), &c).err().expect("bucket required");
    assert!(e.to_string().contains("s3_bucket"));
    let e = s3::writer(&match_conf("<match **>\n  @type s3\n  s3_bucket b\n  store_as lzo\n</match>\n"), &c)
        .err()
        .expect("lzo not supported");
    assert!(e.to_string().contains("store_as"), "{e}");
    let e = s3::writer(&match_conf("<match **>\n  @type s3\n  s3_bucket b\n  multipart_chunk_size 1m\n</match>\n"), &c)
        .err()
        .expect("parts too small");
    assert!(e.to_string().contains("multipart_chunk_size"), "{e}");
    let mut dry = ctx();
    dry.dry_run = true;
    c.registry
        .build_output(&match_conf("<match **>\n  @type s3\n  s3_bucket b\n  path x/${tag}/\n  <buffer tag,time>\n    timekey 1h\n  </buffer>\n</match>\n"), &dry)
        .expect("builds with the engine");
}
