//! Fluentd tag patterns (`<match>`/`<filter>` arguments): `*` one tag part, `**` zero or more parts
//! (`a.**` also matches `a`), `{x,y}` alternatives, `\` escapes, `/regex/`, and several patterns
//! separated by spaces. Each pattern compiles to one anchored regex once; the router caches the result
//! per tag, so matching cost is not on the per-event path.
use regex::Regex;

#[derive(Debug, thiserror::Error)]
#[error("invalid tag pattern: {0}")]
pub struct PatternError(pub String);

#[derive(Debug, Clone)]
enum One {
    Any,
    Exact(String),
    Re(Regex),
}

#[derive(Debug, Clone)]
pub struct TagMatcher {
    pats: Vec<One>,
    /// The set of tags it matches as one regex over the whole tag (for `sluice explain`, which reasons
    /// about sets of tags with the same translation the router matches with).
    language: String,
}

impl TagMatcher {
    /// `arg` is a directive's argument: space-separated patterns; empty means `**`.
    pub fn new(arg: &str) -> Result<TagMatcher, PatternError> {
        let mut pats = Vec::new();
        let mut langs = Vec::new();
        for p in arg.split_whitespace() {
            let one = compile(p)?;
            langs.push(match &one {
                One::Any => "(?s:.*)".to_string(),
                One::Exact(s) => regex::escape(s),
                // A `/regex/` matches anywhere in the tag (is_match); a translated glob is anchored.
                One::Re(r) if p.starts_with('/') => format!("(?s:.*)(?:{})(?s:.*)", r.as_str()),
                One::Re(r) => format!("(?:{})", r.as_str()),
            });
            pats.push(one);
        }
        if pats.is_empty() {
            pats.push(One::Any);
            langs.push("(?s:.*)".to_string());
        }
        Ok(TagMatcher { pats, language: langs.join("|") })
    }

    /// Every tag this matches, as a regex that must match the whole tag.
    pub fn language(&self) -> &str {
        &self.language
    }

    pub fn matches(&self, tag: &str) -> bool {
        self.pats.iter().any(|p| match p {
            One::Any => true,
            One::Exact(s) => s == tag,
            One::Re(r) => r.is_match(tag),
        })
    }
}

fn compile(pat: &str) -> Result<One, PatternError> {
    if pat == "**" {
        return Ok(One::Any);
    }
    if pat.len() >= 2 && pat.starts_with('/') && pat.ends_with('/') {
        let re = Regex::new(&pat[1..pat.len() - 1]).map_err(|e| PatternError(format!("{pat}: {e}")))?;
        return Ok(One::Re(re));
    }
    if !pat.contains(['*', '{', '}', ',', '\\']) {
        return Ok(One::Exact(pat.to_string()));
    }
    let src = glob_to_regex(pat)?;
    Regex::new(&src).map(One::Re).map_err(|e| PatternError(format!("{pat}: {e}")))
}

/// Translate as Fluentd's GlobMatchPattern does. Fluentd uses a look-ahead after a pending `.` before
/// `**`; the regex crate has none, so the two cases are spelled out.
fn glob_to_regex(pat: &str) -> Result<String, PatternError> {
    let b: Vec<char> = pat.chars().collect();
    // A stack of alternatives being built for `{a,b}`; `cur` collects the innermost.
    let mut stack: Vec<Vec<String>> = Vec::new();
    let mut cur: Vec<String> = vec![String::new()];
    let mut dot = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let out = cur.last_mut().ok_or_else(|| PatternError(pat.into()))?;
        if c == '\\' {
            if dot {
                out.push_str("\\.");
                dot = false;
            }
            if let Some(n) = b.get(i + 1) {
                out.push_str(&regex::escape(&n.to_string()));
            }
            i += 2;
            continue;
        }
        if c == '*' && b.get(i + 1) == Some(&'*') {
            let followed_by_dot = b.get(i + 2) == Some(&'.');
            match (dot, followed_by_dot) {
                (true, true) => out.push_str("\\.(?:.*\\.)?"),
                (true, false) => out.push_str("(?:\\..*)?"),
                (false, true) => out.push_str("(?:.*\\.|\\A)"),
                (false, false) => out.push_str(".*"),
            }
            dot = false;
            i += if followed_by_dot { 3 } else { 2 };
            continue;
        }
        if dot {
            out.push_str("\\.");
            dot = false;
        }
        match c {
            '.' => dot = true,
            '*' => out.push_str("[^.]*"),
            '{' => {
                stack.push(Vec::new());
                cur.push(String::new());
            }
            '}' if !stack.is_empty() => {
                let last = cur.pop().unwrap_or_default();
                let mut alts = stack.pop().unwrap_or_default();
                alts.push(last);
                let joined = format!("(?:{})", alts.join("|"));
                cur.last_mut().ok_or_else(|| PatternError(pat.into()))?.push_str(&joined);
            }
            ',' if !stack.is_empty() => {
                let last = cur.pop().unwrap_or_default();
                if let Some(top) = stack.last_mut() {
                    top.push(last);
                }
                cur.push(String::new());
            }
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            c => out.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    if dot {
        if let Some(out) = cur.last_mut() {
            out.push_str("\\.");
        }
    }
    while let Some(mut alts) = stack.pop() {
        alts.push(cur.pop().unwrap_or_default());
        let joined = format!("(?:{})", alts.join("|"));
        cur.last_mut().ok_or_else(|| PatternError(pat.into()))?.push_str(&joined);
    }
    Ok(format!("\\A(?:{})\\z", cur.pop().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        TagMatcher::new(p).unwrap().matches(t)
    }

    #[test]
    fn fluentd_documented_examples() {
        assert!(m("a.*", "a.b"));
        assert!(!m("a.*", "a"));
        assert!(!m("a.*", "a.b.c"));
        assert!(m("a.**", "a"));
        assert!(m("a.**", "a.b"));
        assert!(m("a.**", "a.b.c"));
        assert!(!m("a.**", "ab"));
        assert!(!m("a.**", "b.a"));
        assert!(m("{a,b}", "a") && m("{a,b}", "b") && !m("{a,b}", "c"));
        assert!(m("a.{b,c}.*", "a.b.x") && m("a.{b,c}.*", "a.c.y") && !m("a.{b,c}.*", "a.d.y"));
        assert!(m("a.{b,c.**}", "a.c.d.e") && m("a.{b,c.**}", "a.c") && m("a.{b,c.**}", "a.b"));
        assert!(m("a b", "b") && m("a b", "a") && !m("a b", "c"));
        assert!(m("**", "anything.at.all"));
        assert!(m("", "x"));
    }

    #[test]
    fn double_star_in_the_middle_and_at_the_start() {
        assert!(m("a.**.z", "a.z") && m("a.**.z", "a.b.z") && m("a.**.z", "a.b.c.z"));
        assert!(!m("a.**.z", "az") && !m("a.**.z", "a.bz"));
        assert!(m("**.z", "z") && m("**.z", "a.z") && m("**.z", "a.b.z") && !m("**.z", "az"));
    }

    #[test]
    fn star_matches_within_a_part_and_escapes_and_regex() {
        assert!(m("kube.var.log.containers.*_app1-*.log", "kube.var.log.containers.pod_app1-x.log"));
        assert!(m("a*b", "axxb") && !m("a*b", "ax.xb"));
        assert!(m("a\\*", "a*") && !m("a\\*", "ab"));
        assert!(m("/^app\\.(x|y)$/", "app.y") && !m("/^app\\.(x|y)$/", "app.z"));
        assert!(m("a-b.c+d", "a-b.c+d") && !m("a-b.c+d", "a-bxc+d"));
    }
}
