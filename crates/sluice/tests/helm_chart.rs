//! The Helm chart in deploy/helm/sluice: `helm lint --strict`, every manifest `helm template` renders
//! valid against the Kubernetes schemas, its default fluent.conf accepted by `sluice --dry-run`, and the
//! plain manifests of examples/kubernetes in step with the chart. Without helm, Chart.yaml and values.yaml
//! are still validated against their schemas.
mod common;

use common::{python, workspace_root};
use std::path::PathBuf;
use std::process::Command;

fn chart() -> PathBuf {
    workspace_root().join("deploy/helm/sluice")
}

/// `SLUICE_TEST_HELM` (scripts/test.sh fetches helm), else `helm` on PATH.
fn helm() -> Option<PathBuf> {
    let p = std::env::var_os("SLUICE_TEST_HELM").map(PathBuf::from).unwrap_or_else(|| "helm".into());
    Command::new(&p).arg("version").output().ok().filter(|o| o.status.success()).map(|_| p)
}

fn check(script_args: &[&str]) {
    let out = Command::new(python())
        .arg(workspace_root().join("tests/python/chart_check.py"))
        .args(script_args)
        .output()
        .expect("run chart_check.py");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn chart_and_values_match_their_schemas() {
    check(&["schemas", &chart().to_string_lossy()]);
}

#[test]
fn values_schema_rejects_bad_values() {
    check(&["bad-values", &chart().to_string_lossy()]);
}

fn render(helm: &PathBuf, extra: &[&str]) -> String {
    let out = Command::new(helm)
        .args(["template", "sluice", &chart().to_string_lossy(), "--namespace", "logging"])
        .args(extra)
        .output()
        .expect("helm template");
    assert!(out.status.success(), "helm template: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 manifests")
}

#[test]
fn chart_lints_and_renders_valid_manifests() {
    let Some(helm) = helm() else {
        println!("SKIPPED: helm is not installed (scripts/test.sh fetches it); schemas were checked instead");
        return;
    };
    let lint = Command::new(&helm).args(["lint", "--strict"]).arg(chart()).output().expect("helm lint");
    assert!(lint.status.success(), "helm lint: {}", String::from_utf8_lossy(&lint.stdout));
    let dir = tempfile::tempdir().expect("tempdir");
    let all_on = [
        "--set",
        "metrics.enabled=true,serviceMonitor.enabled=true,livenessProbe.enabled=true,readinessProbe.enabled=true",
        "--set",
        "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::123456789012:role/x",
        "--set",
        "secretEnv[0].name=SLACK_WEBHOOK_URL,secretEnv[0].secretName=sluice-slack,secretEnv[0].key=webhook_url",
    ];
    for (name, args) in [("defaults", &[][..]), ("all-on", &all_on[..])] {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, render(&helm, args)).expect("write manifests");
        check(&["manifests", &path.to_string_lossy(), env!("CARGO_BIN_EXE_sluice")]);
    }
    let example = dir.path().join("example.yaml");
    let values = workspace_root().join("examples/kubernetes/values.yaml");
    let conf = workspace_root().join("examples/kubernetes/fluent.conf");
    let set_file = format!("fluentConf={}", conf.display());
    let rendered = render(&helm, &["-f", &values.to_string_lossy(), "--set-file", &set_file]);
    std::fs::write(&example, rendered).expect("write manifests");
    check(&[
        "same-as-example",
        &example.to_string_lossy(),
        &workspace_root().join("examples/kubernetes").to_string_lossy(),
    ]);
}
