use super::log_level::{self, LogLevels, SpannedFilter, SpannedOutput};
use super::Engine;
use crate::config::{ConfigError, Diagnostics, Element};
use crate::metrics::{Component, Hub};
use crate::pattern::TagMatcher;
use crate::plugin::{BuildCtx, Emitter, EofTracker, Filter, Output, Registry, Shutdown, SystemConfig};
use crate::router::{Pipeline, Router, RouterHandle, Step, ROOT_LABEL};
use std::collections::HashSet;
use std::sync::Arc;
use tracing::Span;

/// The outcome of checking a configuration: the engine when there were no errors, and every diagnostic.
pub struct Assembled {
    pub engine: Option<Engine>,
    pub diagnostics: Diagnostics,
    /// Filled even when there are errors, so the process level applies to the warnings too.
    pub log_levels: LogLevels,
}

/// Directives that Fluentd accepts and sluice does not run.
const UNSUPPORTED_DIRECTIVES: &[(&str, &str)] =
    &[("worker", "sluice runs one process with several threads; remove <worker> and keep its contents at top level")];

fn system_config(root: &Element, check_dirs: bool, diag: &mut Diagnostics, levels: &mut LogLevels) -> SystemConfig {
    let state_dir = std::env::var_os("SLUICE_STATE_DIR").filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
    let mut sys = SystemConfig { hostname: crate::util::hostname(), state_dir, ..Default::default() };
    if let Some(s) = root.section("system") {
        sys.root_dir = s.get("root_dir").map(Into::into);
        if let (Some(dir), true) = (&sys.root_dir, check_dirs) {
            if let Err(e) = crate::fs_check::writable_dir(dir) {
                diag.error(s.error_at("root_dir", format!("root_dir: {e}")));
            }
        }
        match log_level::level_param(s, "log_level") {
            Ok(l) => levels.system = l,
            Err(e) => diag.error(e),
        }
        sys.log_level = s.get("log_level").map(|v| v.trim().to_string());
        warn_ignored_system_settings(s, diag);
        s.mark_all_used();
    }
    sys
}

/// `<system>` settings that sluice reads. Everything else Fluentd accepts there is accepted and ignored,
/// with a warning at its line, so nobody believes a setting took effect when it did not.
const SYSTEM_SETTINGS_READ: &[&str] = &["root_dir", "log_level"];

fn warn_ignored_system_settings(s: &Element, diag: &mut Diagnostics) {
    for a in &s.attrs {
        if SYSTEM_SETTINGS_READ.contains(&a.key.as_str()) {
            continue;
        }
        let why = match a.key.as_str() {
            "workers" if a.value.trim().parse::<u32>().is_ok_and(|n| n <= 1) => continue,
            "workers" => "sluice runs one process whose threads share the work; it uses no worker processes",
            "suppress_repeated_stacktrace" | "ignore_repeated_log_interval" | "ignore_same_log_interval" => {
                "sluice rate-limits its own repeated warnings by itself"
            }
            _ => "sluice does not use it",
        };
        diag.warn(ConfigError::at(&a.loc, format!("<system> {} is accepted and ignored: {why}", a.key)));
    }
    for c in &s.children {
        let why = match c.name.as_str() {
            "log" => "sluice's own log is set with -v/-q, -o FILE and SLUICE_LOG (docs/logging.md)",
            _ => "sluice does not use it",
        };
        diag.warn(ConfigError::at(&c.loc, format!("<system> <{}> is accepted and ignored: {why}", c.name)));
    }
}

/// How `assemble` builds: to run, to check (`--dry-run`: nothing started, directories checked), or only to
/// read the configuration (`sluice explain`: nothing started, nothing checked on this machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Run,
    Check,
    ReadOnly,
}

/// Build every plugin of `root` and wire the router. With `dry_run` nothing is started and builders must
/// not touch the outside world; the directories the configuration writes are checked.
pub fn assemble(root: &Element, registry: Arc<Registry>, dry_run: bool) -> Assembled {
    assemble_as(root, registry, if dry_run { Mode::Check } else { Mode::Run })
}

pub fn assemble_as(root: &Element, registry: Arc<Registry>, mode: Mode) -> Assembled {
    assemble_checked(root, Diagnostics::default(), registry, mode)
}

/// [`assemble_as`] after the front end's own diagnostics (`config::load_file`): they come first, any error
/// among them means no engine, and a directive holding a parse error is not built (its error already
/// says what is wrong), so one run reports the file's syntax and Ruby errors and every plugin's.
pub fn assemble_checked(root: &Element, parsed: Diagnostics, registry: Arc<Registry>, mode: Mode) -> Assembled {
    let dry_run = mode != Mode::Run;
    let check_dirs = mode == Mode::Check;
    // Refusals left by reads outside an assembly (none are expected) belong to no plugin built here.
    let _ = crate::config::take_nil_refusals();
    let mut diag = parsed;
    let mut levels = LogLevels::default();
    let handle = RouterHandle::new();
    let base = BuildCtx {
        registry: registry.clone(),
        router: handle.clone(),
        label: Arc::from(ROOT_LABEL),
        system: Arc::new(system_config(root, check_dirs, &mut diag, &mut levels)),
        shutdown: Shutdown::new(),
        eof: EofTracker::default(),
        dry_run,
        check_dirs,
        metrics: Hub::new(),
    };

    let mut inputs = Vec::new();
    let mut pipelines = Vec::new();
    let mut root_steps = Vec::new();
    let mut label_names = HashSet::new();
    let mut label_refs: Vec<(String, ConfigError)> = Vec::new();
    let mut spans = PluginSpans { enabled: log_level::any_plugin_level(root), levels: &mut levels };

    for el in &root.children {
        if is_directive(el) && skip_failed(el) {
            continue;
        }
        match el.name.as_str() {
            "source" => {
                let label = el.get("@label").unwrap_or(ROOT_LABEL).to_string();
                if el.has("@label") {
                    label_refs.push((label.clone(), el.error_at("@label", format!("no <label {label}> is defined"))));
                }
                let span = spans.span_for(el, &mut diag);
                match registry.build_input(el, &base) {
                    Ok(i) => {
                        let addr = &*i as *const dyn crate::plugin::Input as *const () as usize;
                        base.metrics.add(Component::input(el, addr, i.reporter()));
                        let name = el.plugin_id().or(el.plugin_type()).unwrap_or("input").to_string();
                        inputs.push((i, Emitter::new(handle.clone(), Arc::from(label.as_str())), name, span));
                    }
                    Err(e) => failed(el, e, &mut diag),
                }
            }
            "filter" | "match" => {
                if let Some(step) = build_step(el, &base, &mut diag, &mut label_refs, &mut spans) {
                    root_steps.push(step);
                }
            }
            "label" => {
                let name = el.arg.trim().to_string();
                if name.is_empty() || !name.starts_with('@') {
                    diag.error(
                        el.error(format!("label name {name:?} must start with '@'")).with_hint("write <label @NAME>"),
                    );
                    continue;
                }
                if !label_names.insert(name.clone()) {
                    diag.error(el.error(format!("label {name} is defined twice")));
                    continue;
                }
                let ctx = BuildCtx { label: Arc::from(name.as_str()), ..base.clone() };
                let mut steps = Vec::new();
                for c in &el.children {
                    if is_directive(c) && skip_failed(c) {
                        continue;
                    }
                    match c.name.as_str() {
                        "filter" | "match" => {
                            if let Some(s) = build_step(c, &ctx, &mut diag, &mut label_refs, &mut spans) {
                                steps.push(s);
                            }
                        }
                        other => diag.error(
                            c.error(format!("<{other}> is not allowed inside <label>"))
                                .with_hint("a label holds <filter> and <match> directives"),
                        ),
                    }
                }
                pipelines.push(Pipeline::new(name, steps));
            }
            "system" => {}
            other => {
                let hint = UNSUPPORTED_DIRECTIVES
                    .iter()
                    .find(|(n, _)| *n == other)
                    .map(|(_, h)| h.to_string())
                    .unwrap_or_else(|| {
                        "top-level directives are <source>, <filter>, <match>, <label> and <system>".into()
                    });
                diag.error(el.error(format!("unknown directive <{other}>")).with_hint(hint));
            }
        }
    }
    for (label, err) in label_refs {
        if label != ROOT_LABEL && !label_names.contains(&label) {
            diag.error(err);
        }
    }
    for (name, loc) in crate::config::parser::take_unset_env_refs() {
        diag.warn(ConfigError::at(
            &loc,
            format!("environment variable {name} is not set, so ENV['{name}'] gives an empty value here"),
        ));
    }
    for (el, a) in root.unused_attrs() {
        diag.warn(ConfigError::at(&a.loc, unused_message(&a.key, el)));
    }
    // Nil ("#{use_nil}") given to parameters with a default, read by getters that cannot fail.
    for e in crate::config::take_nil_refusals() {
        diag.error(e);
    }
    pipelines.push(Pipeline::new(ROOT_LABEL, root_steps));
    if diag.has_errors() {
        return Assembled { engine: None, diagnostics: diag, log_levels: levels };
    }
    let router = Arc::new(Router::new(pipelines));
    handle.set(&router);
    base.metrics.set_router(handle.clone());
    let outputs = router.outputs();
    Assembled { engine: Some(Engine { router, inputs, outputs, ctx: base }), diagnostics: diag, log_levels: levels }
}

fn is_directive(el: &Element) -> bool {
    matches!(el.name.as_str(), "source" | "filter" | "match")
}

/// A directive the front end reported an error in is not built: its parameters were half read, so
/// the plugin's complaints (a required parameter "missing") would only hide the real error.
fn skip_failed(el: &Element) -> bool {
    if el.has_parse_error() {
        el.mark_all_used();
        return true;
    }
    false
}

/// A directive whose plugin failed to configure: its error, and no "not used" warnings for its own
/// parameters (they were never all read, so the warnings would be noise on top of the real problem).
fn failed(el: &Element, e: ConfigError, diag: &mut Diagnostics) {
    el.mark_all_used();
    diag.error(e);
}

/// Reads each directive's `@log_level` and makes its span.
struct PluginSpans<'a> {
    /// False when no directive sets `@log_level`: then no spans and no wrappers at all.
    enabled: bool,
    levels: &'a mut LogLevels,
}

impl PluginSpans<'_> {
    fn span_for(&mut self, el: &Element, diag: &mut Diagnostics) -> Span {
        log_level::check_nested(el, diag);
        let level = match log_level::level_param(el, log_level::plugin_level_key(el)) {
            Ok(l) => l,
            Err(e) => {
                diag.error(e);
                None
            }
        };
        if let Some(l) = level {
            if !self.levels.plugins.contains(&l) {
                self.levels.plugins.push(l);
            }
        }
        if !self.enabled {
            return Span::none();
        }
        let name = el.plugin_id().or(el.plugin_type()).unwrap_or(el.name.as_str());
        log_level::plugin_span(level, name)
    }

    fn filter(&self, filter: Arc<dyn Filter>, span: Span) -> Arc<dyn Filter> {
        if !self.enabled {
            return filter;
        }
        Arc::new(SpannedFilter { inner: filter, span })
    }

    fn output(&self, output: Arc<dyn Output>, span: Span) -> Arc<dyn Output> {
        if !self.enabled {
            return output;
        }
        Arc::new(SpannedOutput { inner: output, span })
    }
}

fn build_step(
    el: &Element,
    ctx: &BuildCtx,
    diag: &mut Diagnostics,
    label_refs: &mut Vec<(String, ConfigError)>,
    spans: &mut PluginSpans,
) -> Option<Step> {
    let span = spans.span_for(el, diag);
    let matcher = match TagMatcher::new(el.arg.trim()) {
        Ok(m) => m,
        Err(e) => {
            diag.error(el.error(e.to_string()));
            return None;
        }
    };
    if let Some(l) = el.get("@label") {
        label_refs.push((l.to_string(), el.error_at("@label", format!("no <label {l}> is defined"))));
    }
    // rewrite_tag_filter's `<rule> label @X` emits into a label too: it must exist.
    if el.plugin_type() == Some("rewrite_tag_filter") {
        for r in el.sections("rule") {
            if let Some(a) = r.attrs.iter().find(|a| a.key == "label") {
                let l = a.value.trim();
                label_refs.push((l.to_string(), ConfigError::at(&a.loc, format!("no <label {l}> is defined"))));
            }
        }
    }
    if el.name == "filter" {
        match ctx.registry.build_filter(el, ctx) {
            Ok(filter) => {
                ctx.metrics.add(Component::filter(el, filter.clone()));
                Some(Step::Filter { matcher, filter: spans.filter(filter, span) })
            }
            Err(e) => {
                failed(el, e, diag);
                None
            }
        }
    } else {
        match ctx.registry.build_output(el, ctx) {
            Ok(output) => {
                ctx.metrics.add(Component::output(el, output.clone()));
                Some(Step::Match { matcher, output: spans.output(output, span) })
            }
            Err(e) => {
                failed(el, e, diag);
                None
            }
        }
    }
}

/// "parameter 'x' in <match **> is not used". A key that is not a parameter name (a line of some file
/// that was included by mistake, such as /etc/shadow) is not echoed: it may be a secret.
fn unused_message(key: &str, el: &Element) -> String {
    let name_like = key.len() <= 64
        && !key.is_empty()
        && key.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'@' | b'$'));
    let section = if el.name == "ROOT" { "the top level".to_string() } else { el.display_name() };
    if name_like {
        format!("parameter '{key}' in {section} is not used")
    } else {
        format!("a line in {section} is not a parameter name and is not used (its text is not shown)")
    }
}
