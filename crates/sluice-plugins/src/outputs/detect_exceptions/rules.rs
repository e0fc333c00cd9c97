//! The exception detector of fluent-plugin-detect-exceptions: a state machine per language whose
//! transitions are regexps tried on each line in order. The rule tables follow the plugin's
//! `exception_detector.rb` (same states, patterns and order), so a line is grouped exactly as there.
use sluice_core::ruby::regexp::{RubyFlags, RubyRegex};
use std::collections::HashMap;
use std::sync::Arc;

/// The start state: no trace seen.
const START: &str = "start_state";

// Ruby's `^` does not match at the very end of a text that ends with "\n" ("at\n" has no empty line
// after it); ours does. The plugin's two patterns that can match an empty line are therefore spelled
// out so that they match exactly what Ruby's do, on lines with or without their newline.
/// Ruby's `/^$/`.
const EMPTY_LINE: &str = r"\A\z|^\n";
/// Ruby's `/^[\r\n]*$/`.
const BLANK_LINE: &str = r"\A[\r\n]*\z|^\r*\n|^[\r\n]+\z";

/// One rule: from any of `from`, a line matching `pattern` moves to `to`.
struct Rule {
    from: &'static [&'static str],
    pattern: &'static str,
    to: &'static str,
}

const fn r(from: &'static [&'static str], pattern: &'static str, to: &'static str) -> Rule {
    Rule { from, pattern, to }
}

const JAVA: &[Rule] = &[
    r(
        &[START, "java_start_exception"],
        r"(?:Exception|Error|Throwable|V8 errors stack trace)[:\r\n]",
        "java_after_exception",
    ),
    r(&["java_after_exception"], r"^[\t ]*nested exception is:[\t ]*", "java_start_exception"),
    r(&["java_after_exception"], BLANK_LINE, "java_after_exception"),
    r(&["java_after_exception", "java"], r"^[\t ]+(?:eval )?at ", "java"),
    // C#: a nested exception and an exception thrown from async code.
    r(&["java_after_exception", "java"], r"^[\t ]+--- End of inner exception stack trace ---$", "java"),
    r(
        &["java_after_exception", "java"],
        r"^--- End of stack trace from previous location where exception was thrown ---$",
        "java",
    ),
    r(&["java_after_exception", "java"], r"^[\t ]*(?:Caused by|Suppressed):", "java_after_exception"),
    r(&["java_after_exception", "java"], r"^[\t ]*... \d+ (?:more|common frames omitted)", "java"),
];

const PYTHON: &[Rule] = &[
    r(&[START], r"^Traceback \(most recent call last\):$", "python"),
    r(&["python"], r"^[\t ]+File ", "python_code"),
    r(&["python_code"], r"[^\t ]", "python"),
    r(&["python"], r"^(?:[^\s.():]+\.)*[^\s.():]+:", START),
    // sluice addition: Python 3.11+ marks the failing expression with a line of `^` (and `~`); the
    // plugin's rules end the trace there, which splits every modern traceback.
    r(&["python"], r"^[\t ]*[~^]+[\t ]*$", "python"),
];

const PHP: &[Rule] = &[
    r(
        &[START],
        r"(?:PHP (?:Notice|Parse error|Fatal error|Warning):)|(?:exception '[^']+' with message ')",
        "php_stack_begin",
    ),
    r(&["php_stack_begin"], r"^Stack trace:", "php_stack_frames"),
    r(&["php_stack_frames"], r"^#\d", "php_stack_frames"),
    r(&["php_stack_frames"], r"^\s+thrown in ", START),
];

const GO: &[Rule] = &[
    r(&[START], r"\bpanic: ", "go_after_panic"),
    r(&[START], r"http: panic serving", "go_goroutine"),
    r(&["go_after_panic"], EMPTY_LINE, "go_goroutine"),
    r(&["go_after_panic", "go_after_signal", "go_frame_line1"], EMPTY_LINE, "go_goroutine"),
    r(&["go_after_panic"], r"^\[signal ", "go_after_signal"),
    r(&["go_goroutine"], r"^goroutine \d+ \[[^\]]+\]:$", "go_frame_line1"),
    r(&["go_frame_line1"], r"^(?:[^\s.:]+\.)*[^\s.():]+\(|^created by ", "go_frame_line2"),
    r(&["go_frame_line2"], r"^\s", "go_frame_line1"),
];

const RUBY: &[Rule] = &[
    r(&[START], r"Error \(.*\):$", "ruby_before_rails_trace"),
    r(&["ruby_before_rails_trace"], r"^  $", "ruby"),
    r(&["ruby_before_rails_trace"], r"^[\t ]+.*?\.rb:\d+:in `", "ruby"),
    r(&["ruby"], r"^[\t ]+.*?\.rb:\d+:in `", "ruby"),
];

const DART: &[Rule] = &[
    r(&[START], r"^Unhandled exception:$", "dart_exc"),
    r(&["dart_exc"], r"^Instance of", "dart_stack"),
    r(&["dart_exc"], r"^Exception", "dart_stack"),
    r(&["dart_exc"], r"^Bad state", "dart_stack"),
    r(&["dart_exc"], r"^IntegerDivisionByZeroException", "dart_stack"),
    r(&["dart_exc"], r"^Invalid argument", "dart_stack"),
    r(&["dart_exc"], r"^RangeError", "dart_stack"),
    r(&["dart_exc"], r"^Assertion failed", "dart_stack"),
    r(&["dart_exc"], r"^Cannot instantiate", "dart_stack"),
    r(&["dart_exc"], r"^Reading static variable", "dart_stack"),
    r(&["dart_exc"], r"^UnimplementedError", "dart_stack"),
    r(&["dart_exc"], r"^Unsupported operation", "dart_stack"),
    r(&["dart_exc"], r"^Concurrent modification", "dart_stack"),
    r(&["dart_exc"], r"^Out of Memory", "dart_stack"),
    r(&["dart_exc"], r"^Stack Overflow", "dart_stack"),
    r(&["dart_exc"], r"^'.+?':.+?$", "dart_type_err_line1"),
    r(&["dart_type_err_line1"], r"^#\d+\s+.+?\(.+?\)$", "dart_stack"),
    r(&["dart_type_err_line1"], r"^.+?$", "dart_type_err_line2"),
    r(&["dart_type_err_line2"], r"^.*?\^.*?$", "dart_type_err_line3"),
    r(&["dart_type_err_line3"], EMPTY_LINE, "dart_type_err_line4"),
    r(&["dart_type_err_line4"], EMPTY_LINE, "dart_stack"),
    r(&["dart_exc"], r"^FormatException", "dart_format_err_line1"),
    r(&["dart_format_err_line1"], r"^#\d+\s+.+?\(.+?\)$", "dart_stack"),
    r(&["dart_format_err_line1"], r"^.", "dart_format_err_line2"),
    r(&["dart_format_err_line2"], r"^.*?\^", "dart_format_err_line3"),
    r(&["dart_format_err_line3"], EMPTY_LINE, "dart_stack"),
    r(&["dart_exc"], r"^NoSuchMethodError:", "dart_method_err_line1"),
    r(&["dart_method_err_line1"], r"^Receiver:", "dart_method_err_line2"),
    r(&["dart_method_err_line2"], r"^Tried calling:", "dart_method_err_line3"),
    r(&["dart_method_err_line3"], r"^Found:", "dart_stack"),
    r(&["dart_method_err_line3"], r"^#\d+\s+.+?\(.+?\)$", "dart_stack"),
    r(&["dart_stack"], r"^#\d+\s+.+?\(.+?\)$", "dart_stack"),
    r(&["dart_stack"], r"^<asynchronous suspension>$", "dart_stack"),
];

/// Language names the plugin accepts, with their rule tables (`all` is every table in this order).
const ALL: &[&[Rule]] = &[JAVA, PYTHON, PHP, GO, RUBY, DART];

fn tables(lang: &str) -> Option<&'static [&'static [Rule]]> {
    Some(match lang {
        "java" | "javascript" | "js" | "csharp" => &ALL[0..1],
        "py" | "python" => &ALL[1..2],
        "php" => &ALL[2..3],
        "go" => &ALL[3..4],
        "rb" | "ruby" => &ALL[4..5],
        "dart" => &ALL[5..6],
        "all" => ALL,
        _ => return None,
    })
}

/// The names `languages` accepts.
pub const LANGUAGES: &[&str] =
    &["java", "javascript", "js", "csharp", "py", "python", "php", "go", "rb", "ruby", "dart", "all"];

/// The compiled transitions for a set of languages, shared by every stream's detector.
pub struct RuleSet {
    /// State name to its transitions in order: (regexp, target state).
    by_state: HashMap<&'static str, Vec<(Arc<RubyRegex>, &'static str)>>,
}

impl RuleSet {
    /// The rules of `languages` (all when empty). An unknown name is an error naming it.
    pub fn new(languages: &[String]) -> Result<Self, String> {
        let all = ["all".to_string()];
        let langs = if languages.is_empty() { &all[..] } else { languages };
        let mut compiled: HashMap<&'static str, Arc<RubyRegex>> = HashMap::new();
        let mut by_state: HashMap<&'static str, Vec<(Arc<RubyRegex>, &'static str)>> = HashMap::new();
        for lang in langs {
            let lang = lang.trim().to_lowercase();
            let t = tables(&lang).ok_or_else(|| format!("Unknown language: {lang}"))?;
            for rule in t.iter().flat_map(|t| t.iter()) {
                let re = match compiled.get(rule.pattern) {
                    Some(re) => re.clone(),
                    None => {
                        let re =
                            Arc::new(RubyRegex::new(rule.pattern, RubyFlags::default()).map_err(|e| format!("{e}"))?);
                        compiled.insert(rule.pattern, re.clone());
                        re
                    }
                };
                for from in rule.from {
                    let v = by_state.entry(from).or_default();
                    // The plugin keeps each (pattern, target) once per state.
                    if !v.iter().any(|(p, to)| p.source() == rule.pattern && *to == rule.to) {
                        v.push((re.clone(), rule.to));
                    }
                }
            }
        }
        Ok(RuleSet { by_state })
    }
}

/// What a line means for the trace being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    NoTrace,
    StartTrace,
    InsideTrace,
    EndTrace,
}

/// One stream's position in the state machine.
pub struct Detector {
    rules: Arc<RuleSet>,
    state: &'static str,
}

impl Detector {
    pub fn new(rules: Arc<RuleSet>) -> Self {
        Detector { rules, state: START }
    }

    pub fn reset(&mut self) {
        self.state = START;
    }

    /// Feed one line and say where it stands.
    pub fn update(&mut self, line: &str) -> Status {
        let before = self.transition(line);
        // Fell back to the start: the line may begin another trace.
        if !before {
            self.transition(line);
        }
        let after = self.state != START;
        match (before, after) {
            (true, true) => Status::InsideTrace,
            (true, false) => Status::EndTrace,
            (false, true) => Status::StartTrace,
            (false, false) => Status::NoTrace,
        }
    }

    /// One transition; false (and back to the start) when no rule of the current state matches.
    fn transition(&mut self, line: &str) -> bool {
        if let Some(rules) = self.rules.by_state.get(self.state) {
            for (re, to) in rules {
                if re.is_match(line) {
                    self.state = to;
                    return true;
                }
            }
        }
        self.state = START;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status of each line of `text` through a fresh detector for `langs`.
    fn statuses(langs: &[&str], text: &str) -> Vec<Status> {
        let rules = Arc::new(RuleSet::new(&langs.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("rules"));
        let mut d = Detector::new(rules);
        text.lines().map(|l| d.update(l)).collect()
    }

    #[test]
    fn every_language_name_builds() {
        for l in LANGUAGES {
            assert!(RuleSet::new(&[l.to_string()]).is_ok(), "{l}");
        }
        assert_eq!(RuleSet::new(&["cobol".into()]).err(), Some("Unknown language: cobol".into()));
        assert!(RuleSet::new(&["Java".into()]).is_ok(), "names are case-insensitive");
    }

    #[test]
    fn java_caused_by_and_more() {
        use Status::*;
        let s = statuses(
            &["java"],
            "java.lang.IllegalStateException: outer\n\tat A.b(A.java:1)\nCaused by: java.io.IOException: inner\n\t... 3 more\nnext line",
        );
        // As in the plugin, a trace's first line reads as "inside" from the start state; "start" means a
        // line that ended one trace and began another.
        assert_eq!(s, vec![InsideTrace, InsideTrace, InsideTrace, InsideTrace, NoTrace]);
    }

    #[test]
    fn python_traceback_ends_on_the_exception_line() {
        use Status::*;
        let s = statuses(
            &["python"],
            "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n    f()\nValueError: bad\nafter",
        );
        assert_eq!(s, vec![InsideTrace, InsideTrace, InsideTrace, EndTrace, NoTrace]);
        let s = statuses(&["java"], "java.lang.Error: a\n\tat A.b(A.java:1)\njava.lang.Error: b\n\tat A.c(A.java:2)");
        assert_eq!(s, vec![InsideTrace, InsideTrace, StartTrace, InsideTrace]);
    }

    #[test]
    fn empty_line_patterns_match_as_in_ruby() {
        let re = |p: &str| RubyRegex::new(p, RubyFlags::default()).expect("compiles");
        let (empty, blank) = (re(EMPTY_LINE), re(BLANK_LINE));
        for (text, is_empty, is_blank) in [
            ("", true, true),
            ("\n", true, true),
            ("\r\n", false, true),
            ("x\n", false, false),
            ("x", false, false),
            ("x\n\n", true, true),
            ("\rx", false, false),
        ] {
            assert_eq!(empty.is_match(text), is_empty, "^$ on {text:?}");
            assert_eq!(blank.is_match(text), is_blank, "^[\\r\\n]*$ on {text:?}");
        }
    }

    #[test]
    fn a_language_not_configured_is_not_detected() {
        assert!(statuses(&["java"], "Traceback (most recent call last):\n  File \"x\"")
            .iter()
            .all(|s| *s == Status::NoTrace));
    }
}
