//! Credentials against moto in IAM mode, where signatures are checked for real: `<shared_credentials>`,
//! `<web_identity_credentials>` through `sts_endpoint_url`, and a wrong `aws_sec_key` (loud, retried, nothing
//! lost, the secret never logged).
mod common;

use common::*;
use sluice_aws::kinesis_streams;
use sluice_core::buffer::{ChunkWriter, WriteError};
use sluice_core::event::{Event, EventTime};
use std::time::{Duration, Instant};

/// A wrong secret for the real key id: it must never appear in sluice's logs or errors.
const WRONG_SECRET: &str = "wRoNg/SeCrEt+ThatMustNeverBeLogged0123456";

async fn create_stream(iam: &IamMoto, name: &str) -> aws_sdk_kinesis::Client {
    let c = aws_sdk_kinesis::Client::new(&iam.sdk_config().await);
    c.create_stream().stream_name(name).shard_count(1).send().await.expect("create stream");
    c
}

fn conf(iam: &IamMoto, stream: &str, body: &str) -> sluice_core::config::Element {
    match_conf(&format!(
        "<match **>\n  @type kinesis_streams\n  stream_name {stream}\n  region us-east-1\n  endpoint {}\n  http_max_attempts 1\n{body}\n</match>\n",
        iam.url()
    ))
}

fn assert_no_secrets(iam: &IamMoto, text: &str) {
    assert!(!text.contains(WRONG_SECRET), "the wrong secret leaked");
    assert!(!text.contains(&iam.secret), "the secret leaked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_credentials_file_uses_the_named_profile() {
    let _logs = captured_logs();
    let iam = start_moto_iam();
    let c = create_stream(&iam, "shared").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("credentials");
    std::fs::write(
        &path,
        format!(
            "[default]\naws_access_key_id = {k}\naws_secret_access_key = {WRONG_SECRET}\n\n[sluice]\naws_access_key_id = {k}\naws_secret_access_key = {s}\n",
            k = iam.key_id,
            s = iam.secret
        ),
    )
    .expect("write credentials file");
    let path = path.display();

    let w = kinesis_streams::writer(
        &conf(
            &iam,
            "shared",
            &format!("  <shared_credentials>\n    path {path}\n    profile_name sluice\n  </shared_credentials>"),
        ),
        &ctx(),
    )
    .expect("writer");
    w.write(&chunk("app.shared", None, &id_records(0..3))).await.expect("the sluice profile's key is accepted");
    assert_eq!(ids_of(&stream_data(&c, "shared").await), vec![0, 1, 2]);

    // Without profile_name the file's [default] profile is used: its secret is wrong.
    let w = kinesis_streams::writer(
        &conf(&iam, "shared", &format!("  <shared_credentials>\n    path {path}\n  </shared_credentials>")),
        &ctx(),
    )
    .expect("writer");
    match w.write(&chunk("app.shared", None, &id_records(3..5))).await {
        Err(WriteError::Retryable { message, .. }) => {
            assert!(message.contains("SignatureDoesNotMatch"), "{message}");
            assert!(message.contains("credentials rejected"), "{message}");
            assert_no_secrets(&iam, &message);
        }
        other => panic!("expected a retryable signature error, got {other:?}"),
    }
    assert_eq!(ids_of(&stream_data(&c, "shared").await), vec![0, 1, 2], "nothing stored with the wrong secret");
    assert_no_secrets(&iam, &logs_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_identity_credentials_assume_the_role_at_sts_endpoint_url() {
    let _logs = captured_logs();
    let iam = start_moto_iam();
    let c = create_stream(&iam, "wi").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.sluice-test-token.sig\n").expect("write token");
    let section = |token_file: &std::path::Path| {
        format!(
            "  <web_identity_credentials>\n    role_arn {}\n    web_identity_token_file {}\n    role_session_name sluice-test\n    sts_endpoint_url {}\n  </web_identity_credentials>",
            iam.role_arn,
            token_file.display(),
            iam.url()
        )
    };

    let w = kinesis_streams::writer(&conf(&iam, "wi", &section(&token)), &ctx()).expect("writer");
    // Only the (unsigned) AssumeRoleWithWebIdentity goes unchecked; PutRecords must carry a valid signature
    // made with the temporary credentials.
    iam.unauthenticated_requests(1);
    w.write(&chunk("app.wi", None, &id_records(0..3))).await.expect("write with the assumed role");
    // The credentials are cached: a second AssumeRoleWithWebIdentity would hit moto's IAM check and fail.
    w.write(&chunk("app.wi", None, &id_records(3..5))).await.expect("second write, cached credentials");
    assert_eq!(ids_of(&stream_data(&c, "wi").await), vec![0, 1, 2, 3, 4]);

    // moto checks the temporary credentials' signatures: the same session with a wrong secret is refused.
    iam.unauthenticated_requests(1);
    let sts = aws_sdk_sts::Client::new(&sdk_config(&iam.url()).await);
    let out = sts
        .assume_role_with_web_identity()
        .role_arn(&iam.role_arn)
        .role_session_name("check")
        .web_identity_token("eyJhbGciOiJSUzI1NiJ9.check.sig")
        .send()
        .await
        .expect("AssumeRoleWithWebIdentity");
    let cr = out.credentials().expect("credentials");
    let with_secret = |secret: &str| {
        aws_credential_types::Credentials::new(
            cr.access_key_id(),
            secret,
            Some(cr.session_token().to_string()),
            None,
            "test",
        )
    };
    let client = |creds| async {
        let base = sdk_config(&iam.url()).await;
        aws_sdk_kinesis::Client::from_conf(
            aws_sdk_kinesis::config::Builder::from(&base).credentials_provider(creds).build(),
        )
    };
    client(with_secret(cr.secret_access_key())).await.list_streams().send().await.expect("valid session");
    let err = client(with_secret("not-the-session-secret")).await.list_streams().send().await.expect_err("refused");
    // moto answers this JSON API with an XML error body, which the SDK cannot parse: look at the raw answer.
    let raw = err.raw_response().expect("an HTTP answer");
    assert_eq!(raw.status().as_u16(), 403);
    let body = String::from_utf8_lossy(raw.body().bytes().unwrap_or_default()).into_owned();
    assert!(body.contains("<Code>SignatureDoesNotMatch</Code>"), "{body}");

    // A token file that cannot be read: a retryable error naming the parameter.
    let w = kinesis_streams::writer(&conf(&iam, "wi", &section(&dir.path().join("missing"))), &ctx()).expect("writer");
    match w.write(&chunk("app.wi", None, &id_records(5..6))).await {
        Err(WriteError::Retryable { message, .. }) => {
            assert!(message.contains("web_identity_token_file"), "{message}")
        }
        other => panic!("expected a retryable error, got {other:?}"),
    }
    assert_eq!(ids_of(&stream_data(&c, "wi").await), vec![0, 1, 2, 3, 4]);
    assert!(!logs_text().contains("sluice-test-token"), "the token is a secret too");
}

fn engine_conf(iam: &IamMoto, secret: &str, buffer: &std::path::Path) -> sluice_core::config::Element {
    conf(
        iam,
        "rot",
        &format!(
            "  aws_key_id {}\n  aws_sec_key {secret}\n  <buffer>\n    @type file\n    path {}\n    flush_interval 0.2s\n    retry_wait 0.3s\n    retry_max_interval 0.6s\n    retry_forever true\n  </buffer>",
            iam.key_id,
            buffer.display()
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_loud_retried_and_delivered_after_the_fix() {
    let _logs = captured_logs();
    let iam = start_moto_iam();
    let c = create_stream(&iam, "rot").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let buffer = dir.path().join("buffer");
    let ctx = ctx();

    let out = ctx.registry.build_output(&engine_conf(&iam, WRONG_SECRET, &buffer), &ctx).expect("output");
    out.start().await.expect("start");
    let events: Vec<Event> =
        id_records(0..6).into_iter().map(|m| Event::new(EventTime { sec: 1_764_050_400, nsec: 0 }, m)).collect();
    out.emit("app.rot", events).expect("emit");
    let m = out.metrics().expect("metrics");
    let deadline = Instant::now() + Duration::from_secs(30);
    while m.retries.get() < 3 {
        assert!(Instant::now() < deadline, "the engine did not retry");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stream_data(&c, "rot").await.is_empty(), "nothing accepted with the wrong secret");
    assert_eq!(
        m.records_to_secondary.get() + m.records_to_error_label.get(),
        0,
        "auth errors are retried, not dropped"
    );
    let logs = logs_text();
    assert!(logs.contains("SignatureDoesNotMatch"), "the error code is logged");
    assert!(logs.contains("AWS rejected the request's credentials"), "and explained");
    assert_no_secrets(&iam, &logs);
    out.shutdown().await;

    // The operator fixes the secret and restarts: the chunk kept in the file buffer is delivered, once.
    let out = ctx.registry.build_output(&engine_conf(&iam, &iam.secret, &buffer), &ctx).expect("output");
    out.start().await.expect("start");
    let deadline = Instant::now() + Duration::from_secs(20);
    let got = loop {
        let got = stream_data(&c, "rot").await;
        if got.len() >= 6 || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ids_of(&got), (0..6).collect::<Vec<_>>());
    out.shutdown().await;
    assert_no_secrets(&iam, &logs_text());
}

#[test]
fn sts_endpoint_url_must_be_a_url() {
    for section in ["web_identity_credentials", "assume_role_credentials"] {
        let text = format!(
            "<match **>\n  @type kinesis_streams\n  stream_name x\n  <{section}>\n    role_arn arn:aws:iam::123456789012:role/r\n    role_session_name s\n    web_identity_token_file /t\n    sts_endpoint_url sts.example.com\n  </{section}>\n</match>\n"
        );
        let e = kinesis_streams::writer(&match_conf(&text), &ctx()).err().expect("not a URL");
        assert!(e.to_string().contains("sts_endpoint_url"), "{e}");
    }
}
