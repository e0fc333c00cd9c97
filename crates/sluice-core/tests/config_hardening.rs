//! The configuration front ends on hostile input: every case is a clear error (never a panic, a hang or
//! unbounded memory), and a bounded fuzz run over both syntaxes. Also Fluentd's v0.12 buffer parameters
//! and `<inject>` as the core reads them.
use proptest::prelude::*;
use sluice_core::buffer::{BufferConfig, BufferDefaults, FlushMode, OverflowAction};
use sluice_core::config::{parse_file, parse_str, yaml, Element};
use sluice_core::event::{EventTime, Map, Value};
use sluice_core::inject::{Inject, InjectDefaults};
use sluice_core::plugin::{BuildCtx, Registry};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn first(text: &str) -> Element {
    let root = parse_str(text, Path::new("t.conf")).unwrap_or_else(|e| panic!("{e}"));
    root.children.into_iter().next().expect("a directive")
}

// ------------------------------------------------------------------ v0.12 buffer parameters

#[test]
fn buffer_type_file_on_the_match_gives_a_file_buffer() {
    // Fluentd's CompatParameters: buffer_type -> @type, buffer_path -> path, buffer_chunk_limit ->
    // chunk_limit_size, buffer_queue_full_action exception -> throw_exception, ...
    let m = first(
        "<match **>\n  @type x\n  buffer_type file\n  buffer_path /var/log/td-agent/buffer/x\n  \
         buffer_chunk_limit 4m\n  buffer_queue_limit 32\n  buffer_queue_full_action block\n  flush_interval 5s\n  \
         num_threads 2\n  retry_limit 5\n  max_retry_wait 1h\n  disable_retry_limit false\n  flush_at_shutdown true\n</match>\n",
    );
    let cfg = BufferConfig::from_conf(&m, &BufferDefaults::default(), None).unwrap();
    let file = cfg.file.as_ref().expect("a file buffer, as Fluentd builds from buffer_type file");
    assert_eq!(file.path, Path::new("/var/log/td-agent/buffer/x"));
    assert_eq!(cfg.chunk_limit_size, 4 << 20);
    assert_eq!(cfg.queue_limit_length, Some(32));
    assert_eq!(cfg.overflow_action, OverflowAction::Block);
    assert_eq!(cfg.flush_interval, Duration::from_secs(5));
    // flush_interval written on the plugin keeps Fluentd's old interval flushing.
    assert_eq!(cfg.flush_mode, FlushMode::Interval);
    assert_eq!(cfg.flush_thread_count, 2);
    assert_eq!(cfg.retry.max_times, Some(5));
    assert_eq!(cfg.retry.max_interval, Some(Duration::from_secs(3600)));
    assert!(!cfg.retry.forever);
    assert!(cfg.flush_at_shutdown);
    assert!(m.unused_attrs().iter().all(|(_, a)| a.key == "@type"), "{:?}", m.unused_attrs());
}

#[test]
fn time_slice_format_makes_time_the_chunk_key() {
    let m = first("<match **>\n  @type x\n  time_slice_format %Y%m%d%H\n  time_slice_wait 10m\n  utc\n</match>\n");
    let cfg = BufferConfig::from_conf(&m, &BufferDefaults::default(), None).unwrap();
    assert_eq!(cfg.keys.timekey, Some(3600));
    assert_eq!(cfg.timekey_wait, 600);
    assert!(cfg.file.is_none());
    let m = first("<match **>\n  @type x\n  time_slice_format %Y\n</match>\n");
    let e = BufferConfig::from_conf(&m, &BufferDefaults::default(), None).unwrap_err();
    assert!(e.to_string().contains("t.conf:3") && e.to_string().contains("too long"), "{e}");
}

#[test]
fn huge_durations_are_config_errors_not_panics() {
    for v in ["1e30", "99999999999999999999", "99999999999999999999s", "99999999999999999999d", "inf", "NaN"] {
        let m = first(&format!("<match **>\n  @type x\n  <buffer>\n    flush_interval {v}\n  </buffer>\n</match>\n"));
        let e = BufferConfig::from_conf(&m, &BufferDefaults::default(), None).unwrap_err();
        assert!(e.to_string().contains("t.conf:4") && e.to_string().contains("flush_interval"), "{v}: {e}");
    }
}

// ------------------------------------------------------------------ <inject>

fn ctx() -> BuildCtx {
    let mut c = BuildCtx::new(Arc::new(Registry::new()));
    c.system = Arc::new(sluice_core::plugin::SystemConfig { hostname: "node-1".into(), ..Default::default() });
    c
}

fn inject(body: &str, defaults: InjectDefaults) -> Map {
    let m = first(&format!("<match **>\n  @type x\n{body}\n</match>\n"));
    let inj = Inject::from_conf(&m, &ctx(), defaults).unwrap().expect("inject configured");
    let mut r = Map::new();
    r.insert("k", Value::from("v"));
    // 2024-05-01T12:34:56.789123456Z
    inj.apply("app.web", EventTime::new(1_714_566_896, 789_123_456), &mut r);
    r
}

#[test]
fn inject_section_keys_and_time_types() {
    let r = inject(
        "  <inject>\n    hostname_key host\n    worker_id_key worker\n    tag_key tag\n    time_key t\n  </inject>",
        InjectDefaults::default(),
    );
    let keys: Vec<&str> = r.iter().map(|(k, _)| &**k).collect();
    assert_eq!(keys, ["k", "host", "worker", "tag", "t"]);
    assert_eq!(r.get("host"), Some(&Value::from("node-1")));
    assert_eq!(r.get("worker"), Some(&Value::Int(0)));
    assert_eq!(r.get("tag"), Some(&Value::from("app.web")));
    // float: microseconds, truncated.
    assert_eq!(r.get("t"), Some(&Value::Float(1_714_566_896.789123)));
    let r = inject("  <inject>\n    time_key t\n    time_type unixtime\n  </inject>", InjectDefaults::default());
    assert_eq!(r.get("t"), Some(&Value::Int(1_714_566_896)));
    let r = inject(
        "  <inject>\n    time_key t\n    time_type string\n    time_format %Y-%m-%dT%H:%M:%S.%3N%z\n    timezone +09:00\n  </inject>",
        InjectDefaults::default(),
    );
    assert_eq!(r.get("t"), Some(&Value::from("2024-05-01T21:34:56.789+0900")));
    let r = inject(
        "  <inject>\n    time_key t\n    time_type string\n    utc true\n  </inject>",
        InjectDefaults::default(),
    );
    assert_eq!(r.get("t"), Some(&Value::from("2024-05-01T12:34:56Z")));
    let r = inject("  <inject>\n    hostname_key h\n    hostname fixed\n  </inject>", InjectDefaults::default());
    assert_eq!(r.get("h"), Some(&Value::from("fixed")));
    // fluent-plugin-kinesis's defaults.
    let kinesis = InjectDefaults { time_type: "string", time_format: Some("%Y-%m-%dT%H:%M:%S.%N%z") };
    let r = inject("  <inject>\n    time_key t\n    utc true\n  </inject>", kinesis);
    assert_eq!(r.get("t"), Some(&Value::from("2024-05-01T12:34:56.789123456+0000")));
}

#[test]
fn v012_inject_parameters() {
    // include_time_key -> time_key "time", time_type string (ISO 8601 without a format); include_tag_key ->
    // tag_key "tag"; `utc` -> localtime false.
    let r = inject("  include_time_key true\n  include_tag_key true\n  utc", InjectDefaults::default());
    assert_eq!(r.get("time"), Some(&Value::from("2024-05-01T12:34:56Z")));
    assert_eq!(r.get("tag"), Some(&Value::from("app.web")));
    let r = inject(
        "  include_time_key true\n  time_key ts\n  time_format %s\n  tag_key tg\n  include_tag_key true",
        InjectDefaults::default(),
    );
    assert_eq!(r.get("ts"), Some(&Value::from("1714566896")));
    assert_eq!(r.get("tg"), Some(&Value::from("app.web")));
    let m = first("<match **>\n  @type x\n  include_time_key true\n  utc\n  localtime\n</match>\n");
    let e = Inject::from_conf(&m, &ctx(), InjectDefaults::default()).unwrap_err();
    assert!(e.to_string().contains("both of utc and localtime"), "{e}");
    // Nothing to inject: none.
    let m = first("<match **>\n  @type x\n  include_time_key false\n</match>\n");
    assert!(Inject::from_conf(&m, &ctx(), InjectDefaults::default()).unwrap().is_none());
}

// ------------------------------------------------------------------ hostile files

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let n = 20_000;
    let text = format!("{}{}", "<a>\n".repeat(n), "</a>\n".repeat(n));
    let e = parse_str(&text, Path::new("deep.conf")).unwrap_err().to_string();
    assert!(e.contains("deep.conf:65") && e.contains("nested"), "{e}");
    let yaml_text = format!("config:\n  - source: {}1{}\n", "[".repeat(n), "]".repeat(n));
    let e = yaml::parse_str(&yaml_text, Path::new("deep.yaml")).unwrap_err().to_string();
    assert!(e.contains("deep.yaml:2") && (e.contains("nested") || e.contains("recursion limit")), "{e}");
}

#[test]
fn yaml_alias_bombs_are_bounded() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..30 {
        let p = i - 1;
        text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    text.push_str("config:\n  - source: {$type: sample, x: *a29}\n");
    let e = yaml::parse_str(&text, Path::new("bomb.yaml")).unwrap_err().to_string();
    assert!(e.contains("bomb.yaml") && e.contains("nodes"), "{e}");
}

#[test]
fn includes_of_special_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("fluent.conf");
    std::fs::write(&main, "@include /dev/zero\n").unwrap();
    let e = parse_file(&main).unwrap_err().to_string();
    assert!(e.contains("fluent.conf:1") && e.contains("not a regular file"), "{e}");
    let fifo = dir.path().join("pipe.conf");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().map(|s| s.success()).unwrap_or(false);
    if made {
        std::fs::write(&main, "@include pipe.conf\n").unwrap();
        let e = parse_file(&main).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        // A FIFO matched by a glob is an error too, not a hang.
        std::fs::write(&main, "@include pi*.conf\n").unwrap();
        let e = parse_file(&main).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    } else {
        println!("SKIPPED (FIFO part): mkfifo not available");
    }
    let big = dir.path().join("big.conf");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(sluice_core::config::MAX_CONFIG_FILE_BYTES + 1).unwrap();
    std::fs::write(&main, "@include big.conf\n").unwrap();
    let e = parse_file(&main).unwrap_err().to_string();
    assert!(e.contains("larger than"), "{e}");
}

// ------------------------------------------------------------------ fuzz

/// Fragments both syntaxes are built from, so random input reaches deep into the parsers.
fn fluent_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<source>\n".to_string()),
        Just("</source>\n".to_string()),
        Just("<match **>\n".to_string()),
        Just("</match>\n".to_string()),
        Just("  @type tail\n".to_string()),
        Just("  key \"a\\\"b#{ENV['HOME']}\"\n".to_string()),
        Just("  k [1, {\"a\": 2}\n".to_string()),
        Just("  k '\n".to_string()),
        Just("@include nothing/*.conf\n".to_string()),
        Just("# comment\n".to_string()),
        "[ -~\n]{0,20}".prop_map(|s| s),
        any::<String>().prop_map(|s| s.chars().take(12).collect()),
    ]
}

fn yaml_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("config:\n".to_string()),
        Just("  - source:\n".to_string()),
        Just("      $type: tail\n".to_string()),
        Just("      x: &a [1, 2]\n".to_string()),
        Just("      y: *a\n".to_string()),
        Just("      <<: *a\n".to_string()),
        Just("      z: !fluent/s \"#{ENV['X']}\"\n".to_string()),
        Just("  - !include none/*.yaml\n".to_string()),
        Just("system:\n  log_level: info\n".to_string()),
        Just("- [{\n".to_string()),
        "[ -~\n]{0,20}".prop_map(|s| s),
    ]
}

proptest! {
    // A fixed number of cases keeps the run bounded (well under a second each).
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn fluentd_syntax_never_panics(parts in proptest::collection::vec(fluent_fragment(), 0..40)) {
        let _ = parse_str(&parts.concat(), Path::new("fuzz.conf"));
    }

    #[test]
    fn yaml_syntax_never_panics(parts in proptest::collection::vec(yaml_fragment(), 0..40)) {
        let _ = yaml::parse_str(&parts.concat(), Path::new("fuzz.yaml"));
    }

    #[test]
    fn typed_values_never_panic(v in "[-+0-9a-zA-Z._ ]{0,24}") {
        let m = first(&format!("<match **>\n  @type x\n  a {v}\n</match>\n"));
        let _ = (m.size_or("a", 0), m.time_or("a", 0.0), m.int_or("a", 0), m.float_or("a", 0.0), m.bool_or("a", false));
        let m = first(&format!("<match **>\n  @type x\n  flush_interval {v}\n  buffer_chunk_limit {v}\n</match>\n"));
        let _ = BufferConfig::from_conf(&m, &BufferDefaults::default(), None);
    }
}
