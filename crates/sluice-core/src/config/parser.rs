//! The Fluentd (v1) syntax front end: text → [`Element`] tree.
//!
//! It follows Fluentd's own parser: `#` starts a comment at the start of a line or after whitespace;
//! values are non-quoted (to the end of the line), single-quoted, double-quoted (with escapes and
//! `#{...}`), or JSON arrays/hashes that may span lines; `@include` pulls other files (or a glob of
//! them, relative to the including file) into the current section. Embedded Ruby (`"#{...}"`) is
//! evaluated by the core's Ruby subset ([`crate::ruby`]); code outside it is an error naming the line
//! and the missing construct, never silently kept as text. `use_nil` sets the whole parameter to nil
//! and `use_default` to its default ([`Element::set_special`]).
//!
//! Unlike Fluentd, which stops at the first problem, the parser recovers and goes on, so `--dry-run`
//! lists every error of the file at once: a bad value or line marks its section
//! ([`Element::parse_failed`]) and parsing resumes on the next line; an end tag that closes an
//! enclosing section closes the sections left open inside it; a stray end tag is skipped.
mod values;

use super::{ConfigError, Diagnostics, Element, Location, Special};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use values::section_arg;
pub use values::take_unset_env_refs;
pub(crate) use values::{eval_double_quoted, Quoted};

/// Includes nested deeper than this are a loop.
const MAX_INCLUDE_DEPTH: usize = 32;
/// Sections nested deeper than this are an error (real configurations nest 3 or 4 deep); without a
/// bound, hostile nesting would overflow the stack.
pub const MAX_SECTION_DEPTH: usize = 64;
/// After this many errors the parser stops reading: a file that is not a configuration at all would
/// otherwise give one error per line.
pub const MAX_ERRORS: usize = 100;

/// A parsed configuration with every problem the front end found.
#[derive(Debug)]
pub struct Parsed {
    /// The tree as far as it could be read; sections holding an error have `parse_failed` set.
    pub root: Element,
    pub diagnostics: Diagnostics,
    /// False when sections were not closed where they should be: which directive holds which line is
    /// then a guess, so nothing should be built from the tree.
    pub structure_ok: bool,
}

/// What a parse collects besides the tree (shared by a file and the files it includes).
#[derive(Default)]
struct Collect {
    diag: Diagnostics,
    structure_ok: bool,
    /// Set after a fatal problem (an include loop, nesting too deep, too many errors): stop reading.
    abandoned: bool,
}

/// Parse everything, collecting every error (see [`Parsed`]).
pub fn parse_str_all(text: &str, file: &Path) -> Parsed {
    let mut root = Element::new("ROOT", "", Location::new(file, 1));
    let mut out = Collect { structure_ok: true, ..Default::default() };
    parse_into(text, file, &mut root, 0, 0, &mut out);
    Parsed { root, diagnostics: out.diag, structure_ok: out.structure_ok }
}

/// [`parse_str_all`] on a file; a file that cannot be read is one error and an empty tree.
pub fn parse_file_all(path: &Path) -> Parsed {
    match read(path, None) {
        Ok(text) => parse_str_all(&text, path),
        Err(e) => {
            let mut diagnostics = Diagnostics::default();
            diagnostics.error(e);
            Parsed { root: Element::new("ROOT", "", Location::new(path, 1)), diagnostics, structure_ok: false }
        }
    }
}

/// The tree, or the first error (for callers that only need a valid configuration).
pub fn parse_str(text: &str, file: &Path) -> Result<Element, ConfigError> {
    first_error(parse_str_all(text, file))
}

pub fn parse_file(path: &Path) -> Result<Element, ConfigError> {
    first_error(parse_file_all(path))
}

fn first_error(mut p: Parsed) -> Result<Element, ConfigError> {
    if p.diagnostics.errors.is_empty() {
        Ok(p.root)
    } else {
        Err(p.diagnostics.errors.swap_remove(0))
    }
}

fn read(path: &Path, from: Option<&Location>) -> Result<String, ConfigError> {
    super::read_file(path, from)
}

fn parse_into(text: &str, file: &Path, into: &mut Element, depth: usize, nest: usize, out: &mut Collect) {
    let mut p = Scanner::new(text, Arc::from(file.to_string_lossy().as_ref()), file.to_path_buf(), depth, nest, out);
    p.body(into, None);
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
    special: Option<Special>,
    /// Set when the current value had an error that was reported (it is not stored).
    value_failed: bool,
    /// How many sections deep the scanner is (across includes).
    nest: usize,
    /// The names of the sections open in this file, outermost first.
    open: Vec<String>,
    out: &'a mut Collect,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str, file: Arc<str>, path: PathBuf, depth: usize, nest: usize, out: &'a mut Collect) -> Self {
        Scanner {
            src: text.as_bytes(),
            text,
            pos: 0,
            line: 1,
            file,
            path,
            depth,
            special: None,
            value_failed: false,
            nest,
            open: Vec::new(),
            out,
        }
    }
}

impl Scanner<'_> {
    fn loc(&self) -> Location {
        Location { file: self.file.clone(), line: self.line }
    }

    fn err(&self, msg: impl Into<String>) -> ConfigError {
        ConfigError::at(&(self.loc()), msg)
    }

    /// Record an error and keep going (up to [`MAX_ERRORS`]).
    fn report(&mut self, e: ConfigError) {
        if self.out.abandoned {
            return;
        }
        self.out.diag.error(e);
        if self.out.diag.errors.len() >= MAX_ERRORS {
            let loc = self.loc();
            self.out.diag.error(ConfigError::at(&loc, format!("{MAX_ERRORS} errors: stopped reading here")));
            self.out.abandoned = true;
        }
    }

    /// An error in the sections' structure: the tree is then not built from.
    fn structural(&mut self, e: ConfigError) {
        self.out.structure_ok = false;
        self.report(e);
    }

    /// An error in the value being read: reported, and the value is not stored.
    fn fail(&mut self, e: ConfigError) {
        self.value_failed = true;
        self.report(e);
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

    /// After a complete statement only blanks and a comment may remain on the line. Anything else is
    /// reported and skipped; false then.
    fn end_of_line(&mut self, what: &str) -> bool {
        self.skip_blanks();
        match self.peek() {
            None | Some(b'\n') => true,
            Some(b'\r') if self.src.get(self.pos + 1) == Some(&b'\n') => true,
            Some(b'#') => {
                self.skip_to_eol();
                true
            }
            Some(_) => {
                let rest = self.rest_of_line();
                let e = self.err(format!("unexpected text '{rest}' after {what}"));
                self.report(e);
                self.skip_to_eol();
                false
            }
        }
    }

    fn rest_of_line(&self) -> String {
        let end = memchr::memchr(b'\n', &self.src[self.pos..]).map_or(self.src.len(), |i| self.pos + i);
        self.text[self.pos..end].trim_end().to_string()
    }

    /// A value whose end was not found (an unclosed string): report it and resume on the line after
    /// the one it started on, as if that line were not there.
    fn unterminated(&mut self, e: ConfigError, start: (usize, u32)) {
        self.report(e);
        (self.pos, self.line) = start;
        self.skip_to_eol();
    }

    fn body(&mut self, elem: &mut Element, closing: Option<&Location>) {
        loop {
            if self.out.abandoned {
                return;
            }
            self.skip_space_and_comments();
            if self.peek().is_none() {
                if let Some(open) = closing {
                    self.structural(ConfigError::at(
                        open,
                        format!(
                            "section <{}> is not closed: expected </{}> before the end of the file",
                            elem.name, elem.name
                        ),
                    ));
                }
                return;
            }
            if self.at("</") {
                if self.end_tag(elem, closing) {
                    return;
                }
                continue;
            }
            if self.peek() == Some(b'<') {
                self.section(elem);
                continue;
            }
            self.parameter(elem);
        }
    }

    /// An end tag inside `elem`: true when `elem` ends here (by its own tag, or by one that closes an
    /// enclosing section, which is then left for that section to read).
    fn end_tag(&mut self, elem: &mut Element, closing: Option<&Location>) -> bool {
        let start = (self.pos, self.line);
        let loc = self.loc();
        self.pos += 2;
        let name = self.take_while(|c| c != b'>' && c != b'\n').trim().to_string();
        if self.peek() == Some(b'>') {
            self.pos += 1;
        } else {
            let e = self.err(format!("expected '>' to end </{name}"));
            self.report(e);
        }
        let Some(open) = closing else {
            self.structural(ConfigError::at(&loc, format!("unexpected </{name}>: no section is open")));
            self.skip_to_eol();
            return false;
        };
        if name == elem.name {
            self.end_of_line(&format!("</{name}>"));
            return true;
        }
        let encloses = self.open.len() > 1 && self.open[..self.open.len() - 1].contains(&name);
        if encloses {
            self.structural(
                ConfigError::at(
                    open,
                    format!(
                        "section <{}> is not closed: </{name}> at line {} ends an enclosing section first",
                        elem.name, loc.line
                    ),
                )
                .with_hint(format!("add </{}> before it", elem.name)),
            );
            (self.pos, self.line) = start;
            return true;
        }
        self.structural(ConfigError::at(&loc, format!("unmatched end tag </{name}>: expected </{}>", elem.name)));
        self.skip_to_eol();
        false
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

    fn section(&mut self, parent: &mut Element) {
        let loc = self.loc();
        self.pos += 1;
        let name = self.take_while(|c| !c.is_ascii_whitespace() && c != b'>').to_string();
        if name.is_empty() {
            let e = self.err("expected a section name after '<'");
            self.report(e);
            parent.parse_failed = true;
            self.skip_to_eol();
            return;
        }
        self.skip_blanks();
        let arg = self.take_while(|c| c != b'>' && c != b'\n').trim().to_string();
        let mut failed = if self.peek() == Some(b'>') {
            self.pos += 1;
            !self.end_of_line(&format!("<{name}{}>", sp(&arg)))
        } else {
            // Read it as the section it was meant to be: its end tag then closes it.
            self.report(ConfigError::at(&loc, format!("expected '>' to end <{name}{}", sp(&arg))));
            true
        };
        let arg = match section_arg(&arg, &loc) {
            Ok(a) => a,
            Err(e) => {
                self.report(e);
                failed = true;
                arg
            }
        };
        if self.nest >= MAX_SECTION_DEPTH {
            self.structural(ConfigError::at(&loc, format!("sections nested more than {MAX_SECTION_DEPTH} deep")));
            self.out.abandoned = true;
            return;
        }
        let mut child = Element::new(name.clone(), arg, loc.clone());
        child.parse_failed = failed;
        self.nest += 1;
        self.open.push(name);
        self.body(&mut child, Some(&loc));
        self.open.pop();
        self.nest -= 1;
        parent.children.push(child);
    }

    fn parameter(&mut self, elem: &mut Element) {
        let loc = self.loc();
        let start = (self.pos, self.line);
        self.special = None;
        self.value_failed = false;
        let key = match self.quoted() {
            Some(q) => q,
            None => Ok(self.take_while(|c| !c.is_ascii_whitespace()).to_string()),
        };
        let key = match key {
            Ok(k) => k,
            Err(e) => {
                self.unterminated(e, start);
                elem.parse_failed = true;
                return;
            }
        };
        if self.special.take().is_some() {
            self.fail(ConfigError::at(&loc, "use_nil / use_default cannot stand in a parameter name"));
        }
        self.skip_blanks();
        let value = match self.peek() {
            None | Some(b'\n' | b'#' | b'\r') => Ok(String::new()),
            _ => self.literal(),
        };
        let value = match value {
            Ok(v) => v,
            Err(e) => {
                self.unterminated(e, start);
                elem.parse_failed = true;
                return;
            }
        };
        let line_ok = self.end_of_line(&format!("the value of '{key}'"));
        if !line_ok || self.value_failed {
            elem.parse_failed = true;
            return;
        }
        if key == "@include" || key == "include" {
            return self.include(&value, elem, &loc);
        }
        // A special value replaces an earlier line of the same parameter too: the last one written wins.
        match self.special.take() {
            None => elem.set(key, value, loc),
            Some(special) => elem.set_special(key, special, loc),
        }
    }

    fn include(&mut self, pattern: &str, elem: &mut Element, loc: &Location) {
        if pattern.is_empty() {
            self.report(ConfigError::at(loc, "@include needs a path"));
            return;
        }
        if pattern.starts_with("http://") || pattern.starts_with("https://") {
            self.report(
                ConfigError::at(loc, format!("@include of a URL ({pattern}) is not supported"))
                    .with_hint("download the file and @include it by path"),
            );
            elem.parse_failed = true;
            return;
        }
        if self.depth >= MAX_INCLUDE_DEPTH {
            // A loop: reading on would only repeat it (and a file that includes itself twice doubles
            // the work at every level).
            self.report(ConfigError::at(loc, format!("@include nested too deep (a loop?) at {pattern}")));
            self.out.abandoned = true;
            return;
        }
        let base = self.path.parent().unwrap_or(Path::new("."));
        let full = if Path::new(pattern).is_absolute() { PathBuf::from(pattern) } else { base.join(pattern) };
        let full_s = full.to_string_lossy().to_string();
        // Fluentd globs every include (`Dir.glob(path).sort`): a pattern, or a plain path, that matches no
        // file includes nothing.
        let files: Vec<PathBuf> = if full_s.contains(['*', '?', '[']) {
            match glob::glob(&full_s) {
                Ok(paths) => {
                    let mut v: Vec<PathBuf> = paths.filter_map(Result::ok).filter(|p| !p.is_dir()).collect();
                    v.sort();
                    v
                }
                Err(e) => {
                    self.report(ConfigError::at(loc, format!("bad @include pattern {pattern}: {e}")));
                    elem.parse_failed = true;
                    return;
                }
            }
        } else if std::fs::symlink_metadata(&full).is_ok() {
            vec![full]
        } else {
            self.out.diag.warn(ConfigError::at(
                loc,
                format!("@include {pattern}: no such file ({}), so nothing is included, as in Fluentd", full_s),
            ));
            Vec::new()
        };
        for f in files {
            if self.out.abandoned {
                return;
            }
            match read(&f, Some(loc)) {
                Ok(text) => parse_into(&text, &f, elem, self.depth + 1, self.nest, self.out),
                Err(e) => {
                    self.report(e);
                    elem.parse_failed = true;
                }
            }
        }
    }
}

fn sp(arg: &str) -> String {
    if arg.is_empty() {
        String::new()
    } else {
        format!(" {arg}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn parse(s: &str) -> Result<Element, ConfigError> {
        parse_str(s, Path::new("t.conf"))
    }

    pub(super) fn v<'a>(e: &'a Element, k: &str) -> &'a str {
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

    fn all(s: &str) -> Parsed {
        parse_str_all(s, Path::new("t.conf"))
    }

    fn lines(p: &Parsed) -> Vec<u32> {
        p.diagnostics.errors.iter().map(|e| e.loc.as_ref().map_or(0, |l| l.line)).collect()
    }

    #[test]
    fn every_value_error_is_reported_and_the_rest_is_read() {
        std::env::remove_var("SLUICE_PARSER_T_ALL_UNSET");
        let p = all("<source>\n  @type tail\n  path \"#{File.read('/x')}\"\n  tag ok\n</source>\n\
             <match a>\n  @type stdout\n  x \"#{ENV.fetch('SLUICE_PARSER_T_ALL_UNSET')}\"\n  y \"bad \\q\"\n  z [1, 2,]\n\
             \x20 w 1 2 \"3\" extra\n</match>\n<match b>\n  @type null\n</match>\n");
        assert!(p.structure_ok);
        assert_eq!(lines(&p), [3, 8, 9, 10], "{:?}", p.diagnostics.errors);
        let errs: Vec<String> = p.diagnostics.errors.iter().map(ToString::to_string).collect();
        assert!(errs[0].contains("File.read") && errs[1].contains("SLUICE_PARSER_T_ALL_UNSET"), "{errs:?}");
        assert!(errs[2].contains("'\\q'") && errs[3].contains("invalid JSON"), "{errs:?}");
        let [src, a, b] = &p.root.children[..] else { panic!("{:?}", p.root.children) };
        // The sections holding an error are marked, the values that failed are not stored, the rest is.
        assert!(src.parse_failed && a.parse_failed && !b.parse_failed);
        assert!(!src.has("path") && v(src, "tag") == "ok");
        assert!(!a.has("x") && !a.has("y") && !a.has("z") && v(a, "w") == "1 2 \"3\" extra");
        assert_eq!(v(b, "@type"), "null");
    }

    #[test]
    fn unclosed_string_resumes_on_the_next_line() {
        let p = all("<a>\n k 'open\n j \"also open\n m 1\n</a>\n");
        assert_eq!(lines(&p), [2, 3]);
        assert!(p.structure_ok);
        let a = &p.root.children[0];
        assert!(a.parse_failed && v(a, "m") == "1" && !a.has("k") && !a.has("j"));
    }

    #[test]
    fn section_errors_recover_at_the_right_end_tag() {
        // <parse> is left open: </source> closes it and the source; the next directive is read whole.
        let p =
            all("<source>\n  @type tail\n  <parse>\n    @type json\n</source>\n<match **>\n  @type null\n</match>\n");
        assert!(!p.structure_ok);
        assert_eq!(lines(&p), [3]);
        assert!(p.diagnostics.errors[0].to_string().contains("<parse> is not closed: </source> at line 5"));
        assert_eq!(p.root.children.len(), 2);
        assert_eq!((p.root.children[1].name.as_str(), p.root.children[1].arg.as_str()), ("match", "**"));
        // A stray end tag, one that matches nothing open, a header without '>' and an unclosed section.
        let p = all("</x>\n<match a>\n</filter>\n</match>\n<match b\n</match>\n<filter c>\n");
        assert_eq!(lines(&p), [1, 3, 5, 7], "{:?}", p.diagnostics.errors);
        let args: Vec<&str> = p.root.children.iter().map(|c| c.arg.as_str()).collect();
        assert_eq!(args, ["a", "b", "c"]);
        assert!(p.root.children[1].parse_failed);
    }

    #[test]
    fn errors_in_includes_carry_their_file_and_a_missing_include_warns() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inc.conf"), "<match i>\n  @type null\n  k \"#{`id`}\"\n</match>\n").unwrap();
        std::fs::create_dir(dir.path().join("adir")).unwrap();
        let main = dir.path().join("fluent.conf");
        std::fs::write(
            &main,
            "@include inc.conf\n@include missing.conf\n@include adir\n<match x>\n  a \"#{nil.x}\"\n</match>\n",
        )
        .unwrap();
        let p = parse_file_all(&main);
        let errs: Vec<String> = p.diagnostics.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].contains("inc.conf:3:") && errs[0].contains("backticks"), "{errs:?}");
        assert!(errs[1].contains("fluent.conf:3:") && errs[1].contains("not a regular file"), "{errs:?}");
        assert!(errs[2].contains("fluent.conf:5:"), "{errs:?}");
        let warns: Vec<String> = p.diagnostics.warnings.iter().map(ToString::to_string).collect();
        assert!(warns.len() == 1 && warns[0].contains("fluent.conf:2:") && warns[0].contains("missing.conf"));
        assert_eq!(p.root.children.len(), 2);
    }

    #[test]
    fn a_file_of_garbage_stops_after_the_error_limit() {
        let text = "</x>\n".repeat(10_000);
        let p = all(&text);
        assert_eq!(p.diagnostics.errors.len(), MAX_ERRORS + 1);
        assert!(p.diagnostics.errors[MAX_ERRORS].to_string().contains("stopped reading"));
    }

    #[test]
    fn crlf_line_endings() {
        let root = parse("<a>\r\n k v\r\n q \"x\"\r\n</a>\r\n").unwrap();
        assert_eq!(v(&root.children[0], "k"), "v");
        assert_eq!(v(&root.children[0], "q"), "x");
    }
}
