//! Tokens of the Ruby subset. String bodies keep their `#{...}` code as text: the parser parses it
//! again, so interpolation nests to any depth without a special lexer mode.
use super::SyntaxError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Int(i64),
    Float(f64),
    /// A double-quoted string: literal text and embedded code, in order.
    DStr(Vec<StrPiece>),
    /// A single-quoted string: no interpolation.
    SStr(String),
    Sym(String),
    /// `/source/flags`
    Regex(String, String),
    Ident(String),
    /// A name starting with a capital letter (`ENV`, `File`, ...).
    Const(String),
    /// A method name ending in `?` (`include?`), only valid after `.`.
    Punct(&'static str),
    Newline,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StrPiece {
    Lit(String),
    Code(String),
}

/// Operators, longest first so `==` wins over `=`.
const PUNCTS: &[&str] = &[
    "...", "&&", "&.", "||", "==", "!=", "=~", "!~", "<=", ">=", "=>", "..", "::", "(", ")", "[", "]", "{", "}", ",",
    ".", "?", ":", "!", "<", ">", "+", "-", "*", "/", "%", "=", ";", "|", "&", "^", "~", "@", "$",
];

pub fn lex(src: &str) -> Result<Vec<Tok>, SyntaxError> {
    let mut out = Vec::new();
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' => i += 1,
            b'\\' if b.get(i + 1) == Some(&b'\n') => i += 2,
            b'\n' => {
                out.push(Tok::Newline);
                i += 1;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'0'..=b'9' => i = number(src, i, &mut out)?,
            b'"' => {
                let (pieces, end) = double_quoted(src, i + 1, b'"')?;
                out.push(Tok::DStr(pieces));
                i = end;
            }
            b'\'' => {
                let (s, end) = single_quoted(src, i + 1)?;
                out.push(Tok::SStr(s));
                i = end;
            }
            b'%' if matches!(b.get(i + 1), Some(b'Q' | b'q' | b'w' | b'i' | b'r' | b'[' | b'(' | b'{')) => {
                return Err(SyntaxError::new("%-literals (%Q[], %w[], %r{}, ...)"));
            }
            b':' if b.get(i + 1).is_some_and(|n| n.is_ascii_alphabetic() || *n == b'_') => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                if j < b.len() && matches!(b[j], b'?' | b'!' | b'=') && b.get(j + 1) != Some(&b'=') {
                    j += 1;
                }
                out.push(Tok::Sym(src[start..j].to_string()));
                i = j;
            }
            b':' if b.get(i + 1) == Some(&b'"') => {
                let (pieces, end) = double_quoted(src, i + 2, b'"')?;
                let text = match pieces.as_slice() {
                    [] => String::new(),
                    [StrPiece::Lit(s)] => s.clone(),
                    _ => return Err(SyntaxError::new("interpolated symbols (:\"...#{}\")")),
                };
                out.push(Tok::Sym(text));
                i = end;
            }
            b'/' if regex_allowed(out.last()) => {
                let (source, flags, end) = regex(src, i + 1)?;
                out.push(Tok::Regex(source, flags));
                i = end;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                    i += 1;
                }
                // `include?`, `nil?`: a `?`/`!` directly after a name belongs to it, unless it starts `!=`/`?:`.
                if i < b.len() && matches!(b[i], b'?' | b'!') && !matches!(b.get(i + 1), Some(b'=')) {
                    let after_dot = matches!(out.last(), Some(Tok::Punct(".")));
                    if after_dot || b[i] == b'!' {
                        i += 1;
                    }
                }
                let word = &src[start..i];
                if word.as_bytes()[0].is_ascii_uppercase() {
                    out.push(Tok::Const(word.to_string()));
                } else {
                    out.push(Tok::Ident(word.to_string()));
                }
            }
            _ => {
                let rest = &src[i..];
                let Some(p) = PUNCTS.iter().find(|p| rest.starts_with(**p)) else {
                    let ch = rest.chars().next().unwrap_or('?');
                    if ch == '`' {
                        return Err(SyntaxError::new("backticks (`command`)"));
                    }
                    return Err(SyntaxError::new(format!("the character {ch:?}")));
                };
                out.push(Tok::Punct(p));
                i += p.len();
            }
        }
    }
    Ok(out)
}

/// A `/` starts a regexp where an operand is expected, as in Ruby (division is not in the subset).
fn regex_allowed(prev: Option<&Tok>) -> bool {
    match prev {
        None | Some(Tok::Newline) => true,
        Some(Tok::Punct(p)) => !matches!(*p, ")" | "]" | "}"),
        Some(Tok::Ident(w)) => matches!(w.as_str(), "if" | "then" | "else" | "elsif" | "unless" | "and" | "or" | "not"),
        _ => false,
    }
}

fn number(src: &str, start: usize, out: &mut Vec<Tok>) -> Result<usize, SyntaxError> {
    let b = src.as_bytes();
    let mut i = start;
    let digits = |i: &mut usize| {
        while *i < b.len()
            && (b[*i].is_ascii_digit() || (b[*i] == b'_' && b.get(*i + 1).is_some_and(u8::is_ascii_digit)))
        {
            *i += 1;
        }
    };
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X' | b'b' | b'B' | b'o' | b'O')) {
        return Err(SyntaxError::new("hexadecimal, binary and octal number literals"));
    }
    digits(&mut i);
    let mut float = false;
    if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
        float = true;
        i += 1;
        digits(&mut i);
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        let mut j = i + 1;
        if j < b.len() && matches!(b[j], b'+' | b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            float = true;
            i = j;
            digits(&mut i);
        }
    }
    let text: String = src[start..i].chars().filter(|c| *c != '_').collect();
    if float {
        let f = text.parse::<f64>().map_err(|_| SyntaxError::new(format!("the number {text}")))?;
        out.push(Tok::Float(f));
    } else {
        let n = text.parse::<i64>().map_err(|_| SyntaxError::new(format!("the integer {text} (too large)")))?;
        out.push(Tok::Int(n));
    }
    Ok(i)
}

fn single_quoted(src: &str, start: usize) -> Result<(String, usize), SyntaxError> {
    let mut out = String::new();
    let mut chars = src[start..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            '\'' => return Ok((out, start + off + 1)),
            '\\' => match chars.next() {
                Some((_, n @ ('\'' | '\\'))) => out.push(n),
                Some((_, n)) => {
                    out.push('\\');
                    out.push(n);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(SyntaxError::unclosed("a single-quoted string"))
}

/// A double-quoted body up to `close`: escapes are applied, `#{...}` code is kept as text.
pub fn double_quoted(src: &str, start: usize, close: u8) -> Result<(Vec<StrPiece>, usize), SyntaxError> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let b = src.as_bytes();
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        if c == close {
            if !lit.is_empty() {
                pieces.push(StrPiece::Lit(lit));
            }
            return Ok((pieces, i + 1));
        }
        match c {
            b'\\' => {
                let Some(n) = src[i + 1..].chars().next() else { break };
                match escape(n) {
                    Some(e) => lit.push(e),
                    None => {
                        return Err(SyntaxError::new(format!("the escape \\{n} in a double-quoted string")));
                    }
                }
                i += 1 + n.len_utf8();
            }
            b'#' if b.get(i + 1) == Some(&b'{') => {
                let end = code_end(src, i + 2)?;
                if !lit.is_empty() {
                    pieces.push(StrPiece::Lit(std::mem::take(&mut lit)));
                }
                pieces.push(StrPiece::Code(src[i + 2..end].to_string()));
                i = end + 1;
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or_default();
                lit.push(ch);
                i += ch.len_utf8().max(1);
            }
        }
    }
    if close == 0 {
        if !lit.is_empty() {
            pieces.push(StrPiece::Lit(lit));
        }
        return Ok((pieces, b.len()));
    }
    Err(SyntaxError::unclosed("a double-quoted string"))
}

fn escape(n: char) -> Option<char> {
    Some(match n {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        's' => ' ',
        '0' => '\0',
        'e' => '\x1b',
        'a' => '\x07',
        'b' => '\x08',
        'f' => '\x0c',
        'v' => '\x0b',
        'u' | 'x' | 'c' | 'C' | 'M' => return None,
        c if c.is_ascii_digit() => return None,
        c => c,
    })
}

/// The index of the `}` that closes `#{` code starting at `start`, skipping nested braces and strings.
pub fn code_end(src: &str, start: usize) -> Result<usize, SyntaxError> {
    let b = src.as_bytes();
    let mut depth = 0usize;
    let mut i = start;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' {
                        i += 1;
                    } else if q == b'"' && b[i] == b'#' && b.get(i + 1) == Some(&b'{') {
                        i = code_end(src, i + 2)?;
                    }
                    i += 1;
                }
            }
            b'{' => depth += 1,
            b'}' if depth == 0 => return Ok(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    Err(SyntaxError::unclosed("embedded code '#{'"))
}

fn regex(src: &str, start: usize) -> Result<(String, String, usize), SyntaxError> {
    let b = src.as_bytes();
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'#' if b.get(i + 1) == Some(&b'{') => return Err(SyntaxError::new("interpolation inside a regexp")),
            b'/' => {
                let source = src[start..i].to_string();
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_alphabetic() {
                    j += 1;
                }
                let flags = src[i + 1..j].to_string();
                if let Some(f) = flags.chars().find(|c| !matches!(c, 'i' | 'm' | 'x')) {
                    return Err(SyntaxError::new(format!("the regexp option '{f}'")));
                }
                return Ok((source, flags, j));
            }
            _ => i += 1,
        }
    }
    Err(SyntaxError::unclosed("a regexp literal"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let t = lex("ENV.fetch('A', \"x#{1}\") || :sym =~ /a\\/b/i").unwrap();
        assert_eq!(t[0], Tok::Const("ENV".into()));
        assert_eq!(t[2], Tok::Ident("fetch".into()));
        assert_eq!(t[4], Tok::SStr("A".into()));
        assert_eq!(t[6], Tok::DStr(vec![StrPiece::Lit("x".into()), StrPiece::Code("1".into())]));
        assert_eq!(t[9], Tok::Sym("sym".into()));
        assert_eq!(t[11], Tok::Regex("a\\/b".into(), "i".into()));
        let t = lex("s.include?('a') ? 1_000 : 2.5e1").unwrap();
        assert_eq!(t[2], Tok::Ident("include?".into()));
        assert_eq!(t[7], Tok::Int(1000));
        assert_eq!(t[9], Tok::Float(25.0));
    }
}
