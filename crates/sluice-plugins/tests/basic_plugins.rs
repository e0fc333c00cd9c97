//! The small core plugins built from real configuration text and run through the engine: the `sample`
//! (`dummy`) input, and the `stdout`, `null`, `copy` and `relabel` outputs, with exact records and bytes.
use parking_lot::Mutex;
use sluice_core::config::{parse_str, ConfigError, Element};
use sluice_core::engine::{assemble, Engine};
use sluice_core::event::{Event, EventTime, Events, Map, Value};
use sluice_core::plugin::{BuildCtx, EmitError, Output, Registry};
use sluice_core::record;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// 2026-11-25T01:02:03.123456789Z
const T: EventTime = EventTime::new(1_795_568_523, 123_456_789);

/// What a capture output saw: (tag, batch number, time, record).
type Sink = Arc<Mutex<Vec<(String, usize, EventTime, Map)>>>;

fn sink(run: &str) -> Sink {
    static SINKS: OnceLock<Mutex<HashMap<String, Sink>>> = OnceLock::new();
    SINKS.get_or_init(Default::default).lock().entry(run.to_string()).or_default().clone()
}

fn batches() -> &'static Mutex<HashMap<String, usize>> {
    static B: OnceLock<Mutex<HashMap<String, usize>>> = OnceLock::new();
    B.get_or_init(Default::default)
}

struct Capture(String, Sink);
impl Output for Capture {
    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        let n = {
            let mut b = batches().lock();
            let n = b.entry(self.0.clone()).or_default();
            *n += 1;
            *n
        };
        self.1.lock().extend(events.into_iter().map(|e| (tag.to_string(), n, e.time, e.record)));
        Ok(())
    }
}
fn build_capture(s: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    let run = s.required_str("run")?;
    Ok(Arc::new(Capture(run.clone(), sink(&run))))
}

/// An output whose every emit fails (a full buffer).
struct Fail;
impl Output for Fail {
    fn emit(&self, _tag: &str, _events: Events) -> Result<(), EmitError> {
        Err(EmitError::BufferOverflow { output: "fail".into(), reason: "test".into() })
    }
}
fn build_fail(_s: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    Ok(Arc::new(Fail))
}

fn registry() -> Arc<Registry> {
    let mut r = Registry::new();
    sluice_plugins::register_all(&mut r);
    r.register_output("capture", build_capture);
    r.register_output("fail", build_fail);
    Arc::new(r)
}

fn engine(text: &str) -> Engine {
    let root = parse_str(text, Path::new("basic.conf")).unwrap_or_else(|e| panic!("parse: {e}"));
    let a = assemble(&root, registry(), false);
    match a.engine {
        Some(e) => e,
        None => panic!("config errors: {:?}", a.diagnostics.errors),
    }
}

/// The configuration errors of `text` (it must have some), as text.
fn config_errors(text: &str) -> String {
    let root = parse_str(text, Path::new("basic.conf")).unwrap_or_else(|e| panic!("parse: {e}"));
    let a = assemble(&root, registry(), false);
    assert!(a.engine.is_none(), "expected configuration errors for:\n{text}");
    a.diagnostics.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
}

fn records(run: &str) -> Vec<(String, Map)> {
    sink(run).lock().iter().map(|(t, _, _, r)| (t.clone(), r.clone())).collect()
}

/// Run the engine until `run` has captured `n` events (or 10 s), then stop it.
async fn run_until(text: &str, run: &str, n: usize) -> Vec<(String, usize, EventTime, Map)> {
    let e = engine(text);
    let shutdown = e.ctx.shutdown.clone();
    let task = tokio::spawn(e.run());
    let end = Instant::now() + Duration::from_secs(10);
    while sink(run).lock().len() < n && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(15), task).await.expect("engine stops").expect("join").expect("run ok");
    sink(run).lock().clone()
}

// --- sample / dummy ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_emits_its_record_with_auto_increment_in_batches_of_size() {
    let conf = r#"
<source>
  @type sample
  tag sample.test
  sample {"hello":"world","n":1.0}
  rate 20
  size 3
  auto_increment_key id
</source>
<match sample.**>
  @type capture
  run sample_basic
</match>
"#;
    let before = EventTime::now();
    let got = run_until(conf, "sample_basic", 9).await;
    assert!(got.len() >= 9, "only {} events", got.len());
    for (i, (tag, _, time, rec)) in got.iter().enumerate() {
        assert_eq!(tag, "sample.test");
        assert_eq!(rec, &record! {"hello" => "world", "n" => 1.0, "id" => i as i64});
        assert!(*time >= before, "event time is the emit time");
    }
    // Each emit carries `size` events.
    let mut per_batch: HashMap<usize, usize> = HashMap::new();
    for (_, b, _, _) in &got {
        *per_batch.entry(*b).or_default() += 1;
    }
    assert!(per_batch.values().all(|&n| n == 3), "{per_batch:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dummy_alias_default_record_and_array_rotation() {
    let conf = r#"
<source>
  @type dummy
  tag d.default
  rate 50
</source>
<source>
  @type dummy
  tag d.array
  dummy [{"a":1},{"b":null},{"c":"ünï"}]
  rate 50
</source>
<source>
  @type sample
  tag d.replace
  sample {"id":"x","k":"v"}
  auto_increment_key id
  rate 50
</source>
<match d.default>
  @type capture
  run dummy_default
</match>
<match d.array>
  @type capture
  run dummy_array
</match>
<match d.replace>
  @type capture
  run dummy_replace
</match>
"#;
    let e = engine(conf);
    let shutdown = e.ctx.shutdown.clone();
    let task = tokio::spawn(e.run());
    let end = Instant::now() + Duration::from_secs(10);
    while (sink("dummy_array").lock().len() < 4 || sink("dummy_replace").lock().len() < 2) && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(15), task).await.expect("stops").expect("join").expect("ok");

    let d = records("dummy_default");
    assert!(!d.is_empty());
    assert!(d.iter().all(|(t, r)| t == "d.default" && r == &record! {"message" => "sample"}), "{d:?}");

    let a = records("dummy_array");
    let mut b = record! {};
    b.insert("b", Value::Null);
    let cycle = [record! {"a" => 1i64}, b, record! {"c" => "ünï"}];
    assert!(a.len() >= 4);
    for (i, (_, r)) in a.iter().enumerate() {
        assert_eq!(r, &cycle[i % 3]);
    }

    // An existing key is replaced in place (key order kept), counting from 0.
    let r = records("dummy_replace");
    assert_eq!(r[0].1, record! {"id" => 0i64, "k" => "v"});
    assert_eq!(r[1].1, record! {"id" => 1i64, "k" => "v"});
    assert_eq!(r[0].1.keys().map(|k| k.to_string()).collect::<Vec<_>>(), vec!["id", "k"]);
}

#[test]
fn sample_configuration_errors() {
    let base =
        |params: &str| format!("<source>\n  @type sample\n{params}\n</source>\n<match **>\n  @type null\n</match>\n");
    let e = config_errors(&base("  sample {\"a\":1}"));
    assert!(e.contains("tag") && e.contains("basic.conf:1"), "{e}");
    let e = config_errors(&base("  tag t\n  sample nope"));
    assert!(e.contains("sample") && e.contains("basic.conf:4"), "{e}");
    let e = config_errors(&base("  tag t\n  sample [1,2]"));
    assert!(e.contains("sample"), "{e}");
    let e = config_errors(&base("  tag t\n  sample []"));
    assert!(e.contains("sample"), "{e}");
    let e = config_errors(&base("  tag t\n  rate 0"));
    assert!(e.contains("rate"), "{e}");
    let e = config_errors(&base("  tag t\n  size abc"));
    assert!(e.contains("size"), "{e}");
}

// --- null -------------------------------------------------------------------------------------------------

#[test]
fn null_discards_and_counts() {
    let e = engine("<match **>\n  @type null\n  <buffer>\n    flush_interval 1s\n  </buffer>\n</match>\n");
    let evs: Events = (0..5).map(|i| Event::new(T, record! {"i" => i as i64})).collect();
    e.router.emit_to_label("@ROOT", "any.tag", evs).expect("null accepts");
    let outs = e.router.outputs();
    assert_eq!(outs.len(), 1);
    let m = outs[0].metrics().expect("metrics");
    assert_eq!(m.records_in.get(), 5);
}

// --- copy -------------------------------------------------------------------------------------------------

#[test]
fn copy_sends_the_same_events_to_every_store() {
    let e = engine(
        r#"
<match app.**>
  @type copy
  <store>
    @type capture
    run copy_a
  </store>
  <store>
    @type capture
    run copy_b
  </store>
</match>
"#,
    );
    let mut rec = record! {"k" => "v", "f" => 1.0};
    rec.insert("nil", Value::Null);
    rec.insert("raw", Value::Bytes(vec![0xff, b'x']));
    rec.insert("m", Value::Map(record! {"a" => Value::Array(vec![Value::Int(1)])}));
    e.router.emit_to_label("@ROOT", "app.web", vec![Event::new(T, rec.clone())]).expect("emit");
    let a = sink("copy_a").lock().clone();
    let b = sink("copy_b").lock().clone();
    assert_eq!(a.len(), 1);
    assert_eq!((a[0].0.as_str(), a[0].2, &a[0].3), ("app.web", T, &rec));
    assert_eq!((b[0].0.as_str(), b[0].2, &b[0].3), ("app.web", T, &rec));
}

#[test]
fn copy_failing_store_stops_the_following_ones_unless_ignore_error() {
    // Without ignore_error, the failure is the copy's failure and later stores see nothing (Fluentd raises).
    let e = engine(
        r#"
<match **>
  @type copy
  <store>
    @type capture
    run stop_first
  </store>
  <store>
    @type fail
  </store>
  <store>
    @type capture
    run stop_third
  </store>
</match>
"#,
    );
    let r = e.router.emit_to_label("@ROOT", "t", vec![Event::new(T, record! {"k" => "v"})]);
    assert!(matches!(r, Err(EmitError::BufferOverflow { .. })), "{r:?}");
    assert_eq!(records("stop_first"), vec![("t".to_string(), record! {"k" => "v"})]);
    assert!(records("stop_third").is_empty());

    // With <store ignore_error> the error is logged and the next store still gets the events.
    let e = engine(
        r#"
<match **>
  @type copy
  <store ignore_error>
    @type fail
  </store>
  <store>
    @type capture
    run ignore_second
  </store>
</match>
"#,
    );
    e.router.emit_to_label("@ROOT", "t", vec![Event::new(T, record! {"k" => "v"})]).expect("ignored");
    assert_eq!(records("ignore_second"), vec![("t".to_string(), record! {"k" => "v"})]);

    // A failing last store without ignore_error fails the emit (the input keeps the events).
    let e = engine(
        "<match **>\n  @type copy\n  <store>\n    @type capture\n    run last_ok\n  </store>\n  <store>\n    @type fail\n  </store>\n</match>\n",
    );
    assert!(e.router.emit_to_label("@ROOT", "t", vec![Event::new(T, record! {"k" => "v"})]).is_err());
    assert_eq!(records("last_ok").len(), 1);
}

#[test]
fn copy_ignore_if_prev_success_is_a_fallback_store() {
    let e = engine(
        r#"
<match ok.**>
  @type copy
  <store>
    @type capture
    run prev_primary
  </store>
  <store ignore_if_prev_success>
    @type capture
    run prev_fallback_unused
  </store>
</match>
<match bad.**>
  @type copy
  <store ignore_error>
    @type fail
  </store>
  <store ignore_if_prev_success>
    @type capture
    run prev_fallback_used
  </store>
  <store>
    @type capture
    run prev_always
  </store>
</match>
"#,
    );
    let one = || vec![Event::new(T, record! {"k" => "v"})];
    e.router.emit_to_label("@ROOT", "ok.x", one()).expect("emit");
    assert_eq!(records("prev_primary").len(), 1);
    assert!(records("prev_fallback_unused").is_empty());
    e.router.emit_to_label("@ROOT", "bad.x", one()).expect("emit");
    assert_eq!(records("prev_fallback_used"), vec![("bad.x".to_string(), record! {"k" => "v"})]);
    assert_eq!(records("prev_always").len(), 1);
    let e = config_errors(
        "<match **>\n  @type copy\n  <store ignore_if_prev_success>\n    @type null\n  </store>\n</match>\n",
    );
    assert!(e.contains("2nd or later") && e.contains("basic.conf:3"), "{e}");
}

#[test]
fn copy_configuration_errors() {
    let e = config_errors("<match **>\n  @type copy\n</match>\n");
    assert!(e.contains("store") && e.contains("basic.conf:1"), "{e}");
    let e =
        config_errors("<match **>\n  @type copy\n  copy_mode weird\n  <store>\n    @type null\n  </store>\n</match>\n");
    assert!(e.contains("copy_mode") && e.contains("basic.conf:3"), "{e}");
    let e = config_errors("<match **>\n  @type copy\n  <store>\n    @type nosuch\n  </store>\n</match>\n");
    assert!(e.contains("nosuch"), "{e}");
    // Every Fluentd copy_mode is accepted.
    for mode in ["no_copy", "shallow", "deep", "marshal"] {
        engine(&format!(
            "<match **>\n  @type copy\n  copy_mode {mode}\n  <store>\n    @type null\n  </store>\n</match>\n"
        ));
    }
}

// --- relabel ----------------------------------------------------------------------------------------------

#[test]
fn relabel_sends_events_unchanged_to_the_label() {
    let e = engine(
        r#"
<match app.**>
  @type copy
  <store>
    @type relabel
    @label @AUDIT
  </store>
  <store>
    @type capture
    run relabel_root
  </store>
</match>
<match other.**>
  @type relabel
  @label @AUDIT
</match>
<label @AUDIT>
  <filter **>
    @type record_transformer
    <record>
      audited yes
    </record>
  </filter>
  <match **>
    @type capture
    run relabel_audit
  </match>
</label>
"#,
    );
    let mut rec = record! {"k" => "ü"};
    rec.insert("nil", Value::Null);
    e.router.emit_to_label("@ROOT", "app.web", vec![Event::new(T, rec.clone())]).expect("emit");
    e.router.emit_to_label("@ROOT", "other.x", vec![Event::new(T, record! {"n" => 2i64})]).expect("emit");
    let mut audited = rec.clone();
    audited.insert("audited", Value::from("yes"));
    let got = sink("relabel_audit").lock().clone();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].0.as_str(), got[0].2, &got[0].3), ("app.web", T, &audited));
    assert_eq!((got[1].0.as_str(), &got[1].3), ("other.x", &record! {"n" => 2i64, "audited" => "yes"}));
    // The copy's other store got the record without the label's filter.
    assert_eq!(records("relabel_root"), vec![("app.web".to_string(), rec)]);
}

#[test]
fn relabel_configuration_errors() {
    let e = config_errors("<match **>\n  @type relabel\n</match>\n");
    assert!(e.contains("@label") && e.contains("basic.conf:1"), "{e}");
    let e = config_errors("<match **>\n  @type relabel\n  @label @NOWHERE\n</match>\n");
    assert!(e.contains("@NOWHERE"), "{e}");
}

// --- stdout -----------------------------------------------------------------------------------------------

const STDOUT_CHILD: &str = "SLUICE_BASIC_PLUGINS_STDOUT_CHILD";

/// Runs only inside the child process that `stdout_output_prints_fluentd_lines` starts: the output writes to
/// the process's real stdout, which the parent reads.
#[test]
fn stdout_child() {
    if std::env::var_os(STDOUT_CHILD).is_none() {
        return;
    }
    let e = engine(
        r#"
<match default.**>
  @type stdout
  utc true
</match>
<match json.**>
  @type stdout
  <format>
    @type json
  </format>
</match>
<match hash.**>
  @type stdout
  <format>
    @type stdout
    output_type hash
    utc true
  </format>
</match>
<match single.**>
  @type stdout
  <format>
    @type single_value
    add_newline false
  </format>
</match>
<match singlenl.**>
  @type stdout
  <format>
    @type single_value
  </format>
</match>
"#,
    );
    let mut rec = record! {"k" => "v", "f" => 1.0, "u" => "日本"};
    rec.insert("nil", Value::Null);
    let send = |tag: &str, r: Map| e.router.emit_to_label("@ROOT", tag, vec![Event::new(T, r)]).expect("emit");
    send("default.a", rec.clone());
    send("json.a", rec.clone());
    send("hash.a", rec);
    send("single.a", record! {"message" => "no newline"});
    send("single.a", record! {"message" => Value::Bytes(vec![b'b', 0xff])});
    send("single.a", record! {"message" => "cr\r"});
    // One trailing newline is chomped before the output adds its own, as Fluentd's `chomp + "\n"`.
    send("json.b", record! {"end" => "x"});
    e.router.emit_to_label("@ROOT", "singlenl.a", vec![Event::new(T, record! {"message" => "two\n"})]).expect("emit");
}

#[test]
fn stdout_output_prints_fluentd_lines() {
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args(["stdout_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(STDOUT_CHILD, "1")
        .output()
        .expect("run child");
    assert!(out.status.success(), "child failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = out.stdout;
    let expected: &[u8] = b"2026-11-25 01:02:03.123456789 +0000 default.a: {\"k\":\"v\",\"f\":1.0,\"u\":\"\xe6\x97\xa5\xe6\x9c\xac\",\"nil\":null}\n\
{\"k\":\"v\",\"f\":1.0,\"u\":\"\xe6\x97\xa5\xe6\x9c\xac\",\"nil\":null}\n\
2026-11-25 01:02:03.123456789 +0000 hash.a: {\"k\"=>\"v\", \"f\"=>1.0, \"u\"=>\"\xe6\x97\xa5\xe6\x9c\xac\", \"nil\"=>nil}\n\
no newline\n\
b\xff\n\
cr\n\
{\"end\":\"x\"}\n\
two\n\n";
    assert!(memchr::memmem::find(&text, expected).is_some(), "stdout was:\n{}", String::from_utf8_lossy(&text));
}
