//! JSON decoding straight into [`Value`] (no intermediate `serde_json::Value`) and a fast encoder whose
//! output matches Ruby's `JSON.generate` (non-ASCII kept as is, `/` not escaped).
use super::value::{Map, Str, Value};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("invalid JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    #[error("JSON value is not an object")]
    NotAnObject,
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(v),
        })
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(Str::from(v)))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(Str::from(v)))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(v) = seq.next_element_seed(ValueSeed)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        Ok(Value::Map(read_map(&mut access)?))
    }
}

fn read_map<'de, A: MapAccess<'de>>(access: &mut A) -> Result<Map, A::Error> {
    let mut map = Map::with_capacity(access.size_hint().unwrap_or(8));
    while let Some(key) = access.next_key_seed(KeySeed)? {
        let v = access.next_value_seed(ValueSeed)?;
        map.insert(key, v);
    }
    Ok(map)
}

struct ValueSeed;
impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct KeySeed;
impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Str;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Str, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Str;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Str, E> {
                Ok(Str::from(v))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Text that JSON can be parsed from: bytes, or a `str` (already valid UTF-8, so the decoder skips
/// checking every string again, which is most of the cost of a line that a tail input validated).
pub trait JsonInput {
    fn parse_value(&self) -> Result<Value, JsonError>;
}

fn parse_with<'de, R: serde_json::de::Read<'de>>(mut de: serde_json::Deserializer<R>) -> Result<Value, JsonError> {
    let v = ValueSeed.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

impl JsonInput for [u8] {
    fn parse_value(&self) -> Result<Value, JsonError> {
        parse_with(serde_json::Deserializer::from_slice(self))
    }
}

impl<const N: usize> JsonInput for [u8; N] {
    fn parse_value(&self) -> Result<Value, JsonError> {
        self.as_slice().parse_value()
    }
}

impl JsonInput for Vec<u8> {
    fn parse_value(&self) -> Result<Value, JsonError> {
        self.as_slice().parse_value()
    }
}

impl JsonInput for str {
    fn parse_value(&self) -> Result<Value, JsonError> {
        parse_with(serde_json::Deserializer::from_str(self))
    }
}

impl JsonInput for String {
    fn parse_value(&self) -> Result<Value, JsonError> {
        self.as_str().parse_value()
    }
}

/// Parse one JSON value (from `&[u8]` or `&str`).
pub fn parse_json_value<I: JsonInput + ?Sized>(input: &I) -> Result<Value, JsonError> {
    input.parse_value()
}

/// Parse a JSON object into a record (from `&[u8]` or `&str`; prefer `&str` when the text is known to be
/// UTF-8).
pub fn parse_json_map<I: JsonInput + ?Sized>(input: &I) -> Result<Map, JsonError> {
    match input.parse_value()? {
        Value::Map(m) => Ok(m),
        _ => Err(JsonError::NotAnObject),
    }
}

/// How a float JSON cannot hold (NaN, infinities) is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonFinite {
    /// `null` (sluice's formatters: Ruby's generator raises, we degrade rather than drop the record).
    Null,
    /// A string of Rust's spelling (`"NaN"`, `"inf"`, `"-inf"`), as google_cloud's value mapping does.
    Text,
}

/// Append `v` as compact JSON.
pub fn write_json(v: &Value, out: &mut Vec<u8>) {
    write_json_with(v, NonFinite::Null, out)
}

/// Append a record as a compact JSON object.
pub fn write_json_map(m: &Map, out: &mut Vec<u8>) {
    write_json_map_with(m, NonFinite::Null, out)
}

/// [`write_json`] with a choice for non-finite floats.
pub fn write_json_with(v: &Value, nf: NonFinite, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => {
            let mut b = itoa_buf();
            out.extend_from_slice(fmt_i64(*i, &mut b));
        }
        Value::UInt(u) => out.extend_from_slice(u.to_string().as_bytes()),
        Value::Float(f) if nf == NonFinite::Text && !f.is_finite() => write_json_str(f.to_string().as_bytes(), out),
        Value::Float(f) => write_json_float(*f, out),
        Value::Str(s) => write_json_str(s.as_bytes(), out),
        Value::Bytes(b) => write_json_str(String::from_utf8_lossy(b).as_bytes(), out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_with(v, nf, out);
            }
            out.push(b']');
        }
        Value::Map(m) => write_json_map_with(m, nf, out),
    }
}

/// [`write_json_map`] with a choice for non-finite floats.
pub fn write_json_map_with(m: &Map, nf: NonFinite, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(k.as_bytes(), out);
        out.push(b':');
        write_json_with(v, nf, out);
    }
    out.push(b'}');
}

/// A float as JSON: Ruby's digits, and `null` for NaN and infinities.
pub(crate) fn write_json_float(f: f64, out: &mut Vec<u8>) {
    if !f.is_finite() {
        // JSON has no NaN/Infinity; Ruby's generator raises, we degrade to null rather than drop the record.
        out.extend_from_slice(b"null");
    } else {
        crate::ruby::print::write_float(f, out);
    }
}

fn itoa_buf() -> [u8; 20] {
    [0u8; 20]
}

fn fmt_i64(i: i64, buf: &mut [u8; 20]) -> &[u8] {
    let neg = i < 0;
    let mut n = i.unsigned_abs();
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if neg {
        // i64::MIN has 19 digits + sign = 20 bytes, which fits.
        pos -= 1;
        buf[pos] = b'-';
    }
    &buf[pos..]
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// True when one of the 8 bytes in `w` needs an escape (a control byte, `"` or `\`). Exact for "any"
/// (the classic has-zero-byte / has-less-than tricks), so a word without one is copied untouched.
#[inline]
fn word_needs_escape(w: u64) -> bool {
    let lt_space = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * b'"' as u64);
    let quote = q.wrapping_sub(ONES) & !q;
    let bs = w ^ (ONES * b'\\' as u64);
    let backslash = bs.wrapping_sub(ONES) & !bs;
    (lt_space | quote | backslash) & HIGHS != 0
}

/// Index of the first byte from `from` that needs an escape, or `s.len()`.
#[inline]
fn next_escape(s: &[u8], mut from: usize) -> usize {
    while from + 8 <= s.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[from..from + 8]);
        if word_needs_escape(u64::from_le_bytes(w)) {
            break;
        }
        from += 8;
    }
    while from < s.len() && !needs_escape(s[from]) {
        from += 1;
    }
    from
}

/// Append a JSON string literal. Bytes that need no escape are found 8 at a time and copied in runs.
pub fn write_json_str(s: &[u8], out: &mut Vec<u8>) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    loop {
        i = next_escape(s, i);
        if i >= s.len() {
            break;
        }
        let b = s[i];
        out.extend_from_slice(&s[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
        }
        start = i + 1;
        i += 1;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_order_and_types() {
        let src = br#"{"b":1,"a":"x\n\"y","n":null,"f":2.5,"w":1.0,"arr":[true,false,-3],"m":{"k":"\u00e9"},"big":18446744073709551615}"#;
        let m = parse_json_map(src).unwrap();
        let keys: Vec<_> = m.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "n", "f", "w", "arr", "m", "big"]);
        assert_eq!(m.get("big"), Some(&Value::UInt(u64::MAX)));
        let mut out = Vec::new();
        write_json_map(&m, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"b":1,"a":"x\n\"y","n":null,"f":2.5,"w":1.0,"arr":[true,false,-3],"m":{"k":"é"},"big":18446744073709551615}"#
        );
    }

    /// Floats are read exactly, as Ruby's JSON parser reads them (serde_json's default parse can be a
    /// unit in the last place off).
    #[test]
    fn floats_are_parsed_exactly() {
        for text in ["1.1925158591721447e188", "0.1", "2.2250738585072014e-308", "9007199254740993.0", "1e23"] {
            let m = parse_json_map(format!("{{\"f\":{text}}}").as_str()).unwrap();
            assert_eq!(m.get("f"), Some(&Value::Float(text.parse::<f64>().unwrap())), "{text}");
        }
    }

    #[test]
    fn rejects_non_objects_and_garbage() {
        assert!(matches!(parse_json_map(b"[1]"), Err(JsonError::NotAnObject)));
        assert!(parse_json_map(b"{\"a\":").is_err());
        assert!(parse_json_map(b"{} trailing").is_err());
        assert!(parse_json_map(b"").is_err());
    }

    /// The byte-at-a-time escaper the word-at-a-time one must agree with.
    fn naive_json_str(s: &[u8]) -> Vec<u8> {
        let mut out = vec![b'"'];
        for &b in s {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                b if b < 0x20 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
                b => out.push(b),
            }
        }
        out.push(b'"');
        out
    }

    #[test]
    fn word_at_a_time_escaping_matches_bytewise() {
        // Every byte value at every offset of a 20-byte string (crossing 8-byte words), among plain,
        // near-miss (0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f) and non-ASCII bytes.
        let filler: Vec<u8> = b"ab \x21#[]\x7f\xc3\xa9zzzzzzzzzzzz".to_vec();
        for b in 0..=255u8 {
            for pos in 0..filler.len() {
                let mut s = filler.clone();
                s[pos] = b;
                let mut out = Vec::new();
                write_json_str(&s, &mut out);
                assert_eq!(out, naive_json_str(&s), "byte {b:#x} at {pos}");
            }
        }
        let mut out = Vec::new();
        write_json_str(b"", &mut out);
        assert_eq!(out, b"\"\"");
        let mut out = Vec::new();
        write_json_str("déjà \"vu\"\n\\ 12345678".as_bytes(), &mut out);
        assert_eq!(out, "\"déjà \\\"vu\\\"\\n\\\\ 12345678\"".as_bytes());
    }

    #[test]
    fn str_and_bytes_inputs_parse_alike() {
        let text = r#"{"a":"x\u00e9y","b":[1,2.5,null],"c":{"d":"é"}}"#;
        let from_str = parse_json_map(text).unwrap();
        assert_eq!(from_str, parse_json_map(text.as_bytes()).unwrap());
        assert_eq!(from_str, parse_json_map(&text.to_string()).unwrap());
        assert_eq!(from_str.get("a"), Some(&Value::Str(Str::from("xéy"))));
        assert!(parse_json_map("{\"a\":1} x").is_err());
        assert!(matches!(parse_json_map("[1]"), Err(JsonError::NotAnObject)));
        // Invalid UTF-8 is still refused from bytes.
        assert!(parse_json_map(b"{\"a\":\"\xff\"}").is_err());
    }

    #[test]
    fn control_chars_are_escaped() {
        let mut out = Vec::new();
        write_json_str(b"a\x01b", &mut out);
        assert_eq!(out, b"\"a\\u0001b\"");
        let mut out = Vec::new();
        write_json(&Value::Int(i64::MIN), &mut out);
        assert_eq!(out, i64::MIN.to_string().as_bytes());
    }
}
