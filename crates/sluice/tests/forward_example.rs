//! The agent → aggregator example in examples/forward/ is accepted by `sluice --dry-run`.
use std::path::PathBuf;
use std::process::Command;

fn dry_run(conf: &str) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .current_dir(&root)
        .args(["-c", conf, "--dry-run"])
        .env("FORWARD_SHARED_KEY", "example-secret")
        .output()
        .expect("run sluice");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{conf}: {stderr}");
    assert!(!stderr.contains("example-secret"), "the shared key leaked into the output: {stderr}");
}

#[test]
fn agent_config_passes_dry_run() {
    dry_run("examples/forward/agent/fluent.conf");
}

#[test]
fn aggregator_config_passes_dry_run() {
    dry_run("examples/forward/aggregator/fluent.conf");
}
