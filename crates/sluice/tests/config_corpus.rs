//! Real public Fluentd configurations (tests/configs/, origins and licences in MANIFEST.md) through
//! `sluice --dry-run`: each is accepted except for the plugins sluice does not have, and exactly those are
//! reported, by name. A new error of any other kind, or a plugin that goes missing or appears, fails here.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each corpus file and the plugins sluice is expected to report as unknown (`kind name`).
const EXPECTED: &[(&str, &[&str])] = &[
    ("daemonset-conf-kubernetes-v012-style.conf", &[]),
    ("daemonset-v0.12-alpine-forward.conf", &[]),
    ("daemonset-v0.12-debian-cloudwatch.conf", &[]),
    ("daemonset-v0.12-debian-kinesis.conf", &[]),
    ("daemonset-v0.12-debian-s3.conf", &[]),
    ("daemonset-v0.12-debian-stackdriver.conf", &[]),
    ("daemonset-v1.1-debian-elasticsearch-systemd.conf", &[]),
    ("daemonset-v1.1-debian-s3.conf", &[]),
    ("daemonset-v1.4-debian-kinesis.conf", &[]),
    ("fluentd-example-in_tail.conf", &[]),
    ("fluentd-example-out_file.conf", &[]),
    ("helm-fluentd-chart-default.conf", &["output elasticsearch"]),
    ("k8s-fluentd-gcp-configmap.conf", &["input exec", "filter add_insert_ids", "output record_reformer"]),
    ("k8s-fluentd-elasticsearch-configmap.conf", &["output elasticsearch"]),
    ("aws-container-insights-fluentd.conf", &[]),
    ("sumologic-source-containers.conf", &["filter kubernetes_sumologic"]),
    ("sumologic-readme-copy-s3.conf", &["output sumologic"]),
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs")
}

/// The `kind name` of every "unknown KIND plugin 'NAME'" error, and how many errors there were in all.
fn dry_run(file: &Path) -> (BTreeSet<String>, usize, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("-c")
        .arg(file)
        .arg("--dry-run")
        // What the daemonset images' environment provides.
        .env("FLUENT_KINESIS_STREAMS_REGION", "us-east-1")
        .env("FLUENT_KINESIS_STREAMS_STREAM_NAME", "logs")
        .env("FLUENT_KINESIS_STREAMS_INCLUDE_TIME_KEY", "false")
        .env("FLUENT_KINESIS_STREAMS_CHUNK_LIMIT_SIZE", "1m")
        .env("FLUENTD_SYSTEMD_CONF", "systemd")
        .env("FLUENTD_PROMETHEUS_CONF", "prometheus")
        .env("S3_BUCKET_NAME", "logs")
        .env("S3_BUCKET_REGION", "us-east-1")
        .env("LOG_GROUP_NAME", "k8s")
        .env("FLUENT_FOWARD_HOST", "aggregator.logging")
        .env("FLUENT_FOWARD_PORT", "24224")
        .env("KUBERNETES_SERVICE_HOST", "10.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", "443")
        .env("AWS_REGION", "us-east-1")
        .env("CLUSTER_NAME", "prod")
        .env("NODE_NAME", "node-1")
        // As the Container Insights DaemonSet sets it (CRI logs): a regexp as the parser's @type.
        .env("FLUENT_CONTAINER_TAIL_PARSER_TYPE", "/^(?<time>.+) (?<stream>stdout|stderr) (?<logtag>[FP]) (?<log>.*)$/")
        .env("SLUICE_LOG", "warn")
        .output()
        .expect("run sluice");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    let mut missing = BTreeSet::new();
    for l in &errors {
        if let Some(rest) = l.split(": unknown ").nth(1) {
            let mut it = rest.splitn(3, ' ');
            let (kind, word, name) = (it.next(), it.next(), it.next());
            if let (Some(kind), Some("plugin"), Some(name)) = (kind, word, name) {
                let name = name.split('\'').nth(1).unwrap_or(name);
                missing.insert(format!("{kind} {name}"));
            }
        }
    }
    assert_eq!(out.status.success(), errors.is_empty(), "{stderr}");
    (missing, errors.len(), stderr)
}

#[test]
fn every_corpus_file_is_listed_with_its_origin() {
    let manifest = std::fs::read_to_string(corpus_dir().join("MANIFEST.md")).expect("MANIFEST.md");
    let mut on_disk: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("corpus dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "MANIFEST.md")
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = EXPECTED.iter().map(|(f, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "every file in tests/configs has an expectation here");
    for f in &on_disk {
        assert!(manifest.contains(&format!("`{f}`")), "{f} has no origin/licence line in MANIFEST.md");
    }
}

#[test]
fn corpus_passes_dry_run_except_for_missing_plugins() {
    let mut failures = Vec::new();
    for (file, expected) in EXPECTED {
        let (missing, errors, stderr) = dry_run(&corpus_dir().join(file));
        let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        // Every error is a missing plugin, and exactly the expected ones are missing.
        let unknown_errors = stderr.lines().filter(|l| l.starts_with("error: ") && l.contains(": unknown ")).count();
        if missing != expected || errors != unknown_errors {
            failures.push(format!("{file}: expected missing {expected:?}, got {missing:?}\n{stderr}"));
        }
        // Missing plugins are explained, never a bare "unknown".
        for l in stderr.lines().filter(|l| l.contains(": unknown ")) {
            if !(l.contains("is not supported by sluice") || l.contains("did you mean")) {
                failures.push(format!("{file}: unexplained unknown plugin: {l}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
