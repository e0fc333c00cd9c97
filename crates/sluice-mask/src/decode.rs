//! Percent-decoding for detection: `kim%40example.com`, `%2540` (encoded twice), `010+7045+5673`.
//!
//! The decoded text is scanned like any other; each decoded byte remembers where it came from, so a match
//! maps back to the encoded span as written (that span is what gets masked).

/// Rounds of decoding: `%2540` needs two; a third covers triple encoding, more is not seen in logs.
const MAX_ROUNDS: usize = 3;

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

pub fn escape_at(b: &[u8], i: usize) -> Option<u8> {
    if b.get(i) != Some(&b'%') {
        return None;
    }
    Some(hex(*b.get(i + 1)?)? << 4 | hex(*b.get(i + 2)?)?)
}

/// A `+` that form encoding made of a space: between two ASCII letters or digits (`010+7045`, `Bearer+ya29`).
/// A `+` after a space or `=` is a literal plus (`+82 10 ...`, `phone=+8210...`).
pub fn form_space(b: &[u8], i: usize) -> bool {
    b[i] == b'+' && i > 0 && b[i - 1].is_ascii_alphanumeric() && b.get(i + 1).is_some_and(u8::is_ascii_alphanumeric)
}

/// Whether `b` holds anything [`decode`] would change. (The scanner notes this in its own pass.)
pub fn has_encoding(b: &[u8]) -> bool {
    memchr::memchr2_iter(b'%', b'+', b).any(|i| escape_at(b, i).is_some() || (b[i] == b'+' && form_space(b, i)))
}

/// Reusable buffers of the decoder.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The decoded text (valid UTF-8 when [`decode`] returned true).
    pub text: Vec<u8>,
    /// `map[i]`: offset in the original of decoded byte `i`; `map[text.len()]` is the original's length.
    pub map: Vec<usize>,
    tmp_text: Vec<u8>,
    tmp_map: Vec<usize>,
}

impl Decoded {
    /// The original span of the decoded span `s..e`.
    pub fn original(&self, s: usize, e: usize) -> (usize, usize) {
        (self.map[s], self.map[e])
    }
}

fn round(src: &[u8], src_map: &[usize], plus: bool, ascii_only: bool, dst: &mut Vec<u8>, map: &mut Vec<usize>) -> bool {
    dst.clear();
    map.clear();
    let mut changed = false;
    let mut i = 0;
    while i < src.len() {
        match escape_at(src, i) {
            Some(v) if !ascii_only || v < 0x80 => {
                dst.push(v);
                map.push(src_map[i]);
                i += 3;
                changed = true;
            }
            _ => {
                if plus && form_space(src, i) {
                    dst.push(b' ');
                    changed = true;
                } else {
                    dst.push(src[i]);
                }
                map.push(src_map[i]);
                i += 1;
            }
        }
    }
    map.push(src_map[src.len()]);
    changed
}

/// Decode `%XX` escapes (up to three times over) and form-encoded spaces of `s` into `out`. Escapes whose
/// bytes would not be UTF-8 are kept as written (only the ASCII ones are decoded then). Returns false
/// when nothing changed.
pub fn decode(s: &[u8], out: &mut Decoded) -> bool {
    for ascii_only in [false, true] {
        out.text.clear();
        out.text.extend_from_slice(s);
        out.map.clear();
        out.map.extend(0..=s.len());
        let mut any = false;
        for r in 0..MAX_ROUNDS {
            let (text, map) = (std::mem::take(&mut out.text), std::mem::take(&mut out.map));
            let changed = round(&text, &map, r == 0, ascii_only, &mut out.tmp_text, &mut out.tmp_map);
            out.text = std::mem::replace(&mut out.tmp_text, text);
            out.map = std::mem::replace(&mut out.tmp_map, map);
            any |= changed;
            if !changed {
                break;
            }
        }
        if std::str::from_utf8(&out.text).is_ok() {
            return any;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> (String, Decoded) {
        let mut d = Decoded::default();
        decode(s.as_bytes(), &mut d);
        (String::from_utf8(d.text.clone()).expect("utf8"), d)
    }

    #[test]
    fn decodes_and_maps_back() {
        let src = "?email=kim%40example.com&x=1";
        let (t, d) = dec(src);
        assert_eq!(t, "?email=kim@example.com&x=1");
        let s = t.find("kim").expect("kim");
        let e = s + "kim@example.com".len();
        let (os, oe) = d.original(s, e);
        assert_eq!(&src[os..oe], "kim%40example.com");
    }

    #[test]
    fn twice_encoded_plus_and_hangul() {
        assert_eq!(dec("ops%2540ex.net").0, "ops@ex.net");
        assert_eq!(dec("010+7045+5673").0, "010 7045 5673");
        assert_eq!(dec("phone=%2B821075304405").0, "phone=+821075304405");
        assert_eq!(dec("a %2B82+10 b").0, "a +82 10 b");
        assert_eq!(dec("%252B82").0, "+82", "a decoded plus is not a space");
        assert_eq!(dec("park@%ED%9A%8C%EC%82%AC.kr").0, "park@회사.kr");
        // not UTF-8: only the ASCII escapes are decoded
        assert_eq!(dec("%FF%40x").0, "%FF@x");
        assert!(!has_encoding(b"+82 10 1234 5678 100%"));
        assert!(has_encoding(b"a%20b") && has_encoding(b"010+1234"));
    }
}
