//! `sluice -c fluent.yaml` as with Fluentd: the YAML format is chosen by the file's extension, checked
//! by `--dry-run` with errors naming the YAML file and line, and run for real.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write config");
    p
}

#[test]
fn dry_run_accepts_a_yaml_config() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = write(
        dir.path(),
        "fluent.yaml",
        "system:\n  log_level: warn\nconfig:\n  - source:\n      $type: sample\n      tag: demo\n  - label:\n      $name: '@OUT'\n      config:\n        - match:\n            $tag: '**'\n            $type: stdout\n  - match:\n      $tag: demo\n      $type: relabel\n      $label: '@OUT'\n",
    );
    let out = sluice().arg("-c").arg(&conf).arg("--dry-run").output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("is valid"));
}

#[test]
fn dry_run_errors_name_the_yaml_file_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = |c: &Path| c.display().to_string();
    // Plugin-level errors: the source at line 2 lacks its required `tag`; line 6 names no real output.
    let conf = write(
        dir.path(),
        "plugin.yaml",
        "config:\n  - source:\n      $type: sample\n  - match:\n      $tag: '**'\n      $type: no_such_output\n",
    );
    let out = sluice().arg("-c").arg(&conf).arg("--dry-run").output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:2: 'tag' parameter is required", path(&conf))), "{err}");
    // Pointed at the `$type:` line, as the Fluentd-syntax error points at `@type`.
    assert!(err.contains(&format!("{}:6: unknown output plugin 'no_such_output'", path(&conf))), "{err}");
    // A YAML syntax error.
    let conf = write(dir.path(), "syntax.yml", "config:\n  - match:\n      $tag: '**\n      $type: stdout\n");
    let out = sluice().arg("-c").arg(&conf).arg("--dry-run").output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:", path(&conf))) && err.contains("invalid YAML"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn runs_a_yaml_config_from_sample_to_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let out_dir = dir.path().join("out");
    let conf = write(
        dir.path(),
        "fluent.yaml",
        &format!(
            r##"config:
  - source:
      $type: sample
      tag: demo.yaml
      rate: 20
      sample: '{{"message":"hello from yaml"}}'
  - filter:
      $tag: demo.**
      $type: record_transformer
      record:
        env: !fluent/s "#{{ENV['SLUICE_YAML_E2E']}}"
  - match:
      $tag: demo.**
      $type: file
      path: {}/app
      append: true
      format:
        $type: json
      buffer:
        $arg: time
        $type: memory
        timekey: 1d
        flush_mode: immediate
"##,
            out_dir.display()
        ),
    );
    let mut cmd = sluice();
    cmd.arg("-c").arg(&conf).env("SLUICE_YAML_E2E", "prod");
    let (line, out) = common::run_until_first_line(cmd, &out_dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let record: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    assert_eq!(record, serde_json::json!({"message": "hello from yaml", "env": "prod"}), "{line}");
    assert!(out.status.success(), "{stderr}");
}
