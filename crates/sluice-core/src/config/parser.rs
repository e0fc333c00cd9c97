//! The Fluentd (v1) syntax front end: text → [`Element`] tree.
//!
//! It follows Fluentd's own parser: `#` starts a comment at the start of a line or after whitespace;
//! values are non-quoted (to the end of the line), single-quoted, double-quoted (with escapes and
//! `#{...}`), or JSON arrays/hashes that may span lines; `@include` pulls other files (or a glob of
//! them, relative to the including file) into the current section. Embedded Ruby (`"#{...}"`) is
//! evaluated by the core's Ruby subset ([`crate::ruby`]); code outside it is an error naming the line
//! and the missing construct, never silently kept as text. `use_nil` / `use_default` leave the whole
//! parameter unset, so the plugin uses its default.
use super::{ConfigError, Element, Location};
use crate::ruby::RValue;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Includes nested deeper than this are a loop.
const MAX_INCLUDE_DEPTH: usize = 32;
/// Sections nested deeper than this are an error (real configurations nest 3 or 4 deep); without a
/// bound, hostile nesting would overflow the stack.
pub const MAX_SECTION_DEPTH: usize = 64;

pub fn parse_str(text: &str, file: &Path) -> Result<Element, ConfigError> {
    let mut root = Element::new("ROOT", "", Location::new(file, 1));
    parse_into(text, file, &mut root, 0, 0)?;
    Ok(root)
}

pub fn parse_file(path: &Path) -> Result<Element, ConfigError> {
    let text = read(path, None)?;
    parse_str(&text, path)
}

/// The inside of a double-quoted string (escapes and `"#{...}"`), for front ends that get the text
/// without its quotes (YAML's `!fluent/s`), so both syntaxes evaluate strings the same way.
/// `None` when the string used `use_nil` / `use_default`: the parameter is left unset.
pub(crate) fn eval_double_quoted(body: &str, loc: &Location) -> Result<Option<String>, ConfigError> {
    let text = format!("{body}\"");
    let mut p = Scanner {
        src: text.as_bytes(),
        text: &text,
        pos: 0,
        line: loc.line,
        file: loc.file.clone(),
        path: PathBuf::from(&*loc.file),
        depth: 0,
        special: false,
        nest: 0,
    };
    let out = p.double_quoted()?;
    if p.pos != text.len() {
        return Err(ConfigError::at(&p.loc(), "a '\"' ends the string early").with_hint("escape it as \\\""));
    }
    Ok((!p.special).then_some(out))
}

thread_local! {
    /// `ENV[...]` references to unset variables met while parsing, for `take_unset_env_refs`.
    static UNSET_ENV_REFS: std::cell::RefCell<Vec<(String, Location)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The environment variables that embedded Ruby found unset (`ENV['X']` gives nil, so the value is
/// empty), with where each was used, since the last call on this thread. The engine warns about each,
/// so "one of 'webhook_url' or 'token' is required" comes with the variable that was not set.
pub fn take_unset_env_refs() -> Vec<(String, Location)> {
    UNSET_ENV_REFS.with(|r| std::mem::take(&mut *r.borrow_mut()))
}

fn eval_config_code(code: &str, loc: &Location) -> Result<RValue, ConfigError> {
    let (result, unset) = crate::ruby::eval_config_code(code);
    if !unset.is_empty() {
        UNSET_ENV_REFS.with(|r| r.borrow_mut().extend(unset.into_iter().map(|n| (n, loc.clone()))));
    }
    result.map_err(|m| ruby_error(loc, m))
}

fn read(path: &Path, from: Option<&Location>) -> Result<String, ConfigError> {
    super::read_file(path, from)
}

fn parse_into(text: &str, file: &Path, into: &mut Element, depth: usize, nest: usize) -> Result<(), ConfigError> {
    let mut p = Scanner {
        src: text.as_bytes(),
        text,
        pos: 0,
        line: 1,
        file: Arc::from(file.to_string_lossy().as_ref()),
        path: file.to_path_buf(),
        depth,
        special: false,
        nest,
    };
    p.body(into, None)
}

struct Scanner<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    line: u32,
    file: Arc<str>,
    path: PathBuf,
    /// How many includes deep this file is.
    depth: usize,
    /// Set when a double-quoted value used Fluentd's `use_nil` / `use_default`.
    special: bool,
    /// How many sections deep the scanner is (across includes).
    nest: usize,
}

impl Scanner<'_> {
    fn loc(&self) -> Location {
        Location { file: self.file.clone(), line: self.line }
    }

    fn err(&self, msg: impl Into<String>) -> ConfigError {
        ConfigError::at(&(self.loc()), msg)
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn at(&self, s: &str) -> bool {
        self.src[self.pos..].starts_with(s.as_bytes())
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn skip_to_eol(&mut self) {
        while let Some(c) = self.peek() {
            if c == b'\n' {
                break;
            }
            self.pos += 1;
        }
    }

    /// Whitespace, newlines and comments between statements.
    fn skip_space_and_comments(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => {
                    self.bump();
                }
                Some(b'#') => self.skip_to_eol(),
                _ => return,
            }
        }
    }

    /// After a complete statement only blanks and a comment may remain on the line.
    fn end_of_line(&mut self, what: &str) -> Result<(), ConfigError> {
        self.skip_blanks();
        match self.peek() {
            None | Some(b'\n') => Ok(()),
            Some(b'\r') if self.src.get(self.pos + 1) == Some(&b'\n') => Ok(()),
            Some(b'#') => {
                self.skip_to_eol();
                Ok(())
            }
            Some(_) => {
                let rest = self.rest_of_line();
                Err(self.err(format!("unexpected text '{rest}' after {what}")))
            }
        }
    }

    fn rest_of_line(&self) -> String {
        let end = memchr::memchr(b'\n', &self.src[self.pos..]).map_or(self.src.len(), |i| self.pos + i);
        self.text[self.pos..end].trim_end().to_string()
    }

    fn body(&mut self, elem: &mut Element, closing: Option<&Location>) -> Result<(), ConfigError> {
        loop {
            self.skip_space_and_comments();
            if self.peek().is_none() {
                if let Some(open) = closing {
                    return Err(ConfigError::at(
                        &open.clone(),
                        format!(
                            "section <{}> is not closed: expected </{}> before the end of the file",
                            elem.name, elem.name
                        ),
                    ));
                }
                return Ok(());
            }
            if self.at("</") {
                let loc = self.loc();
                self.pos += 2;
                let name = self.take_while(|c| c != b'>' && c != b'\n').trim().to_string();
                if self.peek() != Some(b'>') {
                    return Err(self.err(format!("expected '>' to end </{name}")));
                }
                self.pos += 1;
                if closing.is_none() {
                    return Err(ConfigError::at(&(loc), format!("unexpected </{name}>: no section is open")));
                }
                if name != elem.name {
                    return Err(ConfigError::at(
                        &loc,
                        format!("unmatched end tag </{name}>: expected </{}>", elem.name),
                    ));
                }
                self.end_of_line(&format!("</{name}>"))?;
                return Ok(());
            }
            if self.peek() == Some(b'<') {
                self.section(elem)?;
                continue;
            }
            self.parameter(elem)?;
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !f(c) {
                break;
            }
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn section(&mut self, parent: &mut Element) -> Result<(), ConfigError> {
        let loc = self.loc();
        self.pos += 1;
        let name = self.take_while(|c| !c.is_ascii_whitespace() && c != b'>').to_string();
        if name.is_empty() {
            return Err(self.err("expected a section name after '<'"));
        }
        self.skip_blanks();
        let arg = self.take_while(|c| c != b'>' && c != b'\n').trim().to_string();
        if self.peek() != Some(b'>') {
            return Err(ConfigError::at(&(loc), format!("expected '>' to end <{name}{}", sp(&arg))));
        }
        self.pos += 1;
        self.end_of_line(&format!("<{name}{}>", sp(&arg)))?;
        let arg = section_arg(arg, &loc)?;
        if self.nest >= MAX_SECTION_DEPTH {
            return Err(ConfigError::at(&loc, format!("sections nested more than {MAX_SECTION_DEPTH} deep")));
        }
        let mut child = Element::new(name, arg, loc.clone());
        self.nest += 1;
        let r = self.body(&mut child, Some(&loc));
        self.nest -= 1;
        r?;
        parent.children.push(child);
        Ok(())
    }

    fn parameter(&mut self, elem: &mut Element) -> Result<(), ConfigError> {
        let loc = self.loc();
        let key = match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                self.double_quoted()?
            }
            Some(b'\'') => {
                self.pos += 1;
                self.single_quoted()?
            }
            _ => self.take_while(|c| !c.is_ascii_whitespace()).to_string(),
        };
        self.skip_blanks();
        self.special = false;
        let value = match self.peek() {
            None | Some(b'\n' | b'#') => String::new(),
            Some(b'\r') => String::new(),
            _ => self.literal()?,
        };
        self.end_of_line(&format!("the value of '{key}'"))?;
        if key == "@include" || key == "include" {
            return self.include(&value, elem, &loc);
        }
        // `use_nil` / `use_default`: as if the parameter were not written.
        if !std::mem::take(&mut self.special) {
            elem.set(key, value, loc);
        }
        Ok(())
    }

    fn literal(&mut self) -> Result<String, ConfigError> {
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                self.double_quoted()
            }
            Some(b'\'') => {
                self.pos += 1;
                self.single_quoted()
            }
            Some(b'[') => self.json(b'[', b']'),
            Some(b'{') => self.json(b'{', b'}'),
            _ => Ok(self.non_quoted()),
        }
    }

    /// To the end of the line; a `#` after whitespace starts a comment, trailing blanks are dropped.
    fn non_quoted(&mut self) -> String {
        let start = self.pos;
        let mut end = self.pos;
        while let Some(c) = self.peek() {
            match c {
                b'\n' => break,
                b'#' if self.pos > start && matches!(self.src[self.pos - 1], b' ' | b'\t') => break,
                b' ' | b'\t' | b'\r' => self.pos += 1,
                _ => {
                    self.pos += 1;
                    end = self.pos;
                }
            }
        }
        self.text[start..end].to_string()
    }

    fn single_quoted(&mut self) -> Result<String, ConfigError> {
        let start_loc = self.loc();
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let Some(ch) = rest.chars().next() else {
                return Err(ConfigError::at(&(start_loc), "single-quoted string is not closed"));
            };
            if ch == '\'' {
                self.pos += 1;
                return Ok(out);
            }
            if rest.starts_with("\\'") || rest.starts_with("\\\\") {
                out.push(rest.as_bytes()[1] as char);
                self.pos += 2;
                continue;
            }
            self.advance_char(ch);
            out.push(ch);
        }
    }

    fn advance_char(&mut self, ch: char) {
        self.pos += ch.len_utf8();
        if ch == '\n' {
            self.line += 1;
        }
    }

    fn double_quoted(&mut self) -> Result<String, ConfigError> {
        let start_loc = self.loc();
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let Some(ch) = rest.chars().next() else {
                return Err(ConfigError::at(&(start_loc), "double-quoted string is not closed"));
            };
            match ch {
                '"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                '\\' => {
                    let Some(esc) = rest[1..].chars().next() else {
                        return Err(ConfigError::at(&(start_loc), "double-quoted string is not closed"));
                    };
                    out.push(self.escape(esc)?);
                    self.pos += 1;
                    self.advance_char(esc);
                }
                '#' if rest.starts_with("#{") => {
                    let loc = self.loc();
                    self.pos += 2;
                    let code = self.embedded_code(&loc)?;
                    match eval_config_code(&code, &loc)? {
                        RValue::UseNil | RValue::UseDefault => self.special = true,
                        v => v.write_to_s(&mut out),
                    }
                }
                _ => {
                    self.advance_char(ch);
                    out.push(ch);
                }
            }
        }
    }

    fn escape(&self, c: char) -> Result<char, ConfigError> {
        Ok(match c {
            'r' => '\r',
            'n' => '\n',
            't' => '\t',
            'f' => '\x0c',
            'b' => '\x08',
            'v' => '\x0b',
            'a' => '\x07',
            'e' => '\x1b',
            's' => ' ',
            '0' => '\0',
            c if c.is_ascii_alphanumeric() => {
                return Err(
                    self.err(format!("unexpected back-slash escape character '\\{c}' in a double-quoted string"))
                )
            }
            c => c,
        })
    }

    /// The code of `#{...}` up to its matching `}`, skipping braces inside Ruby string literals.
    fn embedded_code(&mut self, loc: &Location) -> Result<String, ConfigError> {
        let start = self.pos;
        let mut depth = 0usize;
        let mut quote: Option<u8> = None;
        while let Some(c) = self.peek() {
            match (quote, c) {
                (Some(_), b'\\') => {
                    self.bump();
                }
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, b'\'' | b'"') => quote = Some(c),
                (None, b'{') => depth += 1,
                (None, b'}') if depth == 0 => {
                    let code = self.text[start..self.pos].to_string();
                    self.pos += 1;
                    return Ok(code);
                }
                (None, b'}') => depth -= 1,
                _ => {}
            }
            self.bump();
        }
        Err(ConfigError::at(&(loc.clone()), "embedded code '#{' is not closed by '}'"))
    }

    /// A JSON array or hash that may span lines and hold `#` comments outside its strings. The value
    /// is kept as compact JSON, as Fluentd does, so typed parameters see the same text either way.
    fn json(&mut self, open: u8, close: u8) -> Result<String, ConfigError> {
        let start_loc = self.loc();
        let mut buf = String::new();
        let mut depth = 0usize;
        let mut in_str = false;
        loop {
            let rest = &self.text[self.pos..];
            let Some(ch) = rest.chars().next() else {
                let what = if open == b'[' { "array" } else { "hash" };
                return Err(ConfigError::at(
                    &start_loc,
                    format!("incomplete JSON {what}: the closing '{}' is missing", close as char),
                ));
            };
            if in_str {
                match ch {
                    '\\' => {
                        buf.push('\\');
                        self.pos += 1;
                        if let Some(n) = rest[1..].chars().next() {
                            buf.push(n);
                            self.advance_char(n);
                        }
                        continue;
                    }
                    '"' => in_str = false,
                    '#' if rest.starts_with("#{") => {
                        let loc = self.loc();
                        self.pos += 2;
                        let code = self.embedded_code(&loc)?;
                        let v = match eval_config_code(&code, &loc)? {
                            RValue::UseNil | RValue::UseDefault => {
                                return Err(ConfigError::at(&loc, "use_nil / use_default inside a JSON value")
                                    .with_hint("use them in a double-quoted parameter value"));
                            }
                            v => v.to_s(),
                        };
                        // The value lands inside a JSON string: escape it as one.
                        let quoted = serde_json::to_string(&v).unwrap_or_default();
                        buf.push_str(&quoted[1..quoted.len() - 1]);
                        continue;
                    }
                    _ => {}
                }
                buf.push(ch);
                self.advance_char(ch);
                continue;
            }
            match ch {
                '"' => in_str = true,
                '#' => {
                    self.skip_to_eol();
                    continue;
                }
                c if c as u32 == open as u32 => depth += 1,
                c if c as u32 == close as u32 => depth = depth.saturating_sub(1),
                '[' | '{' => depth += 1,
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            buf.push(ch);
            self.advance_char(ch);
            if depth == 0 {
                break;
            }
        }
        let v: serde_json::Value = serde_json::from_str(&buf)
            .map_err(|e| ConfigError::at(&(start_loc), format!("invalid JSON value: {e}")))?;
        Ok(v.to_string())
    }

    fn include(&mut self, pattern: &str, elem: &mut Element, loc: &Location) -> Result<(), ConfigError> {
        if pattern.is_empty() {
            return Err(ConfigError::at(&(loc.clone()), "@include needs a path"));
        }
        if pattern.starts_with("http://") || pattern.starts_with("https://") {
            return Err(ConfigError::at(loc, format!("@include of a URL ({pattern}) is not supported"))
                .with_hint("download the file and @include it by path"));
        }
        if self.depth >= MAX_INCLUDE_DEPTH {
            return Err(ConfigError::at(&(loc.clone()), format!("@include nested too deep (a loop?) at {pattern}")));
        }
        let base = self.path.parent().unwrap_or(Path::new("."));
        let full = if Path::new(pattern).is_absolute() { PathBuf::from(pattern) } else { base.join(pattern) };
        let full_s = full.to_string_lossy().to_string();
        // Fluentd globs every include (`Dir.glob(path).sort`): a pattern, or a plain path, that matches no
        // file includes nothing.
        let files: Vec<PathBuf> = if full_s.contains(['*', '?', '[']) {
            let mut v: Vec<PathBuf> = glob::glob(&full_s)
                .map_err(|e| ConfigError::at(&(loc.clone()), format!("bad @include pattern {pattern}: {e}")))?
                .filter_map(Result::ok)
                .filter(|p| !p.is_dir())
                .collect();
            v.sort();
            v
        } else if std::fs::symlink_metadata(&full).is_ok() {
            vec![full]
        } else {
            Vec::new()
        };
        for f in files {
            let text = read(&f, Some(loc))?;
            parse_into(&text, &f, elem, self.depth + 1, self.nest)?;
        }
        Ok(())
    }
}

fn sp(arg: &str) -> String {
    if arg.is_empty() {
        String::new()
    } else {
        format!(" {arg}")
    }
}

/// Fluentd reads a quoted section argument as a string literal: `<match "app.#{ENV['APP']}.**">`.
fn section_arg(raw: String, loc: &Location) -> Result<String, ConfigError> {
    let quoted = |q: char| raw.len() >= 2 && raw.starts_with(q) && raw.ends_with(q);
    if quoted('"') {
        return eval_double_quoted(&raw[1..raw.len() - 1], loc)?
            .ok_or_else(|| ConfigError::at(loc, "use_nil / use_default cannot stand in a section argument"));
    }
    if quoted('\'') {
        return Ok(raw[1..raw.len() - 1].replace("\\'", "'").replace("\\\\", "\\"));
    }
    Ok(raw)
}

fn ruby_error(loc: &Location, message: String) -> ConfigError {
    ConfigError::at(loc, message).with_hint("see \"Embedded Ruby\" in docs/config.md for what sluice evaluates")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Element, ConfigError> {
        parse_str(s, Path::new("t.conf"))
    }

    fn v<'a>(e: &'a Element, k: &str) -> &'a str {
        e.attrs.iter().find(|a| a.key == k).map(|a| a.value.as_str()).unwrap_or("<missing>")
    }

    #[test]
    fn directives_nested_sections_and_lines() {
        let root = parse(
            "# top comment\n<source>\n  @type tail\n  path /var/log/*.log # trailing\n  <parse>\n    @type json\n  </parse>\n</source>\n\n<match app.** other>\n  @type stdout\n</match>\n",
        )
        .unwrap();
        assert_eq!(root.children.len(), 2);
        let src = &root.children[0];
        assert_eq!((src.name.as_str(), src.loc.line), ("source", 2));
        assert_eq!(v(src, "path"), "/var/log/*.log");
        assert_eq!(src.attrs[1].loc.line, 4);
        assert_eq!(src.children[0].name, "parse");
        assert_eq!(v(&src.children[0], "@type"), "json");
        assert_eq!(root.children[1].arg, "app.** other");
        assert_eq!(root.children[1].loc.line, 10);
    }

    #[test]
    fn hash_inside_value_is_kept_unless_after_space() {
        let root = parse("<a>\n k1 val#ue\n k2 value # comment\n k3\n</a>").unwrap();
        let a = &root.children[0];
        assert_eq!(v(a, "k1"), "val#ue");
        assert_eq!(v(a, "k2"), "value");
        assert_eq!(v(a, "k3"), "");
    }

    #[test]
    fn quoted_strings_and_escapes() {
        let root = parse(
            "<a>\n d \"tab\\there\\n\\\"q\\\" \\\\ \\#{x}\"\n s 'it\\'s \\\\ \\n raw'\n m \"multi\nline\"\n after 1\n</a>",
        )
        .unwrap();
        let a = &root.children[0];
        assert_eq!(v(a, "d"), "tab\there\n\"q\" \\ #{x}");
        assert_eq!(v(a, "s"), "it's \\ \\n raw");
        assert_eq!(v(a, "m"), "multi\nline");
        assert_eq!(a.attrs[3].loc.line, 6);
    }

    #[test]
    fn bad_escape_is_an_error() {
        let e = parse("<a>\n d \"\\q\"\n</a>").unwrap_err();
        assert!(e.to_string().contains("t.conf:2"), "{e}");
    }

    #[test]
    fn embedded_env_and_hostname() {
        std::env::set_var("SLUICE_PARSER_TEST", "v1");
        std::env::remove_var("SLUICE_PARSER_UNSET");
        let root = parse(
            "<a>\n a \"#{ENV['SLUICE_PARSER_TEST']}-x\"\n b \"#{ENV.fetch('SLUICE_PARSER_UNSET', 'dflt')}\"\n c \"#{ENV[\"SLUICE_PARSER_UNSET\"]}\"\n d \"#{Socket.gethostname}\"\n e \"#{ENV['SLUICE_PARSER_UNSET'] || 'or'}\"\n f '#{ENV[\"X\"]}'\n</a>",
        )
        .unwrap();
        let a = &root.children[0];
        assert_eq!(v(a, "a"), "v1-x");
        assert_eq!(v(a, "b"), "dflt");
        assert_eq!(v(a, "c"), "");
        assert_eq!(v(a, "d"), crate::util::hostname());
        assert_eq!(v(a, "e"), "or");
        assert_eq!(v(a, "f"), "#{ENV[\"X\"]}");
    }

    #[test]
    fn other_ruby_is_an_error_with_the_line() {
        let e = parse("<a>\n\n x \"#{File.read('/etc/passwd')}\"\n</a>").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("t.conf:3") && s.contains("not supported"), "{s}");
        let e = parse("<a>\n x \"#{ENV.fetch('SLUICE_SURELY_UNSET_VAR')}\"\n</a>").unwrap_err();
        assert!(e.to_string().contains("SLUICE_SURELY_UNSET_VAR"), "{e}");
    }

    #[test]
    fn embedded_ruby_subset_in_values_and_section_arguments() {
        std::env::set_var("SLUICE_PARSER_T_REGION", "eu-west-1");
        std::env::remove_var("SLUICE_PARSER_T_UNSET");
        let root = parse(
            "<match \"app.#{ENV['SLUICE_PARSER_T_REGION'].split('-').first}.**\">\n              a \"#{ENV.fetch('SLUICE_PARSER_T_UNSET') { 'blk' }}\"\n              b \"#{ENV['SLUICE_PARSER_T_UNSET'] ? 'set' : 'unset'}\"\n              c \"#{File.join('/var/log', ENV['SLUICE_PARSER_T_REGION'].upcase)}\"\n              d \"#{ENV['SLUICE_PARSER_T_UNSET'] || use_default}\"\n              e \"prefix-#{use_nil}\"\n              f \"#{ENV['SLUICE_PARSER_T_REGION'] || use_nil}\"\n              g \"#{if ENV['SLUICE_PARSER_T_REGION'] =~ /^eu/ then 'EU' else 'other' end}\"\n\
             </match>\n",
        )
        .unwrap();
        let m = &root.children[0];
        assert_eq!(m.arg, "app.eu.**");
        assert_eq!(v(m, "a"), "blk");
        assert_eq!(v(m, "b"), "unset");
        assert_eq!(v(m, "c"), "/var/log/EU-WEST-1");
        // use_default / use_nil: the parameter is not set at all, so the plugin takes its default.
        assert!(!m.has("d") && !m.has("e"), "{:?}", m.attrs);
        assert_eq!(v(m, "f"), "eu-west-1");
        assert_eq!(v(m, "g"), "EU");
        assert!(m.unused_attrs().iter().all(|(_, a)| a.key != "d" && a.key != "e"));
    }

    #[test]
    fn unsupported_ruby_quotes_the_expression_and_names_the_construct() {
        let e = parse("<a>\n x 1\n y \"#{`id`}\"\n</a>").unwrap_err().to_string();
        assert!(e.starts_with("t.conf:3:") && e.contains("'#{`id`}'") && e.contains("backticks"), "{e}");
        let e = parse("<a>\n y \"#{[1].map { |x| x }}\"\n</a>").unwrap_err().to_string();
        assert!(e.starts_with("t.conf:2:") && e.contains("method 'map'"), "{e}");
        let e = parse("<a>\n y \"#{nil.downcase}\"\n</a>").unwrap_err().to_string();
        assert!(e.starts_with("t.conf:2:") && e.contains("undefined method 'downcase' for nil"), "{e}");
    }

    #[test]
    fn multi_line_json() {
        let root = parse(
            "<a>\n arr [\"a\",\n   \"b#c\", # note\n   1]\n h {\"k\": \"v\",\n  \"n\": {\"x\": 2}}\n next z\n</a>",
        )
        .unwrap();
        let a = &root.children[0];
        assert_eq!(v(a, "arr"), r#"["a","b#c",1]"#);
        assert_eq!(v(a, "h"), r#"{"k":"v","n":{"x":2}}"#);
        assert_eq!(v(a, "next"), "z");
        assert_eq!(a.attrs[2].loc.line, 7);
        let e = parse("<a>\n arr [1, 2\n</a>\n").unwrap_err();
        assert!(e.to_string().contains("t.conf:2"), "{e}");
    }

    #[test]
    fn unclosed_and_unmatched_sections() {
        let e = parse("<match **>\n  @type stdout\n").unwrap_err();
        assert!(e.to_string().starts_with("t.conf:1:"), "{e}");
        let e = parse("<match **>\n</filter>\n").unwrap_err();
        assert!(e.to_string().starts_with("t.conf:2:"), "{e}");
        let e = parse("</match>\n").unwrap_err();
        assert!(e.to_string().starts_with("t.conf:1:"), "{e}");
        let e = parse("<match **\n</match>\n").unwrap_err();
        assert!(e.to_string().starts_with("t.conf:1:"), "{e}");
    }

    #[test]
    fn include_files_and_globs_relative_to_the_includer() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf.d")).unwrap();
        std::fs::write(dir.path().join("conf.d/b.conf"), "<match b>\n @type null\n</match>\n").unwrap();
        std::fs::write(dir.path().join("conf.d/a.conf"), "<match a>\n @type null\n</match>\n").unwrap();
        std::fs::write(dir.path().join("params.conf"), "flush_interval 3s\n").unwrap();
        let main = dir.path().join("fluent.conf");
        std::fs::write(&main, "@include conf.d/*.conf\n<match c>\n @type x\n @include params.conf\n</match>\n")
            .unwrap();
        let root = parse_file(&main).unwrap();
        let args: Vec<&str> = root.children.iter().map(|c| c.arg.as_str()).collect();
        assert_eq!(args, ["a", "b", "c"]);
        assert!(root.children[0].loc.file.ends_with("conf.d/a.conf"));
        let c = &root.children[2];
        assert_eq!(v(c, "flush_interval"), "3s");
        assert!(c.attrs[1].loc.file.ends_with("params.conf"));
        // Fluentd globs every include: a missing file or an empty glob includes nothing.
        std::fs::write(&main, "\n@include missing.conf\n@include nothing/*.conf\n<match x>\n @type null\n</match>\n")
            .unwrap();
        assert_eq!(parse_file(&main).unwrap().children.len(), 1);
        std::fs::write(&main, "\n@include https://example.com/x.conf\n").unwrap();
        let e = parse_file(&main).unwrap_err().to_string();
        assert!(e.contains("fluent.conf:2") && e.contains("URL"), "{e}");
    }

    #[test]
    fn include_loop_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("loop.conf");
        std::fs::write(&main, "@include loop.conf\n").unwrap();
        assert!(parse_file(&main).unwrap_err().to_string().contains("too deep"));
    }

    #[test]
    fn crlf_line_endings() {
        let root = parse("<a>\r\n k v\r\n q \"x\"\r\n</a>\r\n").unwrap();
        assert_eq!(v(&root.children[0], "k"), "v");
        assert_eq!(v(&root.children[0], "q"), "x");
    }
}
