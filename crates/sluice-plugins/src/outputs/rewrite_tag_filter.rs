//! `rewrite_tag_filter` (fluent-plugin-rewrite-tag-filter): an output that gives each record a new tag
//! chosen by the first `<rule>` whose `pattern` matches the record's `key`, and emits it again through
//! the router (into the directive's label, or the one `@label` names).
//!
//! Records that no rule matches are dropped, as the plugin does (counted in `records_dropped`). A record
//! whose new tag equals its current tag is dropped too, with a warning: re-emitting it would loop forever.
//! A rule whose pattern gives up before deciding (the backtracking limit) is never silently "no match":
//! by default (`on_regexp_give_up error`) the record goes to `@ERROR`.
use sluice_core::accessor::Accessor;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Events, Map, Value};
use sluice_core::pattern::TagMatcher;
use sluice_core::plugin::{BuildCtx, EmitError, ErrorEvents, Output, OutputMetrics};
use sluice_core::router::RouterHandle;
use sluice_core::ruby::regexp::{split_literal, GaveUp, OnGiveUp, RubyFlags, RubyRegex, Slots};
use sluice_core::util::RateLimiter;
use std::sync::Arc;
use std::time::Duration;

/// One piece of a compiled tag template (public so `sluice explain` reads templates as the plugin does).
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Lit(String),
    /// `${tag}` / `__TAG__` (after `remove_tag_prefix` / `remove_tag_regexp`).
    Tag,
    /// `${tag_parts[N]}` / `__TAG_PARTS[N]__`.
    TagPart(usize),
    Hostname,
    /// `$N`: the N-th capture (1-based).
    Capture(usize),
}

/// A compiled rule.
struct Rule {
    key: Accessor,
    key_name: String,
    regex: RubyRegex,
    /// Internal names of the captures `$1`, `$2`, ... in order.
    capture_names: Vec<String>,
    invert: bool,
    /// None: keep the record's tag (a rule with only `label`).
    tag: Option<Vec<Piece>>,
    /// `label`: emit into this label instead of the directive's.
    label: Option<String>,
}

pub struct RewriteTagFilter {
    router: RouterHandle,
    label: String,
    rules: Vec<Rule>,
    hostname: String,
    remove_tag_prefix: Option<String>,
    remove_tag_regexp: Option<TagRemover>,
    capitalize: bool,
    record_mode: bool,
    metrics: Arc<OutputMetrics>,
    warn: RateLimiter,
    on_give_up: OnGiveUp,
    /// The label this directive is in (where its `@ERROR` records come from).
    own_label: String,
}

pub fn build(s: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    let hostname = hostname_of(s, ctx)?;
    let capitalize = s.bool_or("capitalize_regex_backreference", false)?;
    let on_give_up = OnGiveUp::from_conf(s)?;
    let record_mode = s.enum_or("emit_mode", &["batch", "record"], "batch")? == "record";
    let remove_tag_prefix = s.opt_str("remove_tag_prefix").filter(|p| !p.is_empty());
    let remove_tag_regexp = match s.opt_str("remove_tag_regexp") {
        Some(r) => Some(
            TagRemover::new(&r).map_err(|e| s.error_at("remove_tag_regexp", format!("'remove_tag_regexp': {e}")))?,
        ),
        None => None,
    };

    let mut rules = Vec::new();
    // key + '!' for invert + pattern, as the plugin checks for duplicates.
    let mut names: Vec<String> = Vec::new();
    let mut check_dup = |at: &Element, param: &str, name: String| -> Result<(), ConfigError> {
        if names.contains(&name) {
            return Err(at.error_at(param, "duplicated rewriterules found").with_hint("remove the repeated rule"));
        }
        names.push(name);
        Ok(())
    };
    for r in s.sections("rule") {
        let key = r.required_str("key")?;
        let pattern = r.required_str("pattern")?;
        let tag = r.opt_str("tag");
        let rule_label = r.opt_str("label");
        if tag.is_none() && rule_label.is_none() {
            return Err(r
                .error("missing tag and label")
                .with_hint("add 'tag NEW.TAG' or 'label @LABEL' to the <rule>"));
        }
        let invert = r.bool_or("invert", false)?;
        let (src, flags) =
            split_literal(&pattern).map_err(|e| r.error_at("pattern", format!("'pattern' parameter: {e}")))?;
        check_dup(r, "pattern", format!("{key}{}{pattern}", if invert { "!" } else { "" }))?;
        let mut rule = compile_rule(r, "key", &key, src, flags, "pattern", invert, tag.as_deref(), "tag")?;
        rule.label = rule_label;
        rules.push(rule);
    }
    // The legacy form: `rewriterule1 KEY REGEXP NEWTAG`, in numeric order after the <rule>s.
    let mut legacy: Vec<(u64, String)> = s
        .attrs
        .iter()
        .filter_map(|a| {
            a.key.strip_prefix("rewriterule").and_then(|n| n.parse::<u64>().ok()).map(|n| (n, a.key.clone()))
        })
        .collect();
    legacy.sort();
    for (_, name) in legacy {
        let value = s.required_str(&name)?;
        let (key, regexp, tag) = parse_rewriterule(&value)
            .ok_or_else(|| s.error_at(&name, format!("failed to parse rewriterules at {name} {value}")))?;
        let (regexp, invert) = match regexp.strip_prefix('!') {
            Some(r) => (r, true),
            None => (regexp, false),
        };
        check_dup(s, &name, format!("{key}{}{regexp}", if invert { "!" } else { "" }))?;
        rules.push(compile_rule(s, &name, key, regexp, RubyFlags::default(), &name, invert, Some(tag), &name)?);
    }
    if rules.is_empty() {
        return Err(s
            .error("missing rewriterules")
            .with_hint("add <rule> key FIELD pattern /REGEXP/ tag NEW.TAG </rule>"));
    }

    // A rule whose tag has no placeholder and still matches this <match> re-emits into itself. A <store>
    // of copy has no pattern of its own, so there is nothing to compare with.
    if let Some(m) = (s.name == "match").then(|| TagMatcher::new(&s.arg).ok()).flatten() {
        for r in &rules {
            if let (Some([Piece::Lit(t)]), None) = (r.tag.as_deref(), &r.label) {
                if m.matches(t) {
                    tracing::warn!(
                        at = %s.loc,
                        rule_key = %r.key_name,
                        new_tag = %t,
                        "rewrite_tag_filter: the new tag matches this <match> again; this may be an infinite loop"
                    );
                }
            }
        }
    }

    let label = s.get("@label").map(str::to_string).unwrap_or_else(|| ctx.label.to_string());
    Ok(Arc::new(RewriteTagFilter {
        router: ctx.router.clone(),
        label,
        rules,
        hostname,
        remove_tag_prefix,
        remove_tag_regexp,
        capitalize,
        record_mode,
        metrics: Arc::new(OutputMetrics::default()),
        warn: RateLimiter::new(Duration::from_secs(60)),
        on_give_up,
        own_label: ctx.label.to_string(),
    }))
}

#[allow(clippy::too_many_arguments)]
fn compile_rule(
    at: &Element,
    key_param: &str,
    key: &str,
    src: &str,
    flags: RubyFlags,
    pattern_param: &str,
    invert: bool,
    tag: Option<&str>,
    tag_param: &str,
) -> Result<Rule, ConfigError> {
    let keyref = Accessor::parse_conf(at, key_param, key)?;
    let plain = RubyRegex::new(src, flags).map_err(|e| at.error_at(pattern_param, format!("{e}")))?;
    let (regex, capture_names) = if plain.has_names() {
        // Ruby: with named groups only the named groups capture, and $N counts them.
        let names = plain.names().map(str::to_string).collect();
        (plain, names)
    } else {
        let (numbered, n) = name_plain_groups(src, flags.extended);
        if n == 0 {
            (plain, Vec::new())
        } else {
            let r = RubyRegex::new(&numbered, flags).map_err(|e| at.error_at(pattern_param, format!("{e}")))?;
            (r, (1..=n).map(|i| format!("{CAPTURE_PREFIX}{i}")).collect())
        }
    };
    let tag_pieces = tag.map(parse_tag_template).transpose().map_err(|e| at.error_at(tag_param, e))?;
    Ok(Rule { key: keyref, key_name: key.to_string(), regex, capture_names, invert, tag: tag_pieces, label: None })
}

/// `tag.sub(regexp, '')`: the regexp is wrapped as `\A(?<pre>.*?)(?<m>REGEXP)` so the leftmost match and
/// the text before it come back as named captures.
struct TagRemover {
    re: RubyRegex,
}

const PRE: &str = "__sluice_pre";
const MATCHED: &str = "__sluice_match";

impl TagRemover {
    fn new(value: &str) -> Result<Self, sluice_core::ruby::regexp::RegexError> {
        let (src, flags) = split_literal(value)?;
        // Checked alone first so an error names the user's pattern, not the wrapper.
        RubyRegex::new(src, flags)?;
        let re = RubyRegex::new(&format!("\\A(?<{PRE}>(?m:.*?))(?<{MATCHED}>{src})"), flags)?;
        Ok(TagRemover { re })
    }

    /// The tag without the first match, or None when the regexp does not match.
    fn sub(&self, tag: &str) -> Option<String> {
        let mut m = Map::new();
        if !self.re.captures_into(tag, &mut self.re.slots(), &mut m) {
            return None;
        }
        let pre = m.get(PRE).and_then(Value::as_str).unwrap_or("");
        let matched = m.get(MATCHED).and_then(Value::as_str).unwrap_or("");
        Some(format!("{pre}{}", &tag[(pre.len() + matched.len()).min(tag.len())..]))
    }
}

const CAPTURE_PREFIX: &str = "__sluice_capture_";

/// Turn each plain capturing group `(` of a Ruby regexp into a named one so its text can be read by name.
/// Returns the new source and the number of groups named.
fn name_plain_groups(src: &str, extended: bool) -> (String, usize) {
    let mut out = String::with_capacity(src.len() + 32);
    let mut n = 0;
    let mut class_depth = 0usize;
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(nc) = chars.next() {
                    out.push(nc);
                }
            }
            '[' => {
                class_depth += 1;
                out.push(c);
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(c);
            }
            '#' if extended && class_depth == 0 => {
                out.push(c);
                for nc in chars.by_ref() {
                    out.push(nc);
                    if nc == '\n' {
                        break;
                    }
                }
            }
            '(' if class_depth == 0 && chars.peek() != Some(&'?') => {
                n += 1;
                out.push_str(&format!("(?<{CAPTURE_PREFIX}{n}>"));
            }
            c => out.push(c),
        }
    }
    (out, n)
}

/// `rewriterule1 KEY REGEXP NEWTAG` as the plugin splits it: `/^([^\s]+)\s+(.+?)\s+([^\s]+)$/`.
fn parse_rewriterule(v: &str) -> Option<(&str, &str, &str)> {
    let v = v.trim();
    let (key, rest) = v.split_once(char::is_whitespace)?;
    let rest = rest.trim_start();
    let (regexp, tag) = rest.rsplit_once(char::is_whitespace)?;
    let regexp = regexp.trim_end();
    if key.is_empty() || regexp.is_empty() || tag.is_empty() {
        return None;
    }
    Some((key, regexp, tag))
}

/// Compile a tag template: `${tag}`, `__TAG__`, `${tag_parts[N]}`, `__TAG_PARTS[N]__`, `${hostname}`,
/// `__HOSTNAME__` and `$N`. Unknown `${...}`/`__X__` placeholders become empty, as in the plugin.
/// Compile a rule's `tag` (`$1`, `${tag}`, `${tag_parts[N]}`, `${hostname}` and the `__X__` forms).
pub fn parse_tag_template(t: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut rest = t;
    let flush = |lit: &mut String, pieces: &mut Vec<Piece>| {
        if !lit.is_empty() {
            pieces.push(Piece::Lit(std::mem::take(lit)));
        }
    };
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("${") {
            if let Some(end) = after.find('}') {
                let name = &after[..end];
                let piece = placeholder_piece(name, "tag_parts[", "]")?;
                flush(&mut lit, &mut pieces);
                if let Some(p) = piece {
                    pieces.push(p);
                } else {
                    tracing::warn!(placeholder = %format!("${{{name}}}"), "rewrite_tag_filter: unknown placeholder; it becomes empty");
                }
                rest = &after[end + 1..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix("__") {
            if let Some(end) = after.find("__") {
                let name = &after[..end];
                let valid = !name.is_empty()
                    && (name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                        || (name.starts_with("TAG_PARTS[") && name.ends_with(']')));
                if valid {
                    let lower = match name {
                        "TAG" => "tag".to_string(),
                        "HOSTNAME" => "hostname".to_string(),
                        n => n.replace("TAG_PARTS[", "tag_parts["),
                    };
                    let piece = placeholder_piece(&lower, "tag_parts[", "]")?;
                    flush(&mut lit, &mut pieces);
                    if let Some(p) = piece {
                        pieces.push(p);
                    } else {
                        tracing::warn!(placeholder = %format!("__{name}__"), "rewrite_tag_filter: unknown placeholder; it becomes empty");
                    }
                    rest = &after[end + 2..];
                    continue;
                }
            }
        }
        if let Some(after) = rest.strip_prefix('$') {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 {
                let n: usize = after[..digits].parse().map_err(|_| format!("bad capture reference in {t:?}"))?;
                flush(&mut lit, &mut pieces);
                pieces.push(Piece::Capture(n));
                rest = &after[digits..];
                continue;
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        lit.push(c);
        rest = &rest[c.len_utf8()..];
    }
    flush(&mut lit, &mut pieces);
    Ok(pieces)
}

fn placeholder_piece(name: &str, parts_open: &str, parts_close: &str) -> Result<Option<Piece>, String> {
    Ok(match name {
        "tag" => Some(Piece::Tag),
        "hostname" => Some(Piece::Hostname),
        n => match n.strip_prefix(parts_open).and_then(|r| r.strip_suffix(parts_close)) {
            Some(idx) if idx.contains("..") => {
                return Err(format!(
                    "${{tag_parts[n]}} and __TAG_PARTS[n]__ placeholder does not support range specify: {idx}"
                ))
            }
            Some(idx) => idx.parse::<usize>().ok().map(Piece::TagPart),
            None => None,
        },
    })
}

/// The text `${hostname}`/`__HOSTNAME__` give: the output of `hostname_command` (default `hostname`),
/// run once at start as the plugin does; `hostname`, `hostname -s` and `hostname -f` are answered
/// without a shell. Not run by `--dry-run`.
fn hostname_of(s: &Element, ctx: &BuildCtx) -> Result<String, ConfigError> {
    let host =
        || if ctx.system.hostname.is_empty() { sluice_core::util::hostname() } else { ctx.system.hostname.clone() };
    let cmd = s.str_or("hostname_command", "hostname");
    match cmd.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["hostname"] | ["hostname", "-f" | "--fqdn" | "--long"] => return Ok(host()),
        ["hostname", "-s" | "--short"] => return Ok(host().split('.').next().unwrap_or_default().to_string()),
        _ => {}
    }
    if ctx.dry_run {
        return Ok(host());
    }
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&cmd)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| s.error_at("hostname_command", format!("cannot run hostname_command: {e}")))?;
    if !out.status.success() {
        return Err(s.error_at("hostname_command", format!("hostname_command failed ({})", out.status)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // Ruby's `chomp`: one trailing line break.
    let t = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    Ok(t.to_string())
}

/// `record_accessor.call(record).to_s`: strings as they are, others as Ruby prints them.
fn ruby_to_s(v: &Value) -> std::borrow::Cow<'_, str> {
    match v {
        Value::Str(s) => std::borrow::Cow::Borrowed(s.as_str()),
        other => std::borrow::Cow::Owned(sluice_core::ruby::print::to_s(other)),
    }
}

/// Ruby's `String#capitalize`: the first character upper case, the rest lower case.
fn capitalize(s: &str) -> String {
    let mut cs = s.chars();
    match cs.next() {
        Some(f) => f.to_uppercase().chain(cs.flat_map(char::to_lowercase)).collect(),
        None => String::new(),
    }
}

impl RewriteTagFilter {
    /// The tag the placeholders see: with `remove_tag_prefix` / `remove_tag_regexp` applied.
    fn base_tag<'a>(&self, tag: &'a str) -> std::borrow::Cow<'a, str> {
        let mut t = std::borrow::Cow::Borrowed(tag);
        if let Some(p) = &self.remove_tag_prefix {
            if let Some(rest) = t.strip_prefix(p.as_str()) {
                t = std::borrow::Cow::Owned(rest.strip_prefix('.').unwrap_or(rest).to_string());
            }
        }
        if let Some(re) = &self.remove_tag_regexp {
            if let Some(removed) = re.sub(&t) {
                t = std::borrow::Cow::Owned(removed);
            }
        }
        t
    }

    /// The new tag for `record` and the label its rule names, None when no rule matches, or [`GaveUp`]
    /// when a rule could not be decided.
    fn rewrite(
        &self,
        tag: &str,
        base: &str,
        parts: &[&str],
        record: &Map,
        slots: &mut [Slots],
        caps: &mut Map,
    ) -> Result<Option<(String, Option<&str>)>, GaveUp> {
        for (i, rule) in self.rules.iter().enumerate() {
            let value = rule.key.get(record).map(ruby_to_s).unwrap_or_default();
            if value.is_empty() && !rule.invert {
                continue;
            }
            caps.clear();
            let matched = if rule.capture_names.is_empty() || rule.invert {
                rule.regex.try_is_match(&value)
            } else {
                rule.regex.try_captures_into(&value, &mut slots[i], caps)
            };
            let matched = self.on_give_up.apply(matched)?;
            if matched == rule.invert {
                continue;
            }
            let Some(pieces) = &rule.tag else {
                return Ok(Some((tag.to_string(), rule.label.as_deref())));
            };
            let mut out = String::new();
            for p in pieces {
                match p {
                    Piece::Lit(s) => out.push_str(s),
                    Piece::Tag => out.push_str(base),
                    Piece::TagPart(n) => out.push_str(parts.get(*n).copied().unwrap_or("")),
                    Piece::Hostname => out.push_str(&self.hostname),
                    Piece::Capture(n) => {
                        if !matched {
                            // An inverted rule has no captures: `$N` stays as written, as in the plugin.
                            out.push('$');
                            out.push_str(&n.to_string());
                            continue;
                        }
                        let v = n
                            .checked_sub(1)
                            .and_then(|k| rule.capture_names.get(k))
                            .and_then(|name| caps.get(name))
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        if self.capitalize {
                            out.push_str(&capitalize(v));
                        } else {
                            out.push_str(v);
                        }
                    }
                }
            }
            return Ok(Some((out, rule.label.as_deref())));
        }
        Ok(None)
    }
}

impl Output for RewriteTagFilter {
    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        self.metrics.records_in.add(events.len() as u64);
        let base = self.base_tag(tag);
        let parts: Vec<&str> = base.split('.').collect();
        let mut slots: Vec<Slots> = self.rules.iter().map(|r| r.regex.slots()).collect();
        let mut caps = Map::new();
        // New tags in order of first appearance, each with its events (Ruby's Hash keeps insertion order).
        let mut groups: Vec<((String, Option<&str>), Events)> = Vec::new();
        let mut unmatched = 0u64;
        let mut same = 0u64;
        let mut undecided = ErrorEvents::default();
        for ev in events {
            let new_tag = match self.rewrite(tag, &base, &parts, &ev.record, &mut slots, &mut caps) {
                Ok(Some(t)) => t,
                Ok(None) => {
                    unmatched += 1;
                    continue;
                }
                Err(g) => {
                    undecided.push(ev, format!("rewrite_tag_filter: {g}"));
                    continue;
                }
            };
            // The same tag into the same label would loop; into another label it is a move.
            if new_tag.0 == tag && new_tag.1.is_none_or(|l| l == self.label) {
                same += 1;
                continue;
            }
            if self.record_mode {
                groups.push((new_tag, vec![ev]));
                continue;
            }
            match groups.iter_mut().find(|(t, _)| *t == new_tag) {
                Some((_, v)) => v.push(ev),
                None => groups.push((new_tag, vec![ev])),
            }
        }
        if unmatched + same > 0 {
            self.metrics.records_dropped.add(unmatched + same);
        }
        if same > 0 {
            if let Some(n) = self.warn.check("same") {
                tracing::warn!(
                    tag,
                    records = same,
                    suppressed = n,
                    "rewrite_tag_filter: the new tag is the same as the current tag; records dropped to avoid an infinite loop"
                );
            }
        }
        if unmatched > 0 {
            tracing::debug!(tag, records = unmatched, "rewrite_tag_filter: no rule matched; records dropped");
        }
        if !undecided.is_empty() {
            self.metrics.records_to_error_label.add(undecided.events.len() as u64);
            self.router.emit_errors(&self.own_label, tag, undecided);
        }
        for ((new_tag, label), evs) in groups {
            let n = evs.len() as u64;
            self.router.emit_to_label(label.unwrap_or(&self.label), &new_tag, evs)?;
            self.metrics.records_written.add(n);
        }
        Ok(())
    }

    fn metrics(&self) -> Option<Arc<OutputMetrics>> {
        Some(self.metrics.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_templates() {
        assert_eq!(
            parse_tag_template("app.$1.${tag}.__TAG__.${tag_parts[1]}.__TAG_PARTS[0]__.__HOSTNAME__").unwrap(),
            vec![
                Piece::Lit("app.".into()),
                Piece::Capture(1),
                Piece::Lit(".".into()),
                Piece::Tag,
                Piece::Lit(".".into()),
                Piece::Tag,
                Piece::Lit(".".into()),
                Piece::TagPart(1),
                Piece::Lit(".".into()),
                Piece::TagPart(0),
                Piece::Lit(".".into()),
                Piece::Hostname,
            ]
        );
        assert!(parse_tag_template("x.${tag_parts[0..2]}").is_err());
        assert_eq!(parse_tag_template("a.${nope}.b").unwrap(), vec![Piece::Lit("a.".into()), Piece::Lit(".b".into())]);
    }

    #[test]
    fn plain_groups_get_names() {
        let (s, n) = name_plain_groups(r"^(\w+)\.(?:x)[(]([a-z]+)\(", false);
        assert_eq!(n, 2);
        assert_eq!(s, format!(r"^(?<{CAPTURE_PREFIX}1>\w+)\.(?:x)[(](?<{CAPTURE_PREFIX}2>[a-z]+)\("));
    }

    #[test]
    fn legacy_rule_split() {
        assert_eq!(parse_rewriterule("domain ^(www\\.)?(.+)$ site.$2"), Some(("domain", "^(www\\.)?(.+)$", "site.$2")));
        assert_eq!(parse_rewriterule("domain  a b  c   t"), Some(("domain", "a b  c", "t")));
        assert_eq!(parse_rewriterule("domain x"), None);
    }

    #[test]
    fn capitalize_like_ruby() {
        assert_eq!(capitalize("hELLO"), "Hello");
        assert_eq!(capitalize(""), "");
    }
}
