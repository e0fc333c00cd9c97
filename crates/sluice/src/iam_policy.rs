//! `sluice iam-policy`: the least-privilege AWS IAM policy for the configured AWS outputs, and the GCP
//! role for `google_cloud`. Each action listed is one our plugin calls (crates/sluice-aws), and only under
//! the settings that make it call it; resources are as narrow as the configuration says.
use serde_json::{json, Map, Value};
use sluice_core::config::Element;

/// Values the configuration leaves open (no region, never an account id).
pub struct Fill {
    pub region: Option<String>,
    pub account: Option<String>,
}

/// CloudFormation's pseudo-parameters: what to substitute is obvious to anyone deploying the policy.
pub const REGION_PLACEHOLDER: &str = "${AWS::Region}";
pub const ACCOUNT_PLACEHOLDER: &str = "${AWS::AccountId}";

/// Every output directive (`<match>`, copy `<store>`, `<secondary>`), in file order.
pub fn outputs(root: &Element) -> Vec<&Element> {
    fn walk<'a>(el: &'a Element, out: &mut Vec<&'a Element>) {
        for c in &el.children {
            match c.name.as_str() {
                "match" | "store" | "secondary" => {
                    out.push(c);
                    walk(c, out);
                }
                "label" => walk(c, out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out
}

/// Placeholders (`${tag}`, `%{index}`, `%Y`...) become `*`, IAM's wildcard.
pub fn wildcard(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let open = rest.strip_prefix("${").or_else(|| rest.strip_prefix("%{"));
        if let Some(after) = open {
            if let Some(end) = after.find('}') {
                push_star(&mut out);
                rest = &after[end + 1..];
                continue;
            }
        }
        if c == '%' {
            if let Some(n) = rest[1..].chars().next().filter(|n| n.is_ascii_alphabetic() || *n == '-') {
                push_star(&mut out);
                let skip = if n == '-' { rest[2..].chars().next().map_or(0, char::len_utf8) + 2 } else { 2 };
                rest = rest.get(skip..).unwrap_or("");
                continue;
            }
        }
        if c == '*' {
            push_star(&mut out);
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn push_star(out: &mut String) {
    if !out.ends_with('*') {
        out.push('*');
    }
}

fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

struct Ctx {
    region: String,
    account: String,
    partition: &'static str,
}

fn ctx_for(el: &Element, region_key: &str, fill: &Fill) -> Ctx {
    let region = el
        .get(region_key)
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .or_else(|| fill.region.clone())
        .unwrap_or_else(|| REGION_PLACEHOLDER.to_string());
    let account = fill.account.clone().unwrap_or_else(|| ACCOUNT_PLACEHOLDER.to_string());
    Ctx { partition: partition(&region), region, account }
}

/// A `Sid`: letters and digits only, as IAM requires.
fn sid(parts: &[&str]) -> String {
    parts
        .iter()
        .flat_map(|p| {
            let mut up = true;
            p.chars().filter_map(move |c| {
                if c.is_ascii_alphanumeric() {
                    let c = if up { c.to_ascii_uppercase() } else { c };
                    up = false;
                    Some(c)
                } else {
                    up = true;
                    None
                }
            })
        })
        .collect()
}

fn statement(sid: String, actions: &[&str], resources: Vec<String>, condition: Option<Value>) -> Value {
    let mut m = Map::new();
    m.insert("Sid".into(), json!(sid));
    m.insert("Effect".into(), json!("Allow"));
    m.insert("Action".into(), json!(actions));
    m.insert("Resource".into(), json!(resources));
    if let Some(c) = condition {
        m.insert("Condition".into(), c);
    }
    Value::Object(m)
}

fn name_of(el: &Element, n: usize) -> String {
    el.plugin_id().map(str::to_string).unwrap_or_else(|| format!("{}{n}", el.plugin_type().unwrap_or("")))
}

/// The statements one output needs (none for a non-AWS output).
fn statements_for(el: &Element, n: usize, fill: &Fill) -> Vec<Value> {
    let plugin = el.plugin_type().unwrap_or("");
    let id = name_of(el, n);
    let mut out = Vec::new();
    match plugin {
        "kinesis_streams" => {
            let c = ctx_for(el, "region", fill);
            let stream = wildcard(el.get("stream_name").unwrap_or("*").trim());
            // Our plugin calls PutRecords only (no DescribeStream).
            let arn = format!("arn:{}:kinesis:{}:{}:stream/{stream}", c.partition, c.region, c.account);
            out.push(statement(sid(&["kinesis", &id]), &["kinesis:PutRecords"], vec![arn], None));
        }
        "kinesis_firehose" => {
            let c = ctx_for(el, "region", fill);
            let stream = wildcard(el.get("delivery_stream_name").unwrap_or("*").trim());
            let arn = format!("arn:{}:firehose:{}:{}:deliverystream/{stream}", c.partition, c.region, c.account);
            out.push(statement(sid(&["firehose", &id]), &["firehose:PutRecordBatch"], vec![arn], None));
        }
        "s3" => out.extend(s3(el, &id, fill)),
        "cloudwatch_logs" => out.extend(cloudwatch_logs(el, &id, fill)),
        _ => {}
    }
    if out.is_empty() {
        return out;
    }
    // With a role to assume, the node's own identity needs to assume it (the statements above then
    // belong on that role).
    let role = el
        .section("assume_role_credentials")
        .and_then(|a| a.get("role_arn"))
        .or_else(|| el.get("aws_sts_role_arn").filter(|_| el.bool_or("aws_use_sts", false).unwrap_or(false)));
    if let Some(r) = role.map(str::trim).filter(|r| !r.is_empty()) {
        out.push(statement(sid(&["assume", &id]), &["sts:AssumeRole"], vec![r.to_string()], None));
    }
    out
}

fn s3(el: &Element, id: &str, fill: &Fill) -> Vec<Value> {
    let c = ctx_for(el, "s3_region", fill);
    let bucket = wildcard(el.get("s3_bucket").unwrap_or("*").trim());
    let format = el.get("s3_object_key_format").unwrap_or("%{path}%{time_slice}_%{index}.%{file_extension}");
    let key = wildcard(&format.replace("%{path}", el.get("path").unwrap_or("")));
    let bucket_arn = format!("arn:{}:s3:::{bucket}", c.partition);
    let objects = format!("{bucket_arn}/{key}");
    let flag = |k: &str, d: bool| el.bool_or(k, d).unwrap_or(d);
    let mut out = Vec::new();
    // PutObject covers CreateMultipartUpload, UploadPart and CompleteMultipartUpload; a failed multipart
    // upload is aborted; check_object asks HeadObject (s3:GetObject) whether the key is taken; an `acl`
    // is set on the object (PutObjectAcl).
    let mut actions = vec!["s3:PutObject", "s3:AbortMultipartUpload"];
    if flag("check_object", true) {
        actions.push("s3:GetObject");
    }
    if el.get("acl").is_some_and(|a| !a.trim().is_empty()) {
        actions.push("s3:PutObjectAcl");
    }
    out.push(statement(sid(&["s3", "objects", id]), &actions, vec![objects], None));
    // check_bucket asks HeadBucket (s3:ListBucket) and, with auto_create_bucket, creates a missing bucket.
    if flag("check_bucket", true) {
        let mut actions = vec!["s3:ListBucket"];
        if flag("auto_create_bucket", true) {
            actions.push("s3:CreateBucket");
        }
        out.push(statement(sid(&["s3", "bucket", id]), &actions, vec![bucket_arn], None));
    }
    let sse = el.get("use_server_side_encryption").map(str::trim).unwrap_or("");
    let kms_key = el.get("ssekms_key_id").map(str::trim).filter(|k| !k.is_empty());
    if sse == "aws:kms" || sse == "aws:kms:dsse" || kms_key.is_some() {
        // SSE-KMS: S3 asks KMS for a data key on every put; a multipart upload also decrypts it.
        let actions = ["kms:GenerateDataKey", "kms:Decrypt"];
        let via = json!({"StringEquals": {"kms:ViaService": format!("s3.{}.amazonaws.com", c.region)}});
        let (resource, cond) = match kms_key {
            Some(k) if k.starts_with("arn:") => (k.to_string(), None),
            Some(k) if k.starts_with("alias/") => (
                format!("arn:{}:kms:{}:{}:key/*", c.partition, c.region, c.account),
                Some(
                    json!({"StringEquals": {"kms:RequestAlias": k, "kms:ViaService": format!("s3.{}.amazonaws.com", c.region)}}),
                ),
            ),
            Some(k) => (format!("arn:{}:kms:{}:{}:key/{k}", c.partition, c.region, c.account), None),
            // The AWS managed key aws/s3: any key of the account, only through S3.
            None => (format!("arn:{}:kms:{}:{}:key/*", c.partition, c.region, c.account), Some(via)),
        };
        out.push(statement(sid(&["kms", id]), &actions, vec![resource], cond));
    }
    out
}

fn cloudwatch_logs(el: &Element, id: &str, fill: &Fill) -> Vec<Value> {
    let c = ctx_for(el, "region", fill);
    let name = |what: &str| -> String {
        match el.get(&format!("log_{what}_name")) {
            Some(n) if !n.trim().is_empty() => wildcard(n.trim()),
            // From the tag or a record field: any name.
            _ => "*".to_string(),
        }
    };
    let (group, stream) = (name("group"), name("stream"));
    let group_arn = format!("arn:{}:logs:{}:{}:log-group:{group}", c.partition, c.region, c.account);
    let stream_arn = format!("{group_arn}:log-stream:{stream}");
    let mut out = vec![];
    let auto = el.bool_or("auto_create_stream", false).unwrap_or(false);
    if auto {
        out.push(statement(
            sid(&["logs", "streams", id]),
            &["logs:PutLogEvents", "logs:CreateLogStream"],
            vec![stream_arn],
            None,
        ));
        let mut actions = vec!["logs:CreateLogGroup"];
        if el.has("retention_in_days") || el.has("retention_in_days_key") {
            actions.push("logs:PutRetentionPolicy");
        }
        if el.has("log_group_aws_tags") || el.has("log_group_aws_tags_key") {
            actions.push("logs:TagResource");
        }
        out.push(statement(sid(&["logs", "groups", id]), &actions, vec![group_arn], None));
    } else {
        out.push(statement(sid(&["logs", id]), &["logs:PutLogEvents"], vec![stream_arn], None));
    }
    out
}

/// The policy document; None when no output talks to AWS.
pub fn aws_policy(root: &Element, fill: &Fill) -> Option<Value> {
    let statements: Vec<Value> =
        outputs(root).into_iter().enumerate().flat_map(|(i, el)| statements_for(el, i + 1, fill)).collect();
    if statements.is_empty() {
        return None;
    }
    Some(json!({"Version": "2012-10-17", "Statement": statements}))
}

/// One line per `google_cloud` output: the role its service account needs.
pub fn gcp_roles(root: &Element) -> Vec<String> {
    outputs(root)
        .into_iter()
        .filter(|el| el.plugin_type() == Some("google_cloud"))
        .map(|el| {
            let project = el
                .get("project_id")
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .unwrap_or("PROJECT_ID (the credentials' project)");
            format!(
                "roles/logging.logWriter on project {project} for {} ({})",
                el.plugin_id().unwrap_or("google_cloud"),
                el.loc
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_one_wildcard() {
        assert_eq!(wildcard("logs/%Y/%m/%d/${tag}_%{index}.%{file_extension}"), "logs/*/*/*/*_*.*");
        assert_eq!(wildcard("plain-name"), "plain-name");
        assert_eq!(wildcard("a%-db"), "a*b");
        assert_eq!(wildcard("100%"), "100%");
        assert_eq!(sid(&["s3", "objects", "out_s3-1"]), "S3ObjectsOutS31");
    }
}
