//! Fluentd's configuration language as a plugin sees it: every value type read from real syntax, and
//! wrong values reported with the file and line where they were written.
use sluice_core::config::{parse_str, Element};
use std::path::Path;

const CONF: &str = r#"# Typed parameters as Fluentd documents them
<system>
  log_level info
</system>
<match app.**>
  @type test
  @id out1
  @log_level debug
  s1 plain text value
  s2 "double \"quoted\"\tvalue"
  s3 'single #{not evaluated}'
  i1 42
  i2 -7
  f1 0.25
  b1 true
  b2 false
  b3
  sz1 10k
  sz2 8m
  sz3 1g
  sz4 1024
  t1 30s
  t2 5m
  t3 1h
  t4 1d
  t5 0.5
  a1 a,b,c
  a2 ["x", "y,z"]
  h1 k1:v1,k2:v2
  h2 {"k1": "v1",
      "k2": 2}
  e1 lazy
  bad_int 12abc
  bad_size 10q
  bad_time soon
  bad_bool maybe
  <buffer tag,time>
    timekey 1h
  </buffer>
</match>
"#;

fn root() -> Element {
    parse_str(CONF, Path::new("/etc/fluent/fluent.conf")).expect("valid syntax")
}

fn m(root: &Element) -> &Element {
    root.children.iter().find(|c| c.name == "match").expect("match")
}

#[test]
fn every_value_type_reads_as_fluentd_reads_it() {
    let root = root();
    let m = m(&root);
    assert_eq!(m.arg, "app.**");
    assert_eq!(m.plugin_type(), Some("test"));
    assert_eq!(m.plugin_id(), Some("out1"));
    assert_eq!(m.str_or("s1", ""), "plain text value");
    assert_eq!(m.str_or("s2", ""), "double \"quoted\"\tvalue");
    assert_eq!(m.str_or("s3", ""), "single #{not evaluated}");
    assert_eq!(m.int_or("i1", 0).unwrap(), 42);
    assert_eq!(m.int_or("i2", 0).unwrap(), -7);
    assert_eq!(m.int_or("missing", 5).unwrap(), 5);
    assert!((m.float_or("f1", 0.0).unwrap() - 0.25).abs() < 1e-9);
    assert!(m.bool_or("b1", false).unwrap());
    assert!(!m.bool_or("b2", true).unwrap());
    // A bool parameter written without a value is true, as in Fluentd.
    assert!(m.bool_or("b3", false).unwrap());
    assert_eq!(m.size_or("sz1", 0).unwrap(), 10 * 1024);
    assert_eq!(m.size_or("sz2", 0).unwrap(), 8 * 1024 * 1024);
    assert_eq!(m.size_or("sz3", 0).unwrap(), 1024 * 1024 * 1024);
    assert_eq!(m.size_or("sz4", 0).unwrap(), 1024);
    assert_eq!(m.time_or("t1", 0.0).unwrap(), 30.0);
    assert_eq!(m.time_or("t2", 0.0).unwrap(), 300.0);
    assert_eq!(m.time_or("t3", 0.0).unwrap(), 3600.0);
    assert_eq!(m.time_or("t4", 0.0).unwrap(), 86400.0);
    assert_eq!(m.time_or("t5", 0.0).unwrap(), 0.5);
    assert_eq!(m.array_or_empty("a1").unwrap(), ["a", "b", "c"]);
    assert_eq!(m.array_or_empty("a2").unwrap(), ["x", "y,z"]);
    let h1 = m.hash("h1").unwrap().unwrap();
    assert_eq!(h1, [("k1".to_string(), "v1".to_string()), ("k2".to_string(), "v2".to_string())]);
    let h2 = m.hash("h2").unwrap().unwrap();
    assert_eq!(h2[0], ("k1".to_string(), "v1".to_string()));
    assert_eq!(h2[1].0, "k2");
    assert_eq!(m.enum_or("e1", &["default", "lazy", "interval", "immediate"], "default").unwrap(), "lazy");
    let buffer = m.section("buffer").expect("buffer section");
    assert_eq!(buffer.arg, "tag,time");
    assert_eq!(buffer.time_or("timekey", 0.0).unwrap(), 3600.0);
}

#[test]
fn wrong_types_are_errors_with_file_and_line() {
    let root = root();
    let m = m(&root);
    let cases = [
        (m.int_or("bad_int", 0).map(|_| ()), 33, "bad_int"),
        (m.size_or("bad_size", 0).map(|_| ()), 34, "bad_size"),
        (m.time_or("bad_time", 0.0).map(|_| ()), 35, "bad_time"),
        (m.bool_or("bad_bool", false).map(|_| ()), 36, "bad_bool"),
        (m.enum_or("e1", &["default", "interval"], "default").map(|_| ()), 32, "e1"),
        (m.required_str("no_such_param").map(|_| ()), 5, "no_such_param"),
    ];
    for (res, line, key) in cases {
        let err = res.expect_err(key).to_string();
        assert!(err.starts_with(&format!("/etc/fluent/fluent.conf:{line}: ")), "{key}: {err}");
        assert!(err.contains(key), "{key}: {err}");
    }
}

#[test]
fn parameters_nobody_read_are_reported() {
    let root = root();
    let m = m(&root);
    let _ = m.str_or("s1", "");
    let unused: Vec<String> = root.unused_attrs().iter().map(|(_, a)| a.key.clone()).collect();
    assert!(unused.contains(&"s2".to_string()));
    assert!(!unused.contains(&"s1".to_string()));
    // `@` parameters belong to the framework, never "unused".
    assert!(!unused.iter().any(|k| k.starts_with('@')));
}
