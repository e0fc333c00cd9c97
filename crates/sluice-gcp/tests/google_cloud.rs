//! google_cloud against a local fake of Cloud Logging that validates every request against the
//! logging v2 discovery schema and verifies the service-account JWT with google-auth.
mod common;

use common::{chunk, Fake};
use serde_json::json;
use sluice_core::buffer::{ChunkWriter, WriteError};
use sluice_gcp::writer_from_conf;
use std::time::Duration;

#[tokio::test]
async fn severities_map_to_the_api_enum() {
    let fake = Fake::start();
    let w = writer_from_conf(&fake.conf("project_id proj")).unwrap();
    let cases = [
        (json!({"severity": "info", "a": 1}), "INFO"),
        (json!({"level": "WARN", "a": 1}), "WARNING"),
        (json!({"log_level": "Warning", "a": 1}), "WARNING"),
        (json!({"severity": "error", "a": 1}), "ERROR"),
        (json!({"level": "fatal", "a": 1}), "CRITICAL"),
        (json!({"level": "critical", "a": 1}), "CRITICAL"),
        (json!({"level": "emergency", "a": 1}), "EMERGENCY"),
        (json!({"level": "alert", "a": 1}), "ALERT"),
        (json!({"level": "debug", "a": 1}), "DEBUG"),
        (json!({"level": "TRACE", "a": 1}), "DEBUG"),
        (json!({"severity": 500, "a": 1}), "ERROR"),
        (json!({"severity": "300", "a": 1}), "NOTICE"),
        (json!({"severity": "nonsense", "a": 1}), "DEFAULT"),
        (json!({"a": 1}), "DEFAULT"),
    ];
    let events: Vec<(&str, serde_json::Value)> = cases.iter().map(|(r, _)| ("app", r.clone())).collect();
    w.write(&chunk(&events)).await.unwrap();
    let got = fake.entries().await;
    assert_eq!(got.len(), cases.len());
    for (e, (r, want)) in got.iter().zip(cases.iter()) {
        assert_eq!(e["severity"], *want, "record {r}");
        // The severity field leaves the payload.
        assert_eq!(e["jsonPayload"], json!({"a": 1}));
    }
}

#[tokio::test]
async fn entry_mapping_resource_payload_and_special_fields() {
    let fake = Fake::start();
    let w = writer_from_conf(&fake.conf(
        "project_id proj\n  k8s_cluster_name prod\n  k8s_cluster_location europe-west1\n  labels {\"env\":\"prod\"}\n  label_map {\"user\":\"app/user\"}",
    ))
    .unwrap();
    let id = "0123456789abcdef".repeat(4);
    let cri_tag = format!("kubernetes.var.log.containers.web-7d4b9c-xk2p_shop_nginx-{id}.log");
    let events = vec![
        ("app.access", json!({"message": "plain text"})),
        (
            "app.access",
            json!({
                "message": "GET /", "user": "alice",
                "logging.googleapis.com/trace": "0123456789abcdef0123456789abcdef",
                "logging.googleapis.com/spanId": "000000000000004a",
                "logging.googleapis.com/insertId": "ins-1",
                "logging.googleapis.com/labels": {"team": "core"},
                "logging.googleapis.com/sourceLocation": {"file": "main.rs", "line": 42, "function": "main"},
                "logging.googleapis.com/operation": {"id": "op1", "producer": "p", "first": true},
                "httpRequest": {"requestMethod": "GET", "status": 503, "responseSize": 1234,
                                "latency": "0.25s", "remoteIp": "10.0.0.1", "extra": "kept"}
            }),
        ),
        (
            "raw",
            json!({"log": "from the filter", "stream": "stderr",
                   "kubernetes": {"namespace_name": "ns1", "pod_name": "pod-1", "container_name": "app",
                                  "labels": {"app": "shop"}}}),
        ),
        (cri_tag.as_str(), json!({"log": "from a CRI file"})),
        ("a/b", json!({"log": "slash in tag"})),
    ];
    w.write(&chunk(&events)).await.unwrap();
    let got = fake.entries().await;
    assert_eq!(got.len(), 5);

    let e = &got[0];
    assert_eq!(e["textPayload"], "plain text");
    assert!(e.get("jsonPayload").is_none());
    assert_eq!(e["logName"], "projects/proj/logs/app.access");
    assert_eq!(e["timestamp"], "2025-11-24T16:00:00.123456789Z");
    assert_eq!(e["resource"], json!({"type": "global", "labels": {"project_id": "proj"}}));
    assert_eq!(e["labels"], json!({"env": "prod"}));

    let e = &got[1];
    assert_eq!(e["trace"], "projects/proj/traces/0123456789abcdef0123456789abcdef");
    assert_eq!(e["spanId"], "000000000000004a");
    assert_eq!(e["insertId"], "ins-1");
    assert_eq!(e["labels"], json!({"env": "prod", "app/user": "alice", "team": "core"}));
    assert_eq!(e["sourceLocation"], json!({"file": "main.rs", "line": "42", "function": "main"}));
    assert_eq!(e["operation"], json!({"id": "op1", "producer": "p", "first": true}));
    assert_eq!(
        e["httpRequest"],
        json!({"requestMethod": "GET", "status": 503, "responseSize": "1234", "latency": "0.25s", "remoteIp": "10.0.0.1"})
    );
    assert_eq!(e["jsonPayload"], json!({"message": "GET /", "httpRequest": {"extra": "kept"}}));
    assert_eq!(e["timestamp"], "2025-11-24T16:00:01.123456789Z");

    let e = &got[2];
    assert_eq!(
        e["resource"],
        json!({"type": "k8s_container", "labels": {"project_id": "proj", "location": "europe-west1",
               "cluster_name": "prod", "namespace_name": "ns1", "pod_name": "pod-1", "container_name": "app"}})
    );
    assert_eq!(e["labels"]["k8s-pod/app"], "shop");
    assert_eq!(e["jsonPayload"], json!({"log": "from the filter", "stream": "stderr"}));

    let e = &got[3];
    assert_eq!(e["resource"]["type"], "k8s_container");
    assert_eq!(e["resource"]["labels"]["pod_name"], "web-7d4b9c-xk2p");
    assert_eq!(e["resource"]["labels"]["namespace_name"], "shop");
    assert_eq!(e["resource"]["labels"]["container_name"], "nginx");
    assert_eq!(e["textPayload"], "from a CRI file");

    assert_eq!(got[4]["logName"], "projects/proj/logs/a%2Fb");
    let st = fake.state().await;
    assert_eq!(st["attempts"].as_array().unwrap().len(), 1, "one request for the chunk");
    assert_eq!(st["attempts"][0]["partialSuccess"], true);
    assert_eq!(st["attempts"][0]["auth"], "token");
}

#[tokio::test]
async fn batches_stay_within_limits() {
    let fake = Fake::start();
    let w = writer_from_conf(&fake.conf("project_id proj\n  max_entries_per_request 10")).unwrap();
    let events: Vec<(&str, serde_json::Value)> = (0..25).map(|i| ("app", json!({"n": i}))).collect();
    w.write(&chunk(&events)).await.unwrap();
    let got = fake.entries().await;
    let ns: Vec<i64> = got.iter().map(|e| e["jsonPayload"]["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, (0..25).collect::<Vec<_>>());
    let st = fake.state().await;
    let sizes: Vec<u64> = st["attempts"].as_array().unwrap().iter().map(|a| a["entries"].as_u64().unwrap()).collect();
    assert_eq!(sizes, vec![10, 10, 5]);

    // By bytes: about 1 KB per entry, 4 KB per request.
    let fake = Fake::start();
    let w = writer_from_conf(&fake.conf("project_id proj\n  max_request_size 4k")).unwrap();
    let big = "x".repeat(1000);
    let events: Vec<(&str, serde_json::Value)> = (0..10).map(|i| ("app", json!({"n": i, "pad": big}))).collect();
    w.write(&chunk(&events)).await.unwrap();
    assert_eq!(fake.entries().await.len(), 10);
    let st = fake.state().await;
    let attempts = st["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 3, "{attempts:?}");
    assert!(attempts.iter().all(|a| a["bytes"].as_u64().unwrap() <= 4096), "{attempts:?}");

    // An entry over the API's 256 KB limit is rejected before sending; the rest are delivered.
    let huge = "y".repeat(300 * 1024);
    let events = vec![("app", json!({"n": 0})), ("app", json!({"n": 1, "pad": huge})), ("app", json!({"n": 2}))];
    match w.write(&chunk(&events)).await {
        Err(WriteError::Partial { retry, rejected, .. }) => {
            assert!(retry.is_empty());
            assert_eq!(rejected.len(), 1);
            assert_eq!(rejected[0].0, 1);
            assert!(rejected[0].1.contains("limit"), "{}", rejected[0].1);
        }
        other => panic!("want Partial, got {other:?}"),
    }
    assert_eq!(fake.entries().await.len(), 12);
}

#[tokio::test]
async fn partial_success_drops_only_the_invalid_entry() {
    let fake = Fake::start();
    fake.config(json!({"reject_payload_key": "bad"})).await;
    let w = writer_from_conf(&fake.conf("project_id proj")).unwrap();
    let events = vec![
        ("app", json!({"n": 0})),
        ("app", json!({"n": 1})),
        ("app", json!({"n": 2, "bad": true})),
        ("app", json!({"n": 3})),
    ];
    match w.write(&chunk(&events)).await {
        Err(WriteError::Partial { retry, rejected, .. }) => {
            assert!(retry.is_empty());
            assert_eq!(rejected.len(), 1);
            assert_eq!(rejected[0].0, 2);
            assert!(rejected[0].1.contains("code 3"), "{}", rejected[0].1);
        }
        other => panic!("want Partial, got {other:?}"),
    }
    let ns: Vec<i64> = fake.entries().await.iter().map(|e| e["jsonPayload"]["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, vec![0, 1, 3]);
    let dropped = w.dropped_counts();
    assert_eq!(dropped.values().sum::<u64>(), 1, "{dropped:?}");
    // The partial failure is visible in the metrics an operator alerts on.
    let m = metrics(&w);
    assert_eq!(m["sluice_gcp_partial_failures_total"], 1.0, "{m:?}");
    assert_eq!(m["sluice_gcp_entries_rejected_total"], 1.0, "{m:?}");
    assert_eq!(m["sluice_gcp_entries_delivered_total"], 3.0, "{m:?}");
    assert_eq!(m["sluice_gcp_entries_refused_total"], 0.0, "{m:?}");

    // partial_success false: the API refuses the whole request, which is unrecoverable.
    let fake = Fake::start();
    fake.config(json!({"reject_payload_key": "bad"})).await;
    let w = writer_from_conf(&fake.conf("project_id proj\n  partial_success false")).unwrap();
    let err = w.write(&chunk(&events)).await.unwrap_err();
    assert!(matches!(err, WriteError::Unrecoverable { .. }), "{err:?}");
    assert!(fake.entries().await.is_empty());
    assert_eq!(fake.state().await["attempts"][0]["partialSuccess"], false);
}

#[tokio::test]
async fn too_many_requests_then_success_and_server_errors_are_retryable() {
    let fake = Fake::start();
    let w = writer_from_conf(&fake.conf("project_id proj")).unwrap();
    let c = chunk(&[("app", json!({"n": 1})), ("app", json!({"n": 2}))]);
    fake.queue(json!([{"status": 429, "retry_after": "2"}, {"status": 503}, {"status": 500}])).await;
    match w.write(&c).await {
        Err(WriteError::Retryable { after, message }) => {
            assert_eq!(after, Some(Duration::from_secs(2)));
            assert!(message.contains("429"), "{message}");
        }
        other => panic!("want Retryable, got {other:?}"),
    }
    for code in ["503", "500"] {
        match w.write(&c).await {
            Err(WriteError::Retryable { after: None, message }) => assert!(message.contains(code), "{message}"),
            other => panic!("want Retryable, got {other:?}"),
        }
    }
    w.write(&c).await.unwrap();
    assert_eq!(fake.entries().await.len(), 2, "delivered once, after the retries");
}

#[tokio::test]
async fn a_failure_after_a_delivered_batch_retries_only_the_rest() {
    let fake = Fake::start();
    let w = writer_from_conf(&fake.conf("project_id proj\n  max_entries_per_request 2")).unwrap();
    fake.queue(json!([{"pass": true}, {"status": 503}])).await;
    let events: Vec<(&str, serde_json::Value)> = (0..5).map(|i| ("app", json!({"n": i}))).collect();
    match w.write(&chunk(&events)).await {
        Err(WriteError::Partial { retry, rejected, .. }) => {
            assert_eq!(retry, vec![2, 3, 4]);
            assert!(rejected.is_empty());
        }
        other => panic!("want Partial, got {other:?}"),
    }
    assert_eq!(fake.entries().await.len(), 2);
}

#[tokio::test]
async fn bad_request_is_unrecoverable() {
    let fake = Fake::start();
    let w = writer_from_conf(&fake.conf("project_id proj")).unwrap();
    fake.queue(json!([{"status": 400, "message": "Request contains an invalid argument."}])).await;
    match w.write(&chunk(&[("app", json!({"n": 1}))])).await {
        Err(WriteError::Unrecoverable { message }) => assert!(message.contains("400"), "{message}"),
        other => panic!("want Unrecoverable, got {other:?}"),
    }
    // 403 without per-entry details too.
    fake.queue(json!([{"status": 403}])).await;
    let err = w.write(&chunk(&[("app", json!({"n": 1}))])).await.unwrap_err();
    assert!(matches!(err, WriteError::Unrecoverable { .. }), "{err:?}");
}

#[tokio::test]
async fn split_logs_by_tag_sends_one_request_per_log() {
    let fake = Fake::start();
    let w = writer_from_conf(&fake.conf("project_id proj\n  split_logs_by_tag true")).unwrap();
    let events = vec![("a", json!({"n": 0})), ("b", json!({"n": 1})), ("a", json!({"n": 2}))];
    w.write(&chunk(&events)).await.unwrap();
    let got = fake.entries().await;
    assert_eq!(got.len(), 3);
    let st = fake.state().await;
    let sizes: Vec<u64> = st["attempts"].as_array().unwrap().iter().map(|a| a["entries"].as_u64().unwrap()).collect();
    assert_eq!(sizes, vec![2, 1]);
}

#[tokio::test]
async fn service_account_token_is_cached_and_refreshed_before_expiry() {
    let fake = Fake::start();
    fake.config(json!({"token_lifetime": 2})).await;
    let w = writer_from_conf(&fake.conf("project_id proj")).unwrap();
    let c = chunk(&[("app", json!({"n": 1}))]);
    w.write(&c).await.unwrap();
    w.write(&c).await.unwrap();
    let st = fake.state().await;
    assert_eq!(st["token_requests"].as_array().unwrap().len(), 1, "token reused: {}", st["token_requests"]);
    assert_eq!(st["token_requests"][0]["ok"], true, "{}", st["token_requests"]);
    // Refreshed half-way through a short lifetime, so no request ever carries an expired token.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    w.write(&c).await.unwrap();
    let st = fake.state().await;
    assert_eq!(st["token_requests"].as_array().unwrap().len(), 2);
    assert_eq!(st["auth_failures"], json!([]));
    assert_eq!(fake.entries().await.len(), 3);
}

#[tokio::test]
async fn a_key_the_token_endpoint_does_not_know_is_refused() {
    let fake = Fake::start();
    let other = fake.dir.path().join("other.json");
    let ok = std::process::Command::new(common::python())
        .arg(common::fake_script())
        .args(["genkey", other.to_str().unwrap(), "--token-uri", &format!("{}/token", fake.url())])
        .status()
        .unwrap();
    assert!(ok.success());
    let conf = fake.conf("project_id proj");
    let mut conf = conf;
    conf.set("credentials_path", other.display().to_string(), conf.loc.clone());
    let w = writer_from_conf(&conf).unwrap();
    match w.write(&chunk(&[("app", json!({"n": 1}))])).await {
        Err(WriteError::Retryable { message, .. }) => assert!(message.contains("400"), "{message}"),
        other => panic!("want Retryable, got {other:?}"),
    }
    let st = fake.state().await;
    assert_eq!(st["token_requests"][0]["ok"], false);
    assert!(st["entries"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn gcloud_user_credentials_use_the_refresh_token_grant() {
    let fake = Fake::start();
    let user = fake.dir.path().join("adc.json");
    std::fs::write(
        &user,
        json!({"type": "authorized_user", "client_id": "fake-client-id", "client_secret": "fake-secret",
               "refresh_token": "fake-refresh", "token_uri": format!("{}/token", fake.url())})
        .to_string(),
    )
    .unwrap();
    let mut conf = fake.conf("project_id proj");
    conf.set("credentials_path", user.display().to_string(), conf.loc.clone());
    let w = writer_from_conf(&conf).unwrap();
    w.write(&chunk(&[("app", json!({"n": 1}))])).await.unwrap();
    let st = fake.state().await;
    assert_eq!(st["token_requests"][0]["grant"], "refresh_token");
    assert_eq!(fake.entries().await.len(), 1);
}

#[test]
fn configuration_errors() {
    let fake = Fake::start();
    let err = writer_from_conf(&fake.conf("auth_method private_key")).err().unwrap();
    assert!(err.to_string().contains("auth_method"), "{err}");
    let err = writer_from_conf(&fake.conf("kubernetes_tag_regexp (?P<pod_name>.+)")).err().unwrap();
    assert!(err.to_string().contains("namespace_name"), "{err}");
    let err = writer_from_conf(&fake.conf("logging_api_url ftp://x")).err().unwrap();
    assert!(err.to_string().contains("logging_api_url"), "{err}");
    let mut conf = fake.conf("");
    conf.set("credentials_path", "/nonexistent/key.json", conf.loc.clone());
    let err = writer_from_conf(&conf).err().unwrap();
    assert!(err.to_string().contains("/nonexistent/key.json"), "{err}");
    // No project anywhere and no metadata server allowed.
    let user = fake.dir.path().join("adc.json");
    std::fs::write(&user, r#"{"type":"authorized_user","client_id":"a","client_secret":"b","refresh_token":"c"}"#)
        .unwrap();
    let mut conf = fake.conf("");
    conf.set("credentials_path", user.display().to_string(), conf.loc.clone());
    let err = writer_from_conf(&conf).err().unwrap();
    assert!(err.to_string().contains("project"), "{err}");
}

/// The fake is only worth something if it refuses what the API refuses.
#[tokio::test]
async fn the_fake_is_strict() {
    use sluice_gcp::auth::{Credentials, Metadata, TokenSource};
    let fake = Fake::start();
    let http = reqwest::Client::new();
    let tokens = TokenSource::new(
        Credentials::from_file(&fake.key).unwrap(),
        http.clone(),
        Metadata::new("127.0.0.1:9", Duration::from_secs(1)),
    );
    let token = tokens.token().await.unwrap();
    let good = json!({"logName": "projects/p/logs/app", "resource": {"type": "global", "labels": {"project_id": "p"}},
                      "timestamp": "2025-11-24T16:00:00.123456789Z", "severity": "INFO", "textPayload": "x"});
    let variants = [
        ("unknown field", json!({"surprise": 1})),
        ("bad severity", json!({"severity": "WARN"})),
        ("bad timestamp", json!({"timestamp": "2025-11-24 16:00:00"})),
        ("int64 as float", json!({"sourceLocation": {"line": 1.5}})),
        ("two payloads", json!({"jsonPayload": {"a": 1}})),
        ("resource labels", json!({"resource": {"type": "k8s_container", "labels": {"pod_name": "p"}}})),
        ("label value type", json!({"labels": {"a": 1}})),
        ("read-only field", json!({"receiveTimestamp": "2025-11-24T16:00:00Z"})),
        ("duration", json!({"httpRequest": {"latency": "1.5"}})),
    ];
    let url = format!("{}/v2/entries:write", fake.url());
    let send = |body: serde_json::Value| {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        async move { http.post(url).bearer_auth(token).json(&body).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(send(json!({"entries": [good.clone()]})).await, 200);
    for (what, patch) in variants {
        let mut e = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            e[k] = v.clone();
        }
        assert_eq!(send(json!({"entries": [e]})).await, 400, "{what}");
    }
    let st = fake.state().await;
    assert!(st["schema_errors"].as_array().unwrap().len() >= 9, "{}", st["schema_errors"]);
    // A bearer token the fake never issued.
    let status = http.post(&url).bearer_auth("ya29.made-up").json(&json!({"entries": [good]})).send().await.unwrap();
    assert_eq!(status.status().as_u16(), 401);
}

/// The writer's `sluice_gcp_*` samples by name (they carry no labels of their own).
fn metrics(w: &dyn ChunkWriter) -> std::collections::HashMap<String, f64> {
    use sluice_core::metrics::{Kind, MetricSink};
    struct All(std::collections::HashMap<String, f64>);
    impl MetricSink for All {
        fn sample(&mut self, name: &str, _: &str, _: Kind, suffix: &str, _: &[(&str, &str)], value: f64) {
            self.0.insert(format!("{name}{suffix}"), value);
        }
    }
    let mut all = All(Default::default());
    w.report(&mut all);
    all.0
}
