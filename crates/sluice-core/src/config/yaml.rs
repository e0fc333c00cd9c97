//! The YAML front end: Fluentd's `fluent.yaml` format → the same [`Element`] tree as Fluentd's own
//! syntax, with locations pointing into the YAML files, so plugins check and report alike.
//!
//! It follows Fluentd's `yaml_parser`: a top-level `system:` map and `config:` list; each list item
//! is one directive (`source`, `match`, `filter`, `label`, `worker`); `$type`, `$label`, `$id` and
//! `$log_level` become `@type`, `@label`, `@id` and `@log_level`; `$tag` (match/filter), `$name`
//! (label) and `$arg` (worker and sub-sections) become the section argument; a map value is a
//! sub-section, a list of maps is a repeated sub-section, anything else is a parameter. Plain
//! scalars are typed as Ruby's YAML 1.1 loader types them and written back as Ruby prints them,
//! because that text is what Fluentd's plugins see (`yes` → `true`, `0x10` → `16`, `0.00001` →
//! `1.0e-05`). `!include`, `!fluent/s` and `!fluent/json` are Fluentd's tags.
use super::parser::{self, Quoted};
use super::{ConfigError, Element, Location, Special};
use crate::ruby::print::float_to_s;
use regex::Regex;
use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

/// Includes nested deeper than this are a loop.
const MAX_INCLUDE_DEPTH: usize = 32;
/// Bounds on one document: nesting depth, and nodes after aliases are expanded (nested aliases grow
/// exponentially: a few hundred bytes can name billions of nodes). Real configurations stay far below.
const MAX_NESTING: usize = 64;
const MAX_NODES: usize = 200_000;

const TAGS_HINT: &str = "sluice understands Fluentd's !include, !fluent/s and !fluent/json, and YAML's !!str, \
                         !!int, !!float, !!bool and !!null";

/// Whether Fluentd would read this file as YAML (it decides by extension too).
pub fn is_yaml_path(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref(), Some("yaml" | "yml"))
}

pub fn parse_file(path: &Path) -> Result<Element, ConfigError> {
    let text = read(path, None)?;
    parse_str(&text, path)
}

pub fn parse_str(text: &str, file: &Path) -> Result<Element, ConfigError> {
    let (root, mut errors) = parse_str_all(text, file);
    if errors.is_empty() {
        Ok(root)
    } else {
        Err(errors.swap_remove(0))
    }
}

/// The tree and every error in it: a directive or parameter in error is reported and left out (its
/// section marked [`Element::parse_failed`]), and reading goes on with the next one. A YAML syntax error,
/// an unreadable file or a document without `config:` is the one error.
pub fn parse_file_all(path: &Path) -> (Element, Vec<ConfigError>) {
    match read(path, None) {
        Ok(text) => parse_str_all(&text, path),
        Err(e) => (Element::new("ROOT", "", Location::new(path, 1)), vec![e]),
    }
}

/// [`parse_file_all`] on text read from `file`.
pub fn parse_str_all(text: &str, file: &Path) -> (Element, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let root = match load(text, file, 0) {
        Ok(doc) => build_root(doc, file, &mut errors),
        Err(e) => {
            errors.push(e);
            Element::new("ROOT", "", Location::new(file, 1))
        }
    };
    (root, errors)
}

fn read(path: &Path, from: Option<&Location>) -> Result<String, ConfigError> {
    super::read_file(path, from)
}

/// A YAML node with where it was written; tags are kept and acted on while building, because what
/// `!include` means depends on where it stands.
#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    tag: Option<String>,
    loc: Location,
    col: usize,
    /// How many `!include`s deep its file is, to stop include loops.
    depth: usize,
}

#[derive(Debug, Clone)]
enum Kind {
    Scalar { text: String, plain: bool },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, plain: true } if self.tag.is_none() && is_null(text))
    }

    fn tag_is(&self, t: &str) -> bool {
        self.tag.as_deref() == Some(t)
    }

    fn err(&self, msg: impl Into<String>) -> ConfigError {
        ConfigError::at(&self.loc, msg)
    }
}

/// `!include` stays `!include`, `!!str` is written short instead of as its full URI.
fn render_tag(t: &Tag) -> String {
    match t.handle.as_str() {
        "tag:yaml.org,2002:" => format!("!!{}", t.suffix),
        h => format!("{h}{}", t.suffix),
    }
}

enum Open {
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>, Option<Node>),
}

struct Frame {
    open: Open,
    /// Nodes below this one, aliases counted at their full size.
    weight: usize,
    anchor: usize,
    tag: Option<String>,
    span: Span,
}

/// Parse the first YAML document of `text` into a [`Node`] tree (`None` for an empty file), as
/// Fluentd's loader reads only the first document.
fn load(text: &str, file: &Path, depth: usize) -> Result<Option<Node>, ConfigError> {
    let file: Arc<str> = Arc::from(file.to_string_lossy().as_ref());
    let at = |span: &Span| Location { file: file.clone(), line: span.start.line() as u32 };
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, (Node, usize)> = HashMap::new();
    let mut doc: Option<Node> = None;
    let mut total = 0usize;
    for ev in Parser::new_from_str(text) {
        let (ev, span) = ev.map_err(|e| {
            let m = e.marker();
            ConfigError::at(
                &Location { file: file.clone(), line: m.line() as u32 },
                format!("invalid YAML at column {}: {}", m.col() + 1, e.info()),
            )
            .with_hint(
                "check indentation (spaces only) and quoting; a value starting with [ { * & ! | > % @ ` needs quotes",
            )
        })?;
        if matches!(ev, Event::SequenceStart(..) | Event::MappingStart(..)) && stack.len() >= MAX_NESTING {
            return Err(ConfigError::at(&at(&span), format!("YAML nested more than {MAX_NESTING} levels deep")));
        }
        let (node, weight) = match ev {
            Event::DocumentStart(_) if doc.is_some() => break,
            Event::Scalar(v, style, anchor, tag) => {
                let n = Node {
                    kind: Kind::Scalar { text: v.into_owned(), plain: style == ScalarStyle::Plain },
                    tag: tag.as_deref().map(render_tag),
                    loc: at(&span),
                    col: span.start.col() + 1,
                    depth,
                };
                if anchor != 0 {
                    anchors.insert(anchor, (n.clone(), 1));
                }
                (n, 1)
            }
            Event::SequenceStart(anchor, tag) => {
                stack.push(Frame {
                    open: Open::Seq(Vec::new()),
                    weight: 0,
                    anchor,
                    tag: tag.as_deref().map(render_tag),
                    span,
                });
                continue;
            }
            Event::MappingStart(anchor, tag) => {
                stack.push(Frame {
                    open: Open::Map(Vec::new(), None),
                    weight: 0,
                    anchor,
                    tag: tag.as_deref().map(render_tag),
                    span,
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(f) = stack.pop() else { continue };
                let kind = match f.open {
                    Open::Seq(items) => Kind::Seq(items),
                    Open::Map(pairs, _) => Kind::Map(pairs),
                };
                let n = Node { kind, tag: f.tag, loc: at(&f.span), col: f.span.start.col() + 1, depth };
                let w = f.weight.saturating_add(1);
                if f.anchor != 0 {
                    anchors.insert(f.anchor, (n.clone(), w));
                }
                (n, w)
            }
            Event::Alias(id) => {
                let (n, w) = anchors.get(&id).ok_or_else(|| {
                    ConfigError::at(&at(&span), "alias to an anchor that is not defined (or not finished) here")
                })?;
                // Check before cloning: the clone is what would grow without bound.
                if total.saturating_add(*w) > MAX_NODES {
                    return Err(too_many_nodes(&at(&span)));
                }
                total += w - 1;
                (n.clone(), *w)
            }
            _ => continue,
        };
        total += 1;
        if total > MAX_NODES {
            return Err(too_many_nodes(&at(&span)));
        }
        if let Some(f) = stack.last_mut() {
            f.weight = f.weight.saturating_add(weight);
        }
        match stack.last_mut() {
            None => doc = Some(node),
            Some(Frame { open: Open::Seq(items), .. }) => items.push(node),
            Some(Frame { open: Open::Map(pairs, key), .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => pairs.push((k, node)),
            },
        }
    }
    Ok(doc)
}

fn too_many_nodes(loc: &Location) -> ConfigError {
    ConfigError::at(loc, format!("YAML expands to more than {MAX_NODES} nodes (nested aliases?)"))
        .with_hint("write the repeated parts out, or use fewer levels of aliases")
}

/// One key of a map after `<<` merges, with where the key was written.
struct Entry {
    key: String,
    loc: Location,
    value: Node,
}

fn build_root(doc: Option<Node>, file: &Path, errs: &mut Vec<ConfigError>) -> Element {
    let top = Location::new(file, 1);
    let mut root = Element::new("ROOT", "", top.clone());
    if let Err(e) = build_top(doc, &mut root, errs) {
        errs.push(e);
    }
    root
}

fn build_top(doc: Option<Node>, root: &mut Element, errs: &mut Vec<ConfigError>) -> Result<(), ConfigError> {
    let top = root.loc.clone();
    let missing = |loc: &Location| {
        ConfigError::at(loc, "no top-level `config:`: a Fluentd YAML config lists its directives under `config:`")
            .with_hint(
                "start with `config:` and list directives under it, e.g. `config:` / `  - match:` / `      $tag: '**'`",
            )
    };
    let Some(doc) = doc else { return Err(missing(&top)) };
    if !matches!(doc.kind, Kind::Map(_)) {
        return Err(missing(&doc.loc));
    }
    let doc_loc = doc.loc.clone();
    let mut config = None;
    for e in entries(doc)? {
        match e.key.as_str() {
            // Fluentd puts <system> first whatever the order in the file.
            "system" => match section("system", &e.loc, e.value, None, errs) {
                Ok(el) => root.children.insert(0, el),
                Err(err) => errs.push(err),
            },
            "config" => config = Some(e.value),
            other => errs.push(
                ConfigError::at(&e.loc, format!("unknown top-level key '{other}'"))
                    .with_hint("Fluentd's YAML format has only `system:` and `config:` at the top level"),
            ),
        }
    }
    let Some(config) = config else { return Err(missing(&doc_loc)) };
    directives(config, root, errs);
    Ok(())
}

/// A `config:` list (top level, or inside `label`/`worker`) → directives appended to `into`. A directive
/// in error is reported into `errs` and left out; the others are read.
fn directives(list: Node, into: &mut Element, errs: &mut Vec<ConfigError>) {
    if list.is_null() {
        return;
    }
    let Kind::Seq(items) = list.kind else {
        errs.push(
            ConfigError::at(&list.loc, "`config:` must be a list of directives")
                .with_hint("write each directive as a list item: `- source:`, `- match:`, ..."),
        );
        return;
    };
    for item in items {
        if let Err(e) = directive(item, into, errs) {
            errs.push(e);
        }
    }
}

/// One item of a `config:` list.
fn directive(item: Node, into: &mut Element, errs: &mut Vec<ConfigError>) -> Result<(), ConfigError> {
    if item.tag_is("!include") {
        for inc in include(&item)? {
            if inc.is_null() {
                continue;
            }
            if !matches!(inc.kind, Kind::Seq(_)) {
                errs.push(inc.err("a file included into `config:` must hold a YAML list of directives").with_hint(
                    "files named by !include are read as YAML (as Fluentd does), e.g. `- match: {$tag: '**', $type: stdout}`",
                ));
                continue;
            }
            directives(inc, into, errs);
        }
        return Ok(());
    }
    if item.tag.is_some() {
        return Err(unsupported_tag(&item));
    }
    if !matches!(item.kind, Kind::Map(_)) {
        return Err(item.err("a directive must be a mapping such as `- source:` or `- match:`").with_hint(
            "indent the directive's parameters under its name: `- match:` then `    $type: stdout` on the next line",
        ));
    }
    for e in entries(item)? {
        let el = match e.key.as_str() {
            "source" => section("source", &e.loc, e.value, None, errs),
            "match" | "filter" => section(&e.key, &e.loc, e.value, Some("$tag"), errs),
            "label" => group("label", "$name", &e.loc, e.value, errs),
            "worker" => group("worker", "$arg", &e.loc, e.value, errs),
            "system" => Err(ConfigError::at(&e.loc, "`system` is not a directive inside `config:`")
                .with_hint("move `system:` to the top level of the file, beside `config:`")),
            other => Err(ConfigError::at(&e.loc, format!("unknown directive '{other}'")).with_hint(
                "a `config:` item is one of `source`, `match`, `filter`, `label`, `worker` or `!include FILE`",
            )),
        };
        match el {
            Ok(el) => into.children.push(el),
            Err(err) => errs.push(err),
        }
    }
    Ok(())
}

/// `label` (argument `$name`) and `worker` (argument `$arg`): a nested `config:` list.
fn group(
    name: &str,
    arg_key: &str,
    loc: &Location,
    value: Node,
    errs: &mut Vec<ConfigError>,
) -> Result<Element, ConfigError> {
    if !matches!(value.kind, Kind::Map(_)) {
        return Err(ConfigError::at(loc, format!("`{name}` needs `{arg_key}:` and `config:`"))
            .with_hint(format!("e.g. `- {name}:` / `    {arg_key}: ...` / `    config:` / `      - match: ...`")));
    }
    let mut el = Element::new(name, "", loc.clone());
    let mut config = None;
    for e in entries(value)? {
        match e.key.as_str() {
            "config" => config = Some(e.value),
            k if k == arg_key => el.arg = arg_text(&e.value, ",")?,
            other => {
                return Err(ConfigError::at(&e.loc, format!("unknown key '{other}' in `{name}`"))
                    .with_hint(format!("`{name}` takes only `{arg_key}:` and a `config:` list of directives")))
            }
        }
    }
    if el.arg.is_empty() {
        return Err(ConfigError::at(loc, format!("`{name}` needs `{arg_key}:`")).with_hint(if name == "label" {
            "e.g. `$name: '@mylabel'`"
        } else {
            "e.g. `$arg: 0` or `$arg: 0-1`"
        }));
    }
    let Some(config) = config else {
        return Err(ConfigError::at(loc, format!("`{name}` needs a `config:` list of directives"))
            .with_hint("directives inside a label go under its own `config:`, as at the top level"));
    };
    directives(config, &mut el, errs);
    Ok(el)
}

/// A directive or sub-section: a map of parameters, special `$` keys and nested sections.
/// A parameter or sub-section in error is reported into `errs` and the section marked
/// [`Element::parse_failed`]; the rest of it is read.
fn section(
    name: &str,
    loc: &Location,
    value: Node,
    arg_key: Option<&str>,
    errs: &mut Vec<ConfigError>,
) -> Result<Element, ConfigError> {
    if !matches!(value.kind, Kind::Map(_)) {
        return Err(ConfigError::at(loc, format!("`{name}` needs a mapping of parameters"))
            .with_hint(format!("indent its parameters under `{name}:`, e.g. `$type: ...`")));
    }
    let mut el = Element::new(name, "", loc.clone());
    let list = entries(value)?;
    // Fluentd writes these first, whatever their place in the map.
    fn failed(el: &mut Element, errs: &mut Vec<ConfigError>, e: ConfigError) {
        el.parse_failed = true;
        errs.push(e);
    }
    for (key, at) in [("$type", "@type"), ("$label", "@label"), ("$id", "@id"), ("$log_level", "@log_level")] {
        // Fluentd writes one only when its value is not nil (`$type: ~` is no `@type` at all).
        if let Some(e) = list.iter().find(|e| e.key == key && !e.value.is_null()) {
            match value_text(&e.value) {
                Ok(v) => el.set(at, v, e.loc.clone()),
                Err(err) => failed(&mut el, errs, err),
            }
        }
    }
    for e in list {
        let done = match e.key.as_str() {
            "$type" | "$label" | "$id" | "$log_level" => Ok(()),
            k if Some(k) == arg_key => {
                // Several match patterns mean "any of them": Fluentd's syntax separates them with spaces.
                arg_text(&e.value, if k == "$tag" { " " } else { "," }).map(|a| el.arg = a)
            }
            k if k.starts_with('$') => {
                let mut allowed = vec!["$type", "$label", "$id", "$log_level"];
                allowed.extend(arg_key);
                Err(ConfigError::at(&e.loc, format!("unknown special key '{k}' in `{name}`"))
                    .with_hint(format!("here the `$` keys are: {}", allowed.join(", "))))
            }
            _ => member(&mut el, e, errs),
        };
        if let Err(err) = done {
            failed(&mut el, errs, err);
        }
    }
    Ok(el)
}

/// One non-special key of a section: a sub-section, repeated sub-sections, or a parameter.
fn member(el: &mut Element, e: Entry, errs: &mut Vec<ConfigError>) -> Result<(), ConfigError> {
    let value = if e.value.tag_is("!include") {
        // Fluentd splices the included lists into one list value.
        let mut items = Vec::new();
        for inc in include(&e.value)? {
            match inc.kind {
                Kind::Seq(v) => items.extend(v),
                _ if inc.is_null() => {}
                _ => {
                    return Err(inc
                        .err(format!("an included file used as the value of '{}' must hold a YAML list", e.key))
                        .with_hint("to include parameters into a section, write `<<: !include FILE`"))
                }
            }
        }
        Node { kind: Kind::Seq(items), tag: None, ..e.value }
    } else {
        e.value
    };
    let is_section = |n: &Node| matches!(n.kind, Kind::Map(_)) && n.tag.is_none();
    match &value.kind {
        Kind::Map(_) if value.tag.is_none() => {
            el.children.push(section(&e.key, &e.loc, value, Some("$arg"), errs)?);
        }
        Kind::Seq(items) if value.tag.is_none() && items.first().is_some_and(is_section) => {
            let Kind::Seq(items) = value.kind else { return Ok(()) };
            for item in items {
                if !is_section(&item) {
                    return Err(item
                        .err(format!("every item of '{}' must be a mapping (one <{}> section each)", e.key, e.key))
                        .with_hint(
                            "a list of maps is a repeated section; a list of plain values is an array parameter",
                        ));
                }
                let loc = item.loc.clone();
                el.children.push(section(&e.key, &loc, item, Some("$arg"), errs)?);
            }
        }
        // `use_nil` / `use_default` in a `!fluent/s` string, as in Fluentd syntax.
        Kind::Scalar { text, .. } if value.tag_is("!fluent/s") => match parser::eval_double_quoted(text, &value.loc)? {
            Quoted::Text(v) => el.set(e.key, v, e.loc),
            Quoted::Special(s) => el.set_special(e.key, s, e.loc),
        },
        // Ruby's YAML loader gives nil for `~`, `null` and nothing, and Fluentd keeps that nil as the
        // parameter's value: the same as `"#{use_nil}"`.
        _ if value.is_null() => el.set_special(e.key, Special::Nil, e.loc),
        _ => el.set(e.key, value_text(&value)?, e.loc),
    }
    Ok(())
}

/// A section argument: a scalar, or a list joined as Fluentd joins it.
fn arg_text(n: &Node, sep: &str) -> Result<String, ConfigError> {
    match &n.kind {
        Kind::Seq(items) if n.tag.is_none() => {
            Ok(items.iter().map(value_text).collect::<Result<Vec<_>, _>>()?.join(sep))
        }
        Kind::Map(_) => Err(n
            .err("a section argument must be a plain value or a list of them")
            .with_hint("e.g. `$tag: app.**`, `$arg: tag,time` or `$name: '@mylabel'`")),
        _ => value_text(n),
    }
}

/// The text a parameter gets: what Fluentd's plugins would see for this YAML value.
fn value_text(n: &Node) -> Result<String, ConfigError> {
    match (n.tag.as_deref(), &n.kind) {
        (Some("!fluent/s"), Kind::Scalar { text, .. }) => match parser::eval_double_quoted(text, &n.loc)? {
            Quoted::Text(t) => Ok(t),
            Quoted::Special(_) => Err(n.err("use_nil / use_default can only be the value of a parameter")),
        },
        (Some("!fluent/s"), _) => {
            Err(n.err("!fluent/s applies to a string").with_hint("write `!fluent/s \"text with #{ENV['NAME']}\"`"))
        }
        (Some("!fluent/json"), _) => Ok(json_value(n)?.to_string()),
        (Some("!include"), _) => Err(n
            .err("!include cannot stand here")
            .with_hint("use it as a `config:` item, as a list value, or as `<<: !include FILE` inside a section")),
        (_, Kind::Scalar { text, plain }) => match scalar(n, text, *plain)? {
            Scalar::Null => Ok(String::new()),
            Scalar::Bool(b) => Ok(b.to_string()),
            Scalar::Int(i) => Ok(i.to_string()),
            Scalar::Float(f) => Ok(float_to_s(f)),
            Scalar::Str => Ok(text.clone()),
        },
        // Lists (and tagged maps) are array/hash parameters: Fluentd's typed parameters take JSON text.
        _ => Ok(json_value(n)?.to_string()),
    }
}

fn json_value(n: &Node) -> Result<serde_json::Value, ConfigError> {
    use serde_json::Value;
    match &n.kind {
        Kind::Scalar { text, plain } => {
            if n.tag_is("!fluent/s") {
                return value_text(n).map(Value::String);
            }
            Ok(match scalar(n, text, *plain)? {
                Scalar::Null => Value::Null,
                Scalar::Bool(b) => Value::Bool(b),
                Scalar::Int(i) => i64::try_from(i).map_or_else(|_| Value::String(i.to_string()), Value::from),
                Scalar::Float(f) => {
                    serde_json::Number::from_f64(f).map_or_else(|| Value::String(float_to_s(f)), Value::Number)
                }
                Scalar::Str => Value::String(text.clone()),
            })
        }
        _ if !matches!(n.tag.as_deref(), None | Some("!fluent/json" | "!!seq" | "!!map")) => Err(unsupported_tag(n)),
        Kind::Seq(items) => Ok(Value::Array(items.iter().map(json_value).collect::<Result<_, _>>()?)),
        Kind::Map(_) => {
            let mut obj = serde_json::Map::new();
            for e in entries(n.clone())? {
                obj.insert(e.key, json_value(&e.value)?);
            }
            Ok(Value::Object(obj))
        }
    }
}

enum Scalar {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str,
}

/// How Ruby's YAML loader (Psych, YAML 1.1, which Fluentd uses) types a scalar; quoted scalars and
/// `!!str` are strings. Only the types whose printed text differs matter here.
fn scalar(n: &Node, text: &str, plain: bool) -> Result<Scalar, ConfigError> {
    match n.tag.as_deref() {
        None if !plain => Ok(Scalar::Str),
        None | Some("!!int" | "!!float" | "!!bool" | "!!null") => Ok(resolve_plain(text)),
        Some("!!str") => Ok(Scalar::Str),
        Some(_) => Err(unsupported_tag(n)),
    }
}

fn unsupported_tag(n: &Node) -> ConfigError {
    n.err(format!("unsupported YAML tag {} (column {})", n.tag.as_deref().unwrap_or(""), n.col)).with_hint(TAGS_HINT)
}

static BOOL_TRUE: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)^(?:yes|true|on)$"));
static BOOL_FALSE: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)^(?:no|false|off)$"));
// Psych's legacy integer forms: binary, octal (leading 0), decimal (with `_`/`,` separators), hex.
static INT: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(?:[-+]?0b[01_,]+|[-+]?0[0-7_,]+|[-+]?(?:0|[1-9](?:[0-9]|,[0-9]|_[0-9])*)|[-+]?0x[0-9a-fA-F_,]+)$")
});
static FLOAT: LazyLock<Regex> = LazyLock::new(|| re(r"^[-+]?(?:[0-9][0-9_,]*)?\.[0-9]*(?:[eE][-+][0-9]+)?$"));

fn re(s: &str) -> Regex {
    // The patterns are constants checked by the tests below.
    Regex::new(s).unwrap_or_else(|e| panic!("bad built-in regex {s}: {e}"))
}

fn is_null(s: &str) -> bool {
    s.is_empty() || s == "~" || s.eq_ignore_ascii_case("null")
}

fn resolve_plain(s: &str) -> Scalar {
    if is_null(s) {
        return Scalar::Null;
    }
    if BOOL_TRUE.is_match(s) {
        return Scalar::Bool(true);
    }
    if BOOL_FALSE.is_match(s) {
        return Scalar::Bool(false);
    }
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        ".inf" | "+.inf" => return Scalar::Float(f64::INFINITY),
        "-.inf" => return Scalar::Float(f64::NEG_INFINITY),
        ".nan" => return Scalar::Float(f64::NAN),
        _ => {}
    }
    if FLOAT.is_match(s) && !matches!(s, "." | "+." | "-.") {
        let digits: String = s.chars().filter(|c| !matches!(c, '_' | ',')).collect();
        let digits = digits.replace(".e", "e").replace(".E", "E");
        let digits = digits.strip_suffix('.').unwrap_or(&digits);
        if let Ok(f) = digits.parse::<f64>() {
            return Scalar::Float(f);
        }
    }
    if INT.is_match(s) {
        let digits: String = s.chars().filter(|c| !matches!(c, '_' | ',')).collect();
        let (neg, body) = match digits.as_bytes().first() {
            Some(b'-') => (true, &digits[1..]),
            Some(b'+') => (false, &digits[1..]),
            _ => (false, digits.as_str()),
        };
        let parsed = if let Some(h) = body.strip_prefix("0x") {
            i128::from_str_radix(h, 16)
        } else if let Some(b) = body.strip_prefix("0b") {
            i128::from_str_radix(b, 2)
        } else if body.len() > 1 && body.starts_with('0') {
            i128::from_str_radix(&body[1..], 8)
        } else {
            body.parse::<i128>()
        };
        if let Ok(i) = parsed {
            return Scalar::Int(if neg { -i } else { i });
        }
    }
    Scalar::Str
}

/// A map's keys in order, with `<<` merges applied: keys written in the map win over merged ones, and
/// a repeated key keeps its first place and its last value, as Ruby's hashes do.
fn entries(map: Node) -> Result<Vec<Entry>, ConfigError> {
    let Kind::Map(pairs) = map.kind else {
        return Err(map.err("expected a mapping").with_hint("write `key: value` lines indented under the parent key"));
    };
    let mut keys = Vec::with_capacity(pairs.len());
    for (k, _) in &pairs {
        keys.push(key_text(k)?);
    }
    let written: Vec<String> =
        keys.iter().filter(|(k, plain)| !(*plain && k == "<<")).map(|(k, _)| k.clone()).collect();
    let mut out: Vec<Entry> = Vec::new();
    let put = |out: &mut Vec<Entry>, e: Entry| match out.iter_mut().find(|o| o.key == e.key) {
        Some(o) => o.value = e.value,
        None => out.push(e),
    };
    for ((k, v), (key, plain)) in pairs.into_iter().zip(keys) {
        if plain && key == "<<" {
            for m in merge_sources(v)? {
                for e in entries(m)? {
                    if !written.contains(&e.key) {
                        put(&mut out, e);
                    }
                }
            }
        } else {
            put(&mut out, Entry { key, loc: k.loc, value: v });
        }
    }
    Ok(out)
}

/// The key's text and whether it was plain (only a plain `<<` is a merge).
fn key_text(k: &Node) -> Result<(String, bool), ConfigError> {
    match &k.kind {
        Kind::Scalar { text, plain } => Ok((text.clone(), *plain)),
        _ => Err(k
            .err(format!("a mapping key must be a plain string (column {})", k.col))
            .with_hint("quote the key if it contains YAML punctuation")),
    }
}

/// What a `<<:` merge key brings in: a map, a list of maps, an alias to one, or `!include FILE`.
fn merge_sources(v: Node) -> Result<Vec<Node>, ConfigError> {
    let nodes = if v.tag_is("!include") { include(&v)? } else { vec![v] };
    let mut out = Vec::new();
    for n in nodes {
        match n.kind {
            Kind::Map(_) => out.push(n),
            Kind::Seq(items) => out.extend(items),
            _ if n.is_null() => {}
            _ => {
                return Err(n
                    .err("`<<` merges a mapping, a list of mappings or `!include FILE` of a mapping")
                    .with_hint("the included file must hold `key: value` lines"))
            }
        }
    }
    Ok(out)
}

/// `!include PATH`: a file or a glob, relative to the including file; each file's first document in
/// path order (Fluentd sorts glob matches). Files are always read as YAML, as Fluentd does.
fn include(n: &Node) -> Result<Vec<Node>, ConfigError> {
    let Kind::Scalar { text: pattern, .. } = &n.kind else {
        return Err(n.err("!include needs a path").with_hint("write `- !include conf.d/*.yaml`"));
    };
    let pattern = pattern.trim();
    if pattern.is_empty() {
        return Err(n.err("!include needs a path").with_hint("write `- !include conf.d/*.yaml`"));
    }
    if pattern.starts_with("http://") || pattern.starts_with("https://") {
        return Err(n
            .err(format!("!include of a URL ({pattern}) is not supported"))
            .with_hint("download the file and !include it by path"));
    }
    if n.depth >= MAX_INCLUDE_DEPTH {
        return Err(n
            .err(format!("!include nested too deep (a loop?) at {pattern}"))
            .with_hint("check that no file includes itself, directly or through others"));
    }
    let base = Path::new(&*n.loc.file).parent().unwrap_or(Path::new("."));
    let full = if Path::new(pattern).is_absolute() { PathBuf::from(pattern) } else { base.join(pattern) };
    let full_s = full.to_string_lossy().to_string();
    let files: Vec<PathBuf> = if full_s.contains(['*', '?', '[']) {
        let mut v: Vec<PathBuf> = glob::glob(&full_s)
            .map_err(|e| n.err(format!("bad !include pattern {pattern}: {e}")))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        v.sort();
        v
    } else {
        vec![full]
    };
    let mut out = Vec::new();
    for f in files {
        let text = read(&f, Some(&n.loc)).map_err(|e| e.with_hint("the path is relative to the including file"))?;
        if let Some(doc) = load(&text, &f, n.depth + 1)? {
            out.push(doc);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        let n = Node {
            kind: Kind::Scalar { text: s.into(), plain: true },
            tag: None,
            loc: Location::new("t.yaml", 1),
            col: 1,
            depth: 0,
        };
        value_text(&n).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn plain_scalars_read_as_ruby_yaml_prints_them() {
        for (yaml, want) in [
            ("true", "true"),
            ("Yes", "true"),
            ("off", "false"),
            ("~", ""),
            ("null", ""),
            ("10", "10"),
            ("-7", "-7"),
            ("1_000", "1000"),
            ("0x1F", "31"),
            ("0644", "420"),
            ("0b101", "5"),
            ("08", "08"),
            ("1.5", "1.5"),
            ("1.50", "1.5"),
            ("2.", "2.0"),
            ("1.0e+20", "1.0e+20"),
            ("0.00001", "1.0e-05"),
            (".inf", "Infinity"),
            ("1e3", "1e3"),
            ("tag,time", "tag,time"),
            ("/var/log/*.log", "/var/log/*.log"),
            ("yesterday", "yesterday"),
        ] {
            assert_eq!(text(yaml), want, "plain scalar {yaml:?}");
        }
    }

    #[test]
    fn tags_are_rendered_short() {
        let doc = load("a: !include x\nb: !fluent/s \"y\"\nc: !!str 1\n", Path::new("t.yaml"), 0).unwrap().unwrap();
        let Kind::Map(pairs) = doc.kind else { panic!("not a map") };
        let tags: Vec<_> = pairs.iter().map(|(_, v)| v.tag.clone().unwrap_or_default()).collect();
        assert_eq!(tags, ["!include", "!fluent/s", "!!str"]);
    }

    #[test]
    fn merge_keys_written_keys_win() {
        let root = parse_str("base: &b {flush_interval: 5s, retry_max_times: 3}\n", Path::new("t.yaml"));
        assert!(root.unwrap_err().to_string().contains("unknown top-level key 'base'"));
        let root = parse_str(
            "config:\n  - match:\n      $tag: '**'\n      $type: stdout\n      buffer:\n        <<: {flush_interval: 5s, retry_max_times: 3}\n        retry_max_times: 9\n",
            Path::new("t.yaml"),
        )
        .unwrap();
        let b = &root.children[0].children[0];
        let kv: Vec<(&str, &str)> = b.attrs.iter().map(|a| (a.key.as_str(), a.value.as_str())).collect();
        assert_eq!(kv, [("flush_interval", "5s"), ("retry_max_times", "9")]);
    }

    #[test]
    fn anchors_and_aliases_share_parameters() {
        let root = parse_str(
            "config:\n  - match:\n      $tag: a\n      $type: stdout\n      buffer: &buf\n        flush_interval: 5s\n  - match:\n      $tag: b\n      $type: stdout\n      buffer:\n        <<: *buf\n        $type: memory\n",
            Path::new("t.yaml"),
        )
        .unwrap();
        let b = &root.children[1].children[0];
        assert_eq!((b.get("@type"), b.get("flush_interval")), (Some("memory"), Some("5s")));
        // The merged parameter keeps the line where it was written (the anchored map).
        assert_eq!(b.loc_of("flush_interval").line, 6);
    }
}
