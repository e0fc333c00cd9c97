//! Every `<parse>` plugin built from real config text, checked against the records and event times
//! Fluentd produces (its documented examples), plus malformed input: bad JSON, a regexp that does not
//! match, invalid UTF-8 (which in_tail turns into U+FFFD before parsing), an empty line.
//!
//! Times without a zone are parsed with an explicit `timezone` so the tests do not depend on the
//! machine's local time.
use sluice_core::config::parse_str;
use sluice_core::event::{EventTime, Map, Value};
use sluice_core::plugin::{BuildCtx, ParseError, Parsed, Parser, Registry};
use sluice_core::record;
use sluice_plugins::parsers::time::days_from_civil;
use std::path::Path;
use std::sync::Arc;

/// 28/Feb/2013:12:00:00 +0900, the time of Fluentd's documentation examples.
const DOC_TIME: EventTime = EventTime::new(1_362_020_400, 0);

fn ctx() -> BuildCtx {
    let mut r = Registry::new();
    sluice_plugins::register_all(&mut r);
    BuildCtx::new(Arc::new(r))
}

fn try_parser(body: &str) -> Result<Box<dyn Parser>, String> {
    let text = format!("<source>\n  @type tail\n  <parse>\n{body}\n  </parse>\n</source>\n");
    let root = parse_str(&text, Path::new("parsers.conf")).map_err(|e| e.to_string())?;
    let source = root.sections("source").next().expect("a <source>");
    let c = ctx();
    c.registry.parser_of(source, "none", &c).map_err(|e| e.to_string())
}

fn parser(body: &str) -> Box<dyn Parser> {
    try_parser(body).unwrap_or_else(|e| panic!("config error: {e}"))
}

/// One line that must give one event.
fn one(p: &mut Box<dyn Parser>, line: &str) -> (Option<EventTime>, Map) {
    match p.parse(line) {
        Ok(Some(Parsed { time, record })) => (time, record),
        other => panic!("line {line:?}: expected an event, got {other:?}"),
    }
}

fn not_matched(p: &mut Box<dyn Parser>, line: &str) {
    match p.parse(line) {
        Err(ParseError::NotMatched(_)) => {}
        other => panic!("line {line:?}: expected NotMatched, got {other:?}"),
    }
}

/// What in_tail hands the parser for bytes that are not UTF-8.
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn utc(y: i64, m: u32, d: u32, hh: i64, mm: i64, ss: i64) -> i64 {
    days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss
}

fn current_year() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    (1970..3000).find(|y| utc(y + 1, 1, 1, 0, 0, 0) > now).unwrap()
}

// ---------------------------------------------------------------- json

#[test]
fn json_fluentd_doc_example() {
    let mut p = parser("@type json");
    let (t, r) = one(&mut p, r#"{"time":1362020400,"host":"192.168.0.1","size":777,"method":"PUT"}"#);
    assert_eq!(t, Some(DOC_TIME));
    assert_eq!(r, record! {"host" => "192.168.0.1", "size" => 777i64, "method" => "PUT"});
}

#[test]
fn json_float_time_nested_values_and_no_time() {
    let mut p = parser("@type json");
    let (t, r) = one(&mut p, r#"{"time":1362020400.5,"a":{"b":[1,true,null]},"f":1.25}"#);
    assert_eq!(t, Some(EventTime::new(1_362_020_400, 500_000_000)));
    assert_eq!(r, record! {"a" => record!{"b" => vec![Value::Int(1), Value::Bool(true), Value::Null]}, "f" => 1.25});
    // No time field: no time from the parser (the caller uses the current time), record untouched.
    let (t, r) = one(&mut p, r#"{"msg":"hi"}"#);
    assert_eq!(t, None);
    assert_eq!(r, record! {"msg" => "hi"});
}

#[test]
fn json_time_key_time_format_and_keep_time_key() {
    let mut p =
        parser("@type json\ntime_key ts\ntime_type string\ntime_format %Y-%m-%dT%H:%M:%S.%N%z\nkeep_time_key true");
    let (t, r) = one(&mut p, r#"{"ts":"2013-02-28T12:00:00.123456789+0900","m":"x"}"#);
    assert_eq!(t, Some(EventTime::new(1_362_020_400, 123_456_789)));
    assert_eq!(r, record! {"ts" => "2013-02-28T12:00:00.123456789+0900", "m" => "x"});
}

#[test]
fn json_malformed_inputs() {
    let mut p = parser("@type json");
    not_matched(&mut p, r#"{"a":"#);
    not_matched(&mut p, r#"{"a" 1}"#);
    not_matched(&mut p, "not json");
    not_matched(&mut p, "");
    not_matched(&mut p, "42");
    not_matched(&mut p, r#""a string""#);
    // Invalid UTF-8 inside a string value arrives as U+FFFD and is kept.
    let (t, r) = one(&mut p, &lossy(b"{\"msg\":\"caf\xe9\"}"));
    assert_eq!(t, None);
    assert_eq!(r, record! {"msg" => "caf\u{FFFD}"});
    // The parser keeps working after errors.
    let (_, r) = one(&mut p, r#"{"ok":1}"#);
    assert_eq!(r, record! {"ok" => 1i64});
}

#[test]
fn json_array_of_objects_gives_one_record_each() {
    let mut p = parser("@type json");
    let (t, r) = one(&mut p, r#"[{"time":1362020400,"a":1},{"a":2},"not an object",{"a":3}]"#);
    assert_eq!((t, r), (Some(DOC_TIME), record! {"a" => 1i64}));
    let rest: Vec<_> = std::iter::from_fn(|| p.take_extra()).collect();
    assert_eq!(rest.len(), 3);
    assert_eq!(rest[0], Ok(Parsed { time: None, record: record! {"a" => 2i64} }));
    assert!(matches!(rest[1], Err(ParseError::NotMatched(_))), "a non-object element is not matched, as in Fluentd");
    assert_eq!(rest[2], Ok(Parsed { time: None, record: record! {"a" => 3i64} }));
    // The next line starts afresh.
    let (_, r) = one(&mut p, r#"{"b":1}"#);
    assert_eq!(r, record! {"b" => 1i64});
    assert!(p.take_extra().is_none());
    not_matched(&mut p, "[]");
    not_matched(&mut p, "[1,2]");
}

#[test]
fn json_bad_time_is_an_error() {
    let mut p = parser("@type json\ntime_type string\ntime_format %Y-%m-%d %z");
    assert!(matches!(p.parse(r#"{"time":"yesterday","a":1}"#), Err(ParseError::Time { .. })));
}

// ---------------------------------------------------------------- regexp

const DOC_REGEXP: &str = r#"@type regexp
expression /^\[(?<logtime>[^\]]*)\] (?<name>[^ ]*) (?<title>[^ ]*) (?<id>\d*)$/
time_key logtime
time_format %Y-%m-%d %H:%M:%S %z
types id:integer"#;

#[test]
fn regexp_fluentd_doc_example() {
    let mut p = parser(DOC_REGEXP);
    let (t, r) = one(&mut p, "[2013-02-28 12:00:00 +0900] alice engineer 1");
    assert_eq!(t, Some(DOC_TIME));
    assert_eq!(r, record! {"name" => "alice", "title" => "engineer", "id" => 1i64});
}

#[test]
fn regexp_malformed_inputs() {
    let mut p = parser(DOC_REGEXP);
    not_matched(&mut p, "alice engineer 1");
    not_matched(&mut p, "");
    // Invalid UTF-8 in a field: matched, the byte is U+FFFD.
    let (_, r) = one(&mut p, &lossy(b"[2013-02-28 12:00:00 +0900] al\xffice engineer 2"));
    assert_eq!(r, record! {"name" => "al\u{FFFD}ice", "title" => "engineer", "id" => 2i64});
    // Matched but the time does not parse.
    assert!(matches!(p.parse("[Feb 28 2013] alice engineer 1"), Err(ParseError::Time { .. })));
}

#[test]
fn regexp_unmatched_optional_group_is_left_out_and_keep_time_key() {
    let mut p = parser(
        "@type regexp\nexpression /^(?<time>\\S+) (?<a>\\w+)(?: (?<b>\\w+))?$/\ntime_format %s\nkeep_time_key true",
    );
    let (t, r) = one(&mut p, "1362020400 x");
    assert_eq!(t, Some(DOC_TIME));
    assert_eq!(r, record! {"time" => "1362020400", "a" => "x"});
    let (_, r) = one(&mut p, "1362020400 x y");
    assert_eq!(r, record! {"time" => "1362020400", "a" => "x", "b" => "y"});
}

#[test]
fn regexp_flags_and_config_errors() {
    let mut p = parser("@type regexp\nexpression /^(?<word>hello)$/i");
    let (t, r) = one(&mut p, "HeLLo");
    assert_eq!(t, None);
    assert_eq!(r, record! {"word" => "HeLLo"});
    assert!(try_parser("@type regexp\nexpression /^(\\d+)$/").is_err(), "no named captures");
    assert!(try_parser("@type regexp").is_err(), "expression is required");
    assert!(try_parser("@type regexp\nexpression /(?<a>[/").is_err(), "invalid regexp");
}

#[test]
fn regexp_lookbehind_uses_the_backtracking_engine() {
    let mut p = parser("@type regexp\nexpression /^(?<k>\\w+)=(?<v>.*?)(?<!\\\\);$/");
    let (_, r) = one(&mut p, r"key=a\;b;");
    assert_eq!(r, record! {"k" => "key", "v" => r"a\;b"});
    not_matched(&mut p, r"key=a\;");
}

// ---------------------------------------------------------------- apache, apache_error, nginx

#[test]
fn apache_fluentd_doc_example() {
    let mut p = parser("@type apache");
    let (t, r) = one(&mut p, r#"192.168.0.1 - - [28/Feb/2013:12:00:00 +0900] "GET / HTTP/1.1" 200 777"#);
    assert_eq!(t, Some(DOC_TIME));
    assert_eq!(
        r,
        record! {"host" => "192.168.0.1", "user" => "-", "method" => "GET", "path" => "/", "code" => "200", "size" => "777"}
    );
    let (_, r) =
        one(&mut p, r#"192.168.0.1 - bob [28/Feb/2013:12:00:00 +0900] "GET /x HTTP/1.1" 404 - "http://r/" "curl/8""#);
    assert_eq!(
        r,
        record! {"host" => "192.168.0.1", "user" => "bob", "method" => "GET", "path" => "/x", "code" => "404",
        "size" => "-", "referer" => "http://r/", "agent" => "curl/8"}
    );
    not_matched(&mut p, "GET / HTTP/1.1");
    not_matched(&mut p, "");
    assert!(matches!(p.parse(r#"192.168.0.1 - - [yesterday] "GET / HTTP/1.1" 200 777"#), Err(ParseError::Time { .. })));
}

#[test]
fn apache_error_fluentd_doc_example() {
    // The regexp leaves the weekday out of `time` (Fluentd reads it with Time.parse in local time).
    let mut p = parser("@type apache_error\ntime_format %b %d %H:%M:%S %Y\ntimezone +00:00");
    let (t, r) =
        one(&mut p, "[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] client denied by server configuration");
    assert_eq!(t, Some(EventTime::new(utc(2000, 10, 11, 14, 32, 52), 0)));
    assert_eq!(
        r,
        record! {"level" => "error", "client" => "127.0.0.1", "message" => "client denied by server configuration"}
    );
    let (_, r) = one(&mut p, "[Wed Oct 11 14:32:52 2000] [notice] [pid 42] resuming normal operations");
    assert_eq!(r, record! {"level" => "notice", "pid" => "42", "message" => "resuming normal operations"});
    not_matched(&mut p, "client denied by server configuration");
    not_matched(&mut p, "");
}

#[test]
fn nginx_fluentd_doc_example() {
    let mut p = parser("@type nginx");
    let (t, r) = one(
        &mut p,
        r#"127.0.0.1 192.168.0.1 - [28/Feb/2013:12:00:00 +0900] "GET / HTTP/1.1" 200 777 "-" "Opera/12.0""#,
    );
    assert_eq!(t, Some(DOC_TIME));
    assert_eq!(
        r,
        record! {"remote" => "127.0.0.1", "host" => "192.168.0.1", "user" => "-", "method" => "GET", "path" => "/",
        "code" => "200", "size" => "777", "referer" => "-", "agent" => "Opera/12.0"}
    );
    // A quoted forwarded-for list with a space does not fit `[^ ]+`: no match, as in Fluentd.
    not_matched(
        &mut p,
        r#"127.0.0.1 - - [28/Feb/2013:12:00:00 +0900] "GET /a?b=c HTTP/1.1" 200 5 "-" "curl/8" "10.0.0.1, 10.0.0.2""#,
    );
    let (_, r) =
        one(&mut p, r#"127.0.0.1 - - [28/Feb/2013:12:00:00 +0900] "GET / HTTP/1.1" 200 5 "-" "curl/8" 10.0.0.9"#);
    assert_eq!(r.get("http_x_forwarded_for"), Some(&Value::from("10.0.0.9")));
    not_matched(&mut p, r#"127.0.0.1 [28/Feb/2013:12:00:00 +0900] "GET /""#);
    not_matched(&mut p, "");
    let (_, r) =
        one(&mut p, &lossy(b"127.0.0.1 - - [28/Feb/2013:12:00:00 +0900] \"GET /\xff HTTP/1.1\" 200 5 \"-\" \"curl\""));
    assert_eq!(r.get("path"), Some(&Value::from("/\u{FFFD}")));
}

// ---------------------------------------------------------------- apache2

#[test]
fn apache2_fluentd_doc_example() {
    let mut p = parser("@type apache2");
    let (t, r) =
        one(&mut p, r#"192.168.0.1 - - [28/Feb/2013:12:00:00 +0900] "GET / HTTP/1.1" 200 777 "-" "Opera/12.0""#);
    assert_eq!(t, Some(DOC_TIME));
    assert_eq!(
        r,
        record! {"host" => "192.168.0.1", "user" => Value::Null, "method" => "GET", "path" => "/", "code" => 200i64,
        "size" => 777i64, "referer" => Value::Null, "agent" => "Opera/12.0"}
    );
}

#[test]
fn apache2_common_format_dash_size_and_escaped_quotes() {
    let mut p = parser("@type apache2\nkeep_time_key true");
    let (_, r) = one(&mut p, r#"::1 - alice [28/Feb/2013:12:00:00 +0900] "POST /login HTTP/1.1" 302 -"#);
    assert_eq!(
        r,
        record! {"host" => "::1", "user" => "alice", "method" => "POST", "path" => "/login", "code" => 302i64,
        "size" => Value::Null, "referer" => Value::Null, "agent" => Value::Null, "time" => "28/Feb/2013:12:00:00 +0900"}
    );
    // A request without a path.
    let (_, r) = one(&mut p, r#"1.2.3.4 - - [28/Feb/2013:12:00:00 +0900] "-" 400 0"#);
    assert_eq!(
        r,
        record! {"host" => "1.2.3.4", "user" => Value::Null, "method" => "-", "path" => Value::Null,
        "code" => 400i64, "size" => 0i64, "referer" => Value::Null, "agent" => Value::Null,
        "time" => "28/Feb/2013:12:00:00 +0900"}
    );
    // An agent with escaped quotes (slow path through the regexp); code `-` is nil.
    let (_, r) = one(&mut p, r#"1.2.3.4 - - [28/Feb/2013:12:00:00 +0900] "GET /a HTTP/1.0" - 5 "-" "say \"hi\"""#);
    assert_eq!(
        r,
        record! {"host" => "1.2.3.4", "user" => Value::Null, "method" => "GET", "path" => "/a",
        "code" => Value::Null, "size" => 5i64, "referer" => Value::Null, "agent" => r#"say \"hi\""#,
        "time" => "28/Feb/2013:12:00:00 +0900"}
    );
}

#[test]
fn apache2_malformed_inputs() {
    let mut p = parser("@type apache2");
    not_matched(&mut p, "not an access log");
    not_matched(&mut p, "");
    not_matched(&mut p, r#"192.168.0.1 - - [28/Feb/2013:12:00:00 +0900] "GET / HTTP/1.1""#);
    assert!(matches!(
        p.parse(r#"192.168.0.1 - - [30/Foo/2013:12:00:00 +0900] "GET / HTTP/1.1" 200 777"#),
        Err(ParseError::Time { .. })
    ));
    let (_, r) = one(&mut p, &lossy(b"192.168.0.1 - - [28/Feb/2013:12:00:00 +0900] \"GET /\xfe HTTP/1.1\" 200 1"));
    assert_eq!(r.get("path"), Some(&Value::from("/\u{FFFD}")));
}

// ---------------------------------------------------------------- syslog

#[test]
fn syslog_rfc3164_fluentd_doc_example_with_priority() {
    for parser_type in ["regexp", "string"] {
        let mut p = parser(&format!("@type syslog\nwith_priority true\ntimezone +00:00\nparser_type {parser_type}"));
        let (t, r) = one(&mut p, "<6>Feb 28 12:00:00 192.168.0.1 fluentd[11111]: [error] Syslog test");
        // RFC 3164 has no year: the current one.
        assert_eq!(t, Some(EventTime::new(utc(current_year(), 2, 28, 12, 0, 0), 0)), "{parser_type}");
        // Fluentd's string parser puts `pri` after `host`; the regexp one keeps capture order.
        let expected = if parser_type == "regexp" {
            record! {"pri" => 6i64, "host" => "192.168.0.1", "ident" => "fluentd", "pid" => "11111",
            "message" => "[error] Syslog test"}
        } else {
            record! {"host" => "192.168.0.1", "pri" => 6i64, "ident" => "fluentd", "pid" => "11111",
            "message" => "[error] Syslog test"}
        };
        assert_eq!(r, expected, "{parser_type}");
    }
}

#[test]
fn syslog_rfc3164_without_priority_pid_and_single_digit_day() {
    let mut p = parser("@type syslog\ntimezone +00:00");
    let (t, r) = one(&mut p, "Mar  3 01:02:03 web1 sshd: Accepted publickey for bob");
    assert_eq!(t, Some(EventTime::new(utc(current_year(), 3, 3, 1, 2, 3), 0)));
    assert_eq!(r, record! {"host" => "web1", "ident" => "sshd", "message" => "Accepted publickey for bob"});
}

#[test]
fn syslog_rfc3164_malformed_inputs() {
    let mut p = parser("@type syslog\nwith_priority true\ntimezone +00:00");
    not_matched(&mut p, "Feb 28 12:00:00 192.168.0.1 fluentd[11111]: no priority");
    not_matched(&mut p, "");
    not_matched(&mut p, "garbage");
    let mut p = parser("@type syslog\ntimezone +00:00");
    not_matched(&mut p, "");
    assert!(p.parse("Foo 99 12:00:00 host app: x").is_err());
    let (_, r) = one(&mut p, &lossy(b"Feb 28 12:00:00 host app: caf\xe9"));
    assert_eq!(r.get("message"), Some(&Value::from("caf\u{FFFD}")));
}

const RFC5424_DOC: &str = r#"<16>1 2013-02-28T12:00:00.003Z 192.168.0.1 fluentd 11111 ID24224 [exampleSDID@20224 iut="3" eventSource="Application" eventID="11211"] Hi, from Fluentd!"#;

#[test]
fn syslog_rfc5424_fluentd_doc_example() {
    let mut p = parser("@type syslog\nmessage_format rfc5424\nwith_priority true");
    let (t, r) = one(&mut p, RFC5424_DOC);
    assert_eq!(t, Some(EventTime::new(utc(2013, 2, 28, 12, 0, 0), 3_000_000)));
    assert_eq!(
        r,
        record! {"pri" => 16i64, "host" => "192.168.0.1", "ident" => "fluentd", "pid" => "11111", "msgid" => "ID24224",
        "extradata" => r#"[exampleSDID@20224 iut="3" eventSource="Application" eventID="11211"]"#,
        "message" => "Hi, from Fluentd!"}
    );
    // Nil values as `-`, no message, a time without fraction and with an offset.
    let (t, r) = one(&mut p, "<165>1 2013-02-28T12:00:00+09:00 host app - - -");
    assert_eq!(t, Some(DOC_TIME));
    assert_eq!(
        r,
        record! {"pri" => 165i64, "host" => "host", "ident" => "app", "pid" => "-", "msgid" => "-", "extradata" => "-"}
    );
    not_matched(&mut p, "<6>Feb 28 12:00:00 192.168.0.1 fluentd[11111]: [error] Syslog test");
    not_matched(&mut p, "");
}

#[test]
fn syslog_auto_detects_each_format() {
    let mut p = parser("@type syslog\nmessage_format auto\nwith_priority true\ntimezone +00:00");
    let (t, r) = one(&mut p, RFC5424_DOC);
    assert_eq!(t, Some(EventTime::new(utc(2013, 2, 28, 12, 0, 0), 3_000_000)));
    assert_eq!(r.get("msgid"), Some(&Value::from("ID24224")));
    let (t, r) = one(&mut p, "<6>Feb 28 12:00:00 192.168.0.1 fluentd[11111]: [error] Syslog test");
    assert_eq!(t, Some(EventTime::new(utc(current_year(), 2, 28, 12, 0, 0), 0)));
    assert_eq!(r.get("ident"), Some(&Value::from("fluentd")));
    not_matched(&mut p, "");
    not_matched(&mut p, "hello");
}

// ---------------------------------------------------------------- ltsv

#[test]
fn ltsv_fluentd_doc_example() {
    let mut p = parser("@type ltsv\ntime_format \"[%d/%b/%Y:%H:%M:%S %z]\"");
    let (t, r) = one(&mut p, "time:[28/Feb/2013:12:00:00 +0900]\thost:192.168.0.1\treq:GET /list HTTP/1.1");
    assert_eq!(t, Some(DOC_TIME));
    assert_eq!(r, record! {"host" => "192.168.0.1", "req" => "GET /list HTTP/1.1"});
}

#[test]
fn ltsv_delimiters_and_odd_pairs() {
    let mut p = parser("@type ltsv\ndelimiter_pattern /\\s+/\nlabel_delimiter =");
    let (t, r) = one(&mut p, "a=1  b=x=y   c=");
    assert_eq!(t, None);
    assert_eq!(r, record! {"a" => "1", "b" => "x=y", "c" => ""});
    // Fluentd's parser_ltsv keeps only items that contain the label delimiter (`if pair.include?`).
    let mut p = parser("@type ltsv");
    let (_, r) = one(&mut p, "a:1\tlonely\tb:2\t\tc::3");
    assert_eq!(r, record! {"a" => "1", "b" => "2", "c" => ":3"});
}

#[test]
fn ltsv_malformed_inputs() {
    let mut p = parser("@type ltsv\ntypes n:integer");
    // Fluentd yields an empty record for an empty line.
    let (t, r) = one(&mut p, "");
    assert_eq!((t, r), (None, Map::new()));
    let (_, r) = one(&mut p, &lossy(b"k:v\xff\tn:7"));
    assert_eq!(r, record! {"k" => "v\u{FFFD}", "n" => 7i64});
    let mut p = parser("@type ltsv\ntime_format %s");
    assert!(matches!(p.parse("time:abc"), Err(ParseError::Time { .. })));
}

// ---------------------------------------------------------------- csv, tsv

#[test]
fn csv_fluentd_doc_example() {
    let mut p =
        parser("@type csv\nkeys time,host,req_id,user\ntime_key time\ntime_format %Y/%m/%d %H:%M:%S\ntimezone +09:00");
    let (t, r) = one(&mut p, "2013/02/28 12:00:00,192.168.0.1,111,-");
    assert_eq!(t, Some(DOC_TIME));
    assert_eq!(r, record! {"host" => "192.168.0.1", "req_id" => "111", "user" => "-"});
}

#[test]
fn csv_quoting_missing_and_extra_columns() {
    let mut p = parser("@type csv\nkeys a,b,c");
    let (t, r) = one(&mut p, r#""x, y","say ""hi""","""#);
    assert_eq!(t, None);
    assert_eq!(r, record! {"a" => "x, y", "b" => r#"say "hi""#, "c" => ""});
    // Unquoted empty fields and missing columns are nil; extra columns are dropped.
    let (_, r) = one(&mut p, "1,");
    assert_eq!(r, record! {"a" => "1", "b" => Value::Null, "c" => Value::Null});
    let (_, r) = one(&mut p, "1,2,3,4");
    assert_eq!(r, record! {"a" => "1", "b" => "2", "c" => "3"});
    let mut p = parser("@type csv\nkeys a,b\ndelimiter ;\ntypes b:float");
    let (_, r) = one(&mut p, "x;2.5");
    assert_eq!(r, record! {"a" => "x", "b" => 2.5});
}

#[test]
fn csv_malformed_inputs() {
    let mut p = parser("@type csv\nkeys a,b");
    not_matched(&mut p, r#""unclosed,2"#);
    not_matched(&mut p, r#"a"b,2"#);
    not_matched(&mut p, r#""a"b,2"#);
    not_matched(&mut p, "");
    let (_, r) = one(&mut p, &lossy(b"\xff,2"));
    assert_eq!(r, record! {"a" => "\u{FFFD}", "b" => "2"});
    assert!(try_parser("@type csv").is_err(), "keys is required");
}

#[test]
fn csv_fast_engine() {
    let mut p = parser("@type csv\nkeys a,b,c\nparser_engine fast");
    let (_, r) = one(&mut p, r#"1,"x,y",3"#);
    assert_eq!(r, record! {"a" => "1", "b" => "x,y", "c" => "3"});
    // Only the columns present get keys.
    let (_, r) = one(&mut p, "1");
    assert_eq!(r, record! {"a" => "1"});
}

#[test]
fn tsv_fluentd_behaviour() {
    let mut p = parser("@type tsv\nkeys time,host,msg\ntime_key time\ntime_format %s");
    let (t, r) = one(&mut p, "1362020400\tweb1\thello\tworld");
    assert_eq!(t, Some(DOC_TIME));
    // split(delimiter, keys.size): the last key keeps the rest of the line.
    assert_eq!(r, record! {"host" => "web1", "msg" => "hello\tworld"});
    let mut p = parser("@type tsv\nkeys a,b");
    let (_, r) = one(&mut p, "only");
    assert_eq!(r, record! {"a" => "only", "b" => Value::Null});
    let (t, r) = one(&mut p, "");
    assert_eq!((t, r), (None, record! {"a" => Value::Null, "b" => Value::Null}));
    let (_, r) = one(&mut p, &lossy(b"a\xff\tb"));
    assert_eq!(r, record! {"a" => "a\u{FFFD}", "b" => "b"});
}

// ---------------------------------------------------------------- none

#[test]
fn none_keeps_the_whole_line() {
    let mut p = parser("@type none");
    assert_eq!(one(&mut p, "hello world"), (None, record! {"message" => "hello world"}));
    assert_eq!(one(&mut p, ""), (None, record! {"message" => ""}));
    assert_eq!(one(&mut p, "{\"bad json"), (None, record! {"message" => "{\"bad json"}));
    assert_eq!(one(&mut p, &lossy(b"x\xffy")), (None, record! {"message" => "x\u{FFFD}y"}));
    let mut p = parser("@type none\nmessage_key log");
    assert_eq!(one(&mut p, "a"), (None, record! {"log" => "a"}));
}

// ---------------------------------------------------------------- multi_format

#[test]
fn multi_format_first_matching_pattern_wins() {
    let mut p = parser(
        r#"@type multi_format
<pattern>
  format json
  time_key ts
</pattern>
<pattern>
  @type regexp
  expression /^(?<level>[A-Z]+) (?<msg>.*)$/
</pattern>"#,
    );
    assert_eq!(one(&mut p, r#"{"ts":1362020400,"a":1}"#), (Some(DOC_TIME), record! {"a" => 1i64}));
    assert_eq!(one(&mut p, "WARN disk full"), (None, record! {"level" => "WARN", "msg" => "disk full"}));
    not_matched(&mut p, "warn lowercase");
    not_matched(&mut p, "");
    not_matched(&mut p, r#"{"ts":"#);
    let mut p =
        parser("@type multi_format\n<pattern>\n  format json\n</pattern>\n<pattern>\n  format none\n</pattern>");
    assert_eq!(one(&mut p, "{oops"), (None, record! {"message" => "{oops"}));
    assert!(try_parser("@type multi_format").is_err(), "needs a <pattern>");
}

/// A parser type written `/RE/` is the regexp parser, as Fluentd's `new_parser` makes it: GKE's ConfigMap
/// writes `format /RE/` in a multi_format `<pattern>`, Container Insights `@type /RE/` through an
/// environment variable.
#[test]
fn a_regexp_written_as_the_type_is_the_regexp_parser() {
    let mut p = parser(
        "@type multi_format\n<pattern>\n  format json\n</pattern>\n<pattern>\n  format /^(?<stream>stdout|stderr) (?<log>.*)$/\n</pattern>",
    );
    assert_eq!(one(&mut p, "stderr boom"), (None, record! {"stream" => "stderr", "log" => "boom"}));
    not_matched(&mut p, "other line");
    let mut p = parser("@type /^(?<level>[A-Z]+) (?<msg>.*)$/");
    assert_eq!(one(&mut p, "WARN disk full"), (None, record! {"level" => "WARN", "msg" => "disk full"}));
}

// ---------------------------------------------------------------- multiline

const JAVA_LOG: &str = r#"@type multiline
format_firstline /\d{4}-\d{1,2}-\d{1,2}/
format1 /^(?<time>\d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{1,2}:\d{1,2}) \[(?<thread>.*)\] (?<level>[^\s]+)(?<message>.*)/
time_format %Y-%m-%d %H:%M:%S
timezone +00:00"#;

#[test]
fn multiline_fluentd_doc_java_example() {
    let mut p = parser(JAVA_LOG);
    assert!(p.is_joining());
    let t = Some(EventTime::new(utc(2013, 3, 3, 14, 27, 33), 0));
    assert_eq!(p.parse("2013-3-03 14:27:33 [main] INFO  Main - Start").unwrap(), None);
    let first = p.parse("2013-3-03 14:27:33 [main] ERROR Main - Exception").unwrap().expect("first event");
    assert_eq!(
        (first.time, first.record),
        (t, record! {"thread" => "main", "level" => "INFO", "message" => "  Main - Start"})
    );
    assert_eq!(p.parse("javax.management.RuntimeErrorException: null").unwrap(), None);
    assert_eq!(p.parse("    at Main.main(Main.java:16) ~[bin/:na]").unwrap(), None);
    let second = p.parse("2013-3-03 14:27:33 [main] INFO  Main - End").unwrap().expect("second event");
    assert_eq!(
        (second.time, second.record),
        (
            t,
            record! {"thread" => "main", "level" => "ERROR",
            "message" => " Main - Exception\njavax.management.RuntimeErrorException: null\n    at Main.main(Main.java:16) ~[bin/:na]"}
        )
    );
    let last = p.flush().expect("the held event at end of file");
    assert_eq!(
        (last.time, last.record),
        (t, record! {"thread" => "main", "level" => "INFO", "message" => "  Main - End"})
    );
    assert_eq!(p.flush(), None);
}

#[test]
fn multiline_malformed_inputs() {
    let mut p = parser(JAVA_LOG);
    // A continuation line before any first line.
    not_matched(&mut p, "    at nowhere");
    not_matched(&mut p, "");
    // A first line whose lines do not match format1 is an error when the next event starts.
    assert_eq!(p.parse("2013-3-03 no thread here").unwrap(), None);
    assert!(p.parse("2013-3-03 14:27:33 [main] INFO ok").is_err());
    let last = p.flush().expect("held");
    assert_eq!(last.record, record! {"thread" => "main", "level" => "INFO", "message" => " ok"});
    // Independent instances do not share held lines.
    let mut a = p.new_instance();
    assert_eq!(a.parse(&lossy(b"2013-3-03 14:27:33 [m\xff] INFO x")).unwrap(), None);
    assert_eq!(a.flush().unwrap().record.get("thread"), Some(&Value::from("m\u{FFFD}")));
    assert!(try_parser("@type multiline\nformat1 ^(?<a>.*)$").is_err(), "formats need slashes");
    assert!(try_parser("@type multiline\nformat1 /(?<a>x)/\nformat3 /(?<b>y)/").is_err(), "gap in formats");
}

#[test]
fn multiline_without_firstline_emits_once_the_lines_match() {
    let mut p = parser("@type multiline\nformat1 /^start (?<a>\\w+)\\n/\nformat2 /end (?<b>\\w+)$/");
    assert_eq!(p.parse("start x").unwrap(), None);
    let e = p.parse("end y").unwrap().expect("event");
    assert_eq!((e.time, e.record), (None, record! {"a" => "x", "b" => "y"}));
}

// ---------------------------------------------------------------- cri

#[test]
fn cri_plugin_readme_example() {
    let mut p = parser("@type cri");
    let (t, r) = one(&mut p, "2020-10-10T00:10:00.333333333Z stdout F Hello Fluentd");
    assert_eq!(t, Some(EventTime::new(utc(2020, 10, 10, 0, 10, 0), 333_333_333)));
    assert_eq!(
        r,
        record! {"stream" => "stdout", "logtag" => "F", "message" => "Hello Fluentd",
        "time" => "2020-10-10T00:10:00.333333333Z"}
    );
}

#[test]
fn cri_partial_lines_and_nested_json() {
    let mut p = parser("@type cri\n<parse>\n  @type json\n</parse>");
    assert_eq!(p.parse(r#"2020-10-10T00:10:00.1Z stdout P {"a":"#).unwrap(), None);
    assert_eq!(p.parse("2020-10-10T00:10:01.0Z stderr F not json").ok(), None, "nested json refuses");
    let (t, r) = one(&mut p, r#"2020-10-10T00:10:02.0Z stdout F 1,"time":1362020400}"#);
    assert_eq!(t, Some(DOC_TIME));
    assert_eq!(r, record! {"a" => 1i64, "stream" => "stdout", "logtag" => "F"});
    // Nested record without time: the runtime's timestamp.
    let (t, _) = one(&mut p, r#"2020-10-10T00:10:00.5Z stdout F {"b":2}"#);
    assert_eq!(t, Some(EventTime::new(utc(2020, 10, 10, 0, 10, 0), 500_000_000)));
}

#[test]
fn cri_malformed_inputs() {
    let mut p = parser("@type cri");
    not_matched(&mut p, "");
    not_matched(&mut p, "hello");
    not_matched(&mut p, "2020-10-10T00:10:00Z stdout");
    assert!(matches!(p.parse("yesterday stdout F msg"), Err(ParseError::Time { .. })));
    let (_, r) = one(&mut p, &lossy(b"2020-10-10T00:10:00.0Z stdout F caf\xe9"));
    assert_eq!(r.get("message"), Some(&Value::from("caf\u{FFFD}")));
    // A partial line with no final part is emitted at end of file.
    assert_eq!(p.parse("2020-10-10T00:10:00.0Z stdout P cut").unwrap(), None);
    assert_eq!(p.flush().map(|e| e.record.get("message").cloned()), Some(Some(Value::from("cut"))));
}

// ---------------------------------------------------------------- docker

#[test]
fn docker_json_file_lines() {
    let mut p = parser("@type docker");
    let (t, r) = one(&mut p, r#"{"log":"hello\n","stream":"stdout","time":"2020-10-10T00:10:00.333333333Z"}"#);
    assert_eq!(t, Some(EventTime::new(utc(2020, 10, 10, 0, 10, 0), 333_333_333)));
    assert_eq!(r, record! {"log" => "hello\n", "stream" => "stdout", "time" => "2020-10-10T00:10:00.333333333Z"});
    // A line split by Docker is joined, keeping the first piece's time.
    assert_eq!(p.parse(r#"{"log":"abc","stream":"stdout","time":"2020-10-10T00:10:00.000000001Z"}"#).unwrap(), None);
    let (t, r) = one(&mut p, r#"{"log":"def\n","stream":"stdout","time":"2020-10-10T00:10:01.000000000Z"}"#);
    assert_eq!(t, Some(EventTime::new(utc(2020, 10, 10, 0, 10, 0), 1)));
    assert_eq!(r.get("log"), Some(&Value::from("abcdef\n")));
    not_matched(&mut p, "");
    not_matched(&mut p, r#"{"log":"x"#);
    assert!(matches!(p.parse(r#"{"log":"x\n","time":"nope"}"#), Err(ParseError::Time { .. })));
}

// ---------------------------------------------------------------- common parameters

#[test]
fn time_types_unixtime_float_and_mixed() {
    let mut p = parser("@type json\ntime_type unixtime");
    assert_eq!(one(&mut p, r#"{"time":1362020400}"#).0, Some(DOC_TIME));
    assert_eq!(one(&mut p, r#"{"time":"1362020400"}"#).0, Some(DOC_TIME));
    let mut p = parser("@type json\ntime_type float");
    assert_eq!(one(&mut p, r#"{"time":"1362020400.25"}"#).0, Some(EventTime::new(1_362_020_400, 250_000_000)));
    let mut p = parser("@type json\ntime_type mixed\ntime_format %d/%b/%Y:%H:%M:%S %z\ntime_format_fallbacks unixtime");
    assert_eq!(one(&mut p, r#"{"time":1362020400}"#).0, Some(DOC_TIME));
    assert_eq!(one(&mut p, r#"{"time":"28/Feb/2013:12:00:00 +0900"}"#).0, Some(DOC_TIME));
}

#[test]
fn time_formats_with_fractions_epoch_and_zones() {
    let mut p = parser("@type json\ntime_type string\ntime_format %Y-%m-%dT%H:%M:%S.%L%z");
    assert_eq!(
        one(&mut p, r#"{"time":"2013-02-28T12:00:00.123+09:00"}"#).0,
        Some(EventTime::new(1_362_020_400, 123_000_000))
    );
    let mut p = parser("@type json\ntime_type string\ntime_format %s");
    assert_eq!(one(&mut p, r#"{"time":"1362020400"}"#).0, Some(DOC_TIME));
    // A format without zone uses `timezone` (or `utc`).
    let mut p = parser("@type json\ntime_type string\ntime_format %Y-%m-%d %H:%M:%S\ntimezone +09:00");
    assert_eq!(one(&mut p, r#"{"time":"2013-02-28 12:00:00"}"#).0, Some(DOC_TIME));
    let mut p = parser("@type json\ntime_type string\ntime_format %Y-%m-%d %H:%M:%S\nutc true");
    assert_eq!(one(&mut p, r#"{"time":"2013-02-28 03:00:00"}"#).0, Some(DOC_TIME));
    assert!(try_parser("@type json\nutc true\nlocaltime true").is_err());
    assert!(try_parser("@type json\ntimezone Mars/Olympus").is_err());
}

#[test]
fn keep_time_key_keeps_the_original_value() {
    let mut p = parser("@type json\nkeep_time_key true");
    let (t, r) = one(&mut p, r#"{"time":1362020400,"a":1}"#);
    assert_eq!(t, Some(DOC_TIME));
    assert_eq!(r, record! {"time" => 1362020400i64, "a" => 1i64});
}

#[test]
fn types_conversions_are_lenient_like_ruby() {
    let mut p = parser("@type ltsv\ntypes i:integer,j:integer,f:float,b:bool,c:bool,d:bool,a:array,p:array:|,s:string");
    let (_, r) = one(&mut p, "i:12abc\tj:abc\tf:1.5x\tb:true\tc:no\td:1\ta:x,y\tp:1|2\ts:7\tz:untouched");
    assert_eq!(
        r,
        record! {"i" => 12i64, "j" => 0i64, "f" => 1.5, "b" => true, "c" => false, "d" => true,
        "a" => vec![Value::from("x"), Value::from("y")], "p" => vec![Value::from("1"), Value::from("2")],
        "s" => "7", "z" => "untouched"}
    );
    assert!(try_parser("@type json\ntypes a:nosuchtype").is_err());
}

#[test]
fn null_value_pattern_and_null_empty_string() {
    let mut p = parser("@type ltsv\nnull_value_pattern /^(-|null)$/\nnull_empty_string true\ntypes n:integer");
    let (_, r) = one(&mut p, "a:-\tb:null\tc:\td:x-\tn:-");
    assert_eq!(
        r,
        record! {"a" => Value::Null, "b" => Value::Null, "c" => Value::Null, "d" => "x-", "n" => Value::Null}
    );
    // A bare pattern (without slashes) is accepted too.
    let mut p = parser("@type ltsv\nnull_value_pattern ^-$");
    let (_, r) = one(&mut p, "a:-\tb:--");
    assert_eq!(r, record! {"a" => Value::Null, "b" => "--"});
}

#[test]
fn estimate_current_event_is_accepted_and_no_time_means_none() {
    for v in ["true", "false"] {
        let mut p = parser(&format!("@type json\nestimate_current_event {v}"));
        assert_eq!(one(&mut p, r#"{"a":1}"#), (None, record! {"a" => 1i64}));
    }
}

#[test]
fn unknown_parser_type_is_a_config_error() {
    let err = try_parser("@type nosuchparser").err().expect("error");
    assert!(err.contains("nosuchparser"), "{err}");
}

#[test]
fn json_edge_cases_like_ruby() {
    let mut p = parser("@type json");
    // A repeated key: the last value wins, at the first key's place (Ruby's Hash).
    assert_eq!(one(&mut p, r#"{"a":1,"b":2,"a":3}"#), (None, record! {"a" => 3i64, "b" => 2i64}));
    // A nil time is not a time.
    assert!(matches!(p.parse(r#"{"time":null,"a":1}"#), Err(ParseError::Time { .. })));
    // Invalid UTF-8 outside a string leaves text after the object: not JSON.
    not_matched(&mut p, &lossy(b"{\"a\":1}\xff"));
    not_matched(&mut p, "   ");
}

#[test]
fn syslog_rfc5424_structured_data_with_escaped_bracket() {
    let mut p = parser("@type syslog\nmessage_format rfc5424");
    let (t, r) = one(&mut p, r#"2013-02-28T12:00:00.5+09:00 host app 42 ID1 [a x="1\]"][b y="2"] msg text"#);
    assert_eq!(t, Some(EventTime::new(1_362_020_400, 500_000_000)));
    assert_eq!(
        r,
        record! {"host" => "host", "ident" => "app", "pid" => "42", "msgid" => "ID1",
        "extradata" => r#"[a x="1\]"][b y="2"]"#, "message" => "msg text"}
    );
}

// ---------------------------------------------------------------- joined records as bytes, size limit

/// A docker piece that holds raw bytes cut inside a character, with JSON escapes around the cut and a
/// field before `log`: the joined `log` is the original text, escapes decoded.
#[test]
fn docker_pieces_with_escapes_and_a_cut_character_join_as_bytes() {
    let mut p = parser("@type docker");
    let text = "é \"quoted\" \\ 한국어 <tag>\n";
    let mut first = br#"{"attrs":{"a":"x,}"},"log":"\u00e9 \"quoted\" \\ "#.to_vec();
    first.extend_from_slice(&"한".as_bytes()[..2]);
    first.extend_from_slice(br#"","stream":"stdout","time":"2024-01-01T10:00:00.000000001Z"}"#);
    let mut second = br#"{"log":""#.to_vec();
    second.extend_from_slice(&"한".as_bytes()[2..]);
    second.extend_from_slice(
        br#"\uad6d\uc5b4 \u003ctag\u003e\n","stream":"stdout","time":"2024-01-01T10:00:00.000000002Z"}"#,
    );
    assert!(std::str::from_utf8(&first).is_err());
    assert_eq!(p.parse_bytes(&first).unwrap(), None);
    let joined = p.parse_bytes(&second).unwrap().expect("the joined record");
    assert_eq!(joined.record.get("log").and_then(Value::as_str), Some(text));
    assert_eq!(joined.record.get("stream").and_then(Value::as_str), Some("stdout"));
    assert_eq!(joined.record.get("time").and_then(Value::as_str), Some("2024-01-01T10:00:00.000000001Z"));
}

/// With a size limit, a joined record that outgrows it fails once with TooLong, its other parts give
/// nothing, and the next record is whole.
#[test]
fn joined_records_past_the_limit_fail_once_and_the_next_is_whole() {
    let mut cri = parser("@type cri");
    cri.set_max_joined_size(10);
    assert_eq!(cri.parse("2024-01-01T10:00:00.0Z stdout P 123456").unwrap(), None);
    assert_eq!(cri.parse("2024-01-01T10:00:00.0Z stdout P 789012"), Err(ParseError::TooLong { limit: 10 }));
    // A flush in between (multiline_flush_interval) does not turn the rest into a record of its own.
    assert!(cri.flush().is_none());
    assert_eq!(cri.parse("2024-01-01T10:00:00.0Z stdout P more").unwrap(), None);
    assert_eq!(cri.parse("2024-01-01T10:00:00.0Z stdout F end").unwrap(), None);
    assert!(cri.flush().is_none(), "nothing of the dropped record is held");
    let p = cri.parse("2024-01-01T10:00:00.0Z stdout F whole").unwrap().expect("next record");
    assert_eq!(p.record.get("message").and_then(Value::as_str), Some("whole"));

    let mut ml = parser("@type multiline\nformat_firstline /^S/\nformat1 /^(?<message>.*)/");
    ml.set_max_joined_size(12);
    assert_eq!(ml.parse("S first").unwrap(), None);
    assert_eq!(ml.parse("continued"), Err(ParseError::TooLong { limit: 12 }));
    assert_eq!(ml.parse("skipped").unwrap(), None);
    assert_eq!(ml.parse("S next").unwrap(), None);
    let p = ml.flush().expect("the next event");
    assert_eq!(p.record.get("message").and_then(Value::as_str), Some("S next"));
}

// ---------------------------------------------------------------- v0.12 parameters on the plugin

fn source_parser(body: &str) -> Box<dyn Parser> {
    let text = format!("<source>\n  @type tail\n{body}\n</source>\n");
    let root = parse_str(&text, Path::new("compat.conf")).unwrap();
    let source = root.sections("source").next().expect("a <source>");
    let c = ctx();
    let p = c.registry.parser_of(source, "none", &c).unwrap_or_else(|e| panic!("{e}"));
    // Fluentd reads every compatibility parameter while converting: none is "not used".
    let unused: Vec<String> = source.unused_attrs().iter().map(|(_, a)| a.key.clone()).collect();
    assert!(unused.iter().all(|k| k == "@type"), "{unused:?}");
    p
}

#[test]
fn v012_format_regexp_time_format_and_types() {
    // `format /RE/` is the regexp parser with that expression (CompatParameters), time_format and types
    // move into it; `types` uses the old `key:type` list.
    let mut p = source_parser(
        "  format /^(?<time>[^ ]+ [^ ]+) (?<level>\\w+) (?<code>\\d+)$/\n  time_format %Y-%m-%d %H:%M:%S\n  \
         types code:integer\n  utc true",
    );
    let (t, r) = one(&mut p, "2013-02-28 03:00:00 INFO 200");
    assert_eq!(t, Some(DOC_TIME));
    assert_eq!(r, record! {"level" => "INFO", "code" => 200i64});
}

#[test]
fn v012_format_json_keep_time_key_and_multiline_formats() {
    let mut p = source_parser("  format json\n  time_key ts\n  keep_time_key true\n  time_format %s");
    let (t, r) = one(&mut p, r#"{"ts":"1362020400","a":1}"#);
    assert_eq!(t, Some(DOC_TIME));
    assert_eq!(r, record! {"ts" => "1362020400", "a" => 1i64});
    let mut p = source_parser("  format none\n  message_key log");
    assert_eq!(one(&mut p, "x y").1, record! {"log" => "x y"});
    // in_tail copies format1..N (and format_firstline) into the multiline parser.
    let mut p = source_parser("  format multiline\n  format_firstline /^S/\n  format1 /^S (?<a>\\w+)/");
    assert!(p.parse("S one").unwrap().is_none());
    let Parsed { record, .. } = p.flush().expect("the pending record");
    assert_eq!(record, record! {"a" => "one"});
    // null_value_pattern moves too.
    let mut p = source_parser("  format ltsv\n  null_value_pattern /^-$/");
    assert_eq!(one(&mut p, "a:-\tb:x").1, record! {"a" => Value::Null, "b" => "x"});
}
