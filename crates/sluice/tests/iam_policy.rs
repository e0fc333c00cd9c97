//! `sluice iam-policy`: the policy checked against IAM's documented grammar, created in moto's IAM (which
//! rejects malformed documents as AWS does) and evaluated for what it allows and what it must not.
mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sluice(conf: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("iam-policy")
        .arg("-c")
        .arg(conf)
        .args(args)
        .env("GCP_PROJECT_ID", "test-project")
        .env("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T000/B000/XXXXXXXX")
        .env("SLUICE_LOG", "error")
        .output()
        .expect("run sluice")
}

/// IAM's policy grammar (docs: "Grammar of the IAM JSON policy language"), for what we emit.
fn check_grammar(p: &Value) -> Result<(), String> {
    let obj = p.as_object().ok_or("the policy is not an object")?;
    for k in obj.keys() {
        if !["Version", "Id", "Statement"].contains(&k.as_str()) {
            return Err(format!("unknown top-level element {k}"));
        }
    }
    if p["Version"] != "2012-10-17" {
        return Err("Version must be 2012-10-17".into());
    }
    let st = p["Statement"].as_array().ok_or("Statement must be an array")?;
    if st.is_empty() {
        return Err("no statement".into());
    }
    let mut sids = std::collections::HashSet::new();
    for s in st {
        let s = s.as_object().ok_or("a statement is not an object")?;
        for k in s.keys() {
            if !["Sid", "Effect", "Action", "Resource", "Condition"].contains(&k.as_str()) {
                return Err(format!("unknown statement element {k}"));
            }
        }
        if let Some(sid) = s.get("Sid") {
            let sid = sid.as_str().ok_or("Sid is not a string")?;
            if sid.is_empty() || !sid.chars().all(|c| c.is_ascii_alphanumeric()) || !sids.insert(sid.to_string()) {
                return Err(format!("bad or repeated Sid {sid:?}"));
            }
        }
        if !matches!(s.get("Effect").and_then(Value::as_str), Some("Allow" | "Deny")) {
            return Err("Effect must be Allow or Deny".into());
        }
        let list = |k: &str| -> Result<Vec<String>, String> {
            match s.get(k) {
                Some(Value::String(x)) => Ok(vec![x.clone()]),
                Some(Value::Array(a)) if !a.is_empty() => {
                    a.iter().map(|v| v.as_str().map(str::to_string).ok_or(format!("{k}: not a string"))).collect()
                }
                _ => Err(format!("{k} must be a string or a non-empty array")),
            }
        };
        for a in list("Action")? {
            let (svc, name) = a.split_once(':').ok_or(format!("action {a} has no service prefix"))?;
            let ok_svc =
                !svc.is_empty() && svc.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            let ok_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '*');
            if !ok_svc || !ok_name {
                return Err(format!("malformed action {a}"));
            }
        }
        for r in list("Resource")? {
            check_arn(&r)?;
        }
        if let Some(c) = s.get("Condition") {
            let c = c.as_object().ok_or("Condition is not an object")?;
            for (op, kv) in c {
                if !["StringEquals", "StringLike", "ArnLike", "ArnEquals"].contains(&op.as_str()) || !kv.is_object() {
                    return Err(format!("unexpected condition {op}"));
                }
            }
        }
    }
    Ok(())
}

/// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`; S3 has no region or account. CloudFormation's
/// placeholders stand for a region and an account.
fn check_arn(r: &str) -> Result<(), String> {
    if r == "*" {
        return Ok(());
    }
    let r2 = r.replace("${AWS::Region}", "us-east-1").replace("${AWS::AccountId}", "123456789012");
    let parts: Vec<&str> = r2.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts.as_slice() else {
        return Err(format!("{r}: not an ARN"));
    };
    if *arn != "arn"
        || !["aws", "aws-cn", "aws-us-gov"].contains(partition)
        || service.is_empty()
        || resource.is_empty()
    {
        return Err(format!("{r}: malformed ARN"));
    }
    let regional = *service != "s3";
    let region_ok = if regional {
        region.split('-').count() >= 3
            && region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    } else {
        region.is_empty()
    };
    let account_ok =
        if regional { account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()) } else { account.is_empty() };
    if !region_ok || !account_ok {
        return Err(format!("{r}: bad region or account"));
    }
    Ok(())
}

/// Create the policy in moto's IAM and evaluate `allow`/`deny` cases; None when moto is missing.
fn moto_check(policy: &str, allow: &[(&str, &str)], deny: &[(&str, &str)]) -> Option<String> {
    let py = common::python();
    if Command::new(&py).args(["-c", "import moto, boto3"]).output().map(|o| !o.status.success()).unwrap_or(true) {
        eprintln!("SKIPPED: moto is not installed for {} (scripts/test.sh installs it)", py.display());
        return None;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let pf = dir.path().join("policy.json");
    std::fs::write(&pf, policy).expect("write");
    let cf = dir.path().join("cases.json");
    let cases = serde_json::json!({"allow": allow, "deny": deny});
    std::fs::write(&cf, cases.to_string()).expect("write");
    let out =
        Command::new(&py).arg(common::script("iam_check.py")).arg(&pf).arg(&cf).output().expect("run iam_check.py");
    Some(format!(
        "{}{}{}",
        if out.status.success() { "" } else { "FAILED " },
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

#[test]
fn reference_config_needs_put_records_on_its_stream_only() {
    let conf = common::workspace_root().join("examples/kubernetes/fluent.conf");
    let out = sluice(&conf, &["--account-id", "123456789012"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let p: Value = serde_json::from_str(&stdout).expect("the policy is JSON");
    check_grammar(&p).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let stream = "arn:aws:kinesis:ap-northeast-2:123456789012:stream/application1-pii";
    if let Some(r) = moto_check(
        &stdout,
        &[("kinesis:PutRecords", stream)],
        &[
            ("kinesis:PutRecords", "arn:aws:kinesis:ap-northeast-2:123456789012:stream/other"),
            ("kinesis:DescribeStream", stream),
            ("kinesis:PutRecord", stream),
            ("firehose:PutRecordBatch", "arn:aws:firehose:ap-northeast-2:123456789012:deliverystream/x"),
        ],
    ) {
        assert!(r.starts_with("ok"), "{r}");
    }
    // The Cloud Logging output's role is named on stderr; --gcp prints it.
    assert!(String::from_utf8_lossy(&out.stderr).contains("roles/logging.logWriter"));
    let gcp = sluice(&conf, &["--gcp"]);
    let g = String::from_utf8_lossy(&gcp.stdout);
    assert!(g.contains("roles/logging.logWriter on project test-project for out_cloud_logging"), "{g}");
}

fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let p = dir.path().join("f.conf");
    std::fs::write(&p, text).expect("write");
    p
}

const ALL_AWS: &str = r#"
<source>
  @type sample
  tag app
</source>
<match app>
  @type copy
  <store>
    @type s3
    @id out_s3
    s3_bucket raw-logs
    s3_region eu-west-1
    path logs/app/
    s3_object_key_format %{path}%Y/%m/%d/${tag}_%{index}.%{file_extension}
    use_server_side_encryption aws:kms
    ssekms_key_id 1234abcd-12ab-34cd-56ef-1234567890ab
    <buffer tag,time>
      timekey 3600
      path /tmp/sluice-iam-test/s3
    </buffer>
  </store>
  <store>
    @type kinesis_firehose
    @id out_firehose
    delivery_stream_name to-s3
    region eu-west-1
  </store>
  <store>
    @type cloudwatch_logs
    @id out_cw
    region eu-west-1
    log_group_name /app/logs
    log_stream_name node-1
    auto_create_stream true
    retention_in_days 7
  </store>
  <store>
    @type cloudwatch_logs
    @id out_cw_fixed
    region eu-west-1
    log_group_name /fixed
    log_stream_name s
  </store>
</match>
"#;

#[test]
fn every_aws_output_gets_exactly_the_calls_its_plugin_makes() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = write(&dir, ALL_AWS);
    let out = sluice(&conf, &["--account-id", "111122223333"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let p: Value = serde_json::from_str(&stdout).expect("JSON");
    check_grammar(&p).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let acct = "111122223333";
    let obj = "arn:aws:s3:::raw-logs/logs/app/2024/05/01/app_0.gz";
    let key = format!("arn:aws:kms:eu-west-1:{acct}:key/1234abcd-12ab-34cd-56ef-1234567890ab");
    let cw = format!("arn:aws:logs:eu-west-1:{acct}:log-group:/app/logs");
    let cw_stream = format!("{cw}:log-stream:node-1");
    let fixed = format!("arn:aws:logs:eu-west-1:{acct}:log-group:/fixed");
    let allow = [
        ("s3:PutObject", obj),
        ("s3:GetObject", obj),
        ("s3:AbortMultipartUpload", obj),
        ("s3:ListBucket", "arn:aws:s3:::raw-logs"),
        ("s3:CreateBucket", "arn:aws:s3:::raw-logs"),
        ("kms:GenerateDataKey", key.as_str()),
        ("firehose:PutRecordBatch", &format!("arn:aws:firehose:eu-west-1:{acct}:deliverystream/to-s3")),
        ("logs:PutLogEvents", cw_stream.as_str()),
        ("logs:CreateLogStream", cw_stream.as_str()),
        ("logs:CreateLogGroup", cw.as_str()),
        ("logs:PutRetentionPolicy", cw.as_str()),
        ("logs:PutLogEvents", &format!("{fixed}:log-stream:s")),
    ];
    let deny = [
        ("s3:PutObject", "arn:aws:s3:::raw-logs/other/prefix.gz"),
        ("s3:PutObject", "arn:aws:s3:::other-bucket/logs/app/x"),
        ("s3:DeleteObject", obj),
        ("kms:GenerateDataKey", &format!("arn:aws:kms:eu-west-1:{acct}:key/other")),
        ("logs:CreateLogStream", &format!("{fixed}:log-stream:s")),
        ("logs:CreateLogGroup", fixed.as_str()),
        ("logs:DescribeLogStreams", cw.as_str()),
        ("logs:PutLogEvents", &format!("arn:aws:logs:eu-west-1:{acct}:log-group:/other:log-stream:x")),
    ];
    let allow: Vec<(&str, &str)> = allow.iter().map(|(a, r)| (*a, *r)).collect();
    let deny: Vec<(&str, &str)> = deny.iter().map(|(a, r)| (*a, *r)).collect();
    if let Some(r) = moto_check(&stdout, &allow, &deny) {
        assert!(r.starts_with("ok"), "{r}\n{stdout}");
    }
}

#[test]
fn missing_region_and_account_become_placeholders_and_bucket_checks_follow_the_flags() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = write(
        &dir,
        "<source>\n  @type sample\n  tag a\n</source>\n<match a>\n  @type copy\n  <store>\n    @type kinesis_streams\n    stream_name s1\n  </store>\n  <store>\n    @type s3\n    s3_bucket b\n    check_bucket false\n    check_object false\n    s3_object_key_format %{path}%{uuid_flush}.gz\n    <buffer>\n      path /tmp/sluice-iam-test/s3b\n    </buffer>\n  </store>\n</match>\n",
    );
    let out = sluice(&conf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let p: Value = serde_json::from_str(&stdout).expect("JSON");
    check_grammar(&p).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(stdout.contains("arn:aws:kinesis:${AWS::Region}:${AWS::AccountId}:stream/s1"), "{stdout}");
    assert!(!stdout.contains("s3:ListBucket") && !stdout.contains("s3:GetObject"), "{stdout}");
    assert!(stdout.contains("arn:aws:s3:::b/*.gz"), "{stdout}");
    // With the placeholders filled in, moto accepts it.
    let filled = sluice(&conf, &["--region", "us-west-2", "--account-id", "123456789012"]);
    let f = String::from_utf8_lossy(&filled.stdout).to_string();
    if let Some(r) = moto_check(
        &f,
        &[
            ("kinesis:PutRecords", "arn:aws:kinesis:us-west-2:123456789012:stream/s1"),
            ("s3:PutObject", "arn:aws:s3:::b/x.gz"),
        ],
        &[("s3:PutObject", "arn:aws:s3:::b/x.json")],
    ) {
        assert!(r.starts_with("ok"), "{r}");
    }
}

#[test]
fn no_aws_output_prints_no_policy() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = write(&dir, "<source>\n  @type sample\n  tag a\n</source>\n<match a>\n  @type stdout\n</match>\n");
    let out = sluice(&conf, &[]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no AWS output"));
}
