//! `sluice test`: configuration unit tests in Fluentd syntax, run against the reference configuration
//! without network: passing tests, failing ones (differences reported, exit 1) and a wrong test file.
mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

fn run(tests: &str) -> Output {
    let dir = tempfile::tempdir().expect("tmp");
    let t = dir.path().join("tests.conf");
    std::fs::write(&t, tests).expect("write tests");
    let conf: PathBuf = common::workspace_root().join("examples/kubernetes/fluent.conf");
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("test")
        .arg("-c")
        .arg(conf)
        .arg(&t)
        .env("GCP_PROJECT_ID", "test-project")
        .env("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T000/B000/XXXXXXXX")
        // Nothing may be written or sent: point the state at a directory that stays empty.
        .env("SLUICE_STATE_DIR", dir.path().join("state"))
        .env("KINESIS_ENDPOINT", "http://127.0.0.1:9")
        .env("SLUICE_LOG", "error")
        .output()
        .expect("run sluice")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

const PASSING: &str = r#"
<test personal_data_is_masked_before_kinesis>
  <input>
    source in_application1
    tag kube.var.log.containers.app-1_production_application1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.log
    <event>
      time 2024-05-01T10:00:00Z
      record {"category":"payment","level":"INFO","message":"card 4111 1111 1111 1111 by kim@example.com","trace_id":"t-1"}
    </event>
  </input>
  <output out_kinesis>
    <record>
      tag pii.payment
      <field message>
        matches /^card \S+ by \S+$/
      </field>
      <field trace_id>
        equals t-1
      </field>
      <field $.kubernetes.pod_name>
        equals app-1
      </field>
    </record>
  </output>
  <output out_cloud_logging>
    count 0
  </output>
</test>

<test a_failed_payment_goes_both_ways_and_fatal_reaches_slack>
  <input>
    tag kube.var.log.containers.app-1_production_application1-abc.log
    record {"category":"payment","level":"FATAL","message":"declined for 010-1234-5678"}
  </input>
  <output out_kinesis>
    count 1
  </output>
  <output out_cloud_logging>
    <record>
      tag error.FATAL
      <field message>
        matches /^declined for /
      </field>
    </record>
  </output>
  <output out_slack>
    count 1
  </output>
</test>

<test info_without_personal_data_goes_nowhere>
  <input>
    source in_application1
    tag kube.var.log.containers.app-1_production_application1-abc.log
    record {"category":"health","level":"INFO","message":"ok"}
  </input>
  <output out_kinesis>
    count 0
  </output>
  <output out_cloud_logging>
    count 0
  </output>
  <output out_slack>
    count 0
  </output>
</test>
"#;

#[test]
fn passing_tests_pass() {
    let out = run(PASSING);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("test personal_data_is_masked_before_kinesis: ok"), "{t}");
    assert!(t.contains("3 passed, 0 failed"), "{t}");
}

#[test]
fn failing_tests_report_each_difference_and_exit_1() {
    let out = run(r#"
<test expects_raw_email>
  <input>
    tag kube.var.log.containers.a_production_application1-x.log
    record {"category":"signup","level":"INFO","email":"kim@example.com","message":"hi"}
  </input>
  <output out_kinesis>
    <record>
      tag pii.payment
      <field email>
        equals kim@example.com
      </field>
      <field message>
        absent true
      </field>
    </record>
  </output>
  <output out_slack>
    count 1
  </output>
</test>
<test still_fine>
  <input>
    tag kube.a
    record {"level":"ERROR","message":"x"}
  </input>
  <output out_cloud_logging>
    <record>
      json {"level":"ERROR","message":"x"}
    </record>
  </output>
</test>
"#);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("test expects_raw_email: FAILED"), "{t}");
    assert!(t.contains("record 1: tag is \"pii.signup\", expected \"pii.payment\""), "{t}");
    // The mask did its job, so the raw address is not there (and not echoed back from the record).
    assert!(t.contains("email is") && t.contains("expected kim@example.com"), "{t}");
    assert!(t.contains("message is \"hi\", expected absent"), "{t}");
    assert!(t.contains("output out_slack: expected 1 record(s), got 0"), "{t}");
    assert!(t.contains("test still_fine: ok"), "{t}");
    assert!(t.contains("1 passed, 1 failed"), "{t}");
}

#[test]
fn a_wrong_test_file_is_an_error_with_its_line() {
    let out = run("<test t>\n  <input>\n    tag a\n    record {\"a\":1}\n  </input>\n  <output no_such_output>\n    count 1\n  </output>\n</test>\n");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("tests.conf:6: no output with @id \"no_such_output\""), "{t}");
    let out = run("<test t>\n  <input>\n    source in_application1\n    record {\"a\":1}\n  </input>\n</test>\n");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("give 'tag TAG' in <input>"), "{t}");
    let out = run("<test t>\n  <input>\n    tag a\n    record not json\n  </input>\n</test>\n");
    assert!(text(&out).contains("'record' is not a JSON object"), "{}", text(&out));
}
