//! Fluentd's log levels: `<system> log_level` for the process and `@log_level` per plugin.
//!
//! A plugin with its own level runs inside a tracing span (target [`PLUGIN_SPAN_TARGET`], name
//! [`PLUGIN_SPAN_NAME`]) whose [`LEVEL_FIELD`] holds that level; the binary's subscriber filters events by
//! the innermost such span. The spans exist only when some plugin sets `@log_level`, so a configuration
//! without one pays nothing.
use crate::config::{ConfigError, Diagnostics, Element};
use crate::event::Events;
use crate::plugin::{EmitError, ErrorEvents, Filter, Output, OutputMetrics, PluginError};
use async_trait::async_trait;
use std::sync::Arc;
use tracing::level_filters::LevelFilter;
use tracing::{Instrument, Span};

pub const PLUGIN_SPAN_TARGET: &str = "sluice::plugin";
pub const PLUGIN_SPAN_NAME: &str = "plugin";
/// The span field with the plugin's level (`"debug"`, ...); absent when the plugin follows the process level.
pub const LEVEL_FIELD: &str = "log_level";

/// Fluentd's level names; `fatal` is sluice's `error`.
const LEVEL_NAMES: &[&str] = &["trace", "debug", "info", "warn", "error", "fatal"];

/// The levels a configuration asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogLevels {
    /// `<system> log_level`.
    pub system: Option<LevelFilter>,
    /// Every distinct `@log_level` of a plugin.
    pub plugins: Vec<LevelFilter>,
}

/// A Fluentd level name as a filter.
pub fn parse_level(name: &str) -> Option<LevelFilter> {
    Some(match name.trim() {
        "trace" => LevelFilter::TRACE,
        "debug" => LevelFilter::DEBUG,
        "info" => LevelFilter::INFO,
        "warn" => LevelFilter::WARN,
        "error" | "fatal" => LevelFilter::ERROR,
        _ => return None,
    })
}

fn level_name(l: LevelFilter) -> &'static str {
    match l {
        LevelFilter::TRACE => "trace",
        LevelFilter::DEBUG => "debug",
        LevelFilter::INFO => "info",
        LevelFilter::WARN => "warn",
        _ => "error",
    }
}

/// `key` of `el` as a level, or an error at its line naming the valid ones.
pub(crate) fn level_param(el: &Element, key: &str) -> Result<Option<LevelFilter>, ConfigError> {
    if !el.has(key) {
        return Ok(None);
    }
    Ok(parse_level(&el.enum_or(key, LEVEL_NAMES, "info")?))
}

/// The parameter that sets a plugin's level: `@log_level`, or the old `log_level` that Fluentd still
/// accepts on a plugin (with a deprecation warning) when `@log_level` is absent.
pub(crate) fn plugin_level_key(el: &Element) -> &'static str {
    if !el.has("@log_level") && el.has("log_level") {
        "log_level"
    } else {
        "@log_level"
    }
}

/// Whether any `<source>`, `<filter>` or `<match>` (at the top or in a label) sets `@log_level`: only then
/// are plugin spans worth creating.
pub(crate) fn any_plugin_level(root: &Element) -> bool {
    let sets = |el: &Element| el.has(plugin_level_key(el));
    root.children.iter().any(|el| match el.name.as_str() {
        "source" | "filter" | "match" => sets(el),
        "label" => el.children.iter().any(sets),
        _ => false,
    })
}

/// `@log_level` of `<store>` and `<secondary>` sections below `el`: checked, but those run inside their
/// `<match>`'s span, so they follow its level; say so rather than ignore it silently.
pub(crate) fn check_nested(el: &Element, diag: &mut Diagnostics) {
    for c in &el.children {
        if matches!(c.name.as_str(), "store" | "secondary") && c.has("@log_level") {
            match level_param(c, "@log_level") {
                Ok(_) => diag.warn(c.error_at(
                    "@log_level",
                    format!("@log_level in <{}> is not applied; it follows the enclosing <match>", c.name),
                )),
                Err(e) => diag.error(e),
            }
        }
        check_nested(c, diag);
    }
}

/// The span a plugin's work runs in; `level` None means the process level (it still resets a level set by
/// an enclosing plugin, e.g. an input's, for the filters and outputs its events pass through).
pub(crate) fn plugin_span(level: Option<LevelFilter>, plugin: &str) -> Span {
    // At ERROR so the span passes the global max-level check whatever the process level is.
    tracing::error_span!(target: "sluice::plugin", "plugin", log_level = level.map(level_name), plugin)
}

/// A `<filter>` that runs in its plugin span.
pub(crate) struct SpannedFilter {
    pub inner: Arc<dyn Filter>,
    pub span: Span,
}

impl Filter for SpannedFilter {
    fn filter(&self, tag: &str, events: &mut Events, errors: &mut ErrorEvents) {
        let _entered = self.span.enter();
        self.inner.filter(tag, events, errors);
    }

    fn start(&self) {
        let _entered = self.span.enter();
        self.inner.start();
    }

    fn shutdown(&self) {
        let _entered = self.span.enter();
        self.inner.shutdown();
    }

    fn refused(&self, tag: &str) {
        let _entered = self.span.enter();
        self.inner.refused(tag);
    }

    fn identity(&self) -> usize {
        self.inner.identity()
    }

    fn report(&self, sink: &mut dyn crate::metrics::MetricSink) {
        self.inner.report(sink)
    }
}

/// A `<match>` whose calls, and the tasks it starts, run in its plugin span.
pub(crate) struct SpannedOutput {
    pub inner: Arc<dyn Output>,
    pub span: Span,
}

#[async_trait]
impl Output for SpannedOutput {
    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        let _entered = self.span.enter();
        self.inner.emit(tag, events)
    }

    async fn start(&self) -> Result<(), PluginError> {
        self.inner.start().instrument(self.span.clone()).await
    }

    fn before_shutdown(&self) {
        let _entered = self.span.enter();
        self.inner.before_shutdown();
    }

    async fn shutdown(&self) {
        self.inner.shutdown().instrument(self.span.clone()).await
    }

    fn flush_now(&self) {
        let _entered = self.span.enter();
        self.inner.flush_now();
    }

    fn metrics(&self) -> Option<Arc<OutputMetrics>> {
        self.inner.metrics()
    }

    fn buffer_status(&self) -> Option<crate::metrics::BufferStatus> {
        self.inner.buffer_status()
    }

    fn report(&self, sink: &mut dyn crate::metrics::MetricSink) {
        self.inner.report(sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use std::path::Path;

    #[test]
    fn fluentd_level_names() {
        assert_eq!(parse_level("fatal"), Some(LevelFilter::ERROR));
        assert_eq!(parse_level("debug"), Some(LevelFilter::DEBUG));
        assert_eq!(parse_level("verbose"), None);
        for n in LEVEL_NAMES {
            let l = parse_level(n).expect("valid");
            assert_eq!(parse_level(level_name(l)), Some(l));
        }
    }

    #[test]
    fn bad_level_is_an_error_at_its_line() {
        let root =
            parse_str("<match **>\n  @type null\n  @log_level loud\n</match>\n", Path::new("t.conf")).expect("parse");
        let e = level_param(&root.children[0], "@log_level").expect_err("invalid");
        assert!(e.to_string().starts_with("t.conf:3: "), "{e}");
        assert!(e.to_string().contains("fatal"), "{e}");
    }
}
