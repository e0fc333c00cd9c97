//! Parameter values: the literal forms (non-quoted to the end of the line, single-quoted, double-quoted with
//! escapes and `"#{...}"`, JSON arrays and hashes that may span lines) and the embedded Ruby they hold,
//! evaluated by the core's Ruby subset. YAML's `!fluent/s` strings come here too.
use super::{Collect, Scanner};
use crate::config::{ConfigError, Location, Special};
use crate::ruby::RValue;
use std::path::PathBuf;

/// What a double-quoted string gives.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Quoted {
    Text(String),
    Special(Special),
}

/// The inside of a double-quoted string (escapes and `"#{...}"`), for front ends that get the text
/// without its quotes (YAML's `!fluent/s`), so both syntaxes evaluate strings the same way.
pub(crate) fn eval_double_quoted(body: &str, loc: &Location) -> Result<Quoted, ConfigError> {
    let text = format!("{body}\"");
    let mut out = Collect::default();
    let mut p = Scanner::new(&text, loc.file.clone(), PathBuf::from(&*loc.file), 0, 0, &mut out);
    p.line = loc.line;
    let value = p.double_quoted()?;
    let (special, ended) = (p.special, p.pos == text.len());
    if let Some(e) = out.diag.errors.into_iter().next() {
        return Err(e);
    }
    if !ended {
        return Err(ConfigError::at(loc, "a '\"' ends the string early").with_hint("escape it as \\\""));
    }
    Ok(match special {
        Some(s) => Quoted::Special(s),
        None => Quoted::Text(value),
    })
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

/// Fluentd reads a quoted section argument as a string literal: `<match "app.#{ENV['APP']}.**">`.
pub(super) fn section_arg(raw: &str, loc: &Location) -> Result<String, ConfigError> {
    let quoted = |q: char| raw.len() >= 2 && raw.starts_with(q) && raw.ends_with(q);
    if quoted('"') {
        return match eval_double_quoted(&raw[1..raw.len() - 1], loc)? {
            Quoted::Text(t) => Ok(t),
            Quoted::Special(_) => Err(ConfigError::at(loc, "use_nil / use_default cannot stand in a section argument")),
        };
    }
    if quoted('\'') {
        return Ok(raw[1..raw.len() - 1].replace("\\'", "'").replace("\\\\", "\\"));
    }
    Ok(raw.to_string())
}

fn ruby_error(loc: &Location, message: String) -> ConfigError {
    ConfigError::at(loc, message).with_hint("see \"Embedded Ruby\" in docs/config.md for what sluice evaluates")
}

impl Scanner<'_> {
    /// A quoted string at the cursor (`"..."` with escapes and `#{...}`, or `'...'`), if one starts there.
    pub(super) fn quoted(&mut self) -> Option<Result<String, ConfigError>> {
        let double = match self.peek() {
            Some(b'"') => true,
            Some(b'\'') => false,
            _ => return None,
        };
        self.pos += 1;
        Some(if double { self.double_quoted() } else { self.single_quoted() })
    }

    pub(super) fn literal(&mut self) -> Result<String, ConfigError> {
        if let Some(q) = self.quoted() {
            return q;
        }
        match self.peek() {
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

    pub(super) fn single_quoted(&mut self) -> Result<String, ConfigError> {
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

    /// A double-quoted string after its opening quote. `Err` only when its end is not found; a bad
    /// escape or embedded code that fails is reported ([`Self::fail`]) and the scan goes on.
    pub(super) fn double_quoted(&mut self) -> Result<String, ConfigError> {
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
                    match self.escape(esc) {
                        Ok(c) => out.push(c),
                        Err(e) => self.fail(e),
                    }
                    self.pos += 1;
                    self.advance_char(esc);
                }
                '#' if rest.starts_with("#{") => {
                    let loc = self.loc();
                    self.pos += 2;
                    let code = self.embedded_code(&loc)?;
                    match eval_config_code(&code, &loc) {
                        Ok(RValue::UseNil) => self.special = Some(Special::Nil),
                        // Both in one string: nil wins, as in Fluentd (which checks for nil first).
                        Ok(RValue::UseDefault) => {
                            self.special.get_or_insert(Special::Default);
                        }
                        Ok(v) => v.write_to_s(&mut out),
                        Err(e) => self.fail(e),
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
    /// `Err` only when the closing bracket is missing; invalid JSON is reported and the scan goes on.
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
                            // Ruby's JSON parser, which Fluentd uses, accepts an unknown escape such as
                            // `\.` and keeps it as written (backslash and all): configurations write
                            // regexps that way (`annotation_match ["sumologic\.com.*"]`).
                            if !matches!(n, '"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't' | 'u') {
                                buf.push('\\');
                            }
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
                        let v = match eval_config_code(&code, &loc) {
                            Ok(RValue::UseNil | RValue::UseDefault) => {
                                self.fail(
                                    ConfigError::at(&loc, "use_nil / use_default inside a JSON value")
                                        .with_hint("use them in a double-quoted parameter value"),
                                );
                                continue;
                            }
                            Ok(v) => v.to_s(),
                            Err(e) => {
                                self.fail(e);
                                continue;
                            }
                        };
                        // The value lands inside a JSON string: escape it as one.
                        let quoted = serde_json::to_string(&v).unwrap_or_default();
                        buf.push_str(quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or_default());
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
        match serde_json::from_str::<serde_json::Value>(&buf) {
            Ok(v) => Ok(v.to_string()),
            Err(e) => {
                self.fail(ConfigError::at(&start_loc, format!("invalid JSON value: {e}")));
                Ok(buf)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse, v};
    use crate::config::Special;

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
        // use_default / use_nil replace the whole value: no value to read (see `Element` for the rest).
        assert!(!m.has("d") && !m.has("e"), "{:?}", m.attrs);
        assert_eq!(m.attrs[3].special, Some(Special::Default));
        assert_eq!(m.attrs[4].special, Some(Special::Nil));
        assert_eq!(v(m, "f"), "eu-west-1");
        assert_eq!(v(m, "g"), "EU");
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
        // An unknown escape is kept as written, as Ruby's JSON parser does; known ones are decoded.
        let root = parse("<a>\n r [\"sumologic\\.com.*\", \"t\\tx\\\\y\"]\n</a>").unwrap();
        let arr: Vec<String> = serde_json::from_str(v(&root.children[0], "r")).unwrap();
        assert_eq!(arr, ["sumologic\\.com.*", "t\tx\\y"]);
        assert_eq!(a.attrs[2].loc.line, 7);
        let e = parse("<a>\n arr [1, 2\n</a>\n").unwrap_err();
        assert!(e.to_string().contains("t.conf:2"), "{e}");
    }
}
