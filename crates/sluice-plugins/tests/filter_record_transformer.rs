//! `record_transformer` through the real engine: placeholders, JSON values, auto_typecast, renew_record,
//! keep_keys, remove_keys, renew_time_key (and its @ERROR path), configuration errors.
mod common;

use common::{engine, sink};
use sluice_core::event::{Event, EventTime, Map, Value};
use sluice_core::record;

/// `<filter **>` with `body`, then a capture of everything; `@ERROR` goes to a second capture.
fn run(id: &str, body: &str, tag: &str, events: Vec<Event>) -> (Vec<Event>, Vec<Event>) {
    let conf = format!(
        "<filter **>\n  @type record_transformer\n{body}\n</filter>\n<match **>\n  @type capture\n  run {id}\n</match>\n\
         <label @ERROR>\n  <match **>\n    @type capture\n    run {id}-error\n  </match>\n</label>\n"
    );
    engine(&conf, "rt.conf").router.emit_to_label("@ROOT", tag, events).expect("emit");
    let take = |k: &str| sink(k).events().into_iter().map(|(_, e)| e).collect();
    (take(id), take(&format!("{id}-error")))
}

fn records(id: &str, body: &str, tag: &str, recs: Vec<Map>) -> Vec<Map> {
    let events = recs.into_iter().map(|r| Event::new(EventTime::new(1_700_000_000, 5), r)).collect();
    let (ok, err) = run(id, body, tag, events);
    assert!(err.is_empty(), "unexpected @ERROR events: {err:?}");
    ok.into_iter().map(|e| e.record).collect()
}

fn config_error(body: &str) -> String {
    let conf = format!("<filter **>\n  @type record_transformer\n{body}\n</filter>\n");
    common::config_errors(&conf, "rt.conf")
}

fn local_time(sec: i64) -> String {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_opt(sec, 0)
        .single()
        .map(|d| d.format("%Y-%m-%d %H:%M:%S %z").to_string())
        .unwrap_or_default()
}

#[test]
fn placeholders_expand_into_strings() {
    let body = r#"  <record>
    host ${hostname}
    tag ${tag}
    last ${tag_parts[-1]}
    first ${tag_parts[0]}
    out_of_range <${tag_parts[7]}>
    prefix ${tag_prefix[1]}
    suffix ${tag_suffix[1]}
    suffix_last ${tag_suffix[-1]}
    msg ${record["message"]} from ${tag_parts[1]}
    nested ${record["a"]["b"]}
    single ${record['a']['b']}
    num ${record["n"]}
    missing <${record["nope"]}>
    at ${time}
    ${tag_parts[0]}_seen yes
    message replaced
  </record>"#;
    let mut a = Map::new();
    a.insert("b", Value::from("deep"));
    let got = records(
        "placeholders",
        body,
        "app.web.prod",
        vec![record! {"message" => "hello", "a" => Value::Map(a.clone()), "n" => 7i64}],
    );
    let host = sluice_core::util::hostname();
    let want = record! {
        "message" => "replaced",
        "a" => Value::Map(a),
        "n" => 7i64,
        "host" => host.as_str(),
        "tag" => "app.web.prod",
        "last" => "prod",
        "first" => "app",
        "out_of_range" => "<>",
        "prefix" => "app.web",
        "suffix" => "web.prod",
        "suffix_last" => "prod",
        // Placeholders see the record as it arrived, not the new `message`.
        "msg" => "hello from web",
        "nested" => "deep",
        "single" => "deep",
        // auto_typecast is true by default (Fluentd v1): a lone placeholder keeps the value's type.
        "num" => 7i64,
        "missing" => "<>",
        "at" => local_time(1_700_000_000).as_str(),
        "app_seen" => "yes",
    };
    assert_eq!(got, vec![want]);
}

#[test]
fn auto_typecast_and_json_values() {
    let body = r#"  auto_typecast true
  <record>
    num ${record["n"]}
    flag ${record["ok"]}
    map ${record["m"]}
    missing ${record["nope"]}
    text n=${record["n"]}
    info {"t":"${tag}","list":[1,"${tag_parts[0]}",null,true],"${tag_parts[1]}":2.5}
    broken '{"not json'
  </record>"#;
    let mut m = Map::new();
    m.insert("x", Value::Int(1));
    let got =
        records("typecast", body, "svc.api", vec![record! {"n" => 42i64, "ok" => false, "m" => Value::Map(m.clone())}]);
    let mut info = Map::new();
    info.insert("t", Value::from("svc.api"));
    info.insert("list", Value::Array(vec![Value::Int(1), Value::from("svc"), Value::Null, Value::Bool(true)]));
    info.insert("api", Value::Float(2.5));
    let want = record! {
        "n" => 42i64,
        "ok" => false,
        "m" => Value::Map(m.clone()),
        "num" => 42i64,
        "flag" => false,
        "map" => Value::Map(m),
        "missing" => Value::Null,
        "text" => "n=42",
        "info" => Value::Map(info),
        "broken" => "{\"not json",
    };
    assert_eq!(got, vec![want]);
}

#[test]
fn without_typecast_values_are_strings() {
    let body = "  auto_typecast false\n  <record>\n    num ${record[\"n\"]}\n    f ${record[\"f\"]}\n    b ${record[\"b\"]}\n  </record>";
    let got = records("strings", body, "t", vec![record! {"n" => 42i64, "f" => 0.5f64, "b" => true}]);
    assert_eq!(
        got,
        vec![record! {"n" => 42i64, "f" => 0.5f64, "b" => true, "num" => "42", "f" => "0.5", "b" => "true"}]
    );
}

#[test]
fn renew_record_keep_keys_and_remove_keys() {
    let body = r#"  renew_record true
  keep_keys keep1,keep2,absent
  remove_keys $.user.password,keep2
  <record>
    user {"name":"${record[\"name\"]}","password":"x"}
    tag ${tag}
  </record>"#;
    let got = records(
        "renew",
        body,
        "t",
        vec![record! {"keep1" => 1i64, "keep2" => "two", "drop" => "gone", "name" => "ann"}],
    );
    let mut user = Map::new();
    user.insert("name", Value::from("ann"));
    assert_eq!(got, vec![record! {"keep1" => 1i64, "user" => Value::Map(user), "tag" => "t"}]);

    // Without renew_record the record is kept; remove_keys with accessors and plain names.
    let body = "  remove_keys $.a.b, c ,$['d'][0]\n  <record>\n    added ${record[\"c\"]}\n  </record>";
    let mut a = Map::new();
    a.insert("b", Value::Int(1));
    a.insert("keep", Value::Int(2));
    let got = records(
        "remove",
        body,
        "t",
        vec![record! {"a" => Value::Map(a), "c" => "cc", "d" => Value::Array(vec![Value::Int(1), Value::Int(2)])}],
    );
    let mut a2 = Map::new();
    a2.insert("keep", Value::Int(2));
    assert_eq!(got, vec![record! {"a" => Value::Map(a2), "d" => Value::Array(vec![Value::Int(2)]), "added" => "cc"}]);
}

#[test]
fn renew_time_key_sets_the_time_and_bad_values_go_to_error() {
    let body = "  renew_time_key ts\n  <record>\n    ts ${record[\"epoch\"]}\n  </record>";
    let ev = |r: Map| Event::new(EventTime::new(5, 0), r);
    let (ok, err) = run(
        "renew-time",
        body,
        "t",
        vec![ev(record! {"epoch" => "1700000000.25"}), ev(record! {"other" => 1i64}), ev(record! {"epoch" => "x"})],
    );
    let times: Vec<EventTime> = ok.iter().map(|e| e.time).collect();
    // "x".to_r is 0 in Ruby; a missing key gives nil (also 0).
    assert_eq!(times, vec![EventTime::new(1_700_000_000, 250_000_000), EventTime::new(0, 0), EventTime::new(0, 0)]);
    assert!(err.is_empty());

    let body = "  renew_time_key ts\n  auto_typecast true\n  <record>\n    ts ${record[\"epoch\"]}\n  </record>";
    let (ok, err) = run(
        "renew-time-typed",
        body,
        "t",
        vec![
            ev(record! {"epoch" => 1_600_000_000i64}),
            ev(record! {"epoch" => Value::Array(vec![])}),
            ev(record! {"epoch" => 1.5f64}),
        ],
    );
    assert_eq!(
        ok.iter().map(|e| e.time).collect::<Vec<_>>(),
        vec![EventTime::new(1_600_000_000, 0), EventTime::new(1, 500_000_000)]
    );
    // The rejected event reaches @ERROR as it arrived.
    assert_eq!(err, vec![ev(record! {"epoch" => Value::Array(vec![])})]);
}

#[test]
fn configuration_errors_name_the_line() {
    // Ruby outside sluice's subset: the line of the value, the whole expression, the missing construct.
    let e = config_error(
        "  enable_ruby true\n  <record>\n    ok ${record['x'].upcase}\n    a ${File.read('/etc/passwd')}\n  </record>",
    );
    assert!(e.contains("rt.conf:6") && e.contains("'${File.read('/etc/passwd')}'") && e.contains("File.read"), "{e}");
    let e = config_error("  enable_ruby true\n  <record>\n    a x-${record['x'].map { |v| v }}\n  </record>");
    assert!(e.contains("rt.conf:5") && e.contains("method 'map'"), "{e}");
    let e = config_error("  enable_ruby true\n  <record>\n    a ${unknown_name}\n  </record>");
    assert!(e.contains("rt.conf:5") && e.contains("name 'unknown_name'"), "{e}");
    let e = config_error("  keep_keys a,b");
    assert!(e.contains("rt.conf:3") && e.contains("renew_record"), "{e}");
    let e = config_error("  remove_keys $.a[x");
    assert!(e.contains("rt.conf:3"), "{e}");
    let e = config_error("  renew_record maybe");
    assert!(e.contains("rt.conf:3") && e.contains("renew_record"), "{e}");
}

#[test]
fn empty_and_odd_records() {
    let body = "  <record>\n    t ${tag}\n    v ${record[\"v\"]}\n  </record>";
    let got = records(
        "odd",
        body,
        "x",
        vec![record! {}, record! {"v" => Value::Bytes(b"caf\xff".to_vec())}, record! {"v" => Value::Null}],
    );
    assert_eq!(
        got,
        vec![
            // A lone placeholder keeps what it refers to; a missing key is null.
            record! {"t" => "x", "v" => Value::Null},
            record! {"v" => Value::Bytes(b"caf\xff".to_vec()), "t" => "x"},
            record! {"v" => Value::Null, "t" => "x"},
        ]
    );
}

/// Fluentd's RubyPlaceholderExpander: the values below are what Ruby computes for the same expressions.
#[test]
fn enable_ruby_evaluates_expressions() {
    let body = r##"  enable_ruby true
  <record>
    level ${record["level"].downcase}
    code_copy ${record["code"]}
    missing ${record["nope"]}
    is_error ${record["code"] >= 400}
    app ${tag_parts[1]}
    prefix ${tag_prefix[1]}
    suffix ${tag_suffix[-1]}
    host ${hostname}
    ts ${time.to_i}
    iso ${time.utc.iso8601(3)}
    text ${tag}:${record["msg"].gsub(/\d+/, "N")}/${record["msg"].length}
    ns ${record.dig("kubernetes", "namespace_name") || "default"}
    who ${/(?<u>\w+)@(?<d>[\w.]+)/ =~ record["email"] ? "#{u}/#{d}" : "none"}
    ${tag_parts[0]}_key ${record["code"].to_s + "!"}
    info {"t":"${tag}","code":"${record['code']}","list":["${tag_parts.last}",1]}
  </record>"##;
    let got = records(
        "ruby",
        body,
        "app.web.prod",
        vec![record! {"level" => "WARN", "code" => 404i64, "msg" => "took 15 ms", "email" => "ann@example.com"}],
    );
    let mut info = Map::new();
    info.insert("t", Value::from("app.web.prod"));
    info.insert("code", Value::Int(404));
    info.insert("list", Value::Array(vec![Value::from("prod"), Value::Int(1)]));
    let want = record! {
        "level" => "warn",
        "code" => 404i64,
        "msg" => "took 15 ms",
        "email" => "ann@example.com",
        "code_copy" => 404i64,
        "missing" => Value::Null,
        "is_error" => true,
        "app" => "web",
        "prefix" => "app.web",
        "suffix" => "prod",
        "host" => sluice_core::util::hostname().as_str(),
        "ts" => 1_700_000_000i64,
        "iso" => "2023-11-14T22:13:20.000Z",
        "text" => "app.web.prod:took N ms/10",
        "ns" => "default",
        "who" => "ann/example.com",
        "app_key" => "404!",
        "info" => Value::Map(info),
    };
    assert_eq!(got, vec![want]);
}

#[test]
fn enable_ruby_without_typecast_gives_strings() {
    let body = "  enable_ruby true\n  auto_typecast false\n  <record>\n    c ${record[\"code\"]}\n    m ${record[\"nope\"]}\n  </record>";
    let got = records("ruby-str", body, "t", vec![record! {"code" => 7i64}]);
    assert_eq!(got, vec![record! {"code" => 7i64, "c" => "7", "m" => ""}]);
}

/// An expression that raises (a method called on nil) sends that record, unchanged, to @ERROR; the others pass.
#[test]
fn enable_ruby_runtime_errors_go_to_error_label() {
    let body = "  enable_ruby true\n  <record>\n    lvl ${record[\"level\"].downcase}\n  </record>";
    let ev = |r: Map| Event::new(EventTime::new(5, 0), r);
    let (ok, err) = run(
        "ruby-err",
        body,
        "t",
        vec![ev(record! {"level" => "INFO"}), ev(record! {"other" => 1i64}), ev(record! {"level" => "E"})],
    );
    assert_eq!(
        ok.into_iter().map(|e| e.record).collect::<Vec<_>>(),
        vec![record! {"level" => "INFO", "lvl" => "info"}, record! {"level" => "E", "lvl" => "e"}]
    );
    assert_eq!(err, vec![ev(record! {"other" => 1i64})]);
}

#[test]
fn use_nil_sets_the_field_to_null_and_use_default_leaves_it_out() {
    // Fluentd keeps nil as the field's value (its `parse_value` gives nil back); `use_default` is as
    // if the line were not written. `renew_time_key` defaults to nil, so nil there is accepted.
    for (id, ruby) in [("use-nil", "false"), ("use-nil-ruby", "true")] {
        let body = format!(
            "  enable_ruby {ruby}\n  renew_time_key \"#{{use_nil}}\"\n  <record>\n    message \"#{{use_nil}}\"\n    \
             gone \"prefix-#{{use_nil}}\"\n    skipped \"#{{use_default}}\"\n    kept ${{tag}}\n  </record>"
        );
        let got = records(id, &body, "app", vec![record! {"message" => "hello", "n" => 1i64}]);
        let want = record! {"message" => Value::Null, "n" => 1i64, "gone" => Value::Null, "kept" => "app"};
        assert_eq!(got, vec![want], "enable_ruby {ruby}");
    }
}
