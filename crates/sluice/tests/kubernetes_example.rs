//! The Kubernetes example: manifests valid against the Kubernetes schemas, the ConfigMap in step with
//! fluent.conf, and the configuration accepted by `sluice --dry-run`.
use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The virtualenv python that scripts/test.sh sets up.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_TEST_PYTHON") {
        return p.into();
    }
    let p = repo().join(".venv/bin/python");
    assert!(p.exists(), "test peers are missing: run `bash scripts/test.sh` (it installs them into .venv)");
    p
}

#[test]
fn manifests_validate_against_kubernetes_schemas() {
    let out = Command::new(python())
        .arg(repo().join("tests/python/k8s_check.py"))
        .arg(repo().join("examples/kubernetes"))
        .output()
        .expect("run k8s_check.py");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn example_config_passes_dry_run() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("-c")
        .arg(repo().join("examples/kubernetes/fluent.conf"))
        .arg("--dry-run")
        .env("GCP_PROJECT_ID", "test-project")
        .env("CLUSTER_NAME", "test-cluster")
        .env("CLUSTER_LOCATION", "asia-northeast3")
        .env("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T000/B000/XXXXXXXX")
        .output()
        .expect("run sluice");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("XXXXXXXX"), "the webhook URL leaked into the output: {stderr}");
}

#[test]
fn demo_config_passes_dry_run() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .current_dir(repo())
        .args(["-c", "examples/demo/fluent.conf", "--dry-run"])
        .output()
        .expect("run sluice");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn dry_run_names_the_unset_variable_behind_a_missing_value() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("-c")
        .arg(repo().join("examples/kubernetes/fluent.conf"))
        .arg("--dry-run")
        .env("GCP_PROJECT_ID", "test-project")
        .env("CLUSTER_NAME", "test-cluster")
        .env("CLUSTER_LOCATION", "asia-northeast3")
        .env_remove("SLACK_WEBHOOK_URL")
        .output()
        .expect("run sluice");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a Slack output without a webhook must be refused: {stderr}");
    assert!(stderr.contains("environment variable SLACK_WEBHOOK_URL is not set"), "{stderr}");
    assert!(stderr.contains("webhook_url"), "{stderr}");
}
