//! `sluice explain`, `explain --pii`, `--dry-run`'s PII warning and `sluice iam-policy`, on the project's
//! reference configuration (examples/kubernetes), broken variants of it, the demo and real-world configs.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    common::workspace_root()
}

fn sluice(conf: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .arg("-c")
        .arg(conf)
        .env("GCP_PROJECT_ID", "test-project")
        .env("CLUSTER_NAME", "test-cluster")
        .env("CLUSTER_LOCATION", "asia-northeast3")
        .env("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T000/B000/XXXXXXXX")
        .env("SLUICE_LOG", "error")
        .output()
        .expect("run sluice")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn k8s_conf() -> PathBuf {
    repo().join("examples/kubernetes/fluent.conf")
}

/// The reference configuration with `edit` applied, written next to a temporary directory.
fn variant(dir: &tempfile::TempDir, from: &str, to: &str) -> PathBuf {
    let orig = std::fs::read_to_string(k8s_conf()).expect("read fluent.conf");
    assert!(orig.contains(from), "the reference configuration changed: {from:?} not found");
    let p = dir.path().join("fluent.conf");
    std::fs::write(&p, orig.replacen(from, to, 1)).expect("write variant");
    p
}

#[test]
fn reference_config_routes_each_kind_of_log_to_its_outputs() {
    let out = sluice(&k8s_conf(), &["explain"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    // The tail source's tags, split by the two rewrite_tag_filter stores into pii.* and error.*.
    assert!(t.contains("source tail in_application1"), "{t}");
    assert!(t.contains("tag pii.(signup|payment)"), "{t}");
    assert!(t.contains("tag error.(ERROR|FATAL|CRITICAL)"), "{t}");
    // Each destination is reached, masked, and the Slack route goes through the @CRITICAL label and grep.
    for o in ["kinesis_streams out_kinesis", "google_cloud out_cloud_logging", "slack out_slack"] {
        let line = t.lines().find(|l| l.contains(&format!("→ output {o}"))).unwrap_or_else(|| panic!("{o}: {t}"));
        assert!(line.contains("leaves the node; masked"), "{line}");
    }
    assert!(t.contains("→ label @CRITICAL"), "{t}");
    // Metrics sources emit nothing; no tag is dropped; nothing unreached.
    assert!(t.contains("source prometheus in_prometheus") && t.contains("emits no events"), "{t}");
    assert!(!t.contains("DROPPED"), "{t}");
    assert!(t.contains("Directives no tag reaches:\n  (none)"), "{t}");
    assert!(t.contains("PII: every route that leaves the node passes a mask filter"), "{t}");

    let strict = sluice(&k8s_conf(), &["explain", "--pii", "--strict"]);
    assert!(strict.status.success(), "{}", text(&strict));
}

#[test]
fn a_pii_route_past_the_mask_is_found_and_strict_fails() {
    let dir = tempfile::tempdir().expect("tmp");
    // The mask now covers only sign-ups: payment records reach Kinesis unmasked.
    let conf = variant(&dir, "<filter pii.**>\n  @type mask", "<filter pii.signup>\n  @type mask");
    let out = sluice(&conf, &["explain", "--pii"]);
    let t = text(&out);
    assert!(out.status.success(), "without --strict it only reports: {t}");
    assert!(t.contains("1 unmasked route(s) leave the node"), "{t}");
    let finding = t.lines().find(|l| l.contains("unmasked records can leave the node")).expect("finding");
    assert!(finding.contains("kinesis_streams out_kinesis"), "{finding}");
    assert!(finding.contains("source tail in_application1"), "{finding}");

    let strict = sluice(&conf, &["explain", "--pii", "--strict"]);
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict));

    // --dry-run still passes and says the same as a warning.
    let dry = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("-c")
        .arg(&conf)
        .arg("--dry-run")
        .env("GCP_PROJECT_ID", "p")
        .env("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T/B/X")
        .output()
        .expect("run");
    let dt = text(&dry);
    assert!(dry.status.success(), "{dt}");
    assert!(dt.contains("WARN") && dt.contains("unmasked records can leave the node"), "{dt}");
    assert!(dt.contains("kinesis_streams out_kinesis"), "{dt}");
}

#[test]
fn a_route_that_skips_the_mask_through_a_new_rule_is_found() {
    let dir = tempfile::tempdir().expect("tmp");
    // A third store re-tags audit records as audit.*, which no mask covers, and ships them to Kinesis.
    let conf = variant(
        &dir,
        "<match pii.**>",
        "<match audit.**>\n  @type kinesis_firehose\n  @id out_audit\n  delivery_stream_name audit\n  region us-east-1\n</match>\n<match pii.**>",
    );
    let orig = std::fs::read_to_string(&conf).expect("read");
    let conf_text = orig.replacen(
        "  <store>\n    @type rewrite_tag_filter\n    @id split_errors",
        "  <store>\n    @type rewrite_tag_filter\n    <rule>\n      key category\n      pattern /^audit$/\n      tag audit.${tag}\n    </rule>\n  </store>\n  <store>\n    @type rewrite_tag_filter\n    @id split_errors",
        1,
    );
    std::fs::write(&conf, conf_text).expect("write");
    let out = sluice(&conf, &["explain", "--pii", "--strict"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("kinesis_firehose out_audit") && t.contains("audit.kube."), "{t}");
    assert!(!t.lines().any(|l| l.contains("unmasked") && l.contains("out_kinesis")), "{t}");

    // Declaring the destination as allowed to hold raw data accepts it, with no "unused parameter" warning.
    let allowed = std::fs::read_to_string(&conf).expect("read").replacen(
        "delivery_stream_name audit",
        "delivery_stream_name audit\n  pii_allowed true",
        1,
    );
    std::fs::write(&conf, allowed).expect("write");
    let out = sluice(&conf, &["explain", "--pii", "--strict"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("pii_allowed true): kinesis_firehose out_audit"), "{t}");
    let dry = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("-c")
        .arg(&conf)
        .arg("--dry-run")
        .env("GCP_PROJECT_ID", "p")
        .env("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T/B/X")
        .output()
        .expect("run");
    let dt = text(&dry);
    assert!(dry.status.success(), "{dt}");
    assert!(!dt.contains("pii_allowed' in"), "pii_allowed was warned about: {dt}");
    assert!(!dt.contains("unmasked records"), "{dt}");
}

#[test]
fn pii_allowed_must_be_a_bool() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = variant(&dir, "  @id out_kinesis\n", "  @id out_kinesis\n  pii_allowed maybe\n");
    let out = sluice(&conf, &["--dry-run"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("'pii_allowed' parameter") && t.contains("not a valid bool"), "{t}");
}

#[test]
fn a_mask_limited_to_some_keys_does_not_count() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = variant(
        &dir,
        "<filter error.**>\n  @type mask\n  scan_all true",
        "<filter error.**>\n  @type mask\n  keys $.message",
    );
    let out = sluice(&conf, &["explain", "--pii"]);
    let t = text(&out);
    assert!(t.contains("google_cloud out_cloud_logging") && t.contains("slack out_slack"), "{t}");
    assert!(!t.lines().any(|l| l.contains("unmasked") && l.contains("out_kinesis")), "{t}");
    let full = text(&sluice(&conf, &["explain"]));
    assert!(full.contains("filter error.** mask") && full.contains("[mask limited to some fields"), "{full}");
    assert!(full.contains("filter pii.** mask") && full.contains("[masks the record]"), "{full}");
}

#[test]
fn dropped_tags_and_unreached_outputs_are_called_out() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("f.conf");
    std::fs::write(
        &p,
        "<source>\n  @type forward\n  @id in_fwd\n  port 24224\n</source>\n\
         <source>\n  @type sample\n  tag app.web\n</source>\n\
         <match app.*>\n  @type stdout\n</match>\n\
         <match app.web>\n  @type null\n  @id never\n</match>\n\
         <match {a,b}.**>\n  @type forward\n  <server>\n    host 127.0.0.1\n  </server>\n</match>\n",
    )
    .expect("write");
    let out = sluice(&p, &["explain"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("source forward in_fwd") && t.contains("** (from the sender)"), "{t}");
    // Forward's tags outside app.*, a.** and b.** are dropped; the sample's app.web never reaches `never`.
    assert!(t.contains("DROPPED: no <match> in label @ROOT"), "{t}");
    let unreached = t.split("Directives no tag reaches:").nth(1).expect("section");
    assert!(unreached.contains("null never"), "{t}");
    // Forward is a route off the node with no mask at all.
    let strict = sluice(&p, &["explain", "--pii", "--strict"]);
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict));
}

#[test]
fn dot_output_is_read_by_graphviz() {
    let out = sluice(&k8s_conf(), &["explain", "--dot"]);
    assert!(out.status.success(), "{}", text(&out));
    let dot_src = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(dot_src.starts_with("digraph sluice {"), "{dot_src}");
    let dot = match Command::new("dot").arg("-V").output() {
        Ok(o) if o.status.success() => "dot",
        _ => {
            eprintln!("SKIPPED: graphviz's dot is not installed (tests/apt-packages.txt)");
            return;
        }
    };
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path().join("g.dot");
    std::fs::write(&src, &dot_src).expect("write");
    // `-Tjson` gives the parsed graph: check nodes and edges as graphviz read them.
    let parsed = Command::new(dot).arg("-Tjson").arg(&src).output().expect("run dot");
    assert!(parsed.status.success(), "dot rejected the graph: {}", String::from_utf8_lossy(&parsed.stderr));
    let g: serde_json::Value = serde_json::from_slice(&parsed.stdout).expect("dot json");
    let objects = g["objects"].as_array().expect("objects");
    let label_of = |id: u64| {
        objects.iter().find(|o| o["_gvid"].as_u64() == Some(id)).and_then(|o| o["label"].as_str()).unwrap_or("")
    };
    let edges: Vec<(String, String, String)> = g["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            (
                label_of(e["tail"].as_u64().unwrap_or(u64::MAX)).to_string(),
                label_of(e["head"].as_u64().unwrap_or(u64::MAX)).to_string(),
                e["label"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    // The mask on pii.** leads to Kinesis with the pii tags; the relabel leads into @CRITICAL's grep.
    assert!(
        edges.iter().any(|(a, b, l)| a.contains("filter mask")
            && a.contains("pii.**")
            && b.contains("out_kinesis")
            && l.contains("pii.")),
        "{edges:#?}"
    );
    assert!(edges.iter().any(|(_, b, l)| b.contains("filter grep") && l.contains("label @CRITICAL")), "{edges:#?}");
    assert!(objects.iter().any(|o| o["label"].as_str() == Some("label @CRITICAL")), "no @CRITICAL cluster");
    let red = |g: &serde_json::Value| -> Vec<String> {
        let objects = g["objects"].as_array().cloned().unwrap_or_default();
        g["edges"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|e| e["color"].as_str() == Some("red"))
            .filter_map(|e| objects.iter().find(|o| o["_gvid"] == e["head"]).and_then(|o| o["label"].as_str()))
            .map(str::to_string)
            .collect()
    };
    assert!(red(&g).is_empty(), "the reference configuration has no unmasked route: {:?}", red(&g));
    // The broken variant: the route into Kinesis past the mask is drawn red.
    let conf = variant(&dir, "<filter pii.**>\n  @type mask", "<filter pii.signup>\n  @type mask");
    let out = sluice(&conf, &["explain", "--dot"]);
    std::fs::write(&src, &out.stdout).expect("write");
    let parsed = Command::new(dot).arg("-Tjson").arg(&src).output().expect("run dot");
    assert!(parsed.status.success(), "{}", String::from_utf8_lossy(&parsed.stderr));
    let g: serde_json::Value = serde_json::from_slice(&parsed.stdout).expect("dot json");
    assert!(red(&g).iter().any(|l| l.contains("out_kinesis")), "{:?}", red(&g));
}

#[test]
fn demo_and_real_world_configs_are_explained() {
    let demo = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .current_dir(repo())
        .args(["explain", "-c", "examples/demo/fluent.conf"])
        .output()
        .expect("run");
    let t = text(&demo);
    assert!(demo.status.success(), "{t}");
    assert!(t.contains("tag pii.(signup|payment)") && t.contains("tag access"), "{t}");
    // The demo's files stay on the node; its Slack route is masked.
    assert!(t.contains("PII: every route that leaves the node passes"), "{t}");
    assert!(t.contains("stays on the node; NOT masked"), "{t}");
    for name in
        ["fluentd-example-out_file.conf", "daemonset-v1.4-debian-kinesis.conf", "daemonset-v0.12-debian-s3.conf"]
    {
        let p = repo().join("crates/sluice/tests/configs").join(name);
        let out = sluice(&p, &["explain", "--pii"]);
        let t = text(&out);
        assert!(out.status.success(), "{name}: {t}");
        assert!(t.starts_with("PII:"), "{name}: {t}");
    }
    // fluentd-kubernetes-daemonset's sources without its output file: every tag is dropped, and its
    // `<match fluent.**>` is never reached.
    let p = repo().join("crates/sluice/tests/configs/daemonset-conf-kubernetes-v012-style.conf");
    let t = text(&sluice(&p, &["explain"]));
    let dropped = t.split("Tags that reach no output (dropped):").nth(1).expect("section");
    for tag in ["kubernetes.* (* = the file path) from source tail", "salt from source tail", "kube-proxy from"] {
        assert!(dropped.contains(tag), "{tag}: {t}");
    }
    assert!(t.contains("match fluent.** null"), "{t}");
}

/// Re-emit loops (`${tag}` into the same match), rules into another label with named groups,
/// `detect_exceptions` and `<secondary>` all end, quickly, and are shown.
#[test]
fn loops_labels_and_secondaries_end_and_are_shown() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("loop.conf");
    std::fs::write(
        &p,
        r#"
<source>
  @type forward
  port 24224
</source>
<filter **.z>
  @type grep
  <exclude>
    key x
    pattern /y/
  </exclude>
</filter>
<match a.**>
  @type rewrite_tag_filter
  <rule>
    key k
    pattern /(.+)/
    tag a.${tag}
  </rule>
  <rule>
    key m
    pattern /^(?<lvl>warn|err)$/
    tag b.$1
    label @B
  </rule>
</match>
<match ex.**>
  @type detect_exceptions
  remove_tag_prefix ex
</match>
<match **>
  @type forward
  <server>
    host 127.0.0.1
  </server>
  <secondary>
    @type secondary_file
    directory /tmp/sluice-explain-test
  </secondary>
</match>
<label @B>
  <match b.warn>
    @type stdout
  </match>
</label>
"#,
    )
    .expect("write");
    let out = sluice(&p, &["explain"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("LOOP: the tag is re-emitted"), "{t}");
    assert!(t.contains("rule 2: m =~ /^(?<lvl>warn|err)$/ → tag b.(warn|err), label @B"), "{t}");
    // b.err has no <match> in @B; b.warn reaches stdout.
    assert!(t.contains("DROPPED: no <match> in label @B takes b.(warn|err) except b.warn"), "{t}");
    assert!(t.contains("undeliverable → secondary secondary_file"), "{t}");
    assert!(t.contains("without ex."), "{t}");
    let dropped = t.split("Tags that reach no output (dropped):").nth(1).expect("section");
    assert_eq!(dropped.matches("b.(warn|err) except b.warn").count(), 1, "listed once: {t}");
    let strict = sluice(&p, &["explain", "--pii", "--strict"]);
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict));
}
