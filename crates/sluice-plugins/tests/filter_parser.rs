//! `parser` filter: exact records and times for parsed input, every option, and the malformed cases (bad
//! JSON, a regexp that does not match, invalid UTF-8, empty text, missing key, bad time), with the error
//! events they produce, and `@ERROR` routing through the engine.
mod common;

use common::{registry, sink};
use sluice_core::config::{parse_str, ConfigError};
use sluice_core::engine::assemble;
use sluice_core::event::{Event, EventTime, Events, Map, Value};
use sluice_core::plugin::{BuildCtx, ErrorEvents, Filter};
use sluice_core::record;
use std::path::Path;
use std::sync::Arc;

const T0: EventTime = EventTime::new(1_700_000_000, 5);

fn ctx() -> BuildCtx {
    BuildCtx::new(registry())
}

fn build(conf: &str) -> Result<Arc<dyn Filter>, ConfigError> {
    let root = parse_str(conf, Path::new("parser.conf"))?;
    let f = root.sections("filter").next().expect("a <filter>");
    let c = ctx();
    c.registry.build_filter(f, &c)
}

/// A `<filter>` of `@type parser` with `params` and a `<parse>` of `parse`.
fn conf(params: &str, parse: &str) -> String {
    format!("<filter **>\n  @type parser\n{params}\n  <parse>\n{parse}\n  </parse>\n</filter>\n")
}

struct Out {
    events: Vec<(EventTime, Map)>,
    errors: Vec<(Map, String)>,
}

fn run(conf: &str, records: Vec<Map>) -> Out {
    let f = build(conf).unwrap_or_else(|e| panic!("config error: {e}"));
    let mut events: Events = records.into_iter().map(|r| Event::new(T0, r)).collect();
    let mut errors = ErrorEvents::default();
    f.filter("test", &mut events, &mut errors);
    Out {
        events: events.into_iter().map(|e| (e.time, e.record)).collect(),
        errors: errors.events.into_iter().map(|(e, r)| (e.record, r)).collect(),
    }
}

const JSON: &str = "    @type json";

#[test]
fn fluentd_docs_regexp_example() {
    let parse = r#"    @type regexp
    expression /^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^ ]*) +\S*)?" (?<code>[^ ]*) (?<size>[^ ]*)$/
    time_format %d/%b/%Y:%H:%M:%S %z"#;
    let out = run(
        &conf("  key_name log", parse),
        vec![
            record! {"key" => "value", "log" => "192.168.0.1 - - [05/Feb/2018:12:00:00 +0900] \"GET / HTTP/1.1\" 200 777"},
        ],
    );
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(
        out.events,
        vec![(
            EventTime::new(1_517_799_600, 0),
            record! {"host" => "192.168.0.1", "user" => "-", "method" => "GET", "path" => "/", "code" => "200", "size" => "777"}
        )]
    );
}

#[test]
fn json_replaces_the_record_and_keeps_the_event_time_without_one() {
    let out = run(
        &conf("  key_name log", JSON),
        vec![record! {"log" => r#"{"a":1,"b":{"c":"x"},"d":null}"#, "other" => "o"}],
    );
    let mut want = record! {"a" => 1i64};
    want.insert("b", Value::from(record! {"c" => "x"}));
    want.insert("d", Value::Null);
    assert_eq!(out.events, vec![(T0, want)]);
    assert!(out.errors.is_empty());
}

#[test]
fn json_time_key_sets_the_time_unless_reserve_time() {
    let rec = || record! {"log" => r#"{"time":1362020400.5,"m":"x"}"#};
    let out = run(&conf("  key_name log", JSON), vec![rec()]);
    assert_eq!(out.events, vec![(EventTime::new(1_362_020_400, 500_000_000), record! {"m" => "x"})]);
    let out = run(&conf("  key_name log\n  reserve_time true", JSON), vec![rec()]);
    assert_eq!(out.events, vec![(T0, record! {"m" => "x"})]);
}

#[test]
fn reserve_data_remove_key_prefix_and_hash_value_field() {
    let rec = || record! {"level" => "info", "log" => r#"{"level":"warn","user":"u1"}"#, "z" => 9i64};

    // reserve_data: original keys keep their place, parsed keys override in place or are appended.
    let out = run(&conf("  key_name log\n  reserve_data true", JSON), vec![rec()]);
    assert_eq!(
        out.events[0].1,
        record! {"level" => "warn", "log" => r#"{"level":"warn","user":"u1"}"#, "z" => 9i64, "user" => "u1"}
    );

    let out = run(&conf("  key_name log\n  reserve_data true\n  remove_key_name_field true", JSON), vec![rec()]);
    assert_eq!(out.events[0].1, record! {"level" => "warn", "z" => 9i64, "user" => "u1"});

    let out = run(
        &conf("  key_name log\n  reserve_data true\n  remove_key_name_field true\n  inject_key_prefix log.", JSON),
        vec![rec()],
    );
    assert_eq!(out.events[0].1, record! {"level" => "info", "z" => 9i64, "log.level" => "warn", "log.user" => "u1"});

    let out = run(&conf("  key_name log\n  reserve_data true\n  hash_value_field parsed", JSON), vec![rec()]);
    let mut want = rec();
    want.insert("parsed", Value::from(record! {"level" => "warn", "user" => "u1"}));
    assert_eq!(out.events[0].1, want);

    // Without reserve_data, hash_value_field and the prefix shape the new record alone.
    let out = run(&conf("  key_name log\n  hash_value_field p\n  inject_key_prefix x_", JSON), vec![rec()]);
    let mut want = Map::new();
    want.insert("p", Value::from(record! {"x_level" => "warn", "x_user" => "u1"}));
    assert_eq!(out.events[0].1, want);
}

#[test]
fn nested_key_name_is_a_record_accessor() {
    let mut rec = Map::new();
    rec.insert("kubernetes", Value::from(record! {"pod" => "p"}));
    rec.insert("payload", Value::from(record! {"raw" => "k1:v1\tk2:v2"}));
    let out = run(
        &conf("  key_name $.payload.raw\n  reserve_data true\n  remove_key_name_field true", "    @type ltsv"),
        vec![rec],
    );
    let mut want = Map::new();
    want.insert("kubernetes", Value::from(record! {"pod" => "p"}));
    want.insert("payload", Value::Map(Map::new()));
    want.insert("k1", Value::from("v1"));
    want.insert("k2", Value::from("v2"));
    assert_eq!(out.events, vec![(T0, want)]);
}

#[test]
fn malformed_input_goes_to_error_events() {
    let bad = vec![
        record! {"log" => "{\"a\":"},
        record! {"log" => ""},
        record! {"log" => "[1,2]"},
        record! {"other" => "no log key"},
        record! {"log" => Value::Null},
        record! {"log" => Value::Bytes(b"{\"a\":\"\xff\"}".to_vec())},
        record! {"log" => 42i64},
        record! {"log" => r#"{"ok":true}"#},
    ];
    let out = run(&conf("  key_name log", JSON), bad.clone());
    assert_eq!(out.events, vec![(T0, record! {"ok" => true})]);
    let reasons: Vec<&str> = out.errors.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(out.errors.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(), bad[..7].to_vec());
    assert!(reasons[0].starts_with("pattern not matched in key 'log': invalid JSON"), "{reasons:?}");
    assert!(reasons[1].starts_with("pattern not matched in key 'log'"), "{reasons:?}");
    assert_eq!(reasons[2], "pattern not matched in key 'log': JSON value is not an object");
    assert_eq!(reasons[3], "log does not exist");
    assert_eq!(reasons[4], "log does not exist");
    assert_eq!(reasons[5], "invalid byte sequence in UTF-8");
    assert_eq!(reasons[6], "parse failed: the value is not a string");
    // Reasons never quote the record.
    assert!(!reasons.iter().any(|r| r.contains("{\"a\"")));
}

#[test]
fn a_json_array_becomes_one_event_per_object_in_place() {
    let out = run(
        &conf("  key_name log\n  reserve_data true", JSON),
        vec![
            record! {"log" => "[{\"a\":1,\"time\":1362020400},{\"a\":2},7]", "pod" => "p"},
            record! {"log" => "{\"a\":3}", "pod" => "q"},
        ],
    );
    assert_eq!(
        out.events,
        vec![
            (
                EventTime::new(1_362_020_400, 0),
                record! {"log" => "[{\"a\":1,\"time\":1362020400},{\"a\":2},7]", "pod" => "p", "a" => 1i64}
            ),
            (T0, record! {"log" => "[{\"a\":1,\"time\":1362020400},{\"a\":2},7]", "pod" => "p", "a" => 2i64}),
            // The element that is not an object: reported, and kept unparsed because of reserve_data.
            (T0, record! {"log" => "[{\"a\":1,\"time\":1362020400},{\"a\":2},7]", "pod" => "p"}),
            (T0, record! {"log" => "{\"a\":3}", "pod" => "q", "a" => 3i64}),
        ]
    );
    assert_eq!(out.errors.len(), 1);
    assert!(out.errors[0].1.contains("not an object"), "{:?}", out.errors);
}

#[test]
fn reserve_data_keeps_unparsable_records_and_still_reports_them() {
    let out = run(
        &conf("  key_name log\n  reserve_data true\n  remove_key_name_field true\n  hash_value_field p", JSON),
        vec![record! {"log" => "not json", "n" => 1i64}, record! {"n" => 2i64}],
    );
    // Fluentd merges an empty parse result: the hash_value_field appears, the key is not removed.
    let mut a = record! {"log" => "not json", "n" => 1i64};
    a.insert("p", Value::Map(Map::new()));
    let mut b = record! {"n" => 2i64};
    b.insert("p", Value::Map(Map::new()));
    assert_eq!(out.events, vec![(T0, a), (T0, b)]);
    assert_eq!(out.errors.len(), 2);
    assert_eq!(out.errors[0].0, record! {"log" => "not json", "n" => 1i64});
}

#[test]
fn regexp_not_matching_and_bad_time() {
    let parse = "    @type regexp\n    expression /^(?<time>\\S+) (?<msg>.*)$/\n    time_format %Y-%m-%dT%H:%M:%S%z";
    let out = run(
        &conf("  key_name log\n  reserve_data true", parse),
        vec![
            record! {"log" => "2024-05-01T12:00:00+0000 hello"},
            record! {"log" => "no-space-here"},
            record! {"log" => "yesterday hello"},
        ],
    );
    assert_eq!(
        out.events,
        vec![
            (EventTime::new(1_714_564_800, 0), record! {"log" => "2024-05-01T12:00:00+0000 hello", "msg" => "hello"}),
            (T0, record! {"log" => "no-space-here"}),
        ]
    );
    // A bad time drops the record even with reserve_data, as in Fluentd.
    assert_eq!(out.errors.len(), 2);
    assert!(out.errors[0].1.starts_with("pattern not matched in key 'log'"), "{:?}", out.errors);
    assert!(out.errors[1].1.starts_with("invalid time format in key 'log'"), "{:?}", out.errors);
    assert_eq!(out.errors[1].0, record! {"log" => "yesterday hello"});
}

#[test]
fn replace_invalid_sequence_and_emit_invalid_record_to_error_false() {
    let rec = || record! {"log" => Value::Bytes(b"caf\xff ok".to_vec())};
    let out = run(&conf("  key_name log\n  replace_invalid_sequence true", "    @type none"), vec![rec()]);
    assert_eq!(out.events, vec![(T0, record! {"message" => "caf? ok"})]);
    assert!(out.errors.is_empty());

    let out = run(
        &conf("  key_name log\n  emit_invalid_record_to_error false", JSON),
        vec![rec(), record! {"log" => "{"}, record! {"x" => 1i64}, record! {"log" => "{}"}],
    );
    assert_eq!(out.events, vec![(T0, Map::new())]);
    assert!(out.errors.is_empty());
}

#[test]
fn configuration_errors() {
    let e =
        build("<filter **>\n  @type parser\n  <parse>\n    @type json\n  </parse>\n</filter>\n").err().expect("error");
    assert!(e.to_string().contains("key_name") && e.to_string().contains("parser.conf:1"), "{e}");
    let e = build("<filter **>\n  @type parser\n  key_name log\n</filter>\n").err().expect("error");
    assert!(e.to_string().contains("<parse> section is required"), "{e}");
    let e = build(&conf("  key_name $.a[", JSON)).err().expect("error");
    assert!(e.to_string().contains("parser.conf:3"), "{e}");
    let e = build(&conf("  key_name log", "    @type nosuch")).err().expect("error");
    assert!(e.to_string().contains("unknown parser plugin 'nosuch'"), "{e}");
    let e = build(&conf("  key_name log\n  reserve_data maybe", JSON)).err().expect("error");
    assert!(e.to_string().contains("reserve_data"), "{e}");
    // The v0.12 `format` parameter still works.
    let f = build("<filter **>\n  @type parser\n  key_name log\n  format json\n</filter>\n").expect("format json");
    let mut events = vec![Event::new(T0, record! {"log" => "{\"a\":1}"})];
    f.filter("t", &mut events, &mut ErrorEvents::default());
    assert_eq!(events[0].record, record! {"a" => 1i64});
}

// --- through the engine: error events reach <label @ERROR> ----------------------------------------------

#[test]
fn engine_routes_invalid_records_to_error_label() {
    let conf = r#"
<filter app.**>
  @type parser
  key_name log
  <parse>
    @type json
  </parse>
</filter>
<match app.**>
  @type capture
  run parser_ok
</match>
<label @ERROR>
  <match **>
    @type capture
    run parser_err
  </match>
</label>
"#;
    let root = parse_str(conf, Path::new("parser.conf")).expect("parse");
    let a = assemble(&root, registry(), false);
    assert!(a.diagnostics.errors.is_empty(), "{:?}", a.diagnostics.errors);
    let engine = a.engine.expect("engine");
    let events: Events = ["{\"level\":\"ERROR\"}", "garbage", "{\"level\":\"INFO\"}"]
        .into_iter()
        .map(|l| Event::new(T0, record! {"log" => l}))
        .collect();
    engine.router.emit_to_label("@ROOT", "app.web", events).expect("emit");
    assert_eq!(
        sink("parser_ok").records(),
        vec![
            ("app.web".to_string(), record! {"level" => "ERROR"}),
            ("app.web".to_string(), record! {"level" => "INFO"}),
        ]
    );
    assert_eq!(sink("parser_err").records(), vec![("app.web".to_string(), record! {"log" => "garbage"})]);
}
