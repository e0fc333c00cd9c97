//! `grep` filter: `<regexp>`/`<exclude>`, `<and>`/`<or>`, the legacy `regexpN`/`excludeN`, record
//! accessor keys, non-string and non-UTF-8 values, configuration errors, and a run through the engine.
mod common;

use common::{registry, sink};
use sluice_core::config::{parse_str, ConfigError};
use sluice_core::engine::assemble;
use sluice_core::event::{Event, EventTime, Events, Map, Value};
use sluice_core::plugin::{BuildCtx, ErrorEvents, Filter};
use sluice_core::record;
use std::path::Path;
use std::sync::Arc;

fn ctx() -> BuildCtx {
    BuildCtx::new(registry())
}

/// Build the first `<filter>` of `conf` (a `@type grep` directive).
fn build(conf: &str) -> Result<Arc<dyn Filter>, ConfigError> {
    let root = parse_str(conf, Path::new("grep.conf"))?;
    let f = root.sections("filter").next().expect("a <filter>");
    let c = ctx();
    c.registry.build_filter(f, &c)
}

fn grep(conf: &str, records: Vec<Map>) -> Vec<Map> {
    let f = build(conf).unwrap_or_else(|e| panic!("config error: {e}"));
    let mut events: Events = records.into_iter().map(|r| Event::new(EventTime::new(1, 0), r)).collect();
    let mut errors = ErrorEvents::default();
    f.filter("test", &mut events, &mut errors);
    assert!(errors.is_empty(), "grep never rejects records");
    events.into_iter().map(|e| e.record).collect()
}

fn config_error(conf: &str) -> String {
    match build(conf) {
        Ok(_) => panic!("expected a configuration error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn fluentd_docs_example() {
    let conf = r#"
<filter foo.bar>
  @type grep
  <regexp>
    key message
    pattern /cool/
  </regexp>
  <regexp>
    key hostname
    pattern /^web\d+\.example\.com$/
  </regexp>
  <exclude>
    key message
    pattern /uncool/
  </exclude>
</filter>
"#;
    let kept = record! {"message" => "It's cool outside today", "hostname" => "web001.example.com"};
    let got = grep(
        conf,
        vec![
            kept.clone(),
            record! {"message" => "That's not cool", "hostname" => "web1337.example.net"},
            record! {"message" => "I am cool but you are uncool", "hostname" => "db001.example.com"},
            record! {"message" => "cool but uncool", "hostname" => "web2.example.com"},
            record! {"hostname" => "web3.example.com"},
        ],
    );
    assert_eq!(got, vec![kept]);
}

#[test]
fn and_or_sections() {
    // <or> of regexps: at least one must match. <and> of excludes: drop only when all match.
    let conf = r#"
<filter **>
  @type grep
  <or>
    <regexp>
      key level
      pattern /^(ERROR|WARN)$/
    </regexp>
    <regexp>
      key status
      pattern /^5\d\d$/
    </regexp>
  </or>
  <and>
    <exclude>
      key service
      pattern /^healthcheck$/
    </exclude>
    <exclude>
      key path
      pattern /^\/ping/
    </exclude>
  </and>
</filter>
"#;
    let got = grep(
        conf,
        vec![
            record! {"level" => "ERROR", "service" => "api"},
            record! {"level" => "INFO", "status" => 503i64},
            record! {"level" => "INFO", "status" => 200i64},
            record! {"level" => "WARN", "service" => "healthcheck", "path" => "/ping"},
            record! {"level" => "WARN", "service" => "healthcheck", "path" => "/users"},
            record! {"level" => "WARN", "service" => "web", "path" => "/ping"},
        ],
    );
    assert_eq!(
        got,
        vec![
            record! {"level" => "ERROR", "service" => "api"},
            record! {"level" => "INFO", "status" => 503i64},
            record! {"level" => "WARN", "service" => "healthcheck", "path" => "/users"},
            record! {"level" => "WARN", "service" => "web", "path" => "/ping"},
        ]
    );

    // <and> of regexps: all must match; <or> of excludes: any match drops.
    let conf = r#"
<filter **>
  @type grep
  <and>
    <regexp>
      key a
      pattern /x/
    </regexp>
    <regexp>
      key b
      pattern /y/
    </regexp>
  </and>
  <or>
    <exclude>
      key c
      pattern /bad/
    </exclude>
    <exclude>
      key d
      pattern /bad/
    </exclude>
  </or>
</filter>
"#;
    let got = grep(
        conf,
        vec![
            record! {"a" => "x", "b" => "y"},
            record! {"a" => "x"},
            record! {"a" => "x", "b" => "y", "d" => "bad"},
            record! {"a" => "x", "b" => "y", "c" => "not bad"},
        ],
    );
    assert_eq!(got, vec![record! {"a" => "x", "b" => "y"}]);
}

#[test]
fn legacy_parameters() {
    let conf = r#"
<filter **>
  @type grep
  regexp1 message cool
  regexp2 hostname ^web\d+\.example\.com$
  exclude1 message uncool
</filter>
"#;
    let got = grep(
        conf,
        vec![
            record! {"message" => "cool", "hostname" => "web1.example.com"},
            record! {"message" => "uncool", "hostname" => "web1.example.com"},
            record! {"message" => "cool", "hostname" => "db1.example.com"},
        ],
    );
    assert_eq!(got, vec![record! {"message" => "cool", "hostname" => "web1.example.com"}]);
}

#[test]
fn accessor_keys_flags_and_value_types() {
    let conf = r#"
<filter **>
  @type grep
  <regexp>
    key $.kubernetes.labels.app
    pattern /^PAYMENT$/i
  </regexp>
  <regexp>
    key $['req']['codes'][-1]
    pattern /^5/
  </regexp>
  <exclude>
    key $.user.id
    pattern /^$/
  </exclude>
</filter>
"#;
    let rec = |app: &str, last: Value, user: Option<Value>| {
        let mut kubernetes = Map::new();
        kubernetes.insert("labels", Value::from(record! {"app" => app}));
        let mut m = record! {"kubernetes" => kubernetes};
        m.insert("req", Value::from(record! {"codes" => Value::Array(vec![Value::Int(200), last])}));
        if let Some(u) = user {
            m.insert("user", Value::from(record! {"id" => u}));
        }
        m
    };
    let a = rec("payment", Value::Int(502), Some(Value::Int(7)));
    let b = rec("Payment", Value::from("503 upstream"), Some(Value::from("u-1")));
    let got = grep(
        conf,
        vec![
            a.clone(),
            b.clone(),
            // Last code is 200: dropped.
            rec("payment", Value::Int(200), Some(Value::Int(7))),
            // Missing user id reads as "" and matches the exclude.
            rec("payment", Value::Int(500), None),
            // Null reads as "" too.
            rec("payment", Value::Int(500), Some(Value::Null)),
            rec("billing", Value::Int(500), Some(Value::Int(7))),
        ],
    );
    assert_eq!(got, vec![a, b]);

    // Booleans and floats match their to_s text; invalid UTF-8 is matched with `?` in place of bad bytes.
    let conf = r#"
<filter **>
  @type grep
  <regexp>
    key v
    pattern /^(true|1\.5|caf\?!)$/
  </regexp>
</filter>
"#;
    let got = grep(
        conf,
        vec![
            record! {"v" => true},
            record! {"v" => false},
            record! {"v" => 1.5f64},
            record! {"v" => Value::Bytes(b"caf\xff!".to_vec())},
            record! {"v" => Value::Bytes(b"caf\xff\xfe!".to_vec())},
            record! {"v" => ""},
            record! {"w" => "true"},
        ],
    );
    assert_eq!(
        got,
        vec![record! {"v" => true}, record! {"v" => 1.5f64}, record! {"v" => Value::Bytes(b"caf\xff!".to_vec())},]
    );
}

#[test]
fn values_match_their_ruby_to_s() {
    // filter_grep matches `value.to_s`: 1.0 is "1.0" (not "1"), 1e20 is "1.0e+20", an array prints as
    // `["a", 1, nil]` and a hash as `{"k"=>"v"}` (Ruby 3.3, Fluentd 1.18's Ruby).
    let conf = r#"
<filter **>
  @type grep
  <regexp>
    key v
    pattern /^(1\.0|1\.0e\+20|\["a", 1, nil\]|\{"k"=>"v"\})$/
  </regexp>
</filter>
"#;
    let arr = Value::Array(vec![Value::from("a"), Value::Int(1), Value::Null]);
    let hash = Value::Map(record! {"k" => "v"});
    let got = grep(
        conf,
        vec![
            record! {"v" => 1.0f64},
            record! {"v" => 1e20f64},
            record! {"v" => 1i64},
            record! {"v" => arr.clone()},
            record! {"v" => hash.clone()},
            record! {"v" => r#"["a",1,null]"#},
        ],
    );
    assert_eq!(
        got,
        vec![record! {"v" => 1.0f64}, record! {"v" => 1e20f64}, record! {"v" => arr}, record! {"v" => hash}]
    );
}

#[test]
fn no_conditions_keeps_everything_and_empty_batches_work() {
    let conf = "<filter **>\n  @type grep\n</filter>\n";
    assert_eq!(grep(conf, vec![record! {"a" => 1i64}]), vec![record! {"a" => 1i64}]);
    assert_eq!(grep(conf, vec![]), Vec::<Map>::new());
}

#[test]
fn configuration_errors_name_the_line() {
    let e = config_error(
        "<filter **>\n  @type grep\n  <and>\n    <regexp>\n      key a\n      pattern /x/\n    </regexp>\n    <exclude>\n      key b\n      pattern /y/\n    </exclude>\n  </and>\n</filter>\n",
    );
    assert!(e.contains("Do not specify both <regexp> and <exclude> in <and>"), "{e}");
    assert!(e.contains("grep.conf:3"), "{e}");

    let e = config_error(
        "<filter **>\n  @type grep\n  <regexp>\n    key a\n    pattern /x/\n  </regexp>\n  <regexp>\n    key a\n    pattern /y/\n  </regexp>\n</filter>\n",
    );
    assert!(e.contains("Duplicate key: a") && e.contains("grep.conf:8"), "{e}");

    let e = config_error("<filter **>\n  @type grep\n  <regexp>\n    key a\n  </regexp>\n</filter>\n");
    assert!(e.contains("pattern") && e.contains("grep.conf:3"), "{e}");

    let e = config_error(
        "<filter **>\n  @type grep\n  <regexp>\n    key a\n    pattern /(unclosed/\n  </regexp>\n</filter>\n",
    );
    assert!(e.contains("'pattern' parameter") && e.contains("grep.conf:5"), "{e}");

    let e =
        config_error("<filter **>\n  @type grep\n  <regexp>\n    key $.a b\n    pattern /x/\n  </regexp>\n</filter>\n");
    assert!(e.contains("bracket notation") && e.contains("grep.conf:4"), "{e}");

    let e = config_error("<filter **>\n  @type grep\n  regexp1 message\n</filter>\n");
    assert!(e.contains("regexp1 does not contain 2 parameters") && e.contains("grep.conf:3"), "{e}");

    let e = config_error("<filter **>\n  @type grep\n  exclude1 m a\n  exclude2 m b\n</filter>\n");
    assert!(e.contains("exclude2 contains a duplicated key, m"), "{e}");

    let e = config_error(
        "<filter **>\n  @type grep\n  <regexp>\n    key a\n    pattern /x/\n  </regexp>\n  <and>\n    <regexp>\n      key a\n      pattern /y/\n    </regexp>\n  </and>\n</filter>\n",
    );
    assert!(e.contains("Duplicate key in <and>: a"), "{e}");
}

// --- through the engine -----------------------------------------------------------------------------

#[test]
fn engine_pipeline_keeps_only_matching_events() {
    let conf = r#"
<filter app.**>
  @type grep
  <regexp>
    key level
    pattern /^(ERROR|FATAL)$/
  </regexp>
</filter>
<match app.**>
  @type capture
  run grep_engine
</match>
"#;
    let root = parse_str(conf, Path::new("grep.conf")).expect("parse");
    let a = assemble(&root, registry(), false);
    assert!(a.diagnostics.errors.is_empty(), "{:?}", a.diagnostics.errors);
    let engine = a.engine.expect("engine");
    let events: Events = [("INFO", "a"), ("ERROR", "b"), ("FATAL", "c"), ("error", "d")]
        .into_iter()
        .map(|(l, m)| Event::new(EventTime::new(1, 0), record! {"level" => l, "msg" => m}))
        .collect();
    engine.router.emit_to_label("@ROOT", "app.web", events).expect("emit");
    let got = sink("grep_engine").records();
    assert_eq!(
        got,
        vec![
            ("app.web".to_string(), record! {"level" => "ERROR", "msg" => "b"}),
            ("app.web".to_string(), record! {"level" => "FATAL", "msg" => "c"}),
        ]
    );
}
