//! Fluentd's YAML config format: the examples of Fluentd's documentation give the same tree as the
//! same configuration in Fluentd's own syntax, and mistakes are reported with the YAML file and line.
use sluice_core::config::{parse_file, parse_str, yaml, ConfigError, Element};
use std::path::{Path, PathBuf};

/// The tree as text, without locations (they differ between the two files by nature): directive
/// names, arguments, parameters and sections, in order.
fn shape(e: &Element) -> String {
    let mut out = String::new();
    write_shape(e, 0, &mut out);
    out
}

fn write_shape(e: &Element, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    out.push_str(&format!("{pad}<{} {:?}>\n", e.name, e.arg));
    for a in &e.attrs {
        let value = a.special.map_or_else(|| format!("{:?}", a.value), |sp| format!("{sp:?}"));
        out.push_str(&format!("{pad}  {} = {value}\n", a.key));
    }
    for c in &e.children {
        write_shape(c, depth + 1, out);
    }
}

fn yaml_tree(text: &str) -> Element {
    yaml::parse_str(text, Path::new("fluent.yaml")).unwrap_or_else(|e| panic!("YAML rejected: {e}"))
}

fn conf_tree(text: &str) -> Element {
    parse_str(text, Path::new("fluent.conf")).unwrap_or_else(|e| panic!("conf rejected: {e}"))
}

fn assert_same(yaml_text: &str, conf_text: &str) {
    let (y, c) = (shape(&yaml_tree(yaml_text)), shape(&conf_tree(conf_text)));
    assert_eq!(y, c, "\n--- from YAML:\n{y}\n--- from Fluentd syntax:\n{c}");
}

fn yaml_err(text: &str) -> ConfigError {
    match yaml::parse_str(text, Path::new("/etc/fluent/bad.yaml")) {
        Ok(t) => panic!("accepted:\n{}", shape(&t)),
        Err(e) => e,
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn docs_source_filter_match_example() {
    assert_same(
        r##"config:
  # Receive events from 24224/tcp
  # This is used by log forwarding and the fluent-cat command
  - source:
      $type: forward
      port: 24224

  # http://<ip>:9880/myapp.access?json={"event":"data"}
  - source:
      $type: http
      port: 9880

  - filter:
      $tag: myapp.access
      $type: record_transformer
      record:
        host_param: !fluent/s "#{Socket.gethostname}"

  - match:
      $tag: myapp.access
      $type: file
      path: /var/log/fluent/access
"##,
        r##"<source>
  @type forward
  port 24224
</source>
<source>
  @type http
  port 9880
</source>
<filter myapp.access>
  @type record_transformer
  <record>
    host_param "#{Socket.gethostname}"
  </record>
</filter>
<match myapp.access>
  @type file
  path /var/log/fluent/access
</match>
"##,
    );
}

#[test]
fn docs_system_and_label_example() {
    assert_same(
        r#"system:
  # equal to -qq option
  log_level: error
  # equal to --without-source option
  without_source:
config:
  - source:
      $type: forward

  - source:
      $type: tail
      $label: '@SYSTEM'

  - filter:
      $tag: access.**
      $type: record_transformer
      record:
        foo: bar
  - match:
      $tag: '**'
      $type: elasticsearch

  - label:
      $name: '@SYSTEM'
      config:
        - filter:
           $tag: var.log.middleware.**
           $type: grep
        - match:
            $tag: '**'
            $type: s3
"#,
        // `without_source:` is nil in Ruby's YAML, and Fluentd keeps nil as the value (not `without_source`, "").
        "<system>\n  log_level error\n  without_source \"#{use_nil}\"\n</system>\n<source>\n  @type forward\n</source>\n\
         <source>\n  @type tail\n  @label @SYSTEM\n</source>\n\
         <filter access.**>\n  @type record_transformer\n  <record>\n    foo bar\n  </record>\n</filter>\n\
         <match **>\n  @type elasticsearch\n</match>\n\
         <label @SYSTEM>\n  <filter var.log.middleware.**>\n    @type grep\n  </filter>\n  <match **>\n    @type s3\n  </match>\n</label>\n",
    );
}

#[test]
fn docs_worker_example() {
    assert_same(
        r##"system:
  workers: 4

config:
  - source:
      $type: sample
      tag: test.allworkers
      sample: "{\"message\": \"Run with all workers.\"}"

  - worker:
      $arg: 0
      config:
        - source:
            $type: sample
            tag: test.oneworker
            sample: "{\"message\": \"Run with only worker-0.\"}"

  - worker:
      $arg: 0-1
      config:
        - source:
            $type: sample
            tag: test.someworkers
            sample: "{\"message\": \"Run with worker-0 and worker-1.\"}"

  - filter:
      $type: record_transformer
      $tag: test.**
      record:
        worker_id: !fluent/s "#{worker_id}"

  - match:
      $type: stdout
      $tag: test.**
"##,
        r##"<system>
  workers 4
</system>
<source>
  @type sample
  tag test.allworkers
  sample '{"message": "Run with all workers."}'
</source>
<worker 0>
  <source>
    @type sample
    tag test.oneworker
    sample '{"message": "Run with only worker-0."}'
  </source>
</worker>
<worker 0-1>
  <source>
    @type sample
    tag test.someworkers
    sample '{"message": "Run with worker-0 and worker-1."}'
  </source>
</worker>
<filter test.**>
  @type record_transformer
  <record>
    worker_id "#{worker_id}"
  </record>
</filter>
<match test.**>
  @type stdout
</match>
"##,
    );
}

#[test]
fn docs_section_tips_parse_buffer_inject_format_and_repeated_store() {
    assert_same(
        r#"config:
  - source:
      $type: tail
      tag: sample
      path: /tmp/test.log
      pos_file: /tmp/tail-test.pos
      parse:
        $type: none
  - match:
      $type: stdout
      $tag: test.**
      buffer:
        $arg: tag, time
        $type: memory
  - match:
      $type: stdout
      $tag: test.**
      inject:
        time_key: timestamp
        time_type: string
      format:
        $type: csv
        fields: timestamp, message
  - match:
      $type: copy
      $tag: test.**
      store:
        - $type: relabel
          $label: "@foo"
        - $type: relabel
          $label: "@bar"
"#,
        r#"<source>
  @type tail
  tag sample
  path /tmp/test.log
  pos_file /tmp/tail-test.pos
  <parse>
    @type none
  </parse>
</source>
<match test.**>
  @type stdout
  <buffer tag, time>
    @type memory
  </buffer>
</match>
<match test.**>
  @type stdout
  <inject>
    time_key timestamp
    time_type string
  </inject>
  <format>
    @type csv
    fields timestamp, message
  </format>
</match>
<match test.**>
  @type copy
  <store>
    @type relabel
    @label @foo
  </store>
  <store>
    @type relabel
    @label @bar
  </store>
</match>
"#,
    );
}

#[test]
fn repeated_rules_typed_scalars_arrays_json_and_special_keys() {
    assert_same(
        r#"config:
  - match:
      $tag: [app.**, web.**]
      retry_forever: yes
      $type: rewrite_tag_filter
      $id: rewriter
      $log_level: debug
      rule:
        - key: level
          pattern: /^ERROR$/
          tag: error.${tag}
        - key: level
          pattern: /.+/
          tag: other.${tag}
  - filter:
      $tag: '**'
      $type: grep
      regexp:
        - key: message
          pattern: /cool/
      keys: [a, 2, true]
      hash_param: !fluent/json {
        "k": "v",
        "k1": 10
      }
      ratio: 1.50
      count: 10
      mode: 0644
      quoted: "0644"
      literal: |
        two
        lines
"#,
        r#"<match app.** web.**>
  @type rewrite_tag_filter
  @id rewriter
  @log_level debug
  retry_forever true
  <rule>
    key level
    pattern /^ERROR$/
    tag error.${tag}
  </rule>
  <rule>
    key level
    pattern /.+/
    tag other.${tag}
  </rule>
</match>
<filter **>
  @type grep
  <regexp>
    key message
    pattern /cool/
  </regexp>
  keys ["a", 2, true]
  hash_param {"k": "v", "k1": 10}
  ratio 1.5
  count 10
  mode 420
  quoted 0644
  literal "two\nlines\n"
</filter>
"#,
    );
}

#[test]
fn elements_point_into_the_yaml_file_so_plugin_errors_do_too() {
    let root = yaml_tree("config:\n  - source:\n      $type: sample\n      rate: lots\n      tag: demo\n\n  - match:\n      $tag: '**'\n      $type: stdout\n");
    let src = &root.children[0];
    assert_eq!(src.loc.to_string(), "fluent.yaml:2");
    assert_eq!(root.children[1].loc.to_string(), "fluent.yaml:7");
    // What a plugin does with a wrong type or a missing parameter.
    let e = src.int_or("rate", 1).unwrap_err().to_string();
    assert!(e.starts_with("fluent.yaml:4: 'rate' parameter"), "{e}");
    let e = root.children[1].required_str("path").unwrap_err().to_string();
    assert!(e.starts_with("fluent.yaml:7: 'path' parameter is required"), "{e}");
}

#[test]
fn include_with_a_glob_relative_to_the_including_file_and_merged_parameters() {
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "conf.d/b.yaml", "- match:\n    $tag: b\n    $type: stdout\n");
    write(dir.path(), "conf.d/a.yaml", "- match:\n    $tag: a\n    $type: stdout\n");
    write(dir.path(), "conf.d/notes.txt", "not matched by the glob");
    write(dir.path(), "buf.yaml", "flush_interval: 5s\nchunk_limit_size: 1m\n");
    let main = write(
        dir.path(),
        "fluent.yaml",
        "config:\n  - !include conf.d/*.yaml\n  - match:\n      $tag: c\n      $type: file\n      buffer:\n        $type: file\n        <<: !include buf.yaml\n        chunk_limit_size: 8m\n",
    );
    let root = parse_file(&main).expect("parse");
    let args: Vec<&str> = root.children.iter().map(|c| c.arg.as_str()).collect();
    assert_eq!(args, ["a", "b", "c"]);
    assert!(root.children[0].loc.to_string().ends_with("conf.d/a.yaml:1"), "{}", root.children[0].loc);
    let buffer = &root.children[2].children[0];
    let kv: Vec<(&str, &str)> = buffer.attrs.iter().map(|a| (a.key.as_str(), a.value.as_str())).collect();
    assert_eq!(kv, [("@type", "file"), ("flush_interval", "5s"), ("chunk_limit_size", "8m")]);
    assert!(buffer.loc_of("flush_interval").to_string().ends_with("buf.yaml:1"));
}

#[test]
fn include_that_does_not_exist_names_the_yaml_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let main =
        write(dir.path(), "fluent.yaml", "config:\n  - source:\n      $type: sample\n  - !include missing.yaml\n");
    let e = parse_file(&main).unwrap_err();
    let s = e.to_string();
    assert!(s.starts_with(&format!("{}:4: ", main.display())), "{s}");
    assert!(s.contains("missing.yaml") && e.hint.is_some(), "{s}");
}

#[test]
fn include_loop_is_an_error() {
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "loop.yaml", "- !include loop.yaml\n");
    let main = write(dir.path(), "fluent.yaml", "config:\n  - !include loop.yaml\n");
    assert!(parse_file(&main).unwrap_err().to_string().contains("too deep"));
}

#[test]
fn fluent_s_evaluates_env_and_escapes_like_a_double_quoted_string() {
    std::env::set_var("SLUICE_YAML_TEST_ENV", "prod");
    std::env::remove_var("SLUICE_YAML_TEST_UNSET");
    let root = yaml_tree(
        r##"config:
  - match:
      $tag: !fluent/s "app.#{ENV['SLUICE_YAML_TEST_ENV']}"
      $type: stdout
      $id: !fluent/s "out_#{ENV.fetch('SLUICE_YAML_TEST_UNSET', 'dflt')}"
      env_param: !fluent/s "foo-#{ENV['SLUICE_YAML_TEST_ENV']}"
      escaped: !fluent/s 'a\tb'
      plain: "#{ENV['SLUICE_YAML_TEST_ENV']}"
"##,
    );
    let m = &root.children[0];
    assert_eq!(m.arg, "app.prod");
    assert_eq!(m.get("@id"), Some("out_dflt"));
    assert_eq!(m.get("env_param"), Some("foo-prod"));
    assert_eq!(m.get("escaped"), Some("a\tb"));
    // Without !fluent/s a YAML string is kept as written, as in Fluentd.
    assert_eq!(m.get("plain"), Some("#{ENV['SLUICE_YAML_TEST_ENV']}"));

    let e = yaml_err("config:\n  - match:\n      $type: stdout\n      x: !fluent/s \"#{File.read('/etc/passwd')}\"\n");
    assert!(e.to_string().starts_with("/etc/fluent/bad.yaml:4: ") && e.to_string().contains("not supported"), "{e}");
}

#[test]
fn fluent_s_use_nil_and_use_default_as_in_fluentd_syntax() {
    std::env::remove_var("SLUICE_YAML_TEST_UNSET2");
    let yaml_text = r##"config:
  - match:
      $type: stdout
      a: !fluent/s "#{ENV['SLUICE_YAML_TEST_UNSET2'] || use_default}"
      b: !fluent/s "/x/#{use_nil}"
      c: !fluent/s "#{ENV['SLUICE_YAML_TEST_UNSET2'] || 'set'}"
      d: !fluent/s "#{use_default}#{use_nil}"
      e:
      f: ~
      g: null
      h: 'null'
"##;
    let conf_text = r##"<match>
  @type stdout
  a "#{ENV['SLUICE_YAML_TEST_UNSET2'] || use_default}"
  b "/x/#{use_nil}"
  c "#{ENV['SLUICE_YAML_TEST_UNSET2'] || 'set'}"
  d "#{use_default}#{use_nil}"
  e "#{use_nil}"
  f "#{use_nil}"
  g "#{use_nil}"
  h null
</match>
"##;
    assert_same(yaml_text, conf_text);
    let root = yaml_tree(yaml_text);
    let m = &root.children[0];
    // use_default: as if not written; use_nil: set, to nil (and nil wins over use_default).
    assert!(!m.has("a") && !m.is_nil("a") && m.opt_str("a").is_none());
    assert!(!m.has("b") && m.is_nil("b") && m.opt_str("b").is_none() && m.is_nil("d"));
    assert_eq!(m.get("c"), Some("set"));
    let e = m.required_str("b").unwrap_err().to_string();
    assert!(e.starts_with("fluent.yaml:5: 'b' parameter is required but nil is specified"), "{e}");
    assert_eq!(m.str_or("a", "dflt"), "dflt");
    // A YAML null is nil too (Ruby's YAML loader gives nil and Fluentd keeps it); a `$` key that is null
    // is not written at all, as Fluentd writes one only when its value is not nil.
    assert!(m.is_nil("e") && m.is_nil("f") && m.is_nil("g") && m.get("h") == Some("null"));
    let root = yaml_tree("config:\n  - match:\n      $tag: ~\n      $type: ~\n      $id: null\n");
    let m = &root.children[0];
    assert!(m.arg.is_empty() && m.attrs.is_empty(), "{m:?}");
}

#[test]
fn bad_yaml_names_file_line_and_column() {
    let e = yaml_err("config:\n  - match:\n      $type: stdout\n     path: [unclosed\n");
    let s = e.to_string();
    assert!(s.starts_with("/etc/fluent/bad.yaml:4: invalid YAML at column"), "{s}");
    assert!(e.hint.is_some(), "{s}");
}

#[test]
fn unknown_directive_is_an_error_with_the_line() {
    let e = yaml_err("config:\n  - source:\n      $type: sample\n  - output:\n      $type: stdout\n");
    let s = e.to_string();
    assert!(s.starts_with("/etc/fluent/bad.yaml:4: unknown directive 'output'"), "{s}");
    assert!(s.contains("hint: a `config:` item is one of `source`, `match`"), "{s}");
}

#[test]
fn missing_config_is_an_error() {
    let e = yaml_err("system:\n  log_level: info\n");
    assert!(e.to_string().starts_with("/etc/fluent/bad.yaml:1: no top-level `config:`"), "{e}");
    assert!(e.hint.is_some());
    let e = yaml_err("");
    assert!(e.to_string().starts_with("/etc/fluent/bad.yaml:1: no top-level `config:`"), "{e}");
    // A Fluentd-syntax file named .yaml: YAML reads it as one string, not a mapping.
    let e = yaml_err("<match **>\n  @type stdout\n</match>\n");
    assert!(e.to_string().contains("no top-level `config:`"), "{e}");
}

#[test]
fn other_mistakes_name_the_line_and_hint() {
    for (text, line, what) in [
        ("config:\n  - match:\n      $type: stdout\n      x: !ruby/object 1\n", 4, "unsupported YAML tag !ruby/object"),
        ("config:\n  - match:\n      $type: stdout\n      x: !mine [1]\n", 4, "unsupported YAML tag !mine"),
        ("config:\n  - !mine\n    match: {}\n", 2, "unsupported YAML tag !mine"),
        ("config:\n  - match:\n      $tag: a\n      $arg: b\n", 4, "unknown special key '$arg'"),
        ("config:\n  - system:\n      log_level: info\n", 2, "`system` is not a directive"),
        ("config:\n  - label:\n      config: []\n", 2, "`label` needs `$name:`"),
        ("confg:\n  - match: {}\n", 1, "unknown top-level key 'confg'"),
        ("config:\n  - match\n", 2, "a directive must be a mapping"),
    ] {
        let e = yaml_err(text);
        assert!(e.to_string().starts_with(&format!("/etc/fluent/bad.yaml:{line}: {what}")), "{text:?} gave {e}");
        assert!(e.hint.is_some(), "{e}");
    }
}

#[test]
fn parse_file_picks_the_front_end_by_extension() {
    let dir = tempfile::tempdir().expect("tmp");
    let y = write(dir.path(), "fluent.yml", "config:\n  - match:\n      $tag: '**'\n      $type: stdout\n");
    let c = write(dir.path(), "fluent.conf", "<match **>\n  @type stdout\n</match>\n");
    assert_eq!(shape(&parse_file(&y).expect("yml")), shape(&parse_file(&c).expect("conf")));
    assert!(yaml::is_yaml_path(Path::new("/x/Fluent.YAML")) && !yaml::is_yaml_path(Path::new("/x/fluent.conf")));
}
