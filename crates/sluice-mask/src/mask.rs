//! How a found value is replaced: `redact`, `partial`, `hash` (HMAC-SHA256 token) or `remove`.
use crate::kind::{Detector, KindId, BUILTIN, SENSITIVE_KEY};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Redact,
    Partial,
    Hash,
    Remove,
}

impl Mode {
    pub const NAMES: [&'static str; 4] = ["redact", "partial", "hash", "remove"];

    pub fn from_name(s: &str) -> Option<Mode> {
        match s {
            "redact" => Some(Mode::Redact),
            "partial" => Some(Mode::Partial),
            "hash" => Some(Mode::Hash),
            "remove" => Some(Mode::Remove),
            _ => None,
        }
    }
}

/// Hex digits of the token after `tok_` (64 bits of the HMAC).
pub const TOKEN_HEX: usize = 16;

pub struct Masker {
    pub partial_keep: usize,
    key: Option<Vec<u8>>,
}

fn detector_of(kind: KindId) -> Option<Detector> {
    BUILTIN.get(kind as usize).copied()
}

impl Masker {
    pub fn new(partial_keep: usize, key: Option<Vec<u8>>) -> Self {
        Masker { partial_keep, key }
    }

    /// Append the replacement for `text` (a value of `kind` named `name`) to `out`. `Remove` is decided by
    /// the caller; here it renders like `redact`.
    pub fn render(&self, kind: KindId, name: &str, mode: Mode, text: &str, out: &mut String) {
        match mode {
            Mode::Redact | Mode::Remove => {
                out.push_str("[REDACTED:");
                out.push_str(name);
                out.push(']');
            }
            Mode::Partial => self.partial(kind, text, out),
            Mode::Hash => self.token(kind, text.as_bytes(), out),
        }
    }

    fn partial(&self, kind: KindId, text: &str, out: &mut String) {
        let det = detector_of(kind);
        let secret = kind == SENSITIVE_KEY || det.is_some_and(|d| d.is_secret());
        if secret {
            out.push_str("********");
            return;
        }
        if det == Some(Detector::Email) {
            if let Some(at) = text.rfind('@') {
                let local = &text[..at];
                let mut chars = local.chars();
                match chars.next() {
                    // a one-letter local part would be shown whole
                    Some(_) if local.chars().count() == 1 => out.push('*'),
                    Some(first) => {
                        out.push(first);
                        out.extend(chars.map(|_| '*'));
                    }
                    None => {}
                }
                out.push_str(&text[at..]);
                return;
            }
        }
        // Phone numbers keep their first group (carrier or area code: `010-****-5678`, `(02)***-5678`,
        // `010+****+5678`).
        let keep_head = if det == Some(Detector::Phone) {
            match text.char_indices().skip(1).find(|&(_, c)| matches!(c, '-' | ' ' | '.' | ')' | '+' | '%')) {
                Some((p, _)) => p,
                None => 3,
            }
        } else {
            0
        };
        let total = text.bytes().filter(u8::is_ascii_alphanumeric).count();
        let keep_tail = self.partial_keep.min(total.saturating_sub(1));
        let mut seen = 0;
        for (i, c) in text.char_indices() {
            if c.is_ascii_alphanumeric() {
                seen += 1;
                if i < keep_head || seen > total - keep_tail {
                    out.push(c);
                } else {
                    out.push('*');
                }
            } else if c.is_ascii() {
                out.push(c);
            } else {
                out.push('*');
            }
        }
    }

    /// `tok_` + 16 hex digits of HMAC-SHA256(key, normalised value): the same value gives the same token
    /// (phone numbers and cards written with or without separators included).
    pub fn token(&self, kind: KindId, value: &[u8], out: &mut String) {
        let Some(key) = &self.key else {
            // Unreachable by construction (configuration requires a key for `hash`); never leak the value.
            out.push_str("[REDACTED:no_hash_key]");
            return;
        };
        let norm = normalise(kind, value);
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
            out.push_str("[REDACTED:no_hash_key]");
            return;
        };
        mac.update(&norm);
        let tag = mac.finalize().into_bytes();
        out.push_str("tok_");
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for &byte in tag.iter().take(TOKEN_HEX / 2) {
            out.push(HEX[(byte >> 4) as usize] as char);
            out.push(HEX[(byte & 15) as usize] as char);
        }
    }
}

fn normalise(kind: KindId, v: &[u8]) -> Vec<u8> {
    match detector_of(kind) {
        Some(
            Detector::Phone
            | Detector::Card
            | Detector::KrRrn
            | Detector::KrFrn
            | Detector::KrDriverLicense
            | Detector::KrPassport,
        ) => {
            let mut d: Vec<u8> =
                v.iter().copied().filter(u8::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect();
            if kind == Detector::Phone.id() && v.first() == Some(&b'+') && d.starts_with(b"82") {
                d.splice(0..2, [b'0']);
                if d.starts_with(b"00") {
                    d.remove(0);
                }
            }
            d
        }
        Some(Detector::Email) => v.to_ascii_lowercase(),
        _ => v.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(kind: Detector, s: &str) -> String {
        let m = Masker::new(4, None);
        let mut out = String::new();
        m.partial(kind.id(), s, &mut out);
        out
    }

    #[test]
    fn partial_shapes() {
        assert_eq!(p(Detector::Phone, "010-1234-5678"), "010-****-5678");
        assert_eq!(p(Detector::Phone, "01012345678"), "010****5678");
        assert_eq!(p(Detector::Phone, "(02)1234-5678"), "(02)****-5678");
        assert_eq!(p(Detector::Phone, "010+7045+5673"), "010+****+5673");
        assert_eq!(p(Detector::Phone, "+82-10-1234-5678"), "+82-**-****-5678");
        assert_eq!(p(Detector::Card, "4111-1111-1111-1111"), "****-****-****-1111");
        assert_eq!(p(Detector::Email, "gdhong@example.com"), "g*****@example.com");
        assert_eq!(p(Detector::Jwt, "eyJabc.def.ghi"), "********");
        // idempotent
        assert_eq!(p(Detector::Phone, "010-****-5678"), "010-****-5678");
        assert_eq!(p(Detector::Email, "g*****@example.com"), "g*****@example.com");
    }

    #[test]
    fn tokens() {
        let a = Masker::new(4, Some(b"k1-0123456789abcdef".to_vec()));
        let b = Masker::new(4, Some(b"k2-0123456789abcdef".to_vec()));
        let t = |m: &Masker, s: &str| {
            let mut o = String::new();
            m.token(Detector::Phone.id(), s.as_bytes(), &mut o);
            o
        };
        assert_eq!(t(&a, "010-1234-5678"), t(&a, "01012345678"));
        assert_eq!(t(&a, "+82-10-1234-5678"), t(&a, "010-1234-5678"));
        assert_ne!(t(&a, "010-1234-5678"), t(&b, "010-1234-5678"));
        assert!(t(&a, "010-1234-5678").starts_with("tok_"));
        assert_eq!(t(&a, "x").len(), 4 + TOKEN_HEX);
    }
}
