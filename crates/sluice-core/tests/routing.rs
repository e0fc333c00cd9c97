//! Fluentd's routing semantics through the real engine assembly: filter order, first match wins, `**` and
//! `{}` patterns, labels, `@ERROR`, unmatched tags. Plugins here are small test doubles registered under
//! their own names; the configuration is real Fluentd syntax.
use parking_lot::Mutex;
use sluice_core::config::{parse_str, ConfigError, Element};
use sluice_core::engine::assemble;
use sluice_core::event::{Event, EventTime, Events, Value};
use sluice_core::plugin::{BuildCtx, EmitError, ErrorEvents, Filter, Output, Registry};
use sluice_core::record;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

type Sink = Mutex<Vec<(String, String, Event)>>;

fn sink() -> &'static Mutex<HashMap<String, Arc<Sink>>> {
    static S: OnceLock<Mutex<HashMap<String, Arc<Sink>>>> = OnceLock::new();
    S.get_or_init(Default::default)
}

/// `@type capture name X`: records (tag, name, event) into a shared sink keyed by the test's `run` id.
struct Capture {
    name: String,
    sink: Arc<Sink>,
}
impl Output for Capture {
    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        let mut s = self.sink.lock();
        for e in events {
            s.push((tag.to_string(), self.name.clone(), e));
        }
        Ok(())
    }
}
fn build_capture(s: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    let run = s.required_str("run")?;
    let sink = sink().lock().entry(run).or_default().clone();
    Ok(Arc::new(Capture { name: s.required_str("name")?, sink }))
}

/// `@type append key K value V`: appends V to the string field K (shows filter order).
struct Append {
    key: String,
    value: String,
}
impl Filter for Append {
    fn filter(&self, _tag: &str, events: &mut Events, _errors: &mut ErrorEvents) {
        for e in events.iter_mut() {
            let mut s = e.record.get(&self.key).map(|v| v.to_display_string()).unwrap_or_default();
            s.push_str(&self.value);
            e.record.insert(self.key.as_str(), Value::from(s));
        }
    }
}
fn build_append(s: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Filter>, ConfigError> {
    Ok(Arc::new(Append { key: s.required_str("key")?, value: s.required_str("value")? }))
}

/// `@type reject_odd`: sends events whose `n` is odd to @ERROR.
struct RejectOdd;
impl Filter for RejectOdd {
    fn filter(&self, _tag: &str, events: &mut Events, errors: &mut ErrorEvents) {
        let all = std::mem::take(events);
        for e in all {
            if e.record.get("n").and_then(Value::as_i64).unwrap_or(0) % 2 == 1 {
                errors.push(e, "odd");
            } else {
                events.push(e);
            }
        }
    }
}
fn build_reject(_s: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Filter>, ConfigError> {
    Ok(Arc::new(RejectOdd))
}

fn relabel(s: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    struct Relabel(sluice_core::router::RouterHandle, String);
    impl Output for Relabel {
        fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
            self.0.emit_to_label(&self.1, tag, events)
        }
    }
    Ok(Arc::new(Relabel(ctx.router.clone(), s.required_str("@label")?)))
}

fn registry() -> Arc<Registry> {
    let mut r = Registry::new();
    r.register_output("capture", build_capture);
    r.register_output("relabel", relabel);
    r.register_filter("append", build_append);
    r.register_filter("reject_odd", build_reject);
    Arc::new(r)
}

/// Assemble `conf`, emit `(label, tag, n)` events, return what each capture got as (tag, name, trail, n).
fn run(id: &str, conf: &str, emits: &[(&str, &str, i64)]) -> Vec<(String, String, String, i64)> {
    let conf = conf.replace("RUN", id);
    let root = parse_str(&conf, Path::new("routing.conf")).expect("config parses");
    let a = assemble(&root, registry(), false);
    assert!(a.diagnostics.errors.is_empty(), "{:?}", a.diagnostics.errors);
    let engine = a.engine.expect("engine");
    for (label, tag, n) in emits {
        let ev = Event::new(EventTime::new(1, 0), record! {"n" => *n});
        engine.router.emit_to_label(label, tag, vec![ev]).expect("emit");
    }
    let s = sink().lock().get(id).cloned().unwrap_or_default();
    let out = s
        .lock()
        .iter()
        .map(|(t, name, e)| {
            let trail = e.record.get("trail").map(|v| v.to_display_string()).unwrap_or_default();
            (t.clone(), name.clone(), trail, e.record.get("n").and_then(Value::as_i64).unwrap_or(-1))
        })
        .collect();
    out
}

fn row(t: &str, name: &str, trail: &str, n: i64) -> (String, String, String, i64) {
    (t.into(), name.into(), trail.into(), n)
}

#[test]
fn filters_apply_in_order_and_first_match_wins() {
    let got = run(
        "order",
        r#"
<filter app.**>
  @type append
  key trail
  value A
</filter>
<filter app.web>
  @type append
  key trail
  value B
</filter>
<match app.web>
  @type capture
  run RUN
  name first
</match>
<filter app.**>
  @type append
  key trail
  value C
</filter>
<match app.**>
  @type capture
  run RUN
  name second
</match>
"#,
        &[("@ROOT", "app.web", 1), ("@ROOT", "app.db", 2)],
    );
    assert_eq!(got, vec![row("app.web", "first", "AB", 1), row("app.db", "second", "AC", 2)]);
}

#[test]
fn patterns_double_star_braces_and_several_per_directive() {
    let got = run(
        "patterns",
        r#"
<match a.{x,y}.z>
  @type capture
  run RUN
  name braces
</match>
<match b.* c.**>
  @type capture
  run RUN
  name multi
</match>
<match **>
  @type capture
  run RUN
  name rest
</match>
"#,
        &[
            ("@ROOT", "a.x.z", 1),
            ("@ROOT", "a.y.z", 2),
            ("@ROOT", "a.w.z", 3),
            ("@ROOT", "b.one", 4),
            ("@ROOT", "b.one.two", 5),
            ("@ROOT", "c", 6),
            ("@ROOT", "c.d.e", 7),
        ],
    );
    assert_eq!(
        got,
        vec![
            row("a.x.z", "braces", "", 1),
            row("a.y.z", "braces", "", 2),
            row("a.w.z", "rest", "", 3),
            row("b.one", "multi", "", 4),
            row("b.one.two", "rest", "", 5),
            row("c", "multi", "", 6),
            row("c.d.e", "multi", "", 7),
        ]
    );
}

#[test]
fn labels_relabel_and_source_labels() {
    let got = run(
        "labels",
        r#"
<match to_label.**>
  @type relabel
  @label @SIDE
</match>
<match **>
  @type capture
  run RUN
  name root
</match>
<label @SIDE>
  <filter **>
    @type append
    key trail
    value S
  </filter>
  <match **>
    @type capture
    run RUN
    name side
  </match>
</label>
"#,
        &[("@ROOT", "to_label.x", 1), ("@ROOT", "plain", 2), ("@SIDE", "direct", 3)],
    );
    assert_eq!(
        got,
        vec![row("to_label.x", "side", "S", 1), row("plain", "root", "", 2), row("direct", "side", "S", 3)]
    );
}

#[test]
fn rejected_events_go_to_error_label() {
    let got = run(
        "error",
        r#"
<filter **>
  @type reject_odd
</filter>
<match **>
  @type capture
  run RUN
  name ok
</match>
<label @ERROR>
  <match **>
    @type capture
    run RUN
    name error
  </match>
</label>
"#,
        &[("@ROOT", "t", 1), ("@ROOT", "t", 2)],
    );
    assert_eq!(got, vec![row("t", "error", "", 1), row("t", "ok", "", 2)]);
}

#[test]
fn unmatched_tags_are_dropped_and_counted() {
    let conf = r#"
<match only.this>
  @type capture
  run RUN
  name only
</match>
"#
    .replace("RUN", "unmatched");
    let root = parse_str(&conf, Path::new("u.conf")).expect("parses");
    let engine = assemble(&root, registry(), false).engine.expect("engine");
    let ev = || vec![Event::new(EventTime::new(1, 0), record! {"n" => 1i64})];
    engine.router.emit_to_label("@ROOT", "other.tag", ev()).expect("emit");
    engine.router.emit_to_label("@ROOT", "other.tag", ev()).expect("emit");
    engine.router.emit_to_label("@ROOT", "only.this", ev()).expect("emit");
    assert_eq!(engine.router.metrics.unmatched_records.get(), 2);
    assert_eq!(sink().lock().get("unmatched").map(|s| s.lock().len()), Some(1));
}

/// The metrics hub reaches the router through the plugin contract's handle, and reports its counters.
#[test]
fn the_metrics_hub_reports_the_router_counters() {
    /// Each sample as `name` or `name{reason}`, with its value.
    struct Find(HashMap<String, f64>);
    impl sluice_core::metrics::MetricSink for Find {
        fn sample(
            &mut self,
            name: &str,
            _help: &str,
            _kind: sluice_core::metrics::Kind,
            _suffix: &str,
            labels: &[(&str, &str)],
            value: f64,
        ) {
            let key = match labels.iter().find(|(k, _)| *k == "reason") {
                Some((_, r)) => format!("{name}{{{r}}}"),
                None => name.to_string(),
            };
            self.0.insert(key, value);
        }
    }
    let conf = "<match only.this>\n  @type capture\n  run hub\n  name only\n</match>\n";
    let root = parse_str(conf, Path::new("h.conf")).expect("parses");
    let engine = assemble(&root, registry(), false).engine.expect("engine");
    let ev = vec![Event::new(EventTime::new(1, 0), record! {"n" => 1i64})];
    engine.router.emit_to_label("@ROOT", "other.tag", ev).expect("emit");
    let mut found = Find(HashMap::new());
    engine.ctx.metrics.report(&mut found);
    assert_eq!(found.0.get("sluice_router_unmatched_records_total"), Some(&1.0));
    assert_eq!(found.0.get("sluice_records_dropped_total{unmatched}"), Some(&1.0));
}

#[test]
fn config_errors_name_file_and_line() {
    let conf = "<source>\n  @type nope\n</source>\n<match x>\n  @type relabel\n  @label @MISSING\n</match>\n<match y>\n  @type capture\n  run r\n</match>\n";
    let root = parse_str(conf, Path::new("bad.conf")).expect("parses");
    let a = assemble(&root, registry(), true);
    assert!(a.engine.is_none());
    let msgs: Vec<String> = a.diagnostics.errors.iter().map(|e| e.to_string()).collect();
    assert!(msgs.iter().any(|m| m.starts_with("bad.conf:2: unknown input plugin 'nope'")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.starts_with("bad.conf:6: no <label @MISSING> is defined")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.starts_with("bad.conf:8: 'name' parameter is required")), "{msgs:?}");
}

#[test]
fn unknown_parameters_are_warnings() {
    let conf = "<match **>\n  @type capture\n  run w\n  name n\n  flush_intervl 5s\n</match>\n";
    let root = parse_str(conf, Path::new("w.conf")).expect("parses");
    let a = assemble(&root, registry(), true);
    assert!(a.engine.is_some());
    let w: Vec<String> = a.diagnostics.warnings.iter().map(|e| e.to_string()).collect();
    assert_eq!(w, vec!["w.conf:5: parameter 'flush_intervl' in <match **> is not used".to_string()]);
}
