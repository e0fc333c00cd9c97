//! Ruby's lenient string conversions (`String#to_i`, `#to_f`, `#split`, `#scrub`), which Fluentd's type
//! casts, parsers and filters rely on: `"12abc".to_i` is 12, `"abc".to_i` is 0, and nothing raises.

fn skip_space(b: &[u8]) -> usize {
    b.iter().take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\x0B' | b'\x0C' | b'\r')).count()
}

/// The digits (and single underscores between digits) at the start of `b`, as a byte count.
fn digit_run(b: &[u8]) -> usize {
    let mut i = 0;
    while i < b.len() {
        let underscore_between_digits =
            b[i] == b'_' && i > 0 && b[i - 1].is_ascii_digit() && b.get(i + 1).is_some_and(u8::is_ascii_digit);
        if !(b[i].is_ascii_digit() || underscore_between_digits) {
            break;
        }
        i += 1;
    }
    i
}

/// Ruby's `String#to_i` (saturating at the i64 range instead of growing a Bignum).
pub fn to_i(s: &str) -> i64 {
    let b = s.as_bytes();
    let mut i = skip_space(b);
    let neg = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let n = digit_run(&b[i..]);
    let mut v: i64 = 0;
    for &c in &b[i..i + n] {
        if c == b'_' {
            continue;
        }
        let d = (c - b'0') as i64;
        v = if neg { v.saturating_mul(10).saturating_sub(d) } else { v.saturating_mul(10).saturating_add(d) };
    }
    v
}

/// Ruby's `String#to_f`: the longest decimal prefix, or 0.0.
pub fn to_f(s: &str) -> f64 {
    let b = s.as_bytes();
    let start = skip_space(b);
    let mut i = start;
    if matches!(b.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    let int_len = digit_run(&b[i..]);
    i += int_len;
    let mut frac_len = 0;
    if b.get(i) == Some(&b'.') {
        frac_len = digit_run(&b[i + 1..]);
        if frac_len > 0 {
            i += 1 + frac_len;
        }
    }
    if int_len == 0 && frac_len == 0 {
        return 0.0;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'-' | b'+')) {
            j += 1;
        }
        let e = digit_run(&b[j..]);
        if e > 0 {
            i = j + e;
        }
    }
    let text: String = s[start..i].chars().filter(|&c| c != '_').collect();
    text.parse().unwrap_or(0.0)
}

/// Ruby's `String#split(delimiter)`: a single space splits on runs of whitespace and ignores leading
/// whitespace; trailing empty fields are dropped.
pub fn split<'a>(s: &'a str, delimiter: &str) -> Vec<&'a str> {
    let mut parts: Vec<&str> = if delimiter == " " {
        s.split([' ', '\t', '\n', '\x0B', '\x0C', '\r']).filter(|p| !p.is_empty()).collect()
    } else if delimiter.is_empty() {
        s.char_indices().map(|(i, c)| &s[i..i + c.len_utf8()]).collect()
    } else {
        s.split(delimiter).collect()
    };
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

/// Ruby's `scrub('?')`: each invalid byte sequence becomes one `?`.
pub fn scrub(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            out.push('?');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_i_like_ruby() {
        assert_eq!(to_i("200"), 200);
        assert_eq!(to_i("  -12abc"), -12);
        assert_eq!(to_i("+7"), 7);
        assert_eq!(to_i("1_000"), 1000);
        assert_eq!(to_i("1__0"), 1);
        assert_eq!(to_i("abc"), 0);
        assert_eq!(to_i(""), 0);
        assert_eq!(to_i("2024-05-01T12:00:00Z"), 2024);
        assert_eq!(to_i("99999999999999999999999"), i64::MAX);
    }

    #[test]
    fn to_f_like_ruby() {
        assert_eq!(to_f("1.5"), 1.5);
        assert_eq!(to_f(" -2.5e3x"), -2500.0);
        assert_eq!(to_f(".5"), 0.5);
        assert_eq!(to_f("1."), 1.0);
        assert_eq!(to_f("1e"), 1.0);
        assert_eq!(to_f("abc"), 0.0);
        assert_eq!(to_f("1_0.5"), 10.5);
    }

    #[test]
    fn split_like_ruby() {
        assert_eq!(split("a,b,,", ","), vec!["a", "b"]);
        assert_eq!(split("a,,b", ","), vec!["a", "", "b"]);
        assert_eq!(split("", ","), Vec::<&str>::new());
        assert_eq!(split("  a  b ", " "), vec!["a", "b"]);
        assert_eq!(split("a|b", "|"), vec!["a", "b"]);
    }

    #[test]
    fn scrub_replaces_each_invalid_sequence() {
        assert_eq!(scrub(b"ok\xff\xfe-\xe3\x81"), "ok??-?");
        assert_eq!(scrub(b"a\xffb\xe3\x81"), "a?b?");
        assert_eq!(scrub("é".as_bytes()), "é");
    }
}
