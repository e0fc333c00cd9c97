use super::{BuildCtx, Filter, Formatter, Input, Output, Parser};
use crate::config::{compat, ConfigError, Element};
use std::collections::BTreeMap;
use std::sync::Arc;

pub type InputBuilder = fn(&Element, &BuildCtx) -> Result<Box<dyn Input>, ConfigError>;
pub type FilterBuilder = fn(&Element, &BuildCtx) -> Result<Arc<dyn Filter>, ConfigError>;
pub type OutputBuilder = fn(&Element, &BuildCtx) -> Result<Arc<dyn Output>, ConfigError>;
pub type ParserBuilder = fn(&Element, &BuildCtx) -> Result<Box<dyn Parser>, ConfigError>;
pub type FormatterBuilder = fn(&Element, &BuildCtx) -> Result<Arc<dyn Formatter>, ConfigError>;

/// The output parameter that accepts unmasked personal data (see `sluice explain --pii`).
pub const PII_ALLOWED: &str = "pii_allowed";

/// Maps `@type` names to builders, one table per plugin kind.
#[derive(Default)]
pub struct Registry {
    inputs: BTreeMap<&'static str, InputBuilder>,
    filters: BTreeMap<&'static str, FilterBuilder>,
    outputs: BTreeMap<&'static str, OutputBuilder>,
    parsers: BTreeMap<&'static str, ParserBuilder>,
    formatters: BTreeMap<&'static str, FormatterBuilder>,
}

fn lookup<'a, B: Copy>(
    table: &'a BTreeMap<&'static str, B>,
    kind: &str,
    section: &Element,
    default: Option<&'a str>,
) -> Result<(B, String), ConfigError> {
    let name = match section.plugin_type().or(default) {
        Some(n) => n.to_string(),
        None => {
            return Err(section
                .error(format!("<{}> has no @type", section.name))
                .with_hint(format!("add '@type NAME'; known {kind} plugins: {}", known(table))))
        }
    };
    match table.get(name.as_str()) {
        Some(b) => Ok((*b, name)),
        None => {
            let at = if section.has("@type") { "@type" } else { "type" };
            Err(section
                .error_at(at, format!("unknown {kind} plugin '{name}'"))
                .with_hint(super::known::unknown_type_hint(kind, &name, table.keys().copied())))
        }
    }
}

fn known<B>(table: &BTreeMap<&'static str, B>) -> String {
    table.keys().copied().collect::<Vec<_>>().join(", ")
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register_input(&mut self, name: &'static str, b: InputBuilder) {
        self.inputs.insert(name, b);
    }
    pub fn register_filter(&mut self, name: &'static str, b: FilterBuilder) {
        self.filters.insert(name, b);
    }
    pub fn register_output(&mut self, name: &'static str, b: OutputBuilder) {
        self.outputs.insert(name, b);
    }
    pub fn register_parser(&mut self, name: &'static str, b: ParserBuilder) {
        self.parsers.insert(name, b);
    }
    pub fn register_formatter(&mut self, name: &'static str, b: FormatterBuilder) {
        self.formatters.insert(name, b);
    }

    pub fn has_output(&self, name: &str) -> bool {
        self.outputs.contains_key(name)
    }

    pub fn build_input(&self, s: &Element, ctx: &BuildCtx) -> Result<Box<dyn Input>, ConfigError> {
        let (b, _) = lookup(&self.inputs, "input", s, None)?;
        b(s, ctx)
    }

    pub fn build_filter(&self, s: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Filter>, ConfigError> {
        let (b, _) = lookup(&self.filters, "filter", s, None)?;
        b(s, ctx)
    }

    pub fn build_output(&self, s: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
        let (b, _) = lookup(&self.outputs, "output", s, None)?;
        // `pii_allowed` is for `sluice explain --pii` (this output accepts unmasked records knowingly):
        // valid on every output, read here once so no plugin warns that it is unused.
        s.bool_or(PII_ALLOWED, false)?;
        b(s, ctx)
    }

    /// Build the parser of `section` (a `<parse>`), with `default` when it names no `@type`.
    pub fn build_parser(
        &self,
        section: &Element,
        default: Option<&str>,
        ctx: &BuildCtx,
    ) -> Result<Box<dyn Parser>, ConfigError> {
        // `@type /RE/` (or multi_format's `format /RE/`) is the regexp parser, as in Fluentd's `new_parser`.
        if let Some(fixed) = compat::regexp_type(section) {
            let (b, _) = lookup(&self.parsers, "parser", &fixed, default)?;
            let r = b(&fixed, ctx);
            section.mark_used_from(&fixed);
            return r;
        }
        let (b, _) = lookup(&self.parsers, "parser", section, default)?;
        b(section, ctx)
    }

    /// The parser a plugin declares: its `<parse>` section, or the one Fluentd builds from v0.12 parser
    /// parameters on the plugin itself (`format json`, `format /RE/`, `time_format`, `types` ...; see
    /// [`compat::parse`]), or `default`. `format1`..`format20` on the plugin join the section, as in_tail does.
    pub fn parser_of(&self, plugin: &Element, default: &str, ctx: &BuildCtx) -> Result<Box<dyn Parser>, ConfigError> {
        let written = plugin.section("parse");
        let mut section = match written {
            Some(p) => p.clone(),
            None => compat::parse(plugin)?.unwrap_or_else(|| Element::new("parse", "", plugin.loc.clone())),
        };
        compat::copy_multiline_formats(plugin, &mut section);
        let r = self.build_parser(&section, Some(default), ctx);
        if let Some(p) = written {
            p.mark_used_from(&section);
        }
        r
    }

    pub fn build_formatter(
        &self,
        section: &Element,
        default: Option<&str>,
        ctx: &BuildCtx,
    ) -> Result<Arc<dyn Formatter>, ConfigError> {
        let (b, _) = lookup(&self.formatters, "formatter", section, default)?;
        b(section, ctx)
    }

    /// The formatter a plugin declares with `<format>`, or the one Fluentd builds from v0.12 formatter
    /// parameters on the plugin (`format json`, `delimiter`, ...; see [`compat::format`]), or `default`.
    pub fn formatter_of(
        &self,
        plugin: &Element,
        default: &str,
        ctx: &BuildCtx,
    ) -> Result<Arc<dyn Formatter>, ConfigError> {
        if let Some(f) = plugin.section("format") {
            return self.build_formatter(f, Some(default), ctx);
        }
        let f = compat::format(plugin)?.unwrap_or_else(|| Element::new("format", "", plugin.loc.clone()));
        self.build_formatter(&f, Some(default), ctx)
    }

    pub fn input_names(&self) -> Vec<&'static str> {
        self.inputs.keys().copied().collect()
    }
    pub fn output_names(&self) -> Vec<&'static str> {
        self.outputs.keys().copied().collect()
    }
    pub fn filter_names(&self) -> Vec<&'static str> {
        self.filters.keys().copied().collect()
    }
}
