//! Values printed the way Ruby prints them: `Float#to_s`, `to_s` (what `"#{value}"` gives) and `inspect`
//! (what `Hash#to_s` gives, Ruby 3.0 to 3.3 spelling `{"k"=>"v"}`). JSON and text formatters, parser type
//! casts, filters and the embedded Ruby all go through these, so sluice's output matches Fluentd's byte for byte.
use crate::event::{Map, Value};
use std::io::Write;

/// Ruby's `Float#to_s`: shortest round-trip digits, fixed notation for exponents -4..16, else `1.0e+16`.
pub fn write_float(f: f64, out: &mut Vec<u8>) {
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"Infinity" } else { b"-Infinity" });
        return;
    }
    if f == 0.0 {
        out.extend_from_slice(if f.is_sign_negative() { b"-0.0" } else { b"0.0" });
        return;
    }
    // `{:e}` gives the shortest digits that round-trip: "d.ddde[-]x".
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let decpt = exp + 1;
    if f < 0.0 {
        out.push(b'-');
    }
    let d = digits.as_bytes();
    if decpt > 0 && decpt <= 16 {
        let decpt = decpt as usize;
        if d.len() <= decpt {
            out.extend_from_slice(d);
            out.extend(std::iter::repeat_n(b'0', decpt - d.len()));
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&d[..decpt]);
            out.push(b'.');
            out.extend_from_slice(&d[decpt..]);
        }
    } else if decpt <= 0 && decpt > -4 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-decpt) as usize));
        out.extend_from_slice(d);
    } else {
        out.push(d[0]);
        out.push(b'.');
        if d.len() > 1 {
            out.extend_from_slice(&d[1..]);
        } else {
            out.push(b'0');
        }
        let e = decpt - 1;
        let _ = write!(out, "e{}{:02}", if e < 0 { '-' } else { '+' }, e.unsigned_abs());
    }
}

/// [`write_float`] as a `String`.
pub fn float_to_s(f: f64) -> String {
    let mut out = Vec::with_capacity(24);
    write_float(f, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Ruby's `to_s`: strings and bytes as they are, `nil` empty, containers as `inspect`.
pub fn write_to_s(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => {}
        Value::Str(s) => out.extend_from_slice(s.as_bytes()),
        Value::Bytes(b) => out.extend_from_slice(b),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        Value::Float(f) => write_float(*f, out),
        Value::Array(_) | Value::Map(_) => write_inspect(v, out),
    }
}

/// [`write_to_s`] into a `String` (bytes that are not UTF-8 are replaced).
pub fn to_s(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        other => {
            let mut out = Vec::new();
            write_to_s(other, &mut out);
            match String::from_utf8(out) {
                Ok(s) => s,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            }
        }
    }
}

/// Ruby's `inspect`.
pub fn write_inspect(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"nil"),
        Value::Str(s) => write_inspect_str(s.as_bytes(), out),
        Value::Bytes(b) => write_inspect_str(b, out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_inspect(e, out);
            }
            out.push(b']');
        }
        Value::Map(m) => write_inspect_map(m, out),
        other => write_to_s(other, out),
    }
}

/// A record as Ruby 3.0-3.3 `Hash#inspect` prints it: `{"k"=>"v", "n"=>1}`.
pub fn write_inspect_map(m: &Map, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        write_inspect_str(k.as_bytes(), out);
        out.extend_from_slice(b"=>");
        write_inspect(v, out);
    }
    out.push(b'}');
}

/// Characters Ruby escapes as `\uXXXX` although they are valid: controls and invisible format characters.
fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
}

/// Ruby's `String#inspect` for a UTF-8 string; bytes that are not UTF-8 come out as `\xNN`.
pub fn write_inspect_str(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let mut rest = s;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(v) => (v, &[][..]),
            Err(e) => {
                let (v, b) = rest.split_at(e.valid_up_to());
                // Safe: from_utf8 said the prefix is valid.
                (std::str::from_utf8(v).unwrap_or_default(), b)
            }
        };
        let mut chars = valid.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\x0C' => out.extend_from_slice(b"\\f"),
                '\x0B' => out.extend_from_slice(b"\\v"),
                '\x08' => out.extend_from_slice(b"\\b"),
                '\x07' => out.extend_from_slice(b"\\a"),
                '\x1B' => out.extend_from_slice(b"\\e"),
                // `#{`, `#$` and `#@` would interpolate in a Ruby literal, so inspect escapes the `#`.
                '#' if matches!(chars.peek(), Some('{' | '$' | '@')) => out.extend_from_slice(b"\\#"),
                c if unprintable(c) => {
                    let _ = write!(out, "\\u{:04X}", c as u32);
                }
                c => {
                    let mut b = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                }
            }
        }
        if bad.is_empty() {
            break;
        }
        // One invalid byte, then carry on with the rest.
        let _ = write!(out, "\\x{:02X}", bad[0]);
        rest = &bad[1..];
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record;

    fn f(x: f64) -> String {
        float_to_s(x)
    }

    #[test]
    fn floats_like_ruby() {
        assert_eq!(f(1.0), "1.0");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(2.5), "2.5");
        assert_eq!(f(-0.5), "-0.5");
        assert_eq!(f(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(f(123456.789), "123456.789");
        assert_eq!(f(1e15), "1000000000000000.0");
        assert_eq!(f(1e16), "1.0e+16");
        assert_eq!(f(1e20), "1.0e+20");
        assert_eq!(f(1.5e20), "1.5e+20");
        assert_eq!(f(0.0001), "0.0001");
        assert_eq!(f(0.00001), "1.0e-05");
        assert_eq!(f(1.5e-7), "1.5e-07");
        assert_eq!(f(1714564800.123), "1714564800.123");
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(f(-0.0), "-0.0");
    }

    #[test]
    fn hash_inspect_like_ruby() {
        let mut m = record! {"k" => "v", "n" => 1i64, "f" => 1.5, "b" => true};
        m.insert("nil", Value::Null);
        m.insert("a", Value::Array(vec![Value::from(1i64), Value::from("x")]));
        m.insert("h", Value::Map(record! {"q" => "say \"hi\"\n#{x}"}));
        m.insert("bin", Value::Bytes(vec![b'a', 0xff]));
        m.insert("u", Value::from("é\u{1}\u{7f}"));
        let mut out = Vec::new();
        write_inspect_map(&m, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r##"{"k"=>"v", "n"=>1, "f"=>1.5, "b"=>true, "nil"=>nil, "a"=>[1, "x"], "h"=>{"q"=>"say \"hi\"\n\#{x}"}, "bin"=>"a\xFF", "u"=>"é\u0001\u007F"}"##
        );
    }

    #[test]
    fn to_s_like_ruby() {
        assert_eq!(to_s(&Value::Null), "");
        assert_eq!(to_s(&Value::from("x")), "x");
        assert_eq!(to_s(&Value::Float(3.0)), "3.0");
        assert_eq!(to_s(&Value::Array(vec![Value::Null, Value::from(true)])), "[nil, true]");
    }
}
