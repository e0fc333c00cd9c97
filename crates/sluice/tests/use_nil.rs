//! Fluentd's `"#{use_nil}"` as a user meets it, in both configuration syntaxes: `--dry-run` refuses nil
//! where Fluentd does ("'x' parameter is required but nil is specified", at the file and line), takes it
//! where the parameter's default is nil, warns about a misspelt one; and a running pipeline writes the
//! `<record>` field of record_transformer as null.
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

/// The same configuration in Fluentd syntax and in YAML, with the lines where nil is refused:
/// a required parameter, one with a default read by a typed getter, one read as a plain string, and
/// one moved by the v0.12 compatibility conversion into the `<format>` it builds (in YAML written as
/// an empty value, which is nil too).
fn refused_configs(out: &Path) -> [(&'static str, String, [u32; 5]); 2] {
    let out = out.display();
    let conf = format!(
        r##"<source>
  @type sample
  tag "#{{use_nil}}"
</source>
<source>
  @type sample
  tag ok
  rate "#{{use_nil}}"
</source>
<filter ok>
  @type record_transformer
  renew_time_key "#{{use_nil}}"
</filter>
<match ok>
  @type file
  path {out}/app
  path_suffix "#{{use_nil}}"
  flush_intervl "#{{use_nil}}"
</match>
<match other>
  @type file
  path {out}/other
  format ltsv
  delimiter "#{{use_nil}}"
</match>
"##
    );
    let yaml = format!(
        r##"config:
  - source:
      $type: sample
      tag: !fluent/s "#{{use_nil}}"
  - source:
      $type: sample
      tag: ok
      rate: !fluent/s "#{{use_nil}}"
  - filter:
      $tag: ok
      $type: record_transformer
      renew_time_key: !fluent/s "#{{use_nil}}"
  - match:
      $tag: ok
      $type: file
      path: {out}/app
      path_suffix: !fluent/s "#{{use_nil}}"
      flush_intervl: !fluent/s "#{{use_nil}}"
  - match:
      $tag: other
      $type: file
      path: {out}/other
      format: ltsv
      delimiter:
"##
    );
    // tag, rate, path_suffix, delimiter (errors) and flush_intervl (warning) lines.
    [("fluent.conf", conf, [3, 8, 17, 24, 18]), ("fluent.yaml", yaml, [4, 8, 17, 24, 18])]
}

#[test]
fn dry_run_refuses_nil_where_fluentd_does_in_both_syntaxes() {
    let dir = tempfile::tempdir().expect("tmp");
    for (name, text, [tag, rate, suffix, delimiter, typo]) in refused_configs(&dir.path().join("out")) {
        let conf = write(dir.path(), name, &text);
        let out = sluice().arg("-c").arg(&conf).arg("--dry-run").env("SLUICE_LOG", "warn").output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: {err}");
        let at = |line: u32, key: &str| {
            format!("{}:{line}: '{key}' parameter is required but nil is specified", conf.display())
        };
        for (line, key) in [(tag, "tag"), (rate, "rate"), (suffix, "path_suffix"), (delimiter, "delimiter")] {
            assert!(err.contains(&at(line, key)), "{name}: no error for {key} at line {line}:\n{err}");
        }
        assert!(err.contains("4 error(s)"), "{name}: renew_time_key (default nil) must be accepted:\n{err}");
        assert!(
            err.contains(&format!("{}:{typo}: parameter 'flush_intervl' in <match ok> is not used", conf.display())),
            "{name}: {err}"
        );
    }
}

/// Run `conf` until the file output has a line, then stop sluice; the first record written.
fn first_record(conf: &Path, out_dir: &Path) -> serde_json::Value {
    let mut cmd = sluice();
    cmd.arg("-c").arg(conf).env_remove("SLUICE_USE_NIL_T_UNSET");
    let (line, out) = common::run_until_first_line(cmd, out_dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

#[test]
fn record_transformer_writes_a_nil_field_as_null_in_both_syntaxes() {
    let dir = tempfile::tempdir().expect("tmp");
    let buffer = "flush_mode immediate";
    for (i, name) in ["fluent.conf", "fluent.yaml"].into_iter().enumerate() {
        let out_dir = dir.path().join(format!("out{i}"));
        let out = out_dir.display();
        let text = if name.ends_with(".conf") {
            format!(
                r##"<source>
  @type sample
  tag demo
  rate 20
  sample {{"message":"hello","level":"info"}}
</source>
<filter demo>
  @type record_transformer
  <record>
    level "#{{use_nil}}"
    region "#{{ENV['SLUICE_USE_NIL_T_UNSET'] || use_nil}}"
    skipped "#{{use_default}}"
  </record>
</filter>
<match demo>
  @type file
  path {out}/app
  append true
  <format>
    @type json
  </format>
  <buffer>
    {buffer}
  </buffer>
</match>
"##
            )
        } else {
            format!(
                r##"config:
  - source:
      $type: sample
      tag: demo
      rate: 20
      sample: '{{"message":"hello","level":"info"}}'
  - filter:
      $tag: demo
      $type: record_transformer
      record:
        level: !fluent/s "#{{use_nil}}"
        region: !fluent/s "#{{ENV['SLUICE_USE_NIL_T_UNSET'] || use_nil}}"
        skipped: !fluent/s "#{{use_default}}"
  - match:
      $tag: demo
      $type: file
      path: {out}/app
      append: true
      format:
        $type: json
      buffer:
        flush_mode: immediate
"##
            )
        };
        let conf = write(dir.path(), name, &text);
        let record = first_record(&conf, &out_dir);
        assert_eq!(record, serde_json::json!({"message": "hello", "level": null, "region": null}), "{name}");
    }
}
