//! `sluice test -c fluent.conf tests.conf`: unit tests for a configuration, written in Fluentd's syntax
//! (see docs/explain.md). Each `<test>` builds the configuration's real filters and re-emitting outputs
//! (copy, relabel, rewrite_tag_filter, ...) with every delivering output replaced by a capture and no
//! source started, injects its `<input>` events, and compares what each named `<output>` captured.
use parking_lot::Mutex;
use sluice_core::accessor::Accessor;
use sluice_core::config::{ConfigError, Element};
use sluice_core::engine;
use sluice_core::event::{parse_json_map, write_json, write_json_map, Event, EventTime, Events, Value};
use sluice_core::plugin::{BuildCtx, EmitError, Output, Registry};
use sluice_core::router::ROOT_LABEL;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

const CAPTURE: &str = "__sluice_test_capture";
const CAPTURE_KEY: &str = "capture_key";
/// Re-emitting outputs run for real; every other output is captured.
const REEMITTERS: &[&str] = &["copy", "relabel", "rewrite_tag_filter", "detect_exceptions"];

/// What each capture received: output name → (tag, record as JSON).
type Captured = HashMap<String, Vec<(String, serde_json::Value)>>;

fn captured() -> &'static Mutex<Captured> {
    static C: OnceLock<Mutex<Captured>> = OnceLock::new();
    C.get_or_init(|| Mutex::new(HashMap::new()))
}

struct Capture {
    key: String,
}

impl Output for Capture {
    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        let mut c = captured().lock();
        let list = c.entry(self.key.clone()).or_default();
        for e in events {
            let mut buf = Vec::new();
            write_json_map(&e.record, &mut buf);
            list.push((tag.to_string(), serde_json::from_slice(&buf).unwrap_or(serde_json::Value::Null)));
        }
        Ok(())
    }
}

fn build_capture(s: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    let key = s.str_or(CAPTURE_KEY, "");
    s.mark_all_used();
    Ok(Arc::new(Capture { key }))
}

pub fn register(reg: &mut Registry) {
    reg.register_output(CAPTURE, build_capture);
}

/// A delivering output of the configuration: what tests call it and where it is.
struct OutputInfo {
    key: String,
    id: Option<String>,
    plugin: String,
}

/// The configuration with sources removed and delivering outputs turned into captures.
fn instrument(root: &Element, outputs: &mut Vec<OutputInfo>) -> Element {
    fn rewrite(el: &mut Element, outputs: &mut Vec<OutputInfo>) {
        for c in &mut el.children {
            match c.name.as_str() {
                "label" => rewrite(c, outputs),
                "match" | "store" | "secondary" => {
                    let plugin = c.plugin_type().unwrap_or("").to_string();
                    if REEMITTERS.contains(&plugin.as_str()) {
                        rewrite(c, outputs);
                        continue;
                    }
                    let id = c.plugin_id().map(str::to_string);
                    let key = format!("{}#{}", plugin, outputs.len());
                    outputs.push(OutputInfo { key: key.clone(), id: id.clone(), plugin });
                    let mut n = Element::new(c.name.clone(), c.arg.clone(), c.loc.clone());
                    n.set("@type", CAPTURE, c.loc.clone());
                    if let Some(id) = id {
                        n.set("@id", id, c.loc.clone());
                    }
                    if let Some(l) = c.get("@label") {
                        n.set("@label", l.to_string(), c.loc.clone());
                    }
                    n.set(CAPTURE_KEY, key, c.loc.clone());
                    *c = n;
                }
                _ => {}
            }
        }
    }
    let mut r = root.clone();
    r.children.retain(|c| c.name != "source");
    rewrite(&mut r, outputs);
    r
}

#[derive(Default)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
    pub text: String,
}

/// Run every `<test>` of `tests` against `root`. Errors in the test file are `ConfigError`s.
pub fn run(
    root: &Element,
    tests: &Element,
    registry: Arc<Registry>,
    rt: &tokio::runtime::Runtime,
) -> Result<Report, ConfigError> {
    let mut outputs = Vec::new();
    let conf = instrument(root, &mut outputs);
    let list: Vec<&Element> = tests.sections("test").collect();
    if list.is_empty() {
        return Err(tests.error("the test file has no <test> section").with_hint("see docs/explain.md"));
    }
    let mut report = Report::default();
    for t in list {
        captured().lock().clear();
        let assembled = rt.block_on(async { engine::assemble(&conf, registry.clone(), false) });
        let Some(engine) = assembled.engine else {
            let errs: Vec<String> = assembled.diagnostics.errors.iter().map(|e| e.to_string()).collect();
            return Err(t.error(format!("the configuration does not build: {}", errs.join("; "))));
        };
        let router = engine.router.clone();
        for input in t.sections("input") {
            let (label, tag) = input_target(root, input)?;
            let events = input_events(input)?;
            if let Err(e) = router.emit_to_label(&label, &tag, events) {
                return Err(input.error(format!("the events were refused: {e}")));
            }
        }
        // Emit what filters and re-emitting outputs hold back (concat, detect_exceptions).
        for f in router.filters() {
            f.shutdown();
        }
        for o in router.outputs() {
            o.before_shutdown();
        }
        let got = std::mem::take(&mut *captured().lock());
        let mut diffs = Vec::new();
        for out in t.sections("output") {
            check_output(out, &outputs, &got, &mut diffs)?;
        }
        let name = if t.arg.is_empty() { format!("at {}", t.loc) } else { t.arg.clone() };
        if diffs.is_empty() {
            report.passed += 1;
            report.text.push_str(&format!("test {name}: ok\n"));
        } else {
            report.failed += 1;
            report.text.push_str(&format!("test {name}: FAILED\n"));
            for d in diffs {
                report.text.push_str(&format!("  - {d}\n"));
            }
        }
        drop(engine);
    }
    Ok(report)
}

/// The label and tag an `<input>` injects at: `source ID` (its label and tag; `tag` overrides a tag
/// made from data, such as tail's `*`), or `tag` (and `label`, default the top).
fn input_target(root: &Element, input: &Element) -> Result<(String, String), ConfigError> {
    let tag = input.opt_str("tag").map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    let Some(src) = input.get("source").map(str::trim) else {
        let tag = tag.ok_or_else(|| input.error("<input> needs 'source ID' or 'tag TAG'"))?;
        return Ok((input.str_or("label", ROOT_LABEL).trim().to_string(), tag));
    };
    let sources: Vec<&Element> = root.sections("source").collect();
    let s = if src.is_empty() {
        sources.first().copied()
    } else {
        sources.iter().copied().find(|s| s.plugin_id() == Some(src))
    }
    .ok_or_else(|| input.error_at("source", format!("no <source> with @id {src}")))?;
    let label = s.get("@label").unwrap_or(ROOT_LABEL).trim().to_string();
    let tag = match tag {
        Some(t) => t,
        None => match s.get("tag").map(str::trim) {
            Some(t) if !t.is_empty() && !t.contains('*') => t.to_string(),
            _ => {
                return Err(input
                    .error(format!("the tag of source {src} depends on the data; give 'tag TAG' in <input>"))
                    .with_hint("for tail with `tag kube.*`, e.g. tag kube.var.log.containers.app.log"))
            }
        },
    };
    Ok((label, tag))
}

/// `<event>` sections (`record JSON`, optional `time`), or one `record` in the `<input>` itself.
fn input_events(input: &Element) -> Result<Events, ConfigError> {
    let mut out = Vec::new();
    let one = input.has("record").then_some(input);
    for ev in one.into_iter().chain(input.sections("event")) {
        let text = ev.required_str("record")?;
        let record = parse_json_map(text.as_str())
            .map_err(|e| ev.error_at("record", format!("'record' is not a JSON object: {e}")))?;
        let time = match ev.get("time").map(str::trim) {
            None | Some("") => EventTime::now(),
            Some(t) => parse_time(t)
                .ok_or_else(|| ev.error_at("time", format!("'time' {t:?} is neither epoch seconds nor RFC 3339")))?,
        };
        out.push(Event::new(time, record));
    }
    if out.is_empty() {
        return Err(input
            .error("<input> has no events")
            .with_hint("add record {\"key\":\"value\"} or <event> sections"));
    }
    Ok(out)
}

fn parse_time(t: &str) -> Option<EventTime> {
    if let Ok(f) = t.parse::<f64>() {
        return f.is_finite().then(|| EventTime::from_f64(f));
    }
    let d = chrono::DateTime::parse_from_rfc3339(t).ok()?;
    Some(EventTime::new(d.timestamp(), d.timestamp_subsec_nanos()))
}

fn check_output(
    out: &Element,
    outputs: &[OutputInfo],
    got: &Captured,
    diffs: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let name = out.arg.trim();
    let by_id: Vec<&OutputInfo> = outputs.iter().filter(|o| o.id.as_deref() == Some(name)).collect();
    let by_type: Vec<&OutputInfo> = outputs.iter().filter(|o| o.plugin == name).collect();
    let target = match (by_id.as_slice(), by_type.as_slice()) {
        ([o], _) | ([], [o]) => *o,
        ([], []) => return Err(out.error(format!("no output with @id {name:?}"))),
        _ => return Err(out.error(format!("{name:?} names more than one output; give each an @id"))),
    };
    let records: &[(String, serde_json::Value)] = got.get(&target.key).map(Vec::as_slice).unwrap_or(&[]);
    let expected: Vec<&Element> = out.sections("record").collect();
    let count = match out.opt_int("count")? {
        Some(n) => Some(usize::try_from(n).map_err(|_| out.error_at("count", "'count' must be 0 or more"))?),
        None if !expected.is_empty() => Some(expected.len()),
        None => None,
    };
    if let Some(n) = count {
        if records.len() != n {
            diffs.push(format!("output {name}: expected {n} record(s), got {}{}", records.len(), list(records)));
        }
    }
    for (i, exp) in expected.iter().enumerate() {
        let Some((tag, rec)) = records.get(i) else { break };
        check_record(name, i + 1, exp, tag, rec, diffs)?;
    }
    Ok(())
}

fn list(records: &[(String, serde_json::Value)]) -> String {
    records.iter().map(|(t, r)| format!("\n      {t} {r}")).collect()
}

fn check_record(
    out: &str,
    n: usize,
    exp: &Element,
    tag: &str,
    rec: &serde_json::Value,
    diffs: &mut Vec<String>,
) -> Result<(), ConfigError> {
    if let Some(t) = exp.get("tag").map(str::trim) {
        if t != tag {
            diffs.push(format!("output {out}, record {n}: tag is {tag:?}, expected {t:?}"));
        }
    }
    if let Some(j) = exp.get("json") {
        let want: serde_json::Value =
            serde_json::from_str(j).map_err(|e| exp.error_at("json", format!("'json' is not JSON: {e}")))?;
        if &want != rec {
            diffs.push(format!("output {out}, record {n}: got {rec}, expected {want}"));
        }
    }
    let map = json_to_map(rec);
    for f in exp.sections("field") {
        let key = f.arg.trim();
        let acc = Accessor::parse(key).map_err(|e| f.error(format!("<field {key}>: {e}")))?;
        let value = map.as_ref().and_then(|m| acc.get(m));
        let shown = value.map(json_of).unwrap_or_else(|| "absent".to_string());
        if f.bool_or("absent", false)? && value.is_some() {
            diffs.push(format!("output {out}, record {n}: {key} is {shown}, expected absent"));
        }
        if f.bool_or("present", false)? && value.is_none() {
            diffs.push(format!("output {out}, record {n}: {key} is absent, expected present"));
        }
        if let Some(want) = f.get("equals") {
            let ok = value.is_some_and(|v| equals(v, want));
            if !ok {
                diffs.push(format!("output {out}, record {n}: {key} is {shown}, expected {want}"));
            }
        }
        if let Some(pat) = f.get("matches") {
            let (src, flags) = sluice_core::ruby::regexp::split_literal(pat.trim())
                .map_err(|e| f.error_at("matches", format!("'matches': {e}")))?;
            let re = sluice_core::ruby::regexp::RubyRegex::new(src, flags)
                .map_err(|e| f.error_at("matches", format!("'matches': {e}")))?;
            let text = value.map(|v| v.to_display_string());
            if !text.as_deref().is_some_and(|t| re.is_match(t)) {
                diffs.push(format!("output {out}, record {n}: {key} is {shown}, expected to match {pat}"));
            }
        }
    }
    Ok(())
}

fn json_to_map(v: &serde_json::Value) -> Option<sluice_core::event::Map> {
    parse_json_map(v.to_string().as_str()).ok()
}

fn json_of(v: &Value) -> String {
    let mut b = Vec::new();
    write_json(v, &mut b);
    String::from_utf8_lossy(&b).into_owned()
}

/// `equals` compares with the JSON value when the text is JSON (`42`, `true`, `"x"`, `{...}`), else with
/// the string.
fn equals(v: &Value, want: &str) -> bool {
    let got: Option<serde_json::Value> = serde_json::from_str(&json_of(v)).ok();
    if let (Ok(w), Some(g)) = (serde_json::from_str::<serde_json::Value>(want), got.as_ref()) {
        if &w == g {
            return true;
        }
    }
    v.as_str().is_some_and(|s| s == want) || v.to_display_string() == want
}
