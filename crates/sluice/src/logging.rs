//! sluice's own log, with Fluentd's levels.
//!
//! The process level comes from, in order: `SLUICE_LOG` (an EnvFilter), an explicit `-v`/`-q`, then
//! `<system> log_level` (applied after the configuration is read), else info. A plugin's `@log_level` applies
//! on top of whichever is in effect, to the messages logged inside that plugin's span (see
//! `sluice_core::engine::PLUGIN_SPAN_TARGET`).
use crate::cli::Args;
use anyhow::Context as _;
use sluice_core::engine::{self, LEVEL_FIELD, PLUGIN_SPAN_NAME, PLUGIN_SPAN_TARGET};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{span, Metadata, Subscriber};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::{self, Context, Identity, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Changes the levels once the configuration is known.
#[derive(Clone)]
pub struct LogControl {
    state: Arc<State>,
}

impl LogControl {
    /// Apply `<system> log_level` (unless the command line or `SLUICE_LOG` chose the level) and let the
    /// `@log_level` of plugins through the filter.
    pub fn apply(&self, levels: &engine::LogLevels) {
        let st = &self.state;
        if let (Some(l), false) = (levels.system, st.fixed) {
            st.process.store(encode(l), Ordering::Relaxed);
        }
        let min = levels.plugins.iter().min().copied().unwrap_or(LevelFilter::OFF);
        let max = levels.plugins.iter().max().copied().unwrap_or(LevelFilter::OFF);
        st.plugin_min.store(encode(min), Ordering::Relaxed);
        st.plugin_max.store(encode(max), Ordering::Relaxed);
        // Interest and the global max level were cached for the old levels.
        tracing::callsite::rebuild_interest_cache();
    }
}

/// Set up the log before the configuration is read. `SLUICE_LOG` overrides -v/-q.
pub fn init(args: &Args) -> anyhow::Result<LogControl> {
    let level = match args.verbose as i32 - args.quiet as i32 {
        i32::MIN..=-2 => LevelFilter::ERROR,
        -1 => LevelFilter::WARN,
        0 => LevelFilter::INFO,
        1 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let env = EnvFilter::try_from_env("SLUICE_LOG").ok();
    let state = Arc::new(State {
        fixed: env.is_some() || args.verbose > 0 || args.quiet > 0,
        process: AtomicU8::new(encode(level)),
        plugin_min: AtomicU8::new(0),
        plugin_max: AtomicU8::new(0),
        env,
    });
    let (writer, ansi) = match &args.log {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?;
            (BoxMakeWriter::new(std::sync::Mutex::new(file)), false)
        }
        // Colour only on a terminal: in a pod stderr goes to a log file, where escape codes are noise.
        None => (BoxMakeWriter::new(std::io::stderr), std::io::IsTerminal::is_terminal(&std::io::stderr())),
    };
    // Plugin spans only carry levels: hidden from the formatter so lines look as they did without them.
    let fmt = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(writer)
        .with_filter(HidePluginSpans { state: state.clone() });
    // The registry drops a span that every per-layer filter rejects; this one accepts all, so plugin spans
    // live on (the global LevelLayer has already decided everything else).
    let keep = Identity::new().with_filter(KeepAll);
    tracing_subscriber::registry()
        .with(LevelLayer { state: state.clone() })
        .with(fmt)
        .with(keep)
        .try_init()
        .context("cannot set up logging")?;
    Ok(LogControl { state })
}

struct State {
    /// `SLUICE_LOG`, -v or -q was given: `<system> log_level` does not change the process level.
    fixed: bool,
    /// The process level when there is no `env`.
    process: AtomicU8,
    /// The least and most verbose `@log_level` of any plugin; OFF when none sets one.
    plugin_min: AtomicU8,
    plugin_max: AtomicU8,
    env: Option<EnvFilter>,
}

fn encode(l: LevelFilter) -> u8 {
    match l {
        LevelFilter::OFF => 0,
        LevelFilter::ERROR => 1,
        LevelFilter::WARN => 2,
        LevelFilter::INFO => 3,
        LevelFilter::DEBUG => 4,
        _ => 5,
    }
}

fn decode(v: u8) -> LevelFilter {
    match v {
        0 => LevelFilter::OFF,
        1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

fn is_plugin_span(m: &Metadata<'_>) -> bool {
    m.is_span() && m.target() == PLUGIN_SPAN_TARGET && m.name() == PLUGIN_SPAN_NAME
}

/// A plugin span's level, kept in its extensions; None: the process level.
struct PluginLevel(Option<LevelFilter>);

struct LevelVisitor(Option<LevelFilter>);

impl Visit for LevelVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == LEVEL_FIELD {
            self.0 = engine::parse_level(value);
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// The global filter: the process level, or the level of the innermost plugin span around an event.
struct LevelLayer {
    state: Arc<State>,
}

impl State {
    fn plugin_range(&self) -> Option<(LevelFilter, LevelFilter)> {
        let max = decode(self.plugin_max.load(Ordering::Relaxed));
        (max != LevelFilter::OFF).then(|| (decode(self.plugin_min.load(Ordering::Relaxed)), max))
    }

    /// The most verbose level anything may log at: what `LevelFilter::current()` becomes, so a disabled
    /// `debug!` costs one comparison.
    fn max_level_hint<S: Subscriber>(&self) -> Option<LevelFilter> {
        let process = match &self.env {
            Some(env) => <EnvFilter as Layer<S>>::max_level_hint(env)?,
            None => decode(self.process.load(Ordering::Relaxed)),
        };
        let plugins = self.plugin_range().map_or(LevelFilter::OFF, |(_, max)| max);
        // At least ERROR: plugin spans are created at that level and must pass the global check.
        Some(process.max(plugins).max(LevelFilter::ERROR))
    }
}

/// The formatter's filter: everything but plugin spans.
struct HidePluginSpans {
    state: Arc<State>,
}

impl<S: Subscriber> layer::Filter<S> for HidePluginSpans {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        !is_plugin_span(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if is_plugin_span(meta) {
            Interest::never()
        } else {
            Interest::always()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.state.max_level_hint::<S>()
    }
}

/// Accepts everything, with no say on the max level (see `keep` in [`init`]).
struct KeepAll;

impl<S: Subscriber> layer::Filter<S> for KeepAll {
    fn enabled(&self, _: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        true
    }

    fn callsite_enabled(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::always()
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::ERROR)
    }
}

impl LevelLayer {
    fn process_enabled<S: Subscriber>(&self, meta: &Metadata<'_>, cx: Context<'_, S>) -> bool {
        match &self.state.env {
            Some(env) => <EnvFilter as Layer<S>>::enabled(env, meta, cx),
            None => *meta.level() <= decode(self.state.process.load(Ordering::Relaxed)),
        }
    }
}

impl<S> Layer<S> for LevelLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        let process = match &self.state.env {
            Some(env) => <EnvFilter as Layer<S>>::register_callsite(env, meta),
            None if *meta.level() <= decode(self.state.process.load(Ordering::Relaxed)) => Interest::always(),
            None => Interest::never(),
        };
        if is_plugin_span(meta) {
            return Interest::always();
        }
        // Without plugin levels this is the static check it always was; with them, only levels between the
        // least and most verbose in use need a look at the span scope per call.
        let Some((min, max)) = self.state.plugin_range() else { return process };
        let level = *meta.level();
        if process.is_always() && level <= min {
            Interest::always()
        } else if process.is_never() && level > max {
            Interest::never()
        } else {
            Interest::sometimes()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.state.max_level_hint::<S>()
    }

    fn enabled(&self, meta: &Metadata<'_>, cx: Context<'_, S>) -> bool {
        if is_plugin_span(meta) {
            return true;
        }
        if self.state.plugin_range().is_some() {
            if let Some(current) = cx.lookup_current() {
                for span in current.scope() {
                    if let Some(PluginLevel(level)) = span.extensions().get::<PluginLevel>() {
                        match level {
                            Some(l) => return *meta.level() <= *l,
                            None => break,
                        }
                    }
                }
            }
        }
        self.process_enabled(meta, cx)
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        if is_plugin_span(attrs.metadata()) {
            let mut v = LevelVisitor(None);
            attrs.record(&mut v);
            if let Some(span) = cx.span(id) {
                span.extensions_mut().insert(PluginLevel(v.0));
            }
        }
        if let Some(env) = &self.state.env {
            <EnvFilter as Layer<S>>::on_new_span(env, attrs, id, cx);
        }
    }

    // EnvFilter keeps track of spans for directives such as `[span{field=x}]=debug`.
    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: Context<'_, S>) {
        if let Some(env) = &self.state.env {
            <EnvFilter as Layer<S>>::on_record(env, id, values, cx);
        }
    }

    fn on_enter(&self, id: &span::Id, cx: Context<'_, S>) {
        if let Some(env) = &self.state.env {
            <EnvFilter as Layer<S>>::on_enter(env, id, cx);
        }
    }

    fn on_exit(&self, id: &span::Id, cx: Context<'_, S>) {
        if let Some(env) = &self.state.env {
            <EnvFilter as Layer<S>>::on_exit(env, id, cx);
        }
    }

    fn on_close(&self, id: span::Id, cx: Context<'_, S>) {
        if let Some(env) = &self.state.env {
            <EnvFilter as Layer<S>>::on_close(env, id, cx);
        }
    }
}
