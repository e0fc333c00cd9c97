//! The methods of the subset on strings, numbers, arrays, hashes and times, with Ruby's results and
//! Ruby's errors (a method the receiver's class lacks raises NoMethodError, as `nil.downcase` does).
use super::eval::{err, Arg};
use super::regexp::RubyRegex;
use super::text;
use super::value::{RTime, RValue};
use super::RubyError;

/// Every method name the parser accepts after a `.`; which receivers have it is checked at run time.
const KNOWN: &[&str] = &[
    "to_s",
    "inspect",
    "to_i",
    "to_f",
    "to_sym",
    "length",
    "size",
    "downcase",
    "upcase",
    "strip",
    "lstrip",
    "rstrip",
    "split",
    "rpartition",
    "partition",
    "gsub",
    "sub",
    "include?",
    "start_with?",
    "end_with?",
    "empty?",
    "nil?",
    "[]",
    "first",
    "last",
    "join",
    "fetch",
    "dig",
    "keys",
    "values",
    "merge",
    "key?",
    "has_key?",
    "usec",
    "nsec",
    "strftime",
    "iso8601",
    "xmlschema",
    "utc",
    "getutc",
    "gmtime",
    "localtime",
    "getlocal",
    "year",
    "month",
    "day",
    "hour",
    "min",
    "sec",
];

pub fn is_known(name: &str) -> bool {
    KNOWN.contains(&name)
}

fn no_method<T>(name: &str, recv: &RValue) -> Result<T, RubyError> {
    err(format!("undefined method '{name}' for {}", an(recv)))
}

/// `nil`, `an instance of String`, as Ruby's NoMethodError says.
fn an(v: &RValue) -> String {
    match v {
        RValue::Nil | RValue::Bool(_) => v.class_name().to_string(),
        v => format!("an instance of {}", v.class_name()),
    }
}

fn arity<T>(name: &str, given: usize, expected: &str) -> Result<T, RubyError> {
    err(format!("wrong number of arguments to '{name}' (given {given}, expected {expected})"))
}

pub fn call(recv: RValue, name: &str, args: Vec<Arg>) -> Result<RValue, RubyError> {
    // Methods every object has.
    match (name, args.len()) {
        ("to_s", 0) => return Ok(RValue::Str(recv.to_s())),
        ("inspect", 0) => return Ok(RValue::Str(recv.inspect())),
        ("nil?", 0) => return Ok(RValue::Bool(matches!(recv, RValue::Nil))),
        ("to_s" | "inspect" | "nil?", n) => return arity(name, n, "0"),
        _ => {}
    }
    match recv {
        RValue::Str(s) => string_method(s, name, args),
        RValue::Sym(s) => match name {
            "to_sym" => Ok(RValue::Sym(s)),
            "length" | "size" => Ok(RValue::Int(s.chars().count() as i64)),
            "downcase" => Ok(RValue::Sym(s.to_lowercase())),
            "upcase" => Ok(RValue::Sym(s.to_uppercase())),
            "empty?" => Ok(RValue::Bool(s.is_empty())),
            _ => no_method(name, &RValue::Sym(s)),
        },
        RValue::Int(i) => match name {
            "to_i" => Ok(RValue::Int(i)),
            "to_f" => Ok(RValue::Float(i as f64)),
            _ => no_method(name, &RValue::Int(i)),
        },
        RValue::Float(f) => match name {
            "to_f" => Ok(RValue::Float(f)),
            "to_i" => {
                if !f.is_finite() {
                    return err(format!("FloatDomainError: {}", RValue::Float(f).to_s()));
                }
                let t = f.trunc();
                if t < i64::MIN as f64 || t >= i64::MAX as f64 {
                    return err("integer overflow");
                }
                Ok(RValue::Int(t as i64))
            }
            _ => no_method(name, &RValue::Float(f)),
        },
        RValue::Nil => match name {
            "to_i" => Ok(RValue::Int(0)),
            "to_f" => Ok(RValue::Float(0.0)),
            _ => no_method(name, &RValue::Nil),
        },
        RValue::Array(a) => array_method(a, name, args),
        RValue::Hash(h) => hash_method(h, name, args),
        RValue::Time(t) => time_method(t, name, args),
        other => no_method(name, &other),
    }
}

fn vals(args: &[Arg]) -> Result<Vec<RValue>, RubyError> {
    args.iter().map(Arg::value).collect()
}

fn str_arg<'a>(name: &str, a: &'a Arg) -> Result<&'a str, RubyError> {
    match a {
        Arg::Val(RValue::Str(s)) => Ok(s),
        Arg::Val(v) => err(format!("no implicit conversion of {} into String (in '{name}')", v.class_name())),
        Arg::Regex(_) => err(format!("wrong argument type Regexp (expected String) (in '{name}')")),
    }
}

/// Ruby's whitespace for `strip`: blanks, and NUL at the end.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

fn string_method(s: String, name: &str, args: Vec<Arg>) -> Result<RValue, RubyError> {
    let n = args.len();
    let need = |k: usize| if n == k { Ok(()) } else { arity(name, n, &k.to_string()) };
    Ok(match name {
        "to_i" => {
            need(0)?;
            RValue::Int(text::to_i(&s))
        }
        "to_f" => {
            need(0)?;
            RValue::Float(text::to_f(&s))
        }
        "to_sym" => {
            need(0)?;
            RValue::Sym(s)
        }
        "length" | "size" => {
            need(0)?;
            RValue::Int(s.chars().count() as i64)
        }
        "downcase" => {
            need(0)?;
            RValue::Str(s.to_lowercase())
        }
        "upcase" => {
            need(0)?;
            RValue::Str(s.to_uppercase())
        }
        "strip" => {
            need(0)?;
            RValue::str(s.trim_start_matches(is_space).trim_end_matches(|c| is_space(c) || c == '\0'))
        }
        "lstrip" => {
            need(0)?;
            RValue::str(s.trim_start_matches(is_space))
        }
        "rstrip" => {
            need(0)?;
            RValue::str(s.trim_end_matches(|c| is_space(c) || c == '\0'))
        }
        "empty?" => {
            need(0)?;
            RValue::Bool(s.is_empty())
        }
        "include?" => {
            need(1)?;
            RValue::Bool(s.contains(str_arg(name, &args[0])?))
        }
        "start_with?" | "end_with?" => {
            let mut hit = false;
            for a in &args {
                hit |= match (name, a) {
                    ("start_with?", Arg::Regex(r)) => regex_find(r, &s, 0) == Some(0) && anchored_at_start(r, &s),
                    ("start_with?", a) => s.starts_with(str_arg(name, a)?),
                    (_, a) => s.ends_with(str_arg(name, a)?),
                };
            }
            RValue::Bool(hit)
        }
        "split" => RValue::Array(split(&s, &args)?.into_iter().map(RValue::str).collect()),
        "partition" | "rpartition" => {
            need(1)?;
            partition(&s, &args[0], name == "rpartition")?
        }
        "sub" | "gsub" => {
            need(2)?;
            RValue::Str(substitute(&s, &args[0], &args[1], name == "gsub")?)
        }
        "[]" => string_index(&s, &args)?,
        _ => return no_method(name, &RValue::Str(s)),
    })
}

/// Whether a match of `r` can begin at offset 0 (Ruby's `start_with?(regexp)` anchors at the start).
fn anchored_at_start(r: &RubyRegex, s: &str) -> bool {
    r.find_at(s, 0).is_some_and(|(b, _)| b == 0)
}

/// Ruby's `String#split`: awk-style on whitespace by default, trailing empty fields dropped.
fn split(s: &str, args: &[Arg]) -> Result<Vec<String>, RubyError> {
    let parts: Vec<String> = match args {
        [] | [Arg::Val(RValue::Nil)] => s.split(is_space).filter(|p| !p.is_empty()).map(str::to_string).collect(),
        [Arg::Val(RValue::Str(sep))] if sep == " " => {
            s.split(is_space).filter(|p| !p.is_empty()).map(str::to_string).collect()
        }
        [Arg::Val(RValue::Str(sep))] => text::split(s, sep).into_iter().map(str::to_string).collect(),
        [Arg::Regex(r)] => r.split(s).into_iter().map(str::to_string).collect(),
        [a] => return err(format!("wrong argument type {} (expected Regexp)", a.value()?.class_name())),
        _ => return err("split with a limit is not supported by sluice's Ruby subset"),
    };
    let mut parts = parts;
    while parts.last().is_some_and(String::is_empty) {
        parts.pop();
    }
    Ok(parts)
}

fn partition(s: &str, sep: &Arg, from_right: bool) -> Result<RValue, RubyError> {
    let found = match sep {
        Arg::Regex(r) => {
            if from_right {
                let mut last = None;
                let mut at = 0;
                while let Some((b, e)) = r.find_at(s, at) {
                    last = Some((b, e));
                    at = if e > b { e } else { next_char(s, e) };
                    if at > s.len() {
                        break;
                    }
                }
                last
            } else {
                r.find_at(s, 0)
            }
        }
        a => {
            let sep = str_arg("partition", a)?;
            let i = if from_right { s.rfind(sep) } else { s.find(sep) };
            i.map(|i| (i, i + sep.len()))
        }
    };
    let parts = match (found, from_right) {
        (Some((b, e)), _) => [&s[..b], &s[b..e], &s[e..]],
        (None, false) => [s, "", ""],
        (None, true) => ["", "", s],
    };
    Ok(RValue::Array(parts.iter().map(|p| RValue::str(*p)).collect()))
}

fn next_char(s: &str, at: usize) -> usize {
    at + s[at..].chars().next().map_or(1, char::len_utf8)
}

/// `sub`/`gsub` with a string or regexp pattern and a replacement string (`\0`, `\&`, `\1`..`\9`,
/// `\k<name>`, `\\`) or a hash (the match's value in it).
fn substitute(s: &str, pat: &Arg, rep: &Arg, global: bool) -> Result<String, RubyError> {
    let rep = match rep {
        Arg::Val(RValue::Str(r)) => Rep::Text(r.as_str()),
        Arg::Val(RValue::Hash(h)) => Rep::Hash(h),
        Arg::Val(v) => return err(format!("no implicit conversion of {} into String", v.class_name())),
        Arg::Regex(_) => return err("wrong argument type Regexp (expected String)"),
    };
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    let mut copied = 0;
    loop {
        let spans: Vec<Option<(usize, usize)>> = match pat {
            Arg::Regex(r) => match r.captures_at(s, at) {
                Some(c) => c,
                None => break,
            },
            a => {
                let needle = str_arg("gsub", a)?;
                match s[at..].find(needle) {
                    Some(i) => vec![Some((at + i, at + i + needle.len()))],
                    None => break,
                }
            }
        };
        let Some((b, e)) = spans.first().copied().flatten() else { break };
        out.push_str(&s[copied..b]);
        match &rep {
            Rep::Text(t) => expand_replacement(t, s, &spans, pat, &mut out),
            Rep::Hash(h) => {
                if let Some(v) = hash_get(h, &RValue::str(&s[b..e])) {
                    v.write_to_s(&mut out);
                }
            }
        }
        copied = e;
        if !global {
            break;
        }
        if e == b {
            // An empty match: keep the next character and move past it.
            if e >= s.len() {
                break;
            }
            let n = next_char(s, e);
            out.push_str(&s[e..n]);
            copied = n;
            at = n;
        } else {
            at = e;
        }
    }
    out.push_str(&s[copied..]);
    Ok(out)
}

enum Rep<'a> {
    Text(&'a str),
    Hash(&'a [(RValue, RValue)]),
}

fn expand_replacement(t: &str, s: &str, spans: &[Option<(usize, usize)>], pat: &Arg, out: &mut String) {
    let group = |i: usize, out: &mut String| {
        if let Some(Some((b, e))) = spans.get(i) {
            out.push_str(&s[*b..*e]);
        }
    };
    let mut chars = t.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek().map(|(_, n)| *n) {
            Some(d @ '0'..='9') => {
                chars.next();
                group(d as usize - '0' as usize, out);
            }
            Some('&') => {
                chars.next();
                group(0, out);
            }
            Some('\\') => {
                chars.next();
                out.push('\\');
            }
            Some('k') if t[i + 2..].starts_with('<') => {
                let rest = &t[i + 3..];
                if let (Some(end), Arg::Regex(r)) = (rest.find('>'), pat) {
                    let name = &rest[..end];
                    if let Some(idx) = r
                        .group_indexes(name)
                        .and_then(|ix| ix.iter().rev().find(|&&g| spans.get(g).is_some_and(Option::is_some)))
                    {
                        group(*idx, out);
                    }
                    // Past `k<name>`.
                    for _ in 0..name.chars().count() + 3 {
                        chars.next();
                    }
                } else {
                    out.push('\\');
                }
            }
            _ => out.push('\\'),
        }
    }
}

/// The start of the first match of `r` in `s` at or after byte `at`.
pub fn regex_find(r: &RubyRegex, s: &str, at: usize) -> Option<usize> {
    r.find_at(s, at).map(|(b, _)| b)
}

/// Resolve Ruby's index arguments against a length: `(i)`, `(start, len)` or `(range)`.
enum Pick {
    One(usize),
    Span(usize, usize),
    None,
}

fn pick(len: usize, args: &[RValue]) -> Result<Pick, RubyError> {
    let n = len as i64;
    Ok(match args {
        [RValue::Int(i)] => {
            let i = if *i < 0 { i + n } else { *i };
            if i < 0 || i >= n {
                Pick::None
            } else {
                Pick::One(i as usize)
            }
        }
        [RValue::Int(start), RValue::Int(l)] => {
            let start = if *start < 0 { start + n } else { *start };
            if start < 0 || start > n || *l < 0 {
                Pick::None
            } else {
                Pick::Span(start as usize, (start.saturating_add(*l)).min(n) as usize)
            }
        }
        [RValue::Range(a, b, excl)] => {
            let a = if *a < 0 { a + n } else { *a };
            if a < 0 || a > n {
                return Ok(Pick::None);
            }
            let mut b = if *b < 0 { b + n } else { *b };
            if !excl {
                b = b.saturating_add(1);
            }
            let b = b.clamp(a, n);
            Pick::Span(a as usize, b as usize)
        }
        [other, ..] => return err(format!("no implicit conversion of {} into Integer", other.class_name())),
        [] => return arity("[]", 0, "1..2"),
    })
}

fn string_index(s: &str, args: &[Arg]) -> Result<RValue, RubyError> {
    match args {
        [Arg::Regex(r)] => {
            return Ok(match r.find_at(s, 0) {
                Some((b, e)) => RValue::str(&s[b..e]),
                None => RValue::Nil,
            })
        }
        [Arg::Val(RValue::Str(sub))] => {
            return Ok(if s.contains(sub.as_str()) { RValue::Str(sub.clone()) } else { RValue::Nil });
        }
        _ => {}
    }
    let chars: Vec<char> = s.chars().collect();
    Ok(match pick(chars.len(), &vals(args)?)? {
        Pick::One(i) => RValue::Str(chars[i].to_string()),
        Pick::Span(a, b) => RValue::Str(chars[a..b].iter().collect()),
        Pick::None => RValue::Nil,
    })
}

pub fn array_at(a: &[RValue], i: i64) -> Option<&RValue> {
    let n = a.len() as i64;
    let i = if i < 0 { i + n } else { i };
    if i < 0 {
        return None;
    }
    a.get(i as usize)
}

fn array_method(a: Vec<RValue>, name: &str, args: Vec<Arg>) -> Result<RValue, RubyError> {
    let args = vals(&args)?;
    Ok(match (name, args.as_slice()) {
        ("length" | "size", []) => RValue::Int(a.len() as i64),
        ("empty?", []) => RValue::Bool(a.is_empty()),
        ("first", []) => a.first().cloned().unwrap_or(RValue::Nil),
        ("last", []) => a.last().cloned().unwrap_or(RValue::Nil),
        ("first", [RValue::Int(k)]) if *k >= 0 => RValue::Array(a.iter().take(*k as usize).cloned().collect()),
        ("last", [RValue::Int(k)]) if *k >= 0 => {
            let skip = a.len().saturating_sub(*k as usize);
            RValue::Array(a[skip..].to_vec())
        }
        ("include?", [v]) => RValue::Bool(a.iter().any(|x| equal(x, v))),
        ("join", []) => RValue::Str(join(&a, "")),
        ("join", [RValue::Str(sep)]) => RValue::Str(join(&a, sep)),
        ("join", [RValue::Nil]) => RValue::Str(join(&a, "")),
        ("[]", idx) => match pick(a.len(), idx)? {
            Pick::One(i) => a[i].clone(),
            Pick::Span(x, y) => RValue::Array(a[x..y].to_vec()),
            Pick::None => RValue::Nil,
        },
        ("dig", [first, rest @ ..]) => dig(RValue::Array(a), first, rest)?,
        ("to_i" | "to_f" | "keys" | "values" | "merge" | "downcase" | "upcase" | "strip", _) => {
            return no_method(name, &RValue::Array(a))
        }
        (_, args) if is_known(name) && matches!(name, "first" | "last" | "join" | "include?" | "dig") => {
            return arity(name, args.len(), "other arguments")
        }
        _ => return no_method(name, &RValue::Array(a)),
    })
}

/// Ruby's `Array#join`: nested arrays are joined too, nil is empty.
fn join(a: &[RValue], sep: &str) -> String {
    let mut out = String::new();
    let mut first = true;
    fn walk(a: &[RValue], sep: &str, out: &mut String, first: &mut bool) {
        for v in a {
            if let RValue::Array(inner) = v {
                walk(inner, sep, out, first);
                continue;
            }
            if !*first {
                out.push_str(sep);
            }
            *first = false;
            v.write_to_s(out);
        }
    }
    walk(a, sep, &mut out, &mut first);
    out
}

pub fn hash_get<'h>(h: &'h [(RValue, RValue)], k: &RValue) -> Option<&'h RValue> {
    h.iter().find(|(key, _)| key == k).map(|(_, v)| v)
}

pub fn hash_set(h: &mut Vec<(RValue, RValue)>, k: RValue, v: RValue) {
    match h.iter_mut().find(|(key, _)| *key == k) {
        Some(slot) => slot.1 = v,
        None => h.push((k, v)),
    }
}

fn hash_method(h: Vec<(RValue, RValue)>, name: &str, args: Vec<Arg>) -> Result<RValue, RubyError> {
    let args = vals(&args)?;
    Ok(match (name, args.as_slice()) {
        ("length" | "size", []) => RValue::Int(h.len() as i64),
        ("empty?", []) => RValue::Bool(h.is_empty()),
        ("keys", []) => RValue::Array(h.into_iter().map(|(k, _)| k).collect()),
        ("values", []) => RValue::Array(h.into_iter().map(|(_, v)| v).collect()),
        ("[]", [k]) => hash_get(&h, k).cloned().unwrap_or(RValue::Nil),
        ("include?" | "key?" | "has_key?", [k]) => RValue::Bool(hash_get(&h, k).is_some()),
        ("merge", others) => {
            let mut h = h;
            for o in others {
                let RValue::Hash(o) = o else {
                    return err(format!("no implicit conversion of {} into Hash", o.class_name()));
                };
                for (k, v) in o {
                    hash_set(&mut h, k.clone(), v.clone());
                }
            }
            RValue::Hash(h)
        }
        ("dig", [first, rest @ ..]) => dig(RValue::Hash(h), first, rest)?,
        _ => return no_method(name, &RValue::Hash(h)),
    })
}

fn dig(mut cur: RValue, first: &RValue, rest: &[RValue]) -> Result<RValue, RubyError> {
    for k in std::iter::once(first).chain(rest) {
        cur = match (&cur, k) {
            (RValue::Hash(h), k) => hash_get(h, k).cloned().unwrap_or(RValue::Nil),
            (RValue::Array(a), RValue::Int(i)) => array_at(a, *i).cloned().unwrap_or(RValue::Nil),
            (RValue::Array(_), k) => return err(format!("no implicit conversion of {} into Integer", k.class_name())),
            (RValue::Nil, _) => return Ok(RValue::Nil),
            (other, _) => return err(format!("{} does not have #dig method", other.class_name())),
        };
    }
    Ok(cur)
}

fn time_method(t: RTime, name: &str, args: Vec<Arg>) -> Result<RValue, RubyError> {
    let args = vals(&args)?;
    let part = |fmt: &str| RValue::Int(text::to_i(&t.strftime(fmt)));
    Ok(match (name, args.as_slice()) {
        ("to_i", []) => RValue::Int(t.t.sec),
        ("to_f", []) => RValue::Float(t.t.as_f64()),
        ("usec", []) => RValue::Int(i64::from(t.t.nsec / 1000)),
        ("nsec", []) => RValue::Int(i64::from(t.t.nsec)),
        ("strftime", [RValue::Str(f)]) => RValue::Str(t.strftime(f)),
        ("iso8601" | "xmlschema", []) => RValue::Str(t.iso8601(0)),
        ("iso8601" | "xmlschema", [RValue::Int(n)]) => RValue::Str(t.iso8601(*n)),
        ("utc" | "getutc" | "gmtime", []) => RValue::Time(RTime { t: t.t, utc: true }),
        ("localtime" | "getlocal", []) => RValue::Time(RTime { t: t.t, utc: false }),
        ("year", []) => part("%Y"),
        ("month", []) => part("%m"),
        ("day", []) => part("%d"),
        ("hour", []) => part("%H"),
        ("min", []) => part("%M"),
        ("sec", []) => part("%S"),
        (_, args) if matches!(name, "strftime" | "iso8601" | "xmlschema") => {
            return err(format!("wrong arguments to Time#{name} ({} given)", args.len()))
        }
        _ => return no_method(name, &RValue::Time(t)),
    })
}

/// Ruby's `==`: numbers compare by value across Integer and Float, hashes regardless of order.
pub fn equal(a: &RValue, b: &RValue) -> bool {
    match (a, b) {
        (RValue::Int(x), RValue::Float(y)) | (RValue::Float(y), RValue::Int(x)) => (*x as f64) == *y,
        (RValue::Array(x), RValue::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q)),
        (RValue::Hash(x), RValue::Hash(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| hash_get(y, k).is_some_and(|w| equal(v, w)))
        }
        (RValue::UseNil | RValue::Nil, RValue::UseNil | RValue::Nil) => matches!((a, b), (RValue::Nil, RValue::Nil)),
        (a, b) => a == b,
    }
}

/// Ruby's `File.join`: one `/` between parts, arrays flattened.
pub fn file_join(parts: &[RValue]) -> Result<String, RubyError> {
    let mut flat = Vec::new();
    fn walk<'a>(v: &'a [RValue], out: &mut Vec<&'a str>) -> Result<(), RubyError> {
        for p in v {
            match p {
                RValue::Str(s) => out.push(s),
                RValue::Array(a) => walk(a, out)?,
                other => return err(format!("no implicit conversion of {} into String", other.class_name())),
            }
        }
        Ok(())
    }
    walk(parts, &mut flat)?;
    let mut out = String::new();
    for (i, p) in flat.iter().enumerate() {
        if i == 0 {
            out.push_str(p);
            continue;
        }
        let left_sep = out.ends_with('/');
        let right_sep = p.starts_with('/');
        match (left_sep, right_sep) {
            (true, true) => out.push_str(p.trim_start_matches('/')),
            (false, false) => {
                out.push('/');
                out.push_str(p);
            }
            _ => out.push_str(p),
        }
    }
    Ok(out)
}

/// Ruby's `File.basename(path)`.
pub fn basename(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return if p.is_empty() { String::new() } else { "/".into() };
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// Ruby's `File.dirname(path)`.
pub fn dirname(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return if p.is_empty() { ".".into() } else { "/".into() };
    }
    match t.rfind('/') {
        None => ".".into(),
        Some(i) => {
            let d = t[..i].trim_end_matches('/');
            if d.is_empty() {
                "/".into()
            } else {
                d.to_string()
            }
        }
    }
}
