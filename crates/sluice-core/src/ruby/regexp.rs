//! Ruby (Onigmo) regular expressions as Fluentd configurations write them, run on the `regex` crate when
//! the pattern allows and on `fancy_regex` when it needs lookaround, backreferences, atomic groups or
//! possessive quantifiers.
//!
//! The translation keeps Ruby's meaning where the two dialects differ: `^`/`$` always match at line
//! boundaries, the `m` flag means "dot matches newline", `\d \w \s \h` are ASCII-only, `\Z`, `\e`, `\/`,
//! `{,n}` and a `{` that is not a quantifier mean what Ruby says. Named groups are renamed internally
//! (`g0`, `g1`, ...) so that names Rust rejects, or names used twice, still work.
//!
//! The backtracking engine has a limit ([`BACKTRACK_LIMIT`]) and may give up before it knows whether a
//! text matches. Two things keep that rare: a linear *prefilter* (the pattern with lookarounds dropped,
//! backreferences widened to `.*`, atomic groups and possessive quantifiers made plain) matches every
//! text the pattern matches, so a text it rejects is "no match" at once, and otherwise the backtracker
//! starts where the prefilter's first match starts instead of scanning the whole text. When it still gives
//! up, [`RubyRegex::try_is_match`] and [`RubyRegex::try_captures_into`] say so ([`GaveUp`]) so callers
//! can fail closed; each give-up is counted ([`RubyRegex::gave_up`], [`gave_up_total`]) and logged once
//! per pattern, without the text.
use crate::event::{Map, Str, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Backtracking steps the fallback engine may take for one search (fancy-regex's default is 1,000,000).
pub const BACKTRACK_LIMIT: usize = 10_000_000;

/// The backtracking engine reached [`BACKTRACK_LIMIT`] before deciding whether the text matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the regexp gave up before deciding (backtracking limit reached)")]
pub struct GaveUp;

/// What an undecided search counts as, for plugins whose `on_regexp_give_up` parameter says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnGiveUp {
    /// The record goes to `@ERROR`.
    Error,
    Match,
    NoMatch,
}

impl OnGiveUp {
    /// The `on_regexp_give_up` parameter of `s` (`error`, `match` or `no_match`).
    pub fn from_conf(s: &crate::config::Element) -> Result<Self, crate::config::ConfigError> {
        Ok(match s.enum_or("on_regexp_give_up", &["error", "match", "no_match"], "error")?.as_str() {
            "match" => OnGiveUp::Match,
            "no_match" => OnGiveUp::NoMatch,
            _ => OnGiveUp::Error,
        })
    }

    /// The outcome of a search after this policy: `Err` only for [`OnGiveUp::Error`].
    pub fn apply(self, r: Result<bool, GaveUp>) -> Result<bool, GaveUp> {
        match (r, self) {
            (Err(_), OnGiveUp::Match) => Ok(true),
            (Err(_), OnGiveUp::NoMatch) => Ok(false),
            (r, _) => r,
        }
    }
}

static GAVE_UP_TOTAL: AtomicU64 = AtomicU64::new(0);

/// Give-ups of every regexp in this process.
pub fn gave_up_total() -> u64 {
    GAVE_UP_TOTAL.load(Ordering::Relaxed)
}

#[derive(Default)]
struct GiveUps {
    count: AtomicU64,
    logged: AtomicBool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid regexp: {0}")]
pub struct RegexError(pub String);

/// Ruby's regexp options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RubyFlags {
    pub ignorecase: bool,
    /// Ruby's `m`: `.` also matches a newline.
    pub multiline: bool,
    pub extended: bool,
}

#[derive(Clone)]
enum Engine {
    Fast(regex::Regex),
    /// The backtracker, and a linear regexp that matches (at least) wherever the pattern matches.
    Fancy(fancy_regex::Regex, Option<regex::Regex>),
}

/// A compiled Ruby regexp.
#[derive(Clone)]
pub struct RubyRegex {
    engine: Engine,
    /// Ruby group names in definition order, each with the internal group indexes that carry it.
    names: Arc<[(Str, Vec<usize>)]>,
    source: Arc<str>,
    gave_up: Arc<GiveUps>,
}

impl std::fmt::Debug for RubyRegex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/{}/", self.source)
    }
}

/// Reusable capture slots, so matching a line allocates nothing on the fast engine.
#[derive(Clone)]
pub struct Slots(Option<regex::CaptureLocations>);

impl RubyRegex {
    pub fn new(pattern: &str, flags: RubyFlags) -> Result<Self, RegexError> {
        let t = translate(pattern, flags.extended)?;
        let mut prefix = String::from("(?m");
        if flags.multiline {
            prefix.push('s');
        }
        if flags.ignorecase {
            prefix.push('i');
        }
        if flags.extended {
            prefix.push('x');
        }
        prefix.push(')');
        let full = format!("{prefix}{}", t.pattern);
        let fancy = |full: &str| -> Result<Engine, String> {
            let r = fancy_regex::RegexBuilder::new(full)
                .backtrack_limit(BACKTRACK_LIMIT)
                .build()
                .map_err(|e| e.to_string())?;
            // In extended mode a comment may hold anything: no prefilter rather than a wrong one.
            let pre = if flags.extended || t.extended_inline {
                None
            } else {
                regex::Regex::new(&format!("{prefix}{}", relax(&t.pattern))).ok()
            };
            Ok(Engine::Fancy(r, pre))
        };
        let engine = if t.fancy {
            fancy(&full).map_err(RegexError)?
        } else {
            match regex::Regex::new(&full) {
                Ok(r) => Engine::Fast(r),
                // The fast engine may still refuse something the backtracker accepts.
                Err(fast_err) => fancy(&full).map_err(|_| RegexError(fast_err.to_string()))?,
            }
        };
        let mut names: Vec<(Str, Vec<usize>)> = Vec::new();
        for (i, name) in t.group_names.into_iter().enumerate() {
            let idx = group_index(&engine, &format!("g{i}")).ok_or_else(|| RegexError(format!("lost group {name}")))?;
            match names.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(idx),
                None => names.push((name, vec![idx])),
            }
        }
        Ok(RubyRegex { engine, names: names.into(), source: Arc::from(pattern), gave_up: Arc::default() })
    }

    /// A Fluentd `:regexp` parameter: `/source/flags` (flags `i`, `m`, `x`) or a bare source.
    pub fn from_config(value: &str) -> Result<Self, RegexError> {
        let (src, flags) = split_literal(value)?;
        Self::new(src, flags)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn uses_backtracking(&self) -> bool {
        matches!(self.engine, Engine::Fancy(..))
    }

    /// How many searches with this pattern (and its clones) gave up.
    pub fn gave_up(&self) -> u64 {
        self.gave_up.count.load(Ordering::Relaxed)
    }

    fn note_gave_up(&self) -> GaveUp {
        self.gave_up.count.fetch_add(1, Ordering::Relaxed);
        GAVE_UP_TOTAL.fetch_add(1, Ordering::Relaxed);
        if !self.gave_up.logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(pattern = %self.source, limit = BACKTRACK_LIMIT,
                "regexp gave up before deciding whether a value matches (backtracking limit); the record is handled as undecided (see the plugin's docs); logged once per pattern");
        }
        GaveUp
    }

    /// Where the backtracker should start: None when the prefilter proves there is no match.
    fn fancy_start(pre: &Option<regex::Regex>, text: &str) -> Option<usize> {
        match pre {
            Some(p) => p.find(text).map(|m| m.start()),
            None => Some(0),
        }
    }

    /// Ruby names of the named groups, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|(n, _)| n.as_str())
    }

    pub fn has_names(&self) -> bool {
        !self.names.is_empty()
    }

    pub fn slots(&self) -> Slots {
        match &self.engine {
            Engine::Fast(r) => Slots(Some(r.capture_locations())),
            Engine::Fancy(..) => Slots(None),
        }
    }

    /// Unanchored search, as Ruby's `=~`, or [`GaveUp`] when the backtracker could not decide.
    pub fn try_is_match(&self, text: &str) -> Result<bool, GaveUp> {
        match &self.engine {
            Engine::Fast(r) => Ok(r.is_match(text)),
            Engine::Fancy(r, pre) => match Self::fancy_start(pre, text) {
                None => Ok(false),
                Some(at) => r.find_from_pos(text, at).map(|m| m.is_some()).map_err(|_| self.note_gave_up()),
            },
        }
    }

    /// [`Self::try_is_match`] for callers with no better answer: a give-up (counted and logged) is no match.
    pub fn is_match(&self, text: &str) -> bool {
        self.try_is_match(text).unwrap_or(false)
    }

    /// Split `text` on matches, as Ruby's `String#split(regexp)` (trailing empty fields dropped).
    pub fn split<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let mut parts: Vec<&str> = match &self.engine {
            Engine::Fast(r) => r.split(text).collect(),
            Engine::Fancy(r, _) => {
                let mut parts = Vec::new();
                for p in r.split(text) {
                    match p {
                        Ok(p) => parts.push(p),
                        Err(_) => {
                            // Undecided: keep the rest of the text (from the end of the last field) as one
                            // field rather than lose it.
                            self.note_gave_up();
                            let done = parts
                                .last()
                                .map(|p: &&str| (p.as_ptr() as usize - text.as_ptr() as usize) + p.len())
                                .unwrap_or(0);
                            parts.push(text.get(done..).unwrap_or_default());
                            break;
                        }
                    }
                }
                parts
            }
        };
        while parts.last().is_some_and(|p| p.is_empty()) {
            parts.pop();
        }
        parts
    }

    /// [`Self::try_captures_into`] for callers with no better answer: a give-up (counted and logged) is no
    /// match.
    pub fn captures_into(&self, text: &str, slots: &mut Slots, out: &mut Map) -> bool {
        self.try_captures_into(text, slots, out).unwrap_or(false)
    }

    /// Match `text` and insert each named group that took part in the match into `out` (in group order,
    /// as Fluentd's regexp parser does). False when there is no match, [`GaveUp`] when the backtracker
    /// could not decide (nothing is inserted then).
    pub fn try_captures_into(&self, text: &str, slots: &mut Slots, out: &mut Map) -> Result<bool, GaveUp> {
        Ok(match (&self.engine, &mut slots.0) {
            (Engine::Fast(r), Some(locs)) => {
                if r.captures_read(locs, text).is_none() {
                    return Ok(false);
                }
                for (name, idxs) in self.names.iter() {
                    if let Some((s, e)) = idxs.iter().rev().find_map(|&i| locs.get(i)) {
                        out.insert(name.clone(), Value::Str(Str::from(&text[s..e])));
                    }
                }
                true
            }
            (Engine::Fast(r), None) => {
                let Some(c) = r.captures(text) else {
                    return Ok(false);
                };
                for (name, idxs) in self.names.iter() {
                    if let Some(m) = idxs.iter().rev().find_map(|&i| c.get(i)) {
                        out.insert(name.clone(), Value::Str(Str::from(m.as_str())));
                    }
                }
                true
            }
            (Engine::Fancy(r, pre), _) => {
                let Some(at) = Self::fancy_start(pre, text) else {
                    return Ok(false);
                };
                let Some(c) = r.captures_from_pos(text, at).map_err(|_| self.note_gave_up())? else {
                    return Ok(false);
                };
                for (name, idxs) in self.names.iter() {
                    if let Some(m) = idxs.iter().rev().find_map(|&i| c.get(i)) {
                        out.insert(name.clone(), Value::Str(Str::from(m.as_str())));
                    }
                }
                true
            }
        })
    }
}

/// Match positions for the embedded Ruby evaluator (`=~`, `sub`, `gsub`, `partition`, `[]`).
impl RubyRegex {
    /// The byte span of the first match at or after byte `start`. A backtracking engine that gives up
    /// counts as no match.
    pub fn find_at(&self, text: &str, start: usize) -> Option<(usize, usize)> {
        if start > text.len() {
            return None;
        }
        match &self.engine {
            Engine::Fast(r) => r.find_at(text, start).map(|m| (m.start(), m.end())),
            Engine::Fancy(r, _) => r.find_from_pos(text, start).ok().flatten().map(|m| (m.start(), m.end())),
        }
    }

    /// Every group's byte span (by internal index, 0 = the whole match) of the first match at or
    /// after byte `start`.
    pub fn captures_at(&self, text: &str, start: usize) -> Option<Vec<Option<(usize, usize)>>> {
        if start > text.len() {
            return None;
        }
        match &self.engine {
            Engine::Fast(r) => {
                let c = r.captures_at(text, start)?;
                Some(c.iter().map(|m| m.map(|m| (m.start(), m.end()))).collect())
            }
            Engine::Fancy(r, _) => {
                let c = r.captures_from_pos(text, start).ok().flatten()?;
                Some(c.iter().map(|m| m.map(|m| (m.start(), m.end()))).collect())
            }
        }
    }

    /// The internal group indexes that carry the Ruby group `name`.
    pub fn group_indexes(&self, name: &str) -> Option<&[usize]> {
        self.names.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }
}

fn group_index(engine: &Engine, name: &str) -> Option<usize> {
    match engine {
        Engine::Fast(r) => r.capture_names().position(|n| n == Some(name)),
        Engine::Fancy(r, _) => r.capture_names().position(|n| n == Some(name)),
    }
}

/// Split Fluentd's `/source/flags` form. A value not starting with `/` is a bare source.
pub fn split_literal(value: &str) -> Result<(&str, RubyFlags), RegexError> {
    let Some(rest) = value.strip_prefix('/') else {
        return Ok((value, RubyFlags::default()));
    };
    let Some(close) = rest.rfind('/') else {
        return Err(RegexError("missing right slash".into()));
    };
    let opts = &rest[close + 1..];
    if opts.len() > 3 || !opts.chars().all(|c| matches!(c, 'i' | 'm' | 'x')) {
        return Err(RegexError(format!("unknown options after the right slash: {opts:?}")));
    }
    let flags =
        RubyFlags { ignorecase: opts.contains('i'), multiline: opts.contains('m'), extended: opts.contains('x') };
    Ok((&rest[..close], flags))
}

struct Translated {
    pattern: String,
    fancy: bool,
    group_names: Vec<Str>,
    /// An inline `x` option: comments may hold any text, so the pattern is not rewritten.
    extended_inline: bool,
}

/// A linear superset of a translated (fancy-regex syntax) pattern: every text it matches somewhere, this
/// matches somewhere too, at the same or an earlier start. Lookarounds are assertions, so dropping them only
/// widens; a backreference matches some text, so `(?s:.*?)` widens it; atomic groups and possessive
/// quantifiers only forbid backtracking, so plain groups and quantifiers widen them. The result may still
/// fail to compile (the caller then runs without a prefilter).
fn relax(p: &str) -> String {
    let b = p.as_bytes();
    let mut out = String::with_capacity(p.len());
    let mut i = 0;
    // True right after a quantifier, where a `+` makes it possessive.
    let mut after_quant = false;
    while i < b.len() {
        let c = b[i];
        let was_quant = after_quant;
        after_quant = false;
        match c {
            b'\\' => {
                let rest = &p[i..];
                let digits = rest[1..].bytes().take_while(u8::is_ascii_digit).count();
                if rest.starts_with("\\k<") {
                    let end = rest.find('>').map(|e| e + 1).unwrap_or(rest.len());
                    out.push_str("(?s:.*?)");
                    i += end;
                } else if digits > 0 && !rest[1..].starts_with('0') {
                    out.push_str("(?s:.*?)");
                    i += 1 + digits;
                } else {
                    let n = rest[1..].chars().next().map(char::len_utf8).unwrap_or(0);
                    // `\x{41}`, `\p{Greek}`: the braces belong to the escape, not a quantifier.
                    let n = match (rest[1..].starts_with(char::is_alphabetic), rest.get(1 + n..)) {
                        (true, Some(r)) if r.starts_with('{') => r.find('}').map(|e| n + e + 1).unwrap_or(n),
                        _ => n,
                    };
                    out.push_str(&rest[..1 + n]);
                    i += 1 + n;
                }
            }
            b'[' => {
                let end = class_end(b, i);
                out.push_str(&p[i..end]);
                i = end;
            }
            b'(' => {
                let rest = &p[i..];
                if ["(?=", "(?!", "(?<=", "(?<!"].iter().any(|l| rest.starts_with(l)) {
                    i = group_end(b, i);
                } else if rest.starts_with("(?>") {
                    out.push_str("(?:");
                    i += 3;
                } else {
                    out.push('(');
                    i += 1;
                }
            }
            b'+' if was_quant => i += 1,
            b'*' | b'+' | b'?' | b'}' => {
                out.push(c as char);
                i += 1;
                // `x??` and `x+?` are lazy, not quantified twice.
                after_quant = !(was_quant && c == b'?');
            }
            _ => {
                let n = p[i..].chars().next().map(char::len_utf8).unwrap_or(1);
                out.push_str(&p[i..i + n]);
                i += n;
            }
        }
    }
    out
}

/// The index after the character class that opens at `b[i]` (nested classes and escapes included).
fn class_end(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' => depth += 1,
            b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// The index after the group that opens at `b[i]`.
fn group_end(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' => {
                i = class_end(b, i);
                continue;
            }
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

const ASCII_DIGIT: &str = "0-9";
const ASCII_WORD: &str = "0-9A-Za-z_";
const ASCII_SPACE: &str = r"\t\n\x0B\x0C\r ";
const ASCII_HEX: &str = "0-9A-Fa-f";

/// The set a Ruby shorthand class stands for, and whether it is negated.
fn shorthand(c: char) -> Option<(&'static str, bool)> {
    Some(match c {
        'd' => (ASCII_DIGIT, false),
        'D' => (ASCII_DIGIT, true),
        'w' => (ASCII_WORD, false),
        'W' => (ASCII_WORD, true),
        's' => (ASCII_SPACE, false),
        'S' => (ASCII_SPACE, true),
        'h' => (ASCII_HEX, false),
        'H' => (ASCII_HEX, true),
        _ => return None,
    })
}

/// Characters the `regex` crate lets (or makes) us escape.
fn rust_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
            | ' '
    )
}

/// A `{n}`, `{n,}`, `{n,m}` or `{,m}` quantifier at the start of `s`: its length and Rust spelling.
fn quantifier(s: &str) -> Option<(usize, String)> {
    let end = s.find('}')?;
    let body = &s[1..end];
    let ok = |p: &str| p.chars().all(|c| c.is_ascii_digit());
    let (lo, hi) = match body.split_once(',') {
        Some((lo, hi)) => (lo, Some(hi)),
        None => (body, None),
    };
    if !ok(lo) || !hi.is_none_or(ok) || (lo.is_empty() && hi.is_none_or(str::is_empty)) {
        return None;
    }
    let lo = if lo.is_empty() { "0" } else { lo };
    let spelled = match hi {
        None => format!("{{{lo}}}"),
        Some(h) => format!("{{{lo},{h}}}"),
    };
    Some((end + 1, spelled))
}

fn translate(src: &str, extended: bool) -> Result<Translated, RegexError> {
    let mut out = String::with_capacity(src.len() + 16);
    let mut fancy = false;
    let mut names: Vec<Str> = Vec::new();
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let mut i = 0;
    let mut class_depth = 0usize;
    let mut after_quantifier = false;
    let mut extended = extended;
    let mut extended_inline = false;
    while i < chars.len() {
        let (pos, c) = chars[i];
        let was_quantifier = after_quantifier;
        after_quantifier = false;
        if c == '\\' {
            let Some(&(_, n)) = chars.get(i + 1) else {
                return Err(RegexError("trailing backslash".into()));
            };
            i += 2;
            if let Some((set, neg)) = shorthand(n) {
                match (class_depth > 0, neg) {
                    (false, false) => {
                        out.push('[');
                        out.push_str(set);
                        out.push(']');
                    }
                    (false, true) | (true, true) => {
                        out.push_str("[^");
                        out.push_str(set);
                        out.push(']');
                    }
                    (true, false) => out.push_str(set),
                }
                continue;
            }
            if class_depth > 0 {
                escape_in_class(n, &chars, &mut i, &mut out)?;
                continue;
            }
            match n {
                'Z' => {
                    if i == chars.len() {
                        out.push_str(r"\n?\z");
                    } else {
                        out.push_str(r"(?=\n?\z)");
                        fancy = true;
                    }
                }
                'G' => out.push_str(r"\A"),
                'k' => {
                    let (close, open) = match chars.get(i).map(|c| c.1) {
                        Some('<') => ('>', true),
                        Some('\'') => ('\'', true),
                        _ => ('\0', false),
                    };
                    if !open {
                        return Err(RegexError("invalid backreference \\k".into()));
                    }
                    let start = i + 1;
                    let mut j = start;
                    while j < chars.len() && chars[j].1 != close {
                        j += 1;
                    }
                    if j == chars.len() {
                        return Err(RegexError("unterminated \\k<name>".into()));
                    }
                    let name: String = chars[start..j].iter().map(|c| c.1).collect();
                    i = j + 1;
                    fancy = true;
                    if name.chars().all(|c| c.is_ascii_digit() || c == '-') {
                        out.push_str(&format!("\\k<{name}>"));
                    } else {
                        let idx = names
                            .iter()
                            .rposition(|n| n == name.as_str())
                            .ok_or_else(|| RegexError(format!("undefined name <{name}> reference")))?;
                        out.push_str(&format!("\\k<g{idx}>"));
                    }
                }
                '1'..='9' => {
                    fancy = true;
                    out.push('\\');
                    out.push(n);
                }
                '0' => {
                    let mut v = 0u32;
                    let mut k = 0;
                    while k < 2 && matches!(chars.get(i).map(|c| c.1), Some('0'..='7')) {
                        v = v * 8 + chars[i].1.to_digit(8).unwrap_or(0);
                        i += 1;
                        k += 1;
                    }
                    out.push_str(&format!("\\x{{{v:x}}}"));
                }
                'x' => i = hex_escape(&chars, i, &mut out)?,
                'e' => out.push_str(r"\x1B"),
                'a' => out.push_str(r"\x07"),
                'K' | 'R' | 'X' => {
                    return Err(RegexError(format!("\\{n} is not supported")));
                }
                c if c.is_ascii_alphanumeric() => {
                    out.push('\\');
                    out.push(c);
                }
                c if rust_meta(c) => {
                    out.push('\\');
                    out.push(c);
                }
                c => out.push(c),
            }
            continue;
        }
        if class_depth > 0 {
            match c {
                '[' => {
                    // Nested class, or a POSIX bracket expression, copied as is.
                    if src[pos..].starts_with("[:") {
                        if let Some(end) = src[pos + 2..].find(":]") {
                            let stop = pos + 2 + end + 2;
                            out.push_str(&src[pos..stop]);
                            while i < chars.len() && chars[i].0 < stop {
                                i += 1;
                            }
                            continue;
                        }
                    }
                    class_depth += 1;
                    out.push('[');
                    i += 1;
                    if let Some(&(_, '^')) = chars.get(i) {
                        out.push('^');
                        i += 1;
                    }
                    if let Some(&(_, ']')) = chars.get(i) {
                        out.push_str(r"\]");
                        i += 1;
                    }
                }
                ']' => {
                    class_depth -= 1;
                    out.push(']');
                    i += 1;
                    after_quantifier = false;
                }
                '~' => {
                    // `~~` is an operator in Rust classes, a literal in Ruby.
                    out.push_str(r"\~");
                    i += 1;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
            continue;
        }
        match c {
            '[' => {
                class_depth = 1;
                out.push('[');
                i += 1;
                if let Some(&(_, '^')) = chars.get(i) {
                    out.push('^');
                    i += 1;
                }
                if let Some(&(_, ']')) = chars.get(i) {
                    out.push_str(r"\]");
                    i += 1;
                }
            }
            '(' => {
                let rest = &src[pos..];
                if let Some(r) = rest.strip_prefix("(?#") {
                    // A comment group: dropped.
                    let end = r.find(')').ok_or_else(|| RegexError("unterminated comment".into()))?;
                    let stop = pos + 3 + end + 1;
                    while i < chars.len() && chars[i].0 < stop {
                        i += 1;
                    }
                } else if rest.starts_with("(?<=")
                    || rest.starts_with("(?<!")
                    || rest.starts_with("(?=")
                    || rest.starts_with("(?!")
                    || rest.starts_with("(?>")
                {
                    fancy = true;
                    out.push('(');
                    i += 1;
                } else if rest.starts_with("(?~") {
                    return Err(RegexError("the absence operator (?~...) is not supported".into()));
                } else if rest.starts_with("(?<") || rest.starts_with("(?'") {
                    let close = if rest.starts_with("(?<") { '>' } else { '\'' };
                    let start = pos + 3;
                    let end = src[start..].find(close).ok_or_else(|| RegexError("unterminated group name".into()))?;
                    let name = &src[start..start + end];
                    if name.is_empty() {
                        return Err(RegexError("group name is empty".into()));
                    }
                    out.push_str(&format!("(?<g{}>", names.len()));
                    names.push(Str::from(name));
                    let stop = start + end + 1;
                    while i < chars.len() && chars[i].0 < stop {
                        i += 1;
                    }
                } else if let Some((len, spelled, x)) = inline_options(rest) {
                    extended_inline |= spelled.contains('x');
                    out.push_str(&spelled);
                    if let Some(x) = x {
                        extended = x;
                    }
                    while i < chars.len() && chars[i].0 < pos + len {
                        i += 1;
                    }
                } else {
                    out.push('(');
                    i += 1;
                }
            }
            '{' => match quantifier(&src[pos..]) {
                Some((len, spelled)) => {
                    out.push_str(&spelled);
                    while i < chars.len() && chars[i].0 < pos + len {
                        i += 1;
                    }
                    after_quantifier = true;
                }
                None => {
                    out.push_str(r"\{");
                    i += 1;
                }
            },
            '}' => {
                out.push_str(r"\}");
                i += 1;
            }
            '*' | '?' => {
                out.push(c);
                i += 1;
                after_quantifier = c == '*' || !was_quantifier;
            }
            '+' => {
                if was_quantifier {
                    // Possessive quantifier.
                    fancy = true;
                }
                out.push('+');
                i += 1;
                after_quantifier = !was_quantifier;
            }
            '#' if extended => {
                // A comment to the end of the line, copied so Rust skips it too.
                while i < chars.len() && chars[i].1 != '\n' {
                    out.push(chars[i].1);
                    i += 1;
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    if class_depth > 0 {
        return Err(RegexError("premature end of char-class".into()));
    }
    Ok(Translated { pattern: out, fancy, group_names: names, extended_inline })
}

/// Ruby inline options at the start of `rest` (`(?imx-imx)` or `(?imx-imx:`): their length, the Rust
/// spelling (Ruby's m is Rust's s; the character-set options a, d, u are dropped) and, for a bare
/// `(?x)`/`(?-x)`, the new extended mode.
fn inline_options(rest: &str) -> Option<(usize, String, Option<bool>)> {
    let r = rest.strip_prefix("(?")?;
    let flag_len = r.find([')', ':'])?;
    let flags = &r[..flag_len];
    if flags.is_empty() || !flags.chars().all(|c| matches!(c, 'i' | 'm' | 'x' | '-' | 'a' | 'd' | 'u')) {
        return None;
    }
    let term = &r[flag_len..flag_len + 1];
    let mut on = true;
    let mut x = None;
    let mut spelled = String::new();
    for f in flags.chars() {
        match f {
            '-' => {
                on = false;
                spelled.push('-');
            }
            'm' => spelled.push('s'),
            'i' => spelled.push('i'),
            'x' => {
                spelled.push('x');
                if term == ")" {
                    x = Some(on);
                }
            }
            _ => {}
        }
    }
    let spelled = spelled.trim_end_matches('-');
    let out = match (spelled.is_empty(), term) {
        (true, ":") => "(?:".to_string(),
        (true, _) => String::new(),
        (false, t) => format!("(?{spelled}{t}"),
    };
    Some((2 + flag_len + 1, out, x))
}

fn escape_in_class(n: char, chars: &[(usize, char)], i: &mut usize, out: &mut String) -> Result<(), RegexError> {
    match n {
        'x' => *i = hex_escape(chars, *i, out)?,
        'e' => out.push_str(r"\x1B"),
        'a' => out.push_str(r"\x07"),
        'b' => out.push_str(r"\x08"),
        '0' => out.push_str(r"\x00"),
        c if c.is_ascii_alphanumeric() => {
            out.push('\\');
            out.push(c);
        }
        c if rust_meta(c) => {
            out.push('\\');
            out.push(c);
        }
        c => out.push(c),
    }
    Ok(())
}

/// `\xH` or `\xHH` (Ruby takes one or two hex digits) after the `\x` at `chars[i - 1]`.
fn hex_escape(chars: &[(usize, char)], mut i: usize, out: &mut String) -> Result<usize, RegexError> {
    if chars.get(i).map(|c| c.1) == Some('{') {
        // Not Ruby syntax, but harmless to pass on.
        out.push_str(r"\x");
        return Ok(i);
    }
    let mut v = 0u32;
    let mut k = 0;
    while k < 2 {
        match chars.get(i).and_then(|c| c.1.to_digit(16)) {
            Some(d) => {
                v = v * 16 + d;
                i += 1;
                k += 1;
            }
            None => break,
        }
    }
    if k == 0 {
        return Err(RegexError("invalid hex escape".into()));
    }
    out.push_str(&format!("\\x{{{v:x}}}"));
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(re: &RubyRegex, text: &str) -> Option<Vec<(String, String)>> {
        let mut slots = re.slots();
        let mut m = Map::new();
        if !re.captures_into(text, &mut slots, &mut m) {
            return None;
        }
        Some(m.iter().map(|(k, v)| (k.to_string(), v.as_str().unwrap_or_default().to_string())).collect())
    }

    fn re(p: &str) -> RubyRegex {
        RubyRegex::from_config(p).unwrap()
    }

    #[test]
    fn named_groups_in_order_and_unmatched_omitted() {
        let r = re(r"/^(?<a>\w+)(?: (?<b>\d+))?$/");
        assert!(!r.uses_backtracking());
        assert_eq!(caps(&r, "abc 12"), Some(vec![("a".into(), "abc".into()), ("b".into(), "12".into())]));
        assert_eq!(caps(&r, "abc"), Some(vec![("a".into(), "abc".into())]));
        assert_eq!(caps(&r, "a-b"), None);
    }

    #[test]
    fn ruby_only_syntax_uses_backtracking() {
        let r = re(r"/^(?<key>[a-z]+)=(?<!\\)(?<v>.+)$/");
        assert!(r.uses_backtracking());
        assert_eq!(caps(&r, "k=v"), Some(vec![("key".into(), "k".into()), ("v".into(), "v".into())]));
        let r = re(r"/^(?<w>\w+) \k<w>$/");
        assert_eq!(caps(&r, "hey hey"), Some(vec![("w".into(), "hey".into())]));
        assert_eq!(caps(&r, "hey you"), None);
        let r = re(r"/^(?<a>a++)b$/");
        assert!(r.uses_backtracking());
        assert!(r.is_match("aab"));
        let r = re(r"/^(?>(?<x>\d+))$/");
        assert!(r.is_match("12"));
    }

    #[test]
    fn ruby_semantics_for_anchors_dot_and_classes() {
        // ^ and $ are line anchors in Ruby.
        assert!(re("/^b$/").is_match("a\nb\nc"));
        // Ruby's m flag: dot matches newline.
        assert!(!re("/a.b/").is_match("a\nb"));
        assert!(re("/a.b/m").is_match("a\nb"));
        assert!(re("/ABC/i").is_match("abc"));
        // ASCII-only shorthands.
        assert!(!re(r"/^\d$/").is_match("٣"));
        assert!(!re(r"/^\w$/").is_match("é"));
        assert!(re(r"/^\W$/").is_match("é"));
        assert!(re(r"/^[\w-]+$/").is_match("a-b_c"));
        assert!(re(r"/^[^\s]+$/").is_match("abc"));
        assert!(re(r"/^[\S]+$/").is_match("abc"));
        assert!(re(r"/^\h+$/").is_match("DEADbeef"));
        // Escapes Rust reads differently.
        assert!(re(r"/^a\/b$/").is_match("a/b"));
        assert!(re(r"/^\<x\>$/").is_match("<x>"));
        assert!(re(r"/^\e$/").is_match("\x1b"));
        assert!(re(r"/^a{,2}$/").is_match("aa"));
        assert!(re(r"/^{foo}$/").is_match("{foo}"));
        assert!(re(r"/^x\Z/").is_match("x\n"));
        assert!(re(r"/^\x41$/").is_match("A"));
        assert!(re(r"/(?m:a.b)/").is_match("a\nb"));
        assert!(re(r"/(?i)abc/").is_match("ABC"));
        assert!(re(r"/[[:alpha:]]+/").is_match("abc"));
    }

    #[test]
    fn duplicate_and_unusual_names() {
        let r = re(r"/^(?:(?<v>\d+)|x(?<v>[a-z]+))$/");
        assert_eq!(caps(&r, "12"), Some(vec![("v".into(), "12".into())]));
        assert_eq!(caps(&r, "xab"), Some(vec![("v".into(), "ab".into())]));
        let r = re(r"/^(?<user-agent>.+)$/");
        assert_eq!(caps(&r, "curl"), Some(vec![("user-agent".into(), "curl".into())]));
    }

    #[test]
    fn literal_forms() {
        assert_eq!(split_literal("/a/im").unwrap().0, "a");
        assert!(split_literal("/a/im").unwrap().1.ignorecase);
        assert_eq!(split_literal("abc").unwrap().0, "abc");
        assert!(split_literal("/abc").is_err());
        assert!(split_literal("/a/q").is_err());
        assert!(RubyRegex::from_config("/(/").is_err());
        assert!(RubyRegex::from_config("/[a/").is_err());
        assert!(RubyRegex::from_config("/(?~abc)/").is_err());
    }

    #[test]
    fn prefilter_gives_the_backtrackers_answer() {
        let pats = [
            r"(?<!\d)\d{3}(?!\d)",
            r"(?<w>\w+) \k<w>",
            r"a++b",
            r"x(?=y).",
            r"(?<=[-:])[a-z]+\Z",
            r"(?<q>['\x22]).*?\k<q>",
            r"(?>\d+)[a-c]{2}+",
            r"(?<!\\)\x41{1,2}",
            r"[α-ω]+(?![α-ω])",
        ];
        let texts = [
            "",
            "12 1234 123",
            "hey hey you",
            "aaab ab",
            "xy xz",
            "k:v\n",
            "a-bc",
            "'q' \"r\"",
            "12ab 3bcc",
            "\\A AA",
            "αβγ δ",
            "x:yz\n-w",
        ];
        for p in pats {
            // The whole match as a named group, compared with the backtracker's own answer.
            let src = format!("(?<all>{p})");
            let r = re(&format!("/{src}/"));
            assert!(matches!(r.engine, Engine::Fancy(_, Some(_))), "{p} has a prefilter");
            let plain = fancy_regex::Regex::new(&format!("(?m){}", translate(&src, false).unwrap().pattern)).unwrap();
            for t in texts {
                let want = plain.captures(t).unwrap().and_then(|c| c.get(1)).map(|m| m.as_str().to_string());
                let got = caps(&r, t).map(|c| c.into_iter().find(|(k, _)| k == "all").map(|(_, v)| v).unwrap());
                assert_eq!(got, want, "{p} on {t:?}");
            }
        }
    }

    #[test]
    fn a_long_text_before_the_match_does_not_make_it_give_up() {
        let r = re(r"/(?<!\d)\d{6}-[1-4]\d{6}(?!\d)/");
        assert!(r.uses_backtracking());
        let text = format!("{} rrn 900101-1234567", "a".repeat(500_000));
        assert_eq!(r.try_is_match(&text), Ok(true));
        assert_eq!(r.try_is_match(&text.replace("900101", "9001011")), Ok(false));
        assert_eq!(r.gave_up(), 0);
    }

    #[test]
    fn giving_up_is_reported_and_counted() {
        // Exponential inside a lookahead, where the prefilter cannot help.
        let r = re(r"/(?=(a|aa)+\1c)a/");
        let before = gave_up_total();
        assert_eq!(r.try_is_match(&"a".repeat(40)), Err(GaveUp));
        let mut m = Map::new();
        assert_eq!(r.try_captures_into(&"a".repeat(40), &mut r.slots(), &mut m), Err(GaveUp));
        assert!(m.is_empty());
        assert_eq!(r.clone().gave_up(), 2, "clones share the count");
        assert!(gave_up_total() >= before + 2);
        // The convenience form answers "no" but still counts.
        assert!(!r.is_match(&"a".repeat(40)));
        assert_eq!(r.gave_up(), 3);
        assert_eq!(OnGiveUp::Match.apply(Err(GaveUp)), Ok(true));
        assert_eq!(OnGiveUp::NoMatch.apply(Err(GaveUp)), Ok(false));
        assert_eq!(OnGiveUp::Error.apply(Err(GaveUp)), Err(GaveUp));
    }

    #[test]
    fn relaxed_patterns() {
        assert_eq!(relax(r"(?<![0-9])a(?=b(c))"), "a");
        assert_eq!(relax(r"(?>a|b)\k<g0>\1\0x++y*+z{2}+w+?v??"), r"(?:a|b)(?s:.*?)(?s:.*?)\0x+y*z{2}w+?v??");
        assert_eq!(relax(r"[(?=]\x{41}+[[:alpha:]\]]"), r"[(?=]\x{41}+[[:alpha:]\]]");
    }
}
