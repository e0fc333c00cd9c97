//! The README's demo (examples/demo), run as a newcomer would, from another directory: each kind of log
//! reaches its stand-in, personal data is masked on both branches, repeated FATALs become one alert and a
//! summary, and a second run gives the same result.
mod common;

use common::{python, workspace_root};
use serde_json::Value as J;
use std::path::Path;
use std::process::Command;

fn read_jsonl(path: &Path) -> Vec<J> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

fn only_file(dir: &Path) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "one file expected in {}: {files:?}", dir.display());
    files[0].clone()
}

/// Copy the demo to a fresh directory and run it there from yet another directory.
fn run_demo(dir: &Path) -> String {
    let src = workspace_root().join("examples/demo");
    std::fs::create_dir_all(dir.join("logs")).expect("mkdir");
    std::fs::copy(src.join("fluent.conf"), dir.join("fluent.conf")).expect("copy conf");
    for f in ["api.log", "payments.log"] {
        std::fs::copy(src.join("logs").join(f), dir.join("logs").join(f)).expect("copy log");
    }
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .current_dir(elsewhere.path())
        .arg("-c")
        .arg(dir.join("fluent.conf"))
        .arg("-q")
        .env_remove("SLUICE_CONFIG_DIR")
        .output()
        .expect("run sluice");
    assert!(out.status.success(), "demo failed: {}", String::from_utf8_lossy(&out.stderr));
    let summary = Command::new(python())
        .arg(src.join("summary.py"))
        .arg(dir.join("logs"))
        .arg(dir.join("out"))
        .output()
        .expect("run summary.py");
    assert!(
        summary.status.success(),
        "summary: {}{}",
        String::from_utf8_lossy(&summary.stdout),
        String::from_utf8_lossy(&summary.stderr)
    );
    String::from_utf8_lossy(&summary.stdout).into_owned()
}

#[test]
fn demo_routes_masks_deduplicates_and_repeats() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    let summary = run_demo(&dir);
    let inputs: Vec<J> =
        ["api.log", "payments.log"].iter().flat_map(|f| read_jsonl(&dir.join("logs").join(f))).collect();
    let count = |f: &dyn Fn(&J) -> bool| inputs.iter().filter(|r| f(r)).count();
    let is_pii = |r: &J| matches!(r["category"].as_str(), Some("signup" | "payment"));
    let is_error = |r: &J| matches!(r["level"].as_str(), Some("ERROR" | "FATAL" | "CRITICAL"));
    let is_severe = |r: &J| matches!(r["level"].as_str(), Some("FATAL" | "CRITICAL"));

    let out = dir.join("out");
    let pii = read_jsonl(&only_file(&out.join("kinesis")));
    let errors = read_jsonl(&only_file(&out.join("cloud_logging")));
    let access = read_jsonl(&only_file(&out.join("access")));
    assert_eq!(pii.len(), count(&is_pii));
    assert_eq!(errors.len(), count(&is_error));
    assert_eq!(access.len(), count(&|r: &J| r["category"] == "access"));
    // A record that is personal and an error went down both branches.
    let both = count(&|r: &J| is_pii(r) && is_error(r));
    assert!(both > 0, "the demo data should have a record that is both personal and an error");
    let in_both = errors.iter().filter(|e| pii.iter().any(|p| p["trace_id"] == e["trace_id"])).count();
    assert_eq!(in_both, both);
    // Every output keeps the event's time.
    for r in pii.iter().chain(&errors).chain(&access) {
        assert!(r["time"].is_string(), "record without its time: {r}");
    }
    // Errors quote personal data: masked in Cloud Logging's stand-in too (summary.py's leak probe covers
    // every output; here one known value).
    let all_errors = serde_json::to_string(&errors).expect("json");
    assert!(!all_errors.contains("minsu.kim7@example.com") && !all_errors.contains("010-2345-6707"));
    assert!(all_errors.contains("[REDACTED:email]"));

    // Slack: fewer messages than severe errors, because the repeated FATAL is deduplicated and summed up.
    let slack = read_jsonl(&out.join("slack.jsonl"));
    let slack_text = serde_json::to_string(&slack).expect("json");
    assert!(!slack_text.contains("park.jiyeon@example.net"), "an alert leaked personal data");
    assert!(slack.len() < count(&is_severe), "{} alerts for {} severe errors", slack.len(), count(&is_severe));
    assert!(slack_text.contains("more"), "no dedup summary among the alerts: {slack_text}");
    assert!(summary.contains("0 of the"), "{summary}");
    assert!(summary.contains("Slack messages"), "{summary}");

    // A second run (run.sh resets out/, nothing else is kept between runs) gives the same result.
    std::fs::remove_dir_all(&out).expect("reset out/");
    assert_eq!(run_demo(&dir), summary);
}
