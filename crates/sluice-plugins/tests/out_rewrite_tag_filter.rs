//! `rewrite_tag_filter` through the real engine: rules in order, captures, placeholders, the legacy
//! `rewriteruleN` form, emit modes, labels, dropped records and configuration errors.
mod common;

use common::sink;
use sluice_core::config::ConfigError;
use sluice_core::event::{Event, EventTime, Map, Value};
use sluice_core::record;

fn assemble_conf(conf: &str) -> Result<sluice_core::engine::Engine, Vec<ConfigError>> {
    common::assemble_conf(conf, "rtf.conf")
}

/// Assemble `conf` (with RUN replaced by `id`), emit the batches, return what the captures got.
fn run(id: &str, conf: &str, batches: Vec<(&str, &str, Vec<Map>)>) -> Vec<(String, Map)> {
    let conf = conf.replace("RUN", id);
    let engine = assemble_conf(&conf).unwrap_or_else(|e| panic!("config errors: {e:?}"));
    for (label, tag, records) in batches {
        let events = records.into_iter().map(|r| Event::new(EventTime::new(1, 0), r)).collect();
        engine.router.emit_to_label(label, tag, events).expect("emit");
    }
    sink(id).records()
}

fn tags(got: &[(String, Map)]) -> Vec<String> {
    got.iter().map(|(t, _)| t.clone()).collect()
}

fn config_error(conf: &str) -> String {
    common::config_errors(conf, "rtf.conf")
}

fn ev(tag: &str, r: Map) -> (String, Map) {
    (tag.to_string(), r)
}

#[test]
fn rules_in_order_first_match_wins_with_captures_and_invert() {
    let conf = r#"
<match app.**>
  @type rewrite_tag_filter
  <rule>
    key level
    pattern /^(ERROR|WARN)$/
    tag alert.$1.${tag}
  </rule>
  <rule>
    key message
    pattern /^\s*$/
    invert true
    tag msg.${tag_parts[1]}.__TAG_PARTS[0]__.__TAG__.$1
  </rule>
  <rule>
    key level
    pattern /^(?:INFO|DEBUG)$/
    tag other.$1x
  </rule>
</match>
<match alert.** msg.** other.**>
  @type capture
  run RUN
</match>
"#;
    let got = run(
        "rules",
        conf,
        vec![(
            "@ROOT",
            "app.web",
            vec![
                record! {"level" => "ERROR", "message" => "boom"},
                record! {"level" => "INFO", "message" => "hello"},
                // Empty message: the inverted rule's pattern matches "", so the rule is skipped; rule 3 has
                // no capturing group, so $1 is empty.
                record! {"level" => "INFO", "message" => ""},
                // No message at all reads as "".
                record! {"level" => "DEBUG"},
                // Nothing matches: dropped.
                record! {"level" => "TRACE", "message" => "   "},
                record! {"message" => "\t"},
                record! {"level" => "WARN", "message" => "w"},
            ],
        )],
    );
    // Batched per new tag in order of first appearance; records unchanged. An inverted rule has no
    // captures: `$1` stays as written.
    assert_eq!(
        got,
        vec![
            ev("alert.ERROR.app.web", record! {"level" => "ERROR", "message" => "boom"}),
            ev("msg.web.app.app.web.$1", record! {"level" => "INFO", "message" => "hello"}),
            ev("other.x", record! {"level" => "INFO", "message" => ""}),
            ev("other.x", record! {"level" => "DEBUG"}),
            ev("alert.WARN.app.web", record! {"level" => "WARN", "message" => "w"}),
        ]
    );
}

#[test]
fn named_captures_capitalize_accessor_prefix_and_hostname() {
    let conf = r#"
<match raw.**>
  @type rewrite_tag_filter
  capitalize_regex_backreference yes
  remove_tag_prefix raw
  <rule>
    key $.req.domain
    pattern /^(www\.)?(?<site>[a-z]+)\.COM$/i
    tag site.$1.${tag}.${hostname}
  </rule>
  <rule>
    key $.req.status
    pattern ^(\d)\d\d$
    tag status.$1xx.__HOSTNAME__
  </rule>
</match>
<match site.** status.**>
  @type capture
  run RUN
</match>
"#;
    let host = sluice_core::util::hostname();
    let mut req1 = Map::new();
    req1.insert("domain", Value::from("www.exAMPLE.com"));
    let mut req2 = Map::new();
    req2.insert("status", Value::Int(404));
    let mut req3 = Map::new();
    req3.insert("domain", Value::Int(3));
    let got = run(
        "named",
        conf,
        vec![(
            "@ROOT",
            "raw.front.eu",
            vec![
                record! {"req" => Value::Map(req1.clone())},
                record! {"req" => Value::Map(req2.clone())},
                record! {"req" => Value::Map(req3.clone())},
                record! {"req" => "not a map"},
            ],
        )],
    );
    assert_eq!(
        got,
        vec![
            ev(&format!("site.Example.front.eu.{host}"), record! {"req" => Value::Map(req1)}),
            ev(&format!("status.4xx.{host}"), record! {"req" => Value::Map(req2)}),
        ]
    );
}

#[test]
fn legacy_rewriterules_and_remove_tag_regexp() {
    let conf = r#"
<match in.**>
  @type rewrite_tag_filter
  remove_tag_regexp /^in\.(dc\d+\.)?/
  rewriterule2 domain ^(www\.)?(.+)\.com$ web.$2.${tag}.${tag_parts[9]}
  rewriterule1 domain !^www\. bare.$1.${tag_parts[0]}
</match>
<match web.** bare.**>
  @type capture
  run RUN
</match>
"#;
    let got = run(
        "legacy",
        conf,
        vec![(
            "@ROOT",
            "in.dc1.app.x",
            vec![
                record! {"domain" => "www.example.com"},
                record! {"domain" => "api.example.com"},
                record! {"x" => 1i64},
            ],
        )],
    );
    // rewriterule1 is tried first (numeric order); it is inverted so it has no captures.
    assert_eq!(
        got,
        vec![
            ev("web.example.app.x.", record! {"domain" => "www.example.com"}),
            ev("bare.$1.app", record! {"domain" => "api.example.com"}),
            ev("bare.$1.app", record! {"x" => 1i64}),
        ]
    );
}

#[test]
fn emit_mode_record_keeps_order() {
    let conf = r#"
<match src>
  @type rewrite_tag_filter
  emit_mode EMIT
  <rule>
    key k
    pattern /(.+)/
    tag out.$1
  </rule>
</match>
<match out.**>
  @type capture
  run RUN
</match>
"#;
    let batch = || {
        vec![(
            "@ROOT",
            "src",
            vec![
                record! {"k" => "a", "n" => 1i64},
                record! {"k" => "b", "n" => 2i64},
                record! {"k" => "a", "n" => 3i64},
            ],
        )]
    };
    let got = run("mode-record", &conf.replace("EMIT", "record"), batch());
    assert_eq!(
        got,
        vec![
            ev("out.a", record! {"k" => "a", "n" => 1i64}),
            ev("out.b", record! {"k" => "b", "n" => 2i64}),
            ev("out.a", record! {"k" => "a", "n" => 3i64}),
        ]
    );
    let got = run("mode-batch", &conf.replace("EMIT", "batch"), batch());
    assert_eq!(
        got,
        vec![
            ev("out.a", record! {"k" => "a", "n" => 1i64}),
            ev("out.a", record! {"k" => "a", "n" => 3i64}),
            ev("out.b", record! {"k" => "b", "n" => 2i64}),
        ]
    );
}

#[test]
fn same_tag_is_dropped_not_looped_and_labels_are_kept() {
    let conf = r#"
<label @IN>
  <match loop.**>
    @type rewrite_tag_filter
    <rule>
      key kind
      pattern /^same$/
      tag ${tag}
    </rule>
    <rule>
      key kind
      pattern /^(\w+)$/
      tag done.$1
    </rule>
  </match>
  <match done.**>
    @type capture
    run RUN
  </match>
</label>
<match **>
  @type capture
  run RUN-root
</match>
"#;
    let got = run(
        "label",
        conf,
        vec![(
            "@IN",
            "loop.a",
            vec![record! {"kind" => "same"}, record! {"kind" => "other"}, record! {"kind" => "bad value"}],
        )],
    );
    assert_eq!(got, vec![ev("done.other", record! {"kind" => "other"})]);
    // Nothing leaked to the top-level label.
    assert_eq!(sink("label-root").len(), 0);
}

#[test]
fn non_string_and_non_utf8_values_are_matched_as_text() {
    let conf = r#"
<match t>
  @type rewrite_tag_filter
  <rule>
    key v
    pattern /^(true|1\.5|\d+|caf.)$/
    tag v.$1
  </rule>
</match>
<match v.**>
  @type capture
  run RUN
</match>
"#;
    let got = run(
        "types",
        conf,
        vec![(
            "@ROOT",
            "t",
            vec![
                record! {"v" => true},
                record! {"v" => 1.5f64},
                record! {"v" => 42i64},
                record! {"v" => Value::Bytes(b"caf\xff".to_vec())},
                record! {"v" => Value::Null},
            ],
        )],
    );
    assert_eq!(tags(&got), vec!["v.true".to_string(), "v.1.5".into(), "v.42".into(), "v.caf\u{fffd}".into()]);
}

#[test]
fn configuration_errors_name_the_line() {
    let e = config_error("<match a>\n  @type rewrite_tag_filter\n  hostname_command exit 3\n  <rule>\n    key a\n    pattern b\n    tag c\n  </rule>\n</match>\n");
    assert!(e.contains("rtf.conf:3") && e.contains("hostname_command"), "{e}");
    // A rule needs a tag or a label.
    let e = config_error(
        "<match a>\n  @type rewrite_tag_filter\n  <rule>\n    key a\n    pattern b\n  </rule>\n</match>\n",
    );
    assert!(e.contains("rtf.conf:3") && e.contains("missing tag and label"), "{e}");
    // A rule's label must exist.
    let e = config_error("<match a>\n  @type rewrite_tag_filter\n  <rule>\n    key a\n    pattern b\n    label @NOPE\n  </rule>\n</match>\n");
    assert!(e.contains("rtf.conf:6") && e.contains("@NOPE"), "{e}");
    let e = config_error("<match a>\n  @type rewrite_tag_filter\n</match>\n");
    assert!(e.contains("rtf.conf:1") && e.contains("missing rewriterules"), "{e}");
    let e = config_error(
        "<match a>\n  @type rewrite_tag_filter\n  <rule>\n    key a\n    pattern /(/\n    tag c\n  </rule>\n</match>\n",
    );
    assert!(e.contains("rtf.conf:5"), "{e}");
    let e = config_error(
        "<match a>\n  @type rewrite_tag_filter\n  <rule>\n    key a\n    pattern x\n    tag x.${tag_parts[0..1]}\n  </rule>\n</match>\n",
    );
    assert!(e.contains("rtf.conf:6") && e.contains("range"), "{e}");
    let e = config_error("<match a>\n  @type rewrite_tag_filter\n  emit_mode each\n  rewriterule1 a b c\n</match>\n");
    assert!(e.contains("rtf.conf:3") && e.contains("emit_mode"), "{e}");
    let e = config_error("<match a>\n  @type rewrite_tag_filter\n  rewriterule1 a b\n</match>\n");
    assert!(e.contains("rtf.conf:3") && e.contains("failed to parse rewriterules"), "{e}");
    let e = config_error(
        "<match a>\n  @type rewrite_tag_filter\n  <rule>\n    key a\n    pattern x\n    tag y\n  </rule>\n  <rule>\n    key a\n    pattern x\n    tag z\n  </rule>\n</match>\n",
    );
    assert!(e.contains("rtf.conf:10") && e.contains("duplicated"), "{e}");
    let e = config_error("<match a>\n  @type rewrite_tag_filter\n  <rule>\n    key $.a[\n    pattern x\n    tag y\n  </rule>\n</match>\n");
    assert!(e.contains("rtf.conf:4"), "{e}");
}

#[test]
fn dropped_records_are_counted() {
    let conf = r#"
<match in>
  @type rewrite_tag_filter
  <rule>
    key k
    pattern /^keep$/
    tag out
  </rule>
  <rule>
    key k
    pattern /^loop$/
    tag in
  </rule>
</match>
<match out>
  @type null
</match>
"#;
    let engine = assemble_conf(conf).unwrap_or_else(|e| panic!("{e:?}"));
    let recs = vec![record! {"k" => "keep"}, record! {"k" => "loop"}, record! {"k" => "other"}, record! {}];
    let events = recs.into_iter().map(|r| Event::new(EventTime::new(1, 0), r)).collect();
    engine.router.emit_to_label("@ROOT", "in", events).expect("emit");
    let m = engine
        .router
        .outputs()
        .iter()
        .filter_map(|o| o.metrics())
        .find(|m| m.records_in.get() == 4)
        .expect("rewrite_tag_filter metrics");
    assert_eq!(m.records_written.get(), 1);
    assert_eq!(m.records_dropped.get(), 3);
}

#[test]
fn rule_label_emits_into_that_label_with_the_new_or_same_tag() {
    // fluent-plugin-rewrite-tag-filter 2.4: `label` in <rule>; without `tag` the record keeps its tag.
    let conf = r#"
<match app.**>
  @type rewrite_tag_filter
  <rule>
    key level
    pattern /^ERROR$/
    tag err.${tag}
    label @ERRORS
  </rule>
  <rule>
    key level
    pattern /^WARN$/
    label @WARNS
  </rule>
</match>
<label @ERRORS>
  <match **>
    @type capture
    run RUN-err
  </match>
</label>
<label @WARNS>
  <match **>
    @type capture
    run RUN-warn
  </match>
</label>
"#;
    run(
        "rule-label",
        conf,
        vec![("@ROOT", "app.web", vec![record! {"level" => "ERROR"}, record! {"level" => "WARN"}])],
    );
    assert_eq!(tags(&sink("rule-label-err").records()), vec!["err.app.web".to_string()]);
    assert_eq!(tags(&sink("rule-label-warn").records()), vec!["app.web".to_string()]);
}

#[test]
fn hostname_command_output_fills_hostname_placeholders() {
    let conf = r#"
<match app>
  @type rewrite_tag_filter
  hostname_command echo node-7.example
  remove_tag_prefix app
  <rule>
    key k
    pattern /./
    tag h.${hostname}.__HOSTNAME__
  </rule>
</match>
<match h.**>
  @type capture
  run RUN
</match>
"#;
    let got = run("hostcmd", conf, vec![("@ROOT", "app", vec![record! {"k" => "v"}])]);
    assert_eq!(tags(&got), vec!["h.node-7.example.node-7.example".to_string()]);
}

#[test]
fn values_match_as_ruby_to_s_prints_them() {
    // The plugin matches `value.to_s`: 1.0 is "1.0", an array is `["a", 1]`, a hash `{"k"=>"v"}`.
    let conf = r#"
<match t>
  @type rewrite_tag_filter
  <rule>
    key v
    pattern /^1\.0$/
    tag float
  </rule>
  <rule>
    key v
    pattern /^\["a", 1\]$/
    tag array
  </rule>
  <rule>
    key v
    pattern /^\{"k"=>"v"\}$/
    tag hash
  </rule>
</match>
<match float array hash>
  @type capture
  run RUN
</match>
"#;
    let got = run(
        "to-s",
        conf,
        vec![(
            "@ROOT",
            "t",
            vec![
                record! {"v" => 1.0f64},
                record! {"v" => Value::Array(vec![Value::from("a"), Value::Int(1)])},
                record! {"v" => Value::Map(record! {"k" => "v"})},
            ],
        )],
    );
    assert_eq!(tags(&got), vec!["float".to_string(), "array".into(), "hash".into()]);
}
