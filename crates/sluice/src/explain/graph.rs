//! The route graph of a configuration, worked out without events: every path a source's tags can take
//! through `<filter>`s and `<match>`es, across `copy` stores, `relabel`, `rewrite_tag_filter` rules,
//! `detect_exceptions`, `<secondary>` and `@ERROR`.
//!
//! Routing follows the router exactly (`sluice_core::router`): within a label a flow passes each
//! `<filter>` whose pattern matches, in file order, and stops at the first matching `<match>`. A flow is
//! a set of tags ([`TagSet`]); when a pattern matches only some of its tags, the flow splits in two and
//! both halves go on. What depends on record content (which `rewrite_tag_filter` rule applies, what a
//! `$1` captures, whether a filter rejects a record) is taken as "may happen": every such route is listed.
use super::tags::{TagSet, ANY};
use sluice_core::config::{Element, Location};
use sluice_core::pattern::TagMatcher;
use sluice_core::router::{ERROR_LABEL, ROOT_LABEL};
use sluice_core::ruby::regexp::split_literal;
use sluice_plugins::outputs::rewrite_tag_filter::{parse_tag_template, Piece};
use std::collections::{HashMap, HashSet};

/// Re-emits (rewrite_tag_filter, relabel, ...) followed along one path before it counts as a loop.
const MAX_REEMITS: usize = 8;
/// Times one path may re-emit from the same directive (a tag made from `${tag}` grows each time round).
const MAX_VISITS: usize = 2;
/// Paths listed before the analysis stops (a configuration that branches this much is reported as such).
const MAX_PATHS: usize = 5_000;
/// Label walks (branches) before the analysis stops, so a pathological configuration ends in seconds.
const MAX_WALKS: usize = 50_000;

/// Output types whose records stay on the node.
pub const LOCAL_OUTPUTS: &[&str] = &["null", "file", "stdout", "secondary_file"];
/// Outputs that hand records on instead of delivering them.
const REEMITTERS: &[&str] = &["copy", "relabel", "rewrite_tag_filter", "detect_exceptions"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Source,
    Filter,
    Match,
    Store,
    Secondary,
}

/// One directive of the configuration (a `<source>`, `<filter>`, `<match>`, copy `<store>` or
/// `<secondary>`).
#[derive(Debug, Clone)]
pub struct Directive {
    pub kind: Kind,
    pub plugin: String,
    pub id: Option<String>,
    /// The tag pattern of a `<filter>`/`<match>`.
    pub pattern: String,
    pub label: String,
    pub loc: Location,
    /// An output that sends records off the node.
    pub leaves: bool,
    /// `pii_allowed true`: the operator accepts unmasked records here.
    pub pii_allowed: bool,
    /// A `mask` filter that scans the whole record.
    pub masks: bool,
}

impl Directive {
    /// `kinesis_streams out_kinesis`, or just the type without an `@id`.
    pub fn name(&self) -> String {
        match &self.id {
            Some(id) => format!("{} {id}", self.plugin),
            None => self.plugin.clone(),
        }
    }

    pub fn is_terminal_output(&self) -> bool {
        matches!(self.kind, Kind::Match | Kind::Store | Kind::Secondary) && !REEMITTERS.contains(&self.plugin.as_str())
    }
}

/// One step of a path: a directive it passes, or a note on the way (a rule that re-tags, a relabel).
#[derive(Debug, Clone)]
pub struct Hop {
    pub node: Option<usize>,
    pub text: String,
    /// The tags at this step.
    pub tags: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Delivered by this output directive.
    Output(usize),
    /// No `<match>` in this label takes these tags: they are dropped.
    Unmatched { label: String },
    /// A re-emit loop (or too many re-emits).
    Loop,
}

#[derive(Debug, Clone)]
pub struct Path {
    pub source: usize,
    pub hops: Vec<Hop>,
    pub end: End,
    /// The tags at the end.
    pub tags: String,
    /// A `mask` filter covering the whole record was passed on the way.
    pub masked: bool,
    /// The records of this path were rejected on the way and travel through `@ERROR` or a `<secondary>`.
    pub via_error: bool,
}

#[derive(Debug, Default)]
pub struct Graph {
    pub directives: Vec<Directive>,
    pub paths: Vec<Path>,
    /// Sources that emit no events (metrics endpoints, `monitor_agent` without `tag`).
    pub silent_sources: Vec<usize>,
    /// The analysis stopped at [`MAX_PATHS`].
    pub truncated: bool,
}

impl Graph {
    pub fn sources(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.directives.len()).filter(|i| self.directives[*i].kind == Kind::Source)
    }

    /// Directives no path passes.
    pub fn unreached(&self) -> Vec<usize> {
        let mut hit = HashSet::new();
        for p in &self.paths {
            hit.extend(p.hops.iter().filter_map(|h| h.node));
        }
        (0..self.directives.len()).filter(|i| self.directives[*i].kind != Kind::Source && !hit.contains(i)).collect()
    }
}

/// A `<filter>`/`<match>` of a label, in file order.
struct Step<'a> {
    node: usize,
    matcher: TagMatcher,
    el: &'a Element,
}

#[derive(Clone)]
struct Flow {
    source: usize,
    tags: TagSet,
    hops: Vec<Hop>,
    masked: bool,
    via_error: bool,
    reemits: usize,
    /// (directive, tags) already re-emitted from on this path: seeing one again is a loop.
    seen: Vec<(usize, String)>,
}

struct Builder<'a> {
    g: Graph,
    labels: HashMap<String, Vec<Step<'a>>>,
    nodes: HashMap<*const Element, usize>,
    /// Rejected records waiting to be followed through `@ERROR`, each (source, tags, masked) once.
    errors: Vec<Flow>,
    error_keys: HashSet<(usize, String, bool)>,
    /// Label walks so far, capped at [`MAX_WALKS`] (then the graph is marked truncated).
    walks: usize,
}

/// Work out every route of `root` (a parsed, checked configuration).
pub fn build(root: &Element) -> Graph {
    let mut b = Builder {
        g: Graph::default(),
        labels: HashMap::new(),
        nodes: HashMap::new(),
        errors: Vec::new(),
        error_keys: HashSet::new(),
        walks: 0,
    };
    let mut root_steps = Vec::new();
    let mut sources = Vec::new();
    for el in &root.children {
        match el.name.as_str() {
            "source" => sources.push(el),
            "filter" | "match" => root_steps.extend(b.step(el, ROOT_LABEL)),
            "label" => {
                let name = el.arg.trim().to_string();
                let steps = el
                    .children
                    .iter()
                    .filter(|c| c.name == "filter" || c.name == "match")
                    .filter_map(|c| b.step(c, &name))
                    .collect();
                b.labels.insert(name, steps);
            }
            _ => {}
        }
    }
    b.labels.insert(ROOT_LABEL.to_string(), root_steps);
    for el in sources {
        let label = el.get("@label").unwrap_or(ROOT_LABEL).trim().to_string();
        let node = b.add(el, Kind::Source, &label);
        let Some(tags) = source_tags(el) else {
            b.g.silent_sources.push(node);
            continue;
        };
        let d = &b.g.directives[node];
        let text = format!("source {} ({})", d.name(), d.loc);
        let hops = vec![Hop { node: Some(node), text, tags: tags.display.clone() }];
        let flow = Flow { source: node, tags, hops, masked: false, via_error: false, reemits: 0, seen: Vec::new() };
        b.walk(&label, 0, flow);
    }
    // Rejected records: each distinct one through @ERROR (which may reject nothing further).
    let mut i = 0;
    while i < b.errors.len() {
        let f = b.errors[i].clone();
        b.walk(ERROR_LABEL, 0, f);
        i += 1;
    }
    b.g
}

impl<'a> Builder<'a> {
    fn add(&mut self, el: &'a Element, kind: Kind, label: &str) -> usize {
        if let Some(n) = self.nodes.get(&(el as *const Element)) {
            return *n;
        }
        let plugin = el.plugin_type().unwrap_or("?").to_string();
        let is_output = matches!(kind, Kind::Match | Kind::Store | Kind::Secondary);
        let d = Directive {
            kind,
            leaves: is_output && !LOCAL_OUTPUTS.contains(&plugin.as_str()) && !REEMITTERS.contains(&plugin.as_str()),
            pii_allowed: is_output && el.bool_or(sluice_core::plugin::PII_ALLOWED, false).unwrap_or(false),
            masks: kind == Kind::Filter && plugin == "mask" && mask_covers_record(el),
            plugin,
            id: el.plugin_id().map(str::to_string),
            pattern: el.arg.trim().to_string(),
            label: label.to_string(),
            loc: el.loc.clone(),
        };
        self.g.directives.push(d);
        let n = self.g.directives.len() - 1;
        self.nodes.insert(el as *const Element, n);
        // Register nested outputs now, so an output nothing reaches is still listed.
        if is_output {
            if el.plugin_type() == Some("copy") {
                for st in el.sections("store") {
                    self.add(st, Kind::Store, label);
                }
            }
            for sec in el.sections("secondary") {
                self.add(sec, Kind::Secondary, label);
            }
        }
        n
    }

    fn step(&mut self, el: &'a Element, label: &str) -> Option<Step<'a>> {
        let matcher = TagMatcher::new(el.arg.trim()).ok()?;
        let kind = if el.name == "filter" { Kind::Filter } else { Kind::Match };
        let node = self.add(el, kind, label);
        Some(Step { node, matcher, el })
    }

    fn hop(&self, node: usize, prefix: &str, tags: &TagSet) -> Hop {
        let d = &self.g.directives[node];
        let pat = if d.pattern.is_empty() { String::new() } else { format!(" {}", d.pattern) };
        Hop { node: Some(node), text: format!("{prefix}{pat} {} ({})", d.name(), d.loc), tags: tags.display.clone() }
    }

    fn finish(&mut self, f: Flow, end: End) {
        if self.g.paths.len() >= MAX_PATHS {
            self.g.truncated = true;
            return;
        }
        self.g.paths.push(Path {
            source: f.source,
            tags: f.tags.display.clone(),
            hops: f.hops,
            end,
            masked: f.masked,
            via_error: f.via_error,
        });
    }

    /// Records of `f` rejected at this point go to `@ERROR` (when there is one and they are not in it).
    fn reject(&mut self, f: &Flow, label: &str, why: String) {
        if label == ERROR_LABEL || !self.labels.contains_key(ERROR_LABEL) {
            return;
        }
        if !self.error_keys.insert((f.source, f.tags.key(), f.masked)) {
            return;
        }
        let mut e = f.clone();
        e.via_error = true;
        e.hops.push(Hop { node: None, text: format!("{why} → label {ERROR_LABEL}"), tags: f.tags.display.clone() });
        self.errors.push(e);
    }

    /// Follow `f` through `label` from its `from`-th directive.
    fn walk(&mut self, label: &str, from: usize, mut f: Flow) {
        self.walks += 1;
        if self.walks > MAX_WALKS {
            self.g.truncated = true;
        }
        if self.g.truncated {
            return;
        }
        let Some(n_steps) = self.labels.get(label).map(Vec::len) else {
            self.finish(f, End::Unmatched { label: label.to_string() });
            return;
        };
        for i in from..n_steps {
            let (node, inside, outside, is_filter) = {
                let s = &self.labels[label][i];
                (s.node, f.tags.matching(&s.matcher), f.tags.not_matching(&s.matcher), s.el.name == "filter")
            };
            if !inside.may_be_non_empty() {
                continue;
            }
            if outside.may_be_non_empty() {
                // Only part of the flow matches: say which part each branch carries.
                let pat = self.g.directives[node].pattern.clone();
                let pat = if pat.is_empty() { "**".to_string() } else { pat };
                let mut rest = f.clone();
                rest.tags = outside;
                rest.tags.display = format!("{} except {pat}", f.tags.display);
                self.walk(label, i + 1, rest);
                f.tags = inside;
                f.tags.display = format!("{} within {pat}", f.tags.display.trim_end_matches(" (* = the file path)"));
            } else {
                f.tags = inside;
            }
            if is_filter {
                let d = &self.g.directives[node];
                let (masks, name, loc) = (d.masks, d.name(), d.loc.clone());
                // A mask sends what it cannot process to @ERROR already redacted; any other filter as it is.
                if masks {
                    f.masked = true;
                }
                self.reject(&f, label, format!("rejected by filter {name} ({loc})"));
                let mut h = self.hop(node, "filter", &f.tags);
                if masks {
                    h.text.push_str(" [masks the record]");
                } else if self.g.directives[node].plugin == "mask" {
                    h.text.push_str(" [mask limited to some fields: does not count as masking]");
                }
                f.hops.push(h);
                continue;
            }
            let h = self.hop(node, "match", &f.tags);
            f.hops.push(h);
            let el = self.labels[label][i].el;
            self.output(el, node, label, f);
            return;
        }
        self.finish(f, End::Unmatched { label: label.to_string() });
    }

    /// `f` has reached the output directive `el` (a `<match>`, `<store>` or `<secondary>`).
    fn output(&mut self, el: &'a Element, node: usize, label: &str, f: Flow) {
        let plugin = self.g.directives[node].plugin.clone();
        match plugin.as_str() {
            "copy" => {
                for (i, st) in el.sections("store").enumerate() {
                    let n = self.add(st, Kind::Store, label);
                    let mut g = f.clone();
                    let h = self.hop(n, &format!("store {}", i + 1), &g.tags);
                    g.hops.push(h);
                    self.output(st, n, label, g);
                }
            }
            "relabel" => {
                let target = el.get("@label").unwrap_or(label).trim().to_string();
                self.reemit(f, node, &target, None, format!("→ label {target}"));
            }
            "detect_exceptions" => {
                let target = el.get("@label").unwrap_or(label).trim().to_string();
                let prefix = el.get("remove_tag_prefix").unwrap_or("").trim();
                let tags = if prefix.is_empty() {
                    None
                } else {
                    Some(TagSet::new(format!("{} without {prefix}.", f.tags.display), ANY))
                };
                self.reemit(f, node, &target, tags, format!("re-emitted → label {target}"));
            }
            "rewrite_tag_filter" => {
                let own = el.get("@label").unwrap_or(label).trim().to_string();
                let retag = el.has("remove_tag_prefix") || el.has("remove_tag_regexp");
                self.reject(&f, label, format!("pattern gave up in {} ({})", plugin, el.loc));
                for (i, r) in rules(el).into_iter().enumerate() {
                    let target = r.label.clone().unwrap_or_else(|| own.clone());
                    let tags = r.tags(&f.tags, retag);
                    let note = format!(
                        "rule {}: {} {} {} → {}",
                        i + 1,
                        r.key,
                        if r.invert { "!~" } else { "=~" },
                        r.pattern,
                        match &tags {
                            Some(t) => format!("tag {}", t.display),
                            None => "same tag".to_string(),
                        }
                    );
                    let note = if target != label { format!("{note}, label {target}") } else { note };
                    self.reemit(f.clone(), node, &target, tags, note);
                }
            }
            _ => {
                let h = self.g.directives[node].clone();
                let end = End::Output(node);
                let sec = el.sections("secondary").next();
                let undeliverable = plugin != "null";
                let e = f.clone();
                self.finish(f, end);
                if !undeliverable {
                    return;
                }
                match sec {
                    Some(s) => {
                        let n = self.add(s, Kind::Secondary, label);
                        let mut g = e;
                        g.via_error = true;
                        let h2 = self.hop(n, "undeliverable → secondary", &g.tags);
                        g.hops.push(h2);
                        self.output(s, n, label, g);
                    }
                    None => self.reject(&e, label, format!("undeliverable at {} ({})", h.name(), h.loc)),
                }
            }
        }
    }

    /// Emit `f` again into `target` (with new tags when `tags` is set), unless that loops.
    fn reemit(&mut self, mut f: Flow, node: usize, target: &str, tags: Option<TagSet>, note: String) {
        if let Some(t) = tags {
            f.tags = t;
        }
        f.hops.push(Hop { node: None, text: note, tags: f.tags.display.clone() });
        let key = (node, f.tags.key());
        let visits = f.seen.iter().filter(|(n, _)| *n == node).count();
        if f.seen.contains(&key) || visits >= MAX_VISITS || f.reemits >= MAX_REEMITS {
            self.finish(f, End::Loop);
            return;
        }
        f.seen.push(key);
        f.reemits += 1;
        self.walk(target, 0, f);
    }
}

/// The tags a `<source>` emits; None when it emits no events.
fn source_tags(el: &Element) -> Option<TagSet> {
    let plugin = el.plugin_type().unwrap_or("");
    let tag = el.get("tag").map(str::trim).filter(|t| !t.is_empty());
    match plugin {
        // Metrics endpoints: no events.
        "prometheus" | "prometheus_monitor" | "prometheus_output_monitor" | "prometheus_tail_monitor" => None,
        "monitor_agent" => tag.map(TagSet::literal),
        // The tag comes from the sender unless `tag` overrides it.
        "forward" | "http" | "unix" => Some(match (tag, el.get("add_tag_prefix").map(str::trim)) {
            (Some(t), _) => TagSet::literal(t),
            (None, Some(p)) if !p.is_empty() => {
                TagSet::new(format!("{p}.** (from the sender)"), format!(r"{}\.{ANY}", regex_syntax::escape(p)))
            }
            _ => TagSet::new("** (from the sender)", ANY),
        }),
        // `*` in tail's tag is the file's path with `/` turned into `.`.
        "tail" => tag.map(|t| match t.split_once('*') {
            Some((pre, suf)) => TagSet::new(
                format!("{t} (* = the file path)"),
                format!("{}{ANY}{}", regex_syntax::escape(pre), regex_syntax::escape(suf)),
            ),
            None => TagSet::literal(t),
        }),
        _ => Some(tag.map(TagSet::literal).unwrap_or_else(TagSet::any)),
    }
}

/// A `mask` counts as masking the record when it scans every value: `scan_all` (explicit, or the default
/// without `keys`) and no `skip_keys`. A mask limited to some fields leaves the rest as it was.
fn mask_covers_record(el: &Element) -> bool {
    let keys = el.array_or_empty("keys").unwrap_or_default();
    let scan_all = el.bool_or("scan_all", keys.is_empty()).unwrap_or(false);
    let skips = el.array_or_empty("skip_keys").unwrap_or_default();
    scan_all && skips.is_empty()
}

/// One `rewrite_tag_filter` rule, as far as routing needs it.
struct Rule {
    key: String,
    pattern: String,
    invert: bool,
    tag: Option<String>,
    label: Option<String>,
}

fn rules(el: &Element) -> Vec<Rule> {
    let mut out: Vec<Rule> = el
        .sections("rule")
        .map(|r| Rule {
            key: r.str_or("key", "?"),
            pattern: r.str_or("pattern", ""),
            invert: r.bool_or("invert", false).unwrap_or(false),
            tag: r.opt_str("tag"),
            label: r.opt_str("label").map(|l| l.trim().to_string()),
        })
        .collect();
    // Legacy `rewriteruleN KEY REGEXP TAG`, in numeric order after the <rule>s.
    let mut legacy: Vec<(u64, &str)> = el
        .attrs
        .iter()
        .filter_map(|a| a.key.strip_prefix("rewriterule")?.parse().ok().map(|n| (n, a.value.as_str())))
        .collect();
    legacy.sort_by_key(|(n, _)| *n);
    for (_, v) in legacy {
        let parts: Vec<&str> = v.split_whitespace().collect();
        if let (Some(key), Some(tag)) = (parts.first(), parts.last()) {
            if parts.len() >= 3 {
                let pat = parts[1..parts.len() - 1].join(" ");
                let (pattern, invert) = match pat.strip_prefix('!') {
                    Some(p) => (p.to_string(), true),
                    None => (pat, false),
                };
                out.push(Rule { key: key.to_string(), pattern, invert, tag: Some(tag.to_string()), label: None });
            }
        }
    }
    out
}

impl Rule {
    /// The tags this rule gives; None keeps the record's tag (a rule with only `label`).
    fn tags(&self, current: &TagSet, tag_changed: bool) -> Option<TagSet> {
        let t = self.tag.as_deref()?;
        let Ok(pieces) = parse_tag_template(t) else {
            return Some(TagSet::new(format!("{t} (any)"), ANY));
        };
        let caps = if self.invert { None } else { captures(&self.pattern) };
        let (mut re, mut shown) = (String::new(), String::new());
        for p in pieces {
            let (r, s) = match p {
                Piece::Lit(l) => (regex_syntax::escape(&l), l),
                Piece::Tag if tag_changed => (ANY.to_string(), "${tag}".to_string()),
                Piece::Tag => (format!("(?:{})", current.base), current.display.clone()),
                Piece::TagPart(_) => ("[^.]*".to_string(), "${tag_parts[..]}".to_string()),
                Piece::Hostname => (ANY.to_string(), "${hostname}".to_string()),
                Piece::Capture(n) => match caps.as_ref().and_then(|c| c.get(n.wrapping_sub(1))) {
                    Some(c) => (format!("(?:{c})"), format!("({c})")),
                    None => (ANY.to_string(), format!("${n}")),
                },
            };
            re.push_str(&r);
            shown.push_str(&s);
        }
        Some(TagSet::new(shown, re))
    }
}

/// The languages of a pattern's `$1`, `$2`, ...: its named groups when it has any (Ruby numbers only
/// those then), else every group, each as written in the pattern. None when the pattern is outside what
/// regex-syntax reads (then a capture may be anything).
fn captures(pattern: &str) -> Option<Vec<String>> {
    let (src, flags) = split_literal(pattern.trim()).ok()?;
    let ast =
        regex_syntax::ast::parse::ParserBuilder::new().ignore_whitespace(flags.extended).build().parse(src).ok()?;
    let mut all = Vec::new();
    collect_groups(&ast, src, &mut all);
    let named: Vec<String> = all.iter().filter(|(n, _)| *n).map(|(_, s)| s.clone()).collect();
    let groups = if named.is_empty() { all.into_iter().map(|(_, s)| s).collect() } else { named };
    let f = format!(
        "{}{}{}",
        if flags.ignorecase { "i" } else { "" },
        if flags.multiline { "s" } else { "" },
        if flags.extended { "x" } else { "" }
    );
    Some(if f.is_empty() { groups } else { groups.into_iter().map(|g| format!("(?{f}:{g})")).collect() })
}

/// Capture groups in the order of their opening parenthesis: (named, the group's inner text).
fn collect_groups(a: &regex_syntax::ast::Ast, src: &str, out: &mut Vec<(bool, String)>) {
    use regex_syntax::ast::{Ast, GroupKind};
    match a {
        Ast::Group(g) => {
            let named = match &g.kind {
                GroupKind::CaptureIndex(_) => Some(false),
                GroupKind::CaptureName { .. } => Some(true),
                GroupKind::NonCapturing(_) => None,
            };
            if let Some(named) = named {
                let sp = g.ast.span();
                out.push((named, src.get(sp.start.offset..sp.end.offset).unwrap_or("").to_string()));
            }
            collect_groups(&g.ast, src, out);
        }
        Ast::Concat(c) => c.asts.iter().for_each(|x| collect_groups(x, src, out)),
        Ast::Alternation(alt) => alt.asts.iter().for_each(|x| collect_groups(x, src, out)),
        Ast::Repetition(r) => collect_groups(&r.ast, src, out),
        _ => {}
    }
}
