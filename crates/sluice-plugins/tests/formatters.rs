//! Formatters (`<format>`) built from real configuration text, checked byte for byte against what Fluentd
//! 1.18 (Ruby 3.3) writes: `out_file`, `json`, `ltsv`, `msgpack`, `single_value`, `csv`, `tsv`, `hash`,
//! `stdout`, with the time parameters (`time_type`, `time_format`, `localtime`/`utc`/`timezone`) and odd
//! input (bytes that are not UTF-8, nested maps, nulls, floats such as 1.0, unicode, control characters).
//!
//! Note on `hash`: Ruby 3.4 changed `Hash#inspect` to `{"k" => "v"}`; Fluentd 1.18 on Ruby 3.3 (the
//! td-agent/fluent-package and official image spelling) prints `{"k"=>"v"}`, which is what sluice writes.
use sluice_core::config::{parse_str, ConfigError};
use sluice_core::engine::assemble;
use sluice_core::event::{EventTime, Map, Value};
use sluice_core::plugin::{Formatter, Registry};
use sluice_core::record;
use std::path::Path;
use std::sync::Arc;

/// 2026-11-25T01:02:03.123456789Z
const T: EventTime = EventTime::new(1_795_568_523, 123_456_789);

fn registry() -> Arc<Registry> {
    let mut r = Registry::new();
    sluice_plugins::register_all(&mut r);
    Arc::new(r)
}

/// Build the formatter of a `<match>` whose `<format>` section holds `body`, through the file output's
/// own way of reading it (`formatter_of`).
fn build(body: &str) -> Result<Arc<dyn Formatter>, ConfigError> {
    let text = format!("<match **>\n  @type null\n  <format>\n{body}\n  </format>\n</match>\n");
    let root = parse_str(&text, Path::new("fmt.conf"))?;
    let m = root.sections("match").next().expect("a <match>");
    // A context from a real assembly of an empty config.
    let a = assemble(&parse_str("", Path::new("empty.conf"))?, registry(), true);
    let ctx = a.engine.expect("engine").ctx;
    ctx.registry.formatter_of(m, "out_file", &ctx)
}

fn fmt_at(body: &str, tag: &str, time: EventTime, rec: &Map) -> Vec<u8> {
    let f = build(body).unwrap_or_else(|e| panic!("config error for {body:?}: {e}"));
    let mut out = Vec::new();
    f.format(tag, time, rec, &mut out);
    out
}

fn fmt(body: &str, rec: &Map) -> String {
    String::from_utf8(fmt_at(body, "app.web", T, rec)).expect("utf-8 output")
}

fn config_error(body: &str) -> String {
    match build(body) {
        Ok(_) => panic!("expected a configuration error for {body:?}"),
        Err(e) => e.to_string(),
    }
}

/// A record with a bit of everything.
fn rich() -> Map {
    let mut m = record! {"k" => "v", "n" => 1i64, "f" => 1.0, "g" => 2.5};
    m.insert("nil", Value::Null);
    m.insert("b", Value::Bool(true));
    m.insert("u", Value::from("héllo ✓ 日本"));
    m.insert("m", Value::Map(record! {"a" => Value::Array(vec![Value::Int(1), Value::Float(2.5), Value::Null])}));
    m
}

const RICH_JSON: &str =
    r#"{"k":"v","n":1,"f":1.0,"g":2.5,"nil":null,"b":true,"u":"héllo ✓ 日本","m":{"a":[1,2.5,null]}}"#;

// --- out_file ---------------------------------------------------------------------------------------------

#[test]
fn out_file_default_is_time_tab_tag_tab_json() {
    assert_eq!(
        fmt("    @type out_file\n    utc true", &record! {"k" => "v"}),
        "2026-11-25T01:02:03Z\tapp.web\t{\"k\":\"v\"}\n"
    );
    assert_eq!(
        fmt("    @type out_file\n    utc true", &rich()),
        format!("2026-11-25T01:02:03Z\tapp.web\t{RICH_JSON}\n")
    );
    // `timezone +00:00` is not `utc`: Ruby's iso8601 prints the offset, not `Z`.
    assert_eq!(
        fmt("    @type out_file\n    timezone +00:00", &record! {"k" => "v"}),
        "2026-11-25T01:02:03+00:00\tapp.web\t{\"k\":\"v\"}\n"
    );
    assert_eq!(
        fmt("    @type out_file\n    timezone +09:00", &record! {"k" => "v"}),
        "2026-11-25T10:02:03+09:00\tapp.web\t{\"k\":\"v\"}\n"
    );
    assert_eq!(
        fmt("    @type out_file\n    localtime false", &record! {"k" => "v"}),
        "2026-11-25T01:02:03Z\tapp.web\t{\"k\":\"v\"}\n"
    );
}

#[test]
fn out_file_default_type_when_format_has_no_type() {
    // <format> without @type on the file output is out_file.
    assert_eq!(fmt("    utc true", &record! {"k" => "v"}), "2026-11-25T01:02:03Z\tapp.web\t{\"k\":\"v\"}\n");
}

#[test]
fn out_file_local_time_uses_the_system_zone() {
    use chrono::TimeZone;
    let local = chrono::Local.timestamp_opt(T.sec, 0).single().expect("local time");
    let expected = format!("{}\tapp.web\t{{\"k\":\"v\"}}\n", local.format("%Y-%m-%dT%H:%M:%S%:z"));
    assert_eq!(fmt("    @type out_file", &record! {"k" => "v"}), expected);
    assert_eq!(fmt("    @type out_file\n    localtime true", &record! {"k" => "v"}), expected);
    assert_eq!(fmt("    @type out_file\n    utc false", &record! {"k" => "v"}), expected);
}

#[test]
fn out_file_delimiter_output_tag_output_time() {
    let r = record! {"k" => "v"};
    assert_eq!(
        fmt("    @type out_file\n    utc true\n    delimiter SPACE", &r),
        "2026-11-25T01:02:03Z app.web {\"k\":\"v\"}\n"
    );
    assert_eq!(
        fmt("    @type out_file\n    utc true\n    delimiter comma", &r),
        "2026-11-25T01:02:03Z,app.web,{\"k\":\"v\"}\n"
    );
    // Fluentd turns any other value into a tab.
    assert_eq!(
        fmt("    @type out_file\n    utc true\n    delimiter |", &r),
        "2026-11-25T01:02:03Z\tapp.web\t{\"k\":\"v\"}\n"
    );
    assert_eq!(
        fmt("    @type out_file\n    output_tag false\n    utc true", &r),
        "2026-11-25T01:02:03Z\t{\"k\":\"v\"}\n"
    );
    assert_eq!(fmt("    @type out_file\n    output_time false", &r), "app.web\t{\"k\":\"v\"}\n");
    assert_eq!(fmt("    @type out_file\n    output_time false\n    output_tag false", &r), "{\"k\":\"v\"}\n");
    assert_eq!(fmt("    @type out_file\n    output_time false\n    newline crlf", &r), "app.web\t{\"k\":\"v\"}\r\n");
}

#[test]
fn out_file_time_type_and_time_format() {
    let r = record! {"k" => "v"};
    assert_eq!(fmt("    @type out_file\n    time_type unixtime", &r), "1795568523\tapp.web\t{\"k\":\"v\"}\n");
    assert_eq!(fmt("    @type out_file\n    time_as_epoch true", &r), "1795568523\tapp.web\t{\"k\":\"v\"}\n");
    // out_file's float is Ruby's `time.to_r.to_f.to_s`.
    assert_eq!(fmt("    @type out_file\n    time_type float", &r), "1795568523.1234567\tapp.web\t{\"k\":\"v\"}\n");
    let whole = fmt_at("    @type out_file\n    time_type float", "t", EventTime::new(1_795_568_523, 0), &r);
    assert_eq!(String::from_utf8(whole).unwrap(), "1795568523.0\tt\t{\"k\":\"v\"}\n");
    assert_eq!(
        fmt("    @type out_file\n    utc true\n    time_format %Y%m%d %H:%M:%S.%L", &r),
        "20261125 01:02:03.123\tapp.web\t{\"k\":\"v\"}\n"
    );
    assert_eq!(
        fmt("    @type out_file\n    utc true\n    time_format %Y-%m-%dT%H:%M:%S.%N%z", &r),
        "2026-11-25T01:02:03.123456789+0000\tapp.web\t{\"k\":\"v\"}\n"
    );
    assert_eq!(
        fmt("    @type out_file\n    timezone -05:30\n    time_format %H:%M:%S %:z", &r),
        "19:32:03 -05:30\tapp.web\t{\"k\":\"v\"}\n"
    );
    assert_eq!(fmt("    @type out_file\n    utc true\n    time_format %s", &r), "1795568523\tapp.web\t{\"k\":\"v\"}\n");
}

#[test]
fn out_file_time_cache_does_not_mix_up_sub_seconds() {
    let f = build("    @type out_file\n    utc true\n    time_format %S.%L").unwrap();
    let mut out = Vec::new();
    for ns in [1_000_000, 2_000_000, 2_000_000, 999_000_000] {
        f.format("t", EventTime::new(T.sec, ns), &record! {}, &mut out);
    }
    f.format("t", EventTime::new(T.sec + 1, 0), &record! {}, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "03.001\tt\t{}\n03.002\tt\t{}\n03.002\tt\t{}\n03.999\tt\t{}\n04.000\tt\t{}\n"
    );
}

#[test]
fn time_parameter_errors() {
    let e = config_error("    @type out_file\n    utc true\n    localtime true");
    assert!(e.contains("both of utc and localtime"), "{e}");
    let e = config_error("    @type out_file\n    time_type weird");
    assert!(e.contains("time_type"), "{e}");
    let e = config_error("    @type out_file\n    timezone Not/AZone");
    assert!(e.contains("fmt.conf"), "{e}");
    let e = config_error("    @type out_file\n    output_tag maybe");
    assert!(e.contains("output_tag"), "{e}");
    let e = config_error("    @type nosuchformatter");
    assert!(e.contains("nosuchformatter"), "{e}");
}

// --- json -------------------------------------------------------------------------------------------------

#[test]
fn json_formatter() {
    assert_eq!(fmt("    @type json", &record! {"k" => "v"}), "{\"k\":\"v\"}\n");
    assert_eq!(fmt("    @type json", &rich()), format!("{RICH_JSON}\n"));
    assert_eq!(fmt("    @type json", &record! {}), "{}\n");
    assert_eq!(fmt("    @type json\n    add_newline false", &record! {"k" => "v"}), "{\"k\":\"v\"}");
    assert_eq!(fmt("    @type json\n    newline crlf", &record! {"k" => "v"}), "{\"k\":\"v\"}\r\n");
    assert_eq!(fmt("    @type json\n    json_parser oj", &record! {"k" => "v"}), "{\"k\":\"v\"}\n");
    // Escapes as Ruby's JSON: short forms, lowercase \u00XX for other controls, `/` and non-ASCII as is.
    assert_eq!(
        fmt("    @type json", &record! {"s" => "a\"b\\c/d\n\t\r\u{1}\u{1f}é\u{7f}"}),
        "{\"s\":\"a\\\"b\\\\c/d\\n\\t\\r\\u0001\\u001fé\u{7f}\"}\n"
    );
    // Floats as Ruby prints them.
    let floats = record! {"a" => 1.0, "b" => 0.1, "c" => -0.5, "d" => 1e15, "i" => -3i64};
    assert_eq!(fmt("    @type json", &floats), "{\"a\":1.0,\"b\":0.1,\"c\":-0.5,\"d\":1000000000000000.0,\"i\":-3}\n");
    let big = record! {"u" => Value::UInt(u64::MAX)};
    assert_eq!(fmt("    @type json", &big), "{\"u\":18446744073709551615}\n");
}

#[test]
fn json_formatter_exponent_floats_like_ruby() {
    let floats = record! {"d" => 1e20, "e" => 1.5e-7};
    assert_eq!(fmt("    @type json", &floats), "{\"d\":1.0e+20,\"e\":1.5e-07}\n");
}

#[test]
fn json_formatter_with_bytes_that_are_not_utf8_still_writes_valid_json() {
    // Fluentd's JSON generator raises on such strings and the event is lost; sluice keeps the event and
    // writes U+FFFD for each bad sequence, so the line stays valid JSON.
    let r = record! {"raw" => Value::Bytes(vec![b'a', 0xff, b'b', 0xc3])};
    let out = fmt("    @type json", &r);
    assert_eq!(out, "{\"raw\":\"a\u{FFFD}b\u{FFFD}\"}\n");
    serde_json::from_str::<serde_json::Value>(out.trim_end()).expect("valid JSON");
}

// --- ltsv -------------------------------------------------------------------------------------------------

#[test]
fn ltsv_formatter() {
    assert_eq!(fmt("    @type ltsv", &record! {"k" => "v", "k2" => "v2"}), "k:v\tk2:v2\n");
    let mut r = record! {"t" => "a\tb", "n" => 3i64, "f" => 1.0};
    r.insert("nil", Value::Null);
    r.insert("m", Value::Map(record! {"x" => 1i64, "y" => "z"}));
    r.insert("arr", Value::Array(vec![Value::from("a"), Value::Null]));
    r.insert("u", Value::from("日本"));
    assert_eq!(
        fmt("    @type ltsv", &r),
        "t:a b\tn:3\tf:1.0\tnil:\tm:{\"x\"=>1, \"y\"=>\"z\"}\tarr:[\"a\", nil]\tu:日本\n"
    );
    assert_eq!(
        fmt(
            "    @type ltsv\n    delimiter ,\n    label_delimiter =\n    replacement _",
            &record! {"a" => "1,2", "b" => "x\ty"}
        ),
        "a=1_2,b=x\ty\n"
    );
    assert_eq!(fmt("    @type ltsv\n    add_newline false", &record! {"k" => "v"}), "k:v");
    assert_eq!(fmt("    @type ltsv", &record! {}), "\n");
}

#[test]
fn ltsv_keeps_bytes_that_are_not_utf8() {
    let r = record! {"raw" => Value::Bytes(vec![b'a', 0xff])};
    assert_eq!(fmt_at("    @type ltsv", "t", T, &r), b"raw:a\xff\n");
}

// --- single_value -----------------------------------------------------------------------------------------

#[test]
fn single_value_formatter() {
    assert_eq!(fmt("    @type single_value", &record! {"message" => "hello", "other" => "x"}), "hello\n");
    assert_eq!(fmt("    @type single_value", &record! {"other" => "x"}), "\n");
    assert_eq!(fmt("    @type single_value\n    message_key log", &record! {"log" => "line"}), "line\n");
    assert_eq!(fmt("    @type single_value\n    add_newline false", &record! {"message" => "m"}), "m");
    // A value that already ends with a newline gets another one, as in Fluentd.
    assert_eq!(fmt("    @type single_value", &record! {"message" => "m\n"}), "m\n\n");
    assert_eq!(fmt("    @type single_value", &record! {"message" => 1.0}), "1.0\n");
    assert_eq!(fmt("    @type single_value", &record! {"message" => Value::Null}), "\n");
    assert_eq!(
        fmt("    @type single_value", &record! {"message" => Value::Map(record! {"a" => "b"})}),
        "{\"a\"=>\"b\"}\n"
    );
    assert_eq!(fmt("    @type single_value", &record! {"message" => "ünï ✓"}), "ünï ✓\n");
    let r = record! {"message" => Value::Bytes(vec![0xfe, b'x', 0xff])};
    assert_eq!(fmt_at("    @type single_value", "t", T, &r), b"\xfex\xff\n");
}

// --- csv and tsv ------------------------------------------------------------------------------------------

#[test]
fn csv_formatter() {
    let mut r = record! {"k" => "v", "n" => 1i64, "f" => 1.0, "q" => "say \"hi\", ok", "e" => ""};
    r.insert("nil", Value::Null);
    r.insert("m", Value::Map(record! {"a" => 1i64}));
    assert_eq!(
        fmt("    @type csv\n    fields k,n,f,q,nil,missing,e,m", &r),
        "\"v\",\"1\",\"1.0\",\"say \"\"hi\"\", ok\",\"\",\"\",\"\",\"{\"\"a\"\"=>1}\"\n"
    );
    assert_eq!(
        fmt("    @type csv\n    fields k,n,f,q,nil,missing,e,m\n    force_quotes false", &r),
        "v,1,1.0,\"say \"\"hi\"\", ok\",,,\"\",\"{\"\"a\"\"=>1}\"\n"
    );
    assert_eq!(fmt("    @type csv\n    fields k, n\n    delimiter \\t", &r), "\"v\"\t\"1\"\n");
    assert_eq!(fmt("    @type csv\n    fields k,n\n    delimiter TAB\n    force_quotes false", &r), "v\t1\n");
    assert_eq!(fmt("    @type csv\n    fields k,n\n    add_newline false", &r), "\"v\",\"1\"");
    assert_eq!(
        fmt("    @type csv\n    fields a,b\n    force_quotes false", &record! {"a" => "x\ny", "b" => "p\rq"}),
        "\"x\ny\",\"p\rq\"\n"
    );
    assert_eq!(fmt("    @type csv\n    fields u\n    force_quotes false", &record! {"u" => "日本"}), "日本\n");
    let e = config_error("    @type csv");
    assert!(e.contains("fields"), "{e}");
}

#[test]
fn tsv_formatter() {
    let mut r = record! {"k" => "v", "n" => 1i64, "f" => 1.0, "t" => "a\tb"};
    r.insert("nil", Value::Null);
    assert_eq!(fmt("    @type tsv\n    keys k,n,f,nil,missing,t", &r), "v\t1\t1.0\t\t\ta\tb\n");
    assert_eq!(fmt("    @type tsv\n    keys k,n\n    delimiter |", &r), "v|1\n");
    assert_eq!(fmt("    @type tsv\n    keys k,n\n    add_newline false", &r), "v\t1");
    let e = config_error("    @type tsv");
    assert!(e.contains("keys"), "{e}");
}

// --- hash -------------------------------------------------------------------------------------------------

#[test]
fn hash_formatter_prints_ruby_33_hash_to_s() {
    assert_eq!(fmt("    @type hash", &record! {"k" => "v"}), "{\"k\"=>\"v\"}\n");
    assert_eq!(
        fmt("    @type hash", &rich()),
        "{\"k\"=>\"v\", \"n\"=>1, \"f\"=>1.0, \"g\"=>2.5, \"nil\"=>nil, \"b\"=>true, \"u\"=>\"héllo ✓ 日本\", \
         \"m\"=>{\"a\"=>[1, 2.5, nil]}}\n"
    );
    assert_eq!(fmt("    @type hash", &record! {}), "{}\n");
    assert_eq!(fmt("    @type hash\n    add_newline false", &record! {"k" => "v"}), "{\"k\"=>\"v\"}");
    assert_eq!(
        fmt("    @type hash", &record! {"s" => "q\"\\\n\t#{x} #y \u{1}"}),
        "{\"s\"=>\"q\\\"\\\\\\n\\t\\#{x} #y \\u0001\"}\n"
    );
    assert_eq!(
        fmt("    @type hash", &record! {"big" => 1e20, "small" => 0.0001}),
        "{\"big\"=>1.0e+20, \"small\"=>0.0001}\n"
    );
    // A binary string shows its bad bytes as \xNN, as Ruby's String#inspect does.
    let r = record! {"raw" => Value::Bytes(vec![b'a', 0xff, b'b'])};
    assert_eq!(fmt("    @type hash", &r), "{\"raw\"=>\"a\\xFFb\"}\n");
}

// --- msgpack ----------------------------------------------------------------------------------------------

#[test]
fn msgpack_formatter_writes_only_the_record() {
    let mut r = record! {"a" => 1i64, "f" => 1.0, "s" => "é"};
    r.insert("n", Value::Null);
    r.insert("m", Value::Map(record! {"x" => Value::Array(vec![Value::Bool(true), Value::Int(-1)])}));
    let out = fmt_at("    @type msgpack", "t", T, &r);
    let mut expected = vec![0x85, 0xa1, b'a', 0x01, 0xa1, b'f', 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0];
    expected.extend_from_slice(&[0xa1, b's', 0xa2, 0xc3, 0xa9, 0xa1, b'n', 0xc0]);
    expected.extend_from_slice(&[0xa1, b'm', 0x81, 0xa1, b'x', 0x92, 0xc3, 0xff]);
    assert_eq!(out, expected);
    // No newline, and two events are simply concatenated.
    let f = build("    @type msgpack").unwrap();
    let mut two = Vec::new();
    f.format("t", T, &record! {"a" => 1i64}, &mut two);
    f.format("t", T, &record! {"a" => 2i64}, &mut two);
    assert_eq!(two, vec![0x81, 0xa1, b'a', 0x01, 0x81, 0xa1, b'a', 0x02]);
}

// --- stdout -----------------------------------------------------------------------------------------------

#[test]
fn stdout_formatter() {
    // Fluentd always prints local time here; `utc`/`timezone` are a sluice extension for fixed output.
    assert_eq!(
        fmt("    @type stdout\n    utc true", &record! {"k" => "v"}),
        "2026-11-25 01:02:03.123456789 +0000 app.web: {\"k\":\"v\"}\n"
    );
    assert_eq!(
        fmt("    @type stdout\n    timezone +09:00", &record! {"k" => "v"}),
        "2026-11-25 10:02:03.123456789 +0900 app.web: {\"k\":\"v\"}\n"
    );
    assert_eq!(
        fmt("    @type stdout\n    utc true\n    output_type hash", &record! {"k" => "v", "n" => Value::Null}),
        "2026-11-25 01:02:03.123456789 +0000 app.web: {\"k\"=>\"v\", \"n\"=>nil}\n"
    );
    assert_eq!(
        fmt("    @type stdout\n    utc true\n    output_type ltsv", &record! {"k" => "v", "k2" => 1.0}),
        "2026-11-25 01:02:03.123456789 +0000 app.web: k:v\tk2:1.0\n"
    );
    // The sub-formatter's newline is chomped once: exactly one newline per event.
    assert_eq!(
        fmt("    @type stdout\n    utc true\n    output_type single_value", &record! {"message" => "m"}),
        "2026-11-25 01:02:03.123456789 +0000 app.web: m\n"
    );
    assert_eq!(
        fmt("    @type stdout\n    utc true\n    output_type json\n    add_newline false", &record! {"k" => "v"}),
        "2026-11-25 01:02:03.123456789 +0000 app.web: {\"k\":\"v\"}\n"
    );
    let local = {
        use chrono::TimeZone;
        chrono::Local
            .timestamp_opt(T.sec, T.nsec)
            .single()
            .expect("local")
            .format("%Y-%m-%d %H:%M:%S.%f %z")
            .to_string()
    };
    assert_eq!(fmt("    @type stdout", &record! {"k" => "v"}), format!("{local} app.web: {{\"k\":\"v\"}}\n"));
    let e = config_error("    @type stdout\n    output_type stdout");
    assert!(e.contains("output_type"), "{e}");
}

#[test]
fn v012_flat_format_parameters_on_the_plugin() {
    // `format json` directly in <match> (v0.12 style) builds the same formatter.
    let root =
        parse_str("<match **>\n  @type null\n  format ltsv\n  delimiter ,\n</match>\n", Path::new("f.conf")).unwrap();
    let m = root.sections("match").next().unwrap();
    let a = assemble(&parse_str("", Path::new("e.conf")).unwrap(), registry(), true);
    let ctx = a.engine.expect("engine").ctx;
    let f = ctx.registry.formatter_of(m, "out_file", &ctx).unwrap();
    let mut out = Vec::new();
    f.format("t", T, &record! {"a" => "1", "b" => "2"}, &mut out);
    assert_eq!(out, b"a:1,b:2\n");
}
