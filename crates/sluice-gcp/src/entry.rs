//! One Fluentd event to one `LogEntry` (REST JSON form), as fluent-plugin-google-cloud builds it.
use crate::resource::{resource_for, Platform, Resource, TagMatcher};
use crate::severity::{parse_severity, SEVERITY_KEYS};
use chrono::{DateTime, Utc};
use serde_json::{Map as JMap, Value as J};
use sluice_core::event::{parse_json_map, write_json_map_with, write_json_str, EventTime, Map, NonFinite, Value};
use sluice_core::timefmt::TimeFormatter;
use std::sync::LazyLock;

/// Record keys lifted into LogEntry fields (the plugin's `*_key` parameters and their defaults).
#[derive(Debug, Clone)]
pub struct SpecialKeys {
    pub http_request: String,
    pub operation: String,
    pub source_location: String,
    pub trace: String,
    pub span_id: String,
    pub insert_id: String,
    pub labels: String,
    pub trace_sampled: String,
}

impl Default for SpecialKeys {
    fn default() -> Self {
        Self {
            http_request: "httpRequest".into(),
            operation: "logging.googleapis.com/operation".into(),
            source_location: "logging.googleapis.com/sourceLocation".into(),
            trace: "logging.googleapis.com/trace".into(),
            span_id: "logging.googleapis.com/spanId".into(),
            insert_id: "logging.googleapis.com/insertId".into(),
            labels: "logging.googleapis.com/labels".into(),
            trace_sampled: "logging.googleapis.com/trace_sampled".into(),
        }
    }
}

/// Everything the mapping needs besides the event.
#[derive(Debug, Clone)]
pub struct EntryOptions {
    pub keys: SpecialKeys,
    /// `labels`: added to every entry.
    pub labels: Vec<(String, String)>,
    /// `label_map`: record field -> label name; the field leaves the payload.
    pub label_map: Vec<(String, String)>,
    pub detect_json: bool,
    pub autoformat_stackdriver_trace: bool,
    pub adjust_invalid_timestamps: bool,
    pub require_valid_tags: bool,
    pub matcher: TagMatcher,
}

/// A mapped entry, plus what request-level grouping needs. It is written as JSON directly (a JSON value
/// tree per entry, with a hash map per object, was most of the output's cost).
#[derive(Debug, Clone)]
pub struct BuiltEntry {
    pub log_name: String,
    pub resource: Resource,
    timestamp: String,
    severity: &'static str,
    /// The optional LogEntry fields that are set, in LogEntry order.
    fields: Vec<(&'static str, J)>,
    /// What is left of the record, for `jsonPayload` (None with a `textPayload`).
    payload: Option<Map>,
}

impl BuiltEntry {
    /// Append the LogEntry's JSON.
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        out.extend_from_slice(b"{\"logName\":");
        write_json_str(self.log_name.as_bytes(), out);
        out.extend_from_slice(b",\"resource\":");
        self.resource.write_json(out);
        out.extend_from_slice(b",\"timestamp\":");
        write_json_str(self.timestamp.as_bytes(), out);
        out.extend_from_slice(b",\"severity\":");
        write_json_str(self.severity.as_bytes(), out);
        for (k, v) in &self.fields {
            out.push(b',');
            write_json_str(k.as_bytes(), out);
            out.push(b':');
            serde_json::to_writer(&mut *out, v)?;
        }
        if let Some(p) = &self.payload {
            out.extend_from_slice(b",\"jsonPayload\":");
            // As [`to_json`] maps a record: floats JSON cannot hold become strings.
            write_json_map_with(p, NonFinite::Text, out);
        }
        out.push(b'}');
        Ok(())
    }
}

const MAX_LOG_ID_LEN: usize = 512;

/// Percent-encode a tag into a log ID (everything but `[A-Za-z0-9_.-]`, so `/` becomes `%2F`).
pub fn encode_log_id(tag: &str) -> String {
    let mut out = String::with_capacity(tag.len());
    for b in tag.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `projects/PROJECT/logs/LOG_ID`, or why the tag cannot be a log name.
pub fn log_name(project: &str, tag: &str, require_valid: bool) -> Result<String, String> {
    let valid =
        !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'));
    if require_valid && !valid {
        return Err("invalid tag: a log name may only hold [A-Za-z0-9/_.-] (require_valid_tags)".into());
    }
    let id = if tag.is_empty() { "_".to_string() } else { encode_log_id(tag) };
    if id.len() > MAX_LOG_ID_LEN {
        return Err(format!("log name of {} bytes exceeds the {MAX_LOG_ID_LEN}-byte limit", id.len()));
    }
    Ok(format!("projects/{project}/logs/{id}"))
}

/// A record value as JSON; floats that JSON cannot hold become strings.
pub fn to_json(v: &Value) -> J {
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::UInt(u) => J::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or_else(|| J::String(f.to_string())),
        Value::Str(s) => J::String(s.to_string()),
        Value::Bytes(b) => J::String(String::from_utf8_lossy(b).into_owned()),
        Value::Array(a) => J::Array(a.iter().map(to_json).collect()),
        Value::Map(m) => J::Object(map_to_json(m)),
    }
}

fn map_to_json(m: &Map) -> JMap<String, J> {
    m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect()
}

fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.to_string()),
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(_) | Value::UInt(_) | Value::Float(_) | Value::Bool(_) => Some(v.to_display_string()),
        _ => None,
    }
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Str(s) => s.trim().parse().ok(),
        Value::Float(f) if f.is_finite() => Some(*f as i64),
        _ => v.as_i64(),
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// `"1.5s"`, `" 2 s "`, or a number of seconds -> a google-duration (`"1.5s"`).
fn as_duration(v: &Value) -> Option<String> {
    let secs: f64 = match v {
        Value::Str(s) => {
            let t = s.trim();
            let t = t.strip_suffix('s')?.trim_end();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return None;
            }
            // Keep the text exactly when it is already canonical.
            if t.bytes().filter(|b| *b == b'.').count() <= 1 && !t.starts_with('.') && !t.ends_with('.') {
                let frac = t.split_once('.').map(|(_, f)| f.len()).unwrap_or(0);
                if frac <= 9 {
                    return Some(format!("{t}s"));
                }
            }
            t.parse().ok()?
        }
        _ => v.as_f64()?,
    };
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    let whole = secs.trunc() as i64;
    let nanos = ((secs - secs.trunc()) * 1e9).round() as i64;
    Some(if nanos == 0 { format!("{whole}s") } else { format!("{whole}.{nanos:09}s") })
}

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int32,
    Int64,
    Bool,
    Duration,
}

const HTTP_FIELDS: &[(&str, Kind)] = &[
    ("requestMethod", Kind::Str),
    ("requestUrl", Kind::Str),
    ("requestSize", Kind::Int64),
    ("status", Kind::Int32),
    ("responseSize", Kind::Int64),
    ("userAgent", Kind::Str),
    ("remoteIp", Kind::Str),
    ("serverIp", Kind::Str),
    ("referer", Kind::Str),
    ("protocol", Kind::Str),
    ("cacheHit", Kind::Bool),
    ("cacheLookup", Kind::Bool),
    ("cacheValidatedWithOriginServer", Kind::Bool),
    ("cacheFillBytes", Kind::Int64),
    ("latency", Kind::Duration),
];
const OPERATION_FIELDS: &[(&str, Kind)] =
    &[("id", Kind::Str), ("producer", Kind::Str), ("first", Kind::Bool), ("last", Kind::Bool)];
const SOURCE_LOCATION_FIELDS: &[(&str, Kind)] = &[("file", Kind::Str), ("function", Kind::Str), ("line", Kind::Int64)];

/// Lift the known subfields of `record[key]` into an API object. Subfields that are unknown or do not
/// convert stay in the payload; the key disappears when nothing is left.
fn lift_struct(record: &mut Map, key: &str, fields: &[(&str, Kind)]) -> Option<J> {
    let Some(Value::Map(src)) = record.get_mut(key) else {
        return None;
    };
    let mut out = JMap::new();
    for (name, kind) in fields {
        let Some(v) = src.get(name) else { continue };
        let converted = match kind {
            Kind::Str => as_string(v).map(J::String),
            Kind::Int32 => as_int(v).and_then(|i| i32::try_from(i).ok()).map(J::from),
            Kind::Int64 => as_int(v).map(|i| J::String(i.to_string())),
            Kind::Bool => as_bool(v).map(J::Bool),
            Kind::Duration => as_duration(v).map(J::String),
        };
        if let Some(c) = converted {
            out.insert((*name).to_string(), c);
            src.remove(name);
        }
    }
    if src.is_empty() {
        record.remove(key);
    }
    if out.is_empty() {
        None
    } else {
        Some(J::Object(out))
    }
}

fn take_string(record: &mut Map, key: &str) -> Option<String> {
    let s = as_string(record.get(key)?)?;
    record.remove(key);
    Some(s)
}

/// Timestamp overrides the plugin honours: `timestamp: {seconds, nanos}` or `timestampSeconds` and
/// `timestampNanos`.
fn record_time(record: &mut Map) -> Option<(i64, u32)> {
    if let Some(Value::Map(m)) = record.get("timestamp") {
        if let Some(s) = m.get("seconds").and_then(as_int) {
            let n = m.get("nanos").and_then(as_int).unwrap_or(0);
            record.remove("timestamp");
            return Some((s, n.clamp(0, 999_999_999) as u32));
        }
    }
    if let Some(s) = record.get("timestampSeconds").and_then(as_int) {
        let n = record.get("timestampNanos").and_then(as_int).unwrap_or(0);
        record.remove("timestampSeconds");
        record.remove("timestampNanos");
        return Some((s, n.clamp(0, 999_999_999) as u32));
    }
    None
}

/// Cloud Logging's RFC 3339: UTC with nine fraction digits, by the core's formatter.
static RFC3339_NANOS: LazyLock<TimeFormatter> = LazyLock::new(|| TimeFormatter::utc("%Y-%m-%dT%H:%M:%S.%NZ"));

/// RFC 3339 with nanoseconds. Timestamps the API refuses (more than a day ahead, out of range) are
/// adjusted when `adjust`: a year back when that lands in the past (syslog without a year), else now.
pub fn format_timestamp(sec: i64, nsec: u32, adjust: bool, now: DateTime<Utc>) -> String {
    let day_ahead = now + chrono::Duration::days(1);
    let t = DateTime::<Utc>::from_timestamp(sec, nsec.min(999_999_999))
        .filter(|t| (1..=9999).contains(&chrono::Datelike::year(t)));
    let t = match t {
        Some(t) if !adjust || t <= day_ahead => t,
        Some(t) => {
            let back = chrono::Datelike::with_year(&t, chrono::Datelike::year(&t) - 1);
            match back {
                Some(b) if b <= day_ahead && t.signed_duration_since(now).num_days() < 366 => b,
                _ => now,
            }
        }
        None => now,
    };
    RFC3339_NANOS.format(EventTime::new(t.timestamp(), t.timestamp_subsec_nanos()))
}

fn is_trace_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// If the record is one text field holding a JSON object, that object (detect_json).
fn detect_json_payload(record: &Map) -> Option<Map> {
    if record.len() != 1 {
        return None;
    }
    for field in ["log", "message", "msg"] {
        if let Some(Value::Str(s)) = record.get(field) {
            let t = s.trim();
            if t.starts_with('{') {
                return parse_json_map(t.as_bytes()).ok();
            }
        }
    }
    None
}

/// Map one event. `Err` holds why the entry cannot be sent at all.
pub fn build_entry(
    opts: &EntryOptions,
    platform: &Platform,
    tag: &str,
    time: EventTime,
    mut record: Map,
    now: DateTime<Utc>,
) -> Result<BuiltEntry, String> {
    let log_name = log_name(&platform.project_id, tag, opts.require_valid_tags)?;

    let mut is_json = false;
    if opts.detect_json {
        let mut held = Vec::new();
        for k in std::iter::once("time").chain(SEVERITY_KEYS) {
            if let Some(v) = record.remove(k) {
                held.push((k, v));
            }
        }
        if let Some(parsed) = detect_json_payload(&record) {
            record = parsed;
            is_json = true;
        }
        for (k, v) in held {
            if !record.contains_key(k) {
                record.insert(k, v);
            }
        }
    }

    let (resource, pod_labels) = resource_for(platform, tag, &mut record, &opts.matcher);

    let (sec, nsec) = record_time(&mut record).unwrap_or((time.sec, time.nsec));
    let timestamp = format_timestamp(sec, nsec, opts.adjust_invalid_timestamps, now);

    let mut severity = "DEFAULT";
    for k in SEVERITY_KEYS {
        if let Some(v) = record.remove(k) {
            severity = parse_severity(&v);
            break;
        }
    }

    let mut fields: Vec<(&'static str, J)> = Vec::new();

    if let Some(trace) = take_string(&mut record, &opts.keys.trace) {
        let trace = if opts.autoformat_stackdriver_trace && is_trace_id(&trace) {
            format!("projects/{}/traces/{trace}", platform.project_id)
        } else {
            trace
        };
        fields.push(("trace", J::String(trace)));
    }
    if let Some(span) = take_string(&mut record, &opts.keys.span_id) {
        fields.push(("spanId", J::String(span)));
    }
    if let Some(b) = record.get(&opts.keys.trace_sampled).and_then(as_bool) {
        record.remove(&opts.keys.trace_sampled);
        fields.push(("traceSampled", J::Bool(b)));
    }
    if let Some(id) = take_string(&mut record, &opts.keys.insert_id) {
        fields.push(("insertId", J::String(id)));
    }
    if let Some(h) = lift_struct(&mut record, &opts.keys.http_request, HTTP_FIELDS) {
        fields.push(("httpRequest", h));
    }
    if let Some(o) = lift_struct(&mut record, &opts.keys.operation, OPERATION_FIELDS) {
        fields.push(("operation", o));
    }
    if let Some(s) = lift_struct(&mut record, &opts.keys.source_location, SOURCE_LOCATION_FIELDS) {
        fields.push(("sourceLocation", s));
    }

    // Labels: configured, then pod labels, then label_map fields, then the record's own labels.
    let mut labels: JMap<String, J> = JMap::new();
    for (k, v) in opts.labels.iter().chain(pod_labels.iter()) {
        labels.insert(k.clone(), J::String(v.clone()));
    }
    for (field, label) in &opts.label_map {
        if let Some(v) = record.get(field).and_then(as_string) {
            record.remove(field);
            labels.insert(label.clone(), J::String(v));
        }
    }
    if let Some(Value::Map(_)) = record.get(&opts.keys.labels) {
        if let Some(Value::Map(m)) = record.remove(&opts.keys.labels) {
            for (k, v) in m.iter() {
                labels.insert(k.to_string(), J::String(v.to_display_string()));
            }
        }
    }
    if !labels.is_empty() {
        fields.push(("labels", J::Object(labels)));
    }

    let text = if is_json || record.len() != 1 {
        None
    } else {
        ["message", "log"].iter().find_map(|k| match record.get(k) {
            Some(Value::Str(s)) => Some(s.to_string()),
            _ => None,
        })
    };
    let payload = match text {
        Some(t) => {
            fields.push(("textPayload", J::String(t)));
            None
        }
        None => Some(record),
    };

    Ok(BuiltEntry { log_name, resource, timestamp, severity, fields, payload })
}

/// The `entries:write` body around entries already serialized and joined with commas: the same JSON as
/// `{"entries": [...], "partialSuccess": .., "logName": .., "resource": ..}` built as a value, without
/// holding every entry of a chunk as a value tree.
pub fn request_body(entries: &[u8], partial_success: bool, split: Option<(&str, &Resource)>) -> Vec<u8> {
    let mut body = Vec::with_capacity(entries.len() + 256);
    body.extend_from_slice(b"{\"entries\":[");
    body.extend_from_slice(entries);
    body.extend_from_slice(b"],\"partialSuccess\":");
    body.extend_from_slice(if partial_success { b"true" } else { b"false" });
    if let Some((log_name, resource)) = split {
        body.extend_from_slice(b",\"logName\":");
        sluice_core::event::write_json_str(log_name.as_bytes(), &mut body);
        body.extend_from_slice(b",\"resource\":");
        // Serializing a JSON value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut body, &resource.to_json());
    }
    body.push(b'}');
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::DEFAULT_K8S_TAG_REGEXP;
    use serde_json::json;
    use sluice_core::record;

    fn opts() -> EntryOptions {
        EntryOptions {
            keys: SpecialKeys::default(),
            labels: vec![("env".into(), "prod".into())],
            label_map: vec![("user".into(), "app/user".into())],
            detect_json: false,
            autoformat_stackdriver_trace: true,
            adjust_invalid_timestamps: true,
            require_valid_tags: false,
            matcher: TagMatcher::new(DEFAULT_K8S_TAG_REGEXP).unwrap(),
        }
    }

    fn platform() -> Platform {
        Platform { project_id: "proj".into(), ..Default::default() }
    }

    #[test]
    fn the_payload_written_from_the_record_is_the_json_value_of_the_record() {
        let mut nested = Map::new();
        nested.insert("deep", Value::Array(vec![Value::Float(f64::NAN), Value::Float(2.5), Value::Null]));
        let mut r = record! {"message" => "line \"one\"\n\u{1}é", "n" => -3i64, "big" => Value::UInt(u64::MAX)};
        r.insert("inf", Value::Float(f64::NEG_INFINITY));
        r.insert("bytes", Value::Bytes(vec![b'a', 0xff]));
        r.insert("nested", Value::Map(nested));
        r.insert("ok", Value::Bool(true));
        let mut out = Vec::new();
        write_json_map_with(&r, NonFinite::Text, &mut out);
        let got: J = serde_json::from_slice(&out).unwrap();
        assert_eq!(got, J::Object(map_to_json(&r)));
        assert_eq!(got["inf"], "-inf");
    }

    #[test]
    fn request_body_is_the_json_of_the_request() {
        let entries = [json!({"textPayload": "a"}), json!({"jsonPayload": {"k": [1, "é\"x"]}})];
        let joined: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        let resource = Resource { kind: "global", labels: [("project_id".to_string(), "p".to_string())].into() };
        let body: J = serde_json::from_slice(&request_body(
            joined.join(",").as_bytes(),
            true,
            Some(("projects/p/logs/x", &resource)),
        ))
        .unwrap();
        assert_eq!(
            body,
            json!({"entries": entries, "partialSuccess": true, "logName": "projects/p/logs/x", "resource": resource.to_json()})
        );
        let body: J = serde_json::from_slice(&request_body(b"", false, None)).unwrap();
        assert_eq!(body, json!({"entries": [], "partialSuccess": false}));
    }

    fn now() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_764_000_000, 0).unwrap()
    }

    fn build(o: &EntryOptions, tag: &str, r: Map) -> J {
        let built = build_entry(o, &platform(), tag, EventTime { sec: 1_764_000_000, nsec: 5 }, r, now()).unwrap();
        let mut out = Vec::new();
        built.write_json(&mut out).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn text_vs_json_and_severity() {
        let e = build(&opts(), "app", record! {"message" => "hello", "level" => "warn"});
        assert_eq!(e["textPayload"], "hello");
        assert_eq!(e["severity"], "WARNING");
        assert_eq!(e["timestamp"], "2025-11-24T16:00:00.000000005Z");
        assert_eq!(e["logName"], "projects/proj/logs/app");
        assert_eq!(e["resource"]["type"], "global");
        let e = build(&opts(), "a/b c", record! {"message" => "hello", "code" => 3});
        assert_eq!(e["jsonPayload"]["code"], 3);
        assert_eq!(e["severity"], "DEFAULT");
        assert_eq!(e["logName"], "projects/proj/logs/a%2Fb%20c");
    }

    #[test]
    fn special_fields() {
        let r = record! {
            "logging.googleapis.com/trace" => "0123456789abcdef0123456789abcdef",
            "logging.googleapis.com/spanId" => "000000000000004a",
            "logging.googleapis.com/insertId" => "id-1",
            "logging.googleapis.com/labels" => Value::Map(record!{"team" => "core"}),
            "user" => "alice",
            "httpRequest" => Value::Map(record!{"status" => 503, "requestSize" => 12, "latency" => "0.25 s", "custom" => 1}),
            "logging.googleapis.com/sourceLocation" => Value::Map(record!{"file" => "a.rs", "line" => 7}),
            "msg" => "x"
        };
        let e = build(&opts(), "app", r);
        assert_eq!(e["trace"], "projects/proj/traces/0123456789abcdef0123456789abcdef");
        assert_eq!(e["spanId"], "000000000000004a");
        assert_eq!(e["insertId"], "id-1");
        assert_eq!(e["labels"], json!({"env": "prod", "app/user": "alice", "team": "core"}));
        assert_eq!(e["httpRequest"], json!({"status": 503, "requestSize": "12", "latency": "0.25s"}));
        assert_eq!(e["sourceLocation"], json!({"file": "a.rs", "line": "7"}));
        assert_eq!(e["jsonPayload"], json!({"httpRequest": {"custom": 1}, "msg": "x"}));
    }

    #[test]
    fn detect_json_and_timestamps() {
        let mut o = opts();
        o.detect_json = true;
        let e = build(&o, "app", record! {"log" => "{\"a\":1,\"message\":\"m\"}", "severity" => "error"});
        assert_eq!(e["jsonPayload"], json!({"a": 1, "message": "m"}));
        assert_eq!(e["severity"], "ERROR");
        // A year ahead (syslog without a year) goes back one year; far future becomes now.
        let ahead = now() + chrono::Duration::days(200);
        let s = format_timestamp(ahead.timestamp(), 0, true, now());
        assert!(s.starts_with("2026-06") || s.starts_with("2025-06"), "{s}");
        assert!(s < format_timestamp(now().timestamp() + 86_400, 0, true, now()));
        assert_eq!(format_timestamp(i64::MAX / 2, 0, true, now()), "2025-11-24T16:00:00.000000000Z");
        let e =
            build(&o, "app", record! {"timestamp" => Value::Map(record!{"seconds" => 10, "nanos" => 20}), "a" => 1});
        assert_eq!(e["timestamp"], "1970-01-01T00:00:10.000000020Z");
    }

    #[test]
    fn timestamps_are_rfc3339_nanos_in_utc() {
        // Year 1 keeps four digits and the fraction keeps nine, as the API expects.
        assert_eq!(format_timestamp(-62_135_596_800, 0, false, now()), "0001-01-01T00:00:00.000000000Z");
        assert_eq!(format_timestamp(1_714_566_896, 123_456_789, false, now()), "2024-05-01T12:34:56.123456789Z");
        assert_eq!(format_timestamp(1_714_566_896, 2_000_000_000, false, now()), "2024-05-01T12:34:56.999999999Z");
    }

    #[test]
    fn tags() {
        assert!(log_name("p", "bad tag", true).is_err());
        assert_eq!(log_name("p", "", false).unwrap(), "projects/p/logs/_");
        assert!(log_name("p", &"x".repeat(600), false).is_err());
    }
}
