//! Validators: the checks that tell a real value from a look-alike of the same shape.
//!
//! All functions take ASCII digits (`b'0'..=b'9'`) with separators already removed.

/// Luhn (mod 10) check over ASCII digits.
pub fn luhn(digits: &[u8]) -> bool {
    if digits.is_empty() {
        return false;
    }
    let mut sum = 0u32;
    for (i, &b) in digits.iter().rev().enumerate() {
        let mut d = u32::from(b.wrapping_sub(b'0'));
        if d > 9 {
            return false;
        }
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

fn num(d: &[u8]) -> u32 {
    d.iter().fold(0u32, |acc, &b| acc * 10 + u32::from(b.wrapping_sub(b'0')))
}

/// Known issuer ranges (IIN prefixes) and the lengths each issues.
pub fn card_issuer(d: &[u8]) -> Option<&'static str> {
    let n = d.len();
    if !(13..=19).contains(&n) {
        return None;
    }
    let p2 = num(&d[..2]);
    let p3 = num(&d[..3]);
    let p4 = num(&d[..4]);
    let p6 = num(&d[..6]);
    let issuer = match d[0] {
        b'4' if matches!(n, 13 | 16 | 19) => "visa",
        b'5' if (51..=55).contains(&p2) && n == 16 => "mastercard",
        b'2' if (2221..=2720).contains(&p4) && n == 16 => "mastercard",
        b'3' if (p2 == 34 || p2 == 37) && n == 15 => "amex",
        b'3' if (3528..=3589).contains(&p4) && (16..=19).contains(&n) => "jcb",
        b'3' if ((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39) && (14..=19).contains(&n) => "diners",
        b'6' if (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || (622126..=622925).contains(&p6))
            && (16..=19).contains(&n) =>
        {
            "discover"
        }
        b'6' if p2 == 62 && (16..=19).contains(&n) => "unionpay",
        b'6' if (p2 == 63 || p2 == 67 || p2 == 60 || p2 == 61 || p2 == 64 || p2 == 66 || p2 == 68 || p2 == 69)
            && (12..=19).contains(&n) =>
        {
            "maestro"
        }
        b'5' if (p2 == 50 || (56..=58).contains(&p2)) && (12..=19).contains(&n) => "maestro",
        // Korean domestic-only cards (국내전용카드) use national-use BINs starting with 9.
        b'9' if n == 16 && (p2 == 94 || p2 == 95 || p2 == 90 || p2 == 91 || p2 == 92 || p2 == 93) => "kr_domestic",
        _ => return None,
    };
    Some(issuer)
}

/// A card number: 13 to 19 digits, a known issuer range and a valid Luhn digit.
pub fn card(d: &[u8]) -> bool {
    card_issuer(d).is_some() && luhn(d)
}

fn is_leap(y: u32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// The two-digit year of today, for rejecting birth dates in the future.
fn current_year() -> u32 {
    use chrono::Datelike;
    chrono::Utc::now().year().clamp(2000, 9999) as u32
}

/// Kind of a 13-digit registration number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegKind {
    Resident,
    Foreigner,
}

/// A resident (gender digit 1-4) or foreigner (5-8) registration number: YYMMDD is a real date, not in the
/// future, and the gender digit gives the century. With `strict`, the check digit must be valid too
/// (numbers issued since October 2020 carry no valid check digit, hence off by default).
pub fn registration(d: &[u8], strict: bool) -> Option<RegKind> {
    if d.len() != 13 || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let g = d[6] - b'0';
    let (kind, century) = match g {
        1 | 2 => (RegKind::Resident, 1900),
        3 | 4 => (RegKind::Resident, 2000),
        5 | 6 => (RegKind::Foreigner, 1900),
        7 | 8 => (RegKind::Foreigner, 2000),
        _ => return None,
    };
    let y = century + num(&d[0..2]);
    let m = num(&d[2..4]);
    let day = num(&d[4..6]);
    if !(1..=12).contains(&m) || day == 0 || day > days_in_month(y, m) {
        return None;
    }
    if y > current_year() {
        return None;
    }
    if strict {
        const W: [u32; 12] = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5];
        let sum: u32 = d[..12].iter().zip(W).map(|(&b, w)| u32::from(b - b'0') * w).sum();
        let check = match kind {
            RegKind::Resident => (11 - sum % 11) % 10,
            RegKind::Foreigner => (13 - sum % 11) % 10,
        };
        if check != u32::from(d[12] - b'0') {
            return None;
        }
    }
    Some(kind)
}

/// Korean area codes after the leading 0 (two digits: 31-33, 41-44, 51-55, 61-64).
fn kr_area(a: u32) -> bool {
    matches!(a, 31..=33 | 41..=44 | 51..=55 | 61..=64)
}

/// A Korean national number with its leading 0, given as digit groups (one group when written without
/// separators). Mobile 010/011/016-019, Seoul 02, other areas 0NN, VoIP 070, personal 050x.
pub fn kr_phone(groups: &[&[u8]]) -> bool {
    let d: Vec<u8> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    let n = d.len();
    if !(9..=11).contains(&n) || d[0] != b'0' {
        return false;
    }
    let (prefix_len, rest_ok) = if d[1] == b'1' && matches!(d[2], b'0' | b'1' | b'6' | b'7' | b'8' | b'9') {
        // mobile: 01X + 3/4 + 4 (010 always has 4 + 4)
        (3, if d[2] == b'0' { n == 11 } else { n == 10 || n == 11 })
    } else if d[1] == b'2' {
        (2, n == 9 || n == 10)
    } else if d[1] == b'7' && d[2] == b'0' {
        (3, n == 11)
    } else if kr_area(num(&d[1..3])) {
        (3, n == 10 || n == 11)
    } else {
        return false;
    };
    if !rest_ok {
        return false;
    }
    match groups.len() {
        1 => true,
        3 => {
            groups[0].len() == prefix_len
                && (3..=4).contains(&groups[1].len())
                && groups[2].len() == 4
                // a subscriber number does not start with 0
                && groups[1][0] != b'0'
        }
        _ => false,
    }
}

/// Groups after `+82` (leading 0 of the national number dropped, or written as `(0)`).
pub fn kr_phone_intl(groups: &[&[u8]]) -> bool {
    if groups.is_empty() {
        return false;
    }
    let mut with_zero: Vec<Vec<u8>> = groups.iter().map(|g| g.to_vec()).collect();
    if with_zero[0].first() != Some(&b'0') {
        with_zero[0].insert(0, b'0');
    }
    let refs: Vec<&[u8]> = with_zero.iter().map(|g| g.as_slice()).collect();
    kr_phone(&refs)
}

/// Country calling codes that are assigned (first digit; spare codes are rejected by the 1-3 digit length check
/// on the total instead). E.164: `+`, country code, at most 15 digits in all.
pub fn e164(d: &[u8]) -> bool {
    (8..=15).contains(&d.len()) && d[0] != b'0'
}

/// IPv4 dotted quad: four groups, each 0-255 without leading zeros.
pub fn ipv4(groups: &[&[u8]]) -> bool {
    groups.len() == 4
        && groups.iter().all(|g| (1..=3).contains(&g.len()) && !(g.len() > 1 && g[0] == b'0') && num(g) <= 255)
}

/// Korean driver's licence: RR-YY-NNNNNN-CC with a known region code (11-28).
pub fn kr_driver_license(groups: &[&[u8]]) -> bool {
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    lens == [2, 2, 6, 2] && matches!(num(groups[0]), 11..=26 | 28)
}

/// E-mail address around an `@`: `local` and `domain` are the already delimited parts.
pub fn email(local: &[u8], domain: &[u8]) -> bool {
    if local.is_empty() || local.len() > 64 || local[0] == b'.' || local[local.len() - 1] == b'.' {
        return false;
    }
    if domain.len() < 4 || domain.len() > 253 {
        return false;
    }
    let mut labels = 0;
    let mut last: &[u8] = b"";
    for label in domain.split(|&b| b == b'.') {
        if label.is_empty() || label.len() > 63 || label[0] == b'-' || label[label.len() - 1] == b'-' {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2 && (2..=24).contains(&last.len()) && last.iter().all(u8::is_ascii_alphabetic)
}

/// Length of the Hangul syllable (U+AC00..U+D7A3) at the start of `b`.
fn hangul_at(b: &[u8]) -> Option<usize> {
    if b.len() < 3 || !(0xEA..=0xED).contains(&b[0]) || b[1] & 0xC0 != 0x80 || b[2] & 0xC0 != 0x80 {
        return None;
    }
    let cp = (u32::from(b[0] & 0x0F) << 12) | (u32::from(b[1] & 0x3F) << 6) | u32::from(b[2] & 0x3F);
    (0xAC00..=0xD7A3).contains(&cp).then_some(3)
}

/// Hangul top-level domains (`.한국` is Korea's; the others are generic ones in use).
const HANGUL_TLDS: [&str; 3] = ["한국", "닷컴", "닷넷"];

/// An e-mail address whose domain has Hangul labels (`park@회사.한국`, `kim@메일.example.com`). `rest` is the
/// text after the `@`; returns the length of the domain. A Hangul TLD ends where the known name ends, so
/// a particle after it (`한국에서`) is not part of the address.
pub fn email_idn(local: &[u8], rest: &[u8]) -> Option<usize> {
    if local.is_empty() || local.len() > 64 || local[0] == b'.' || local[local.len() - 1] == b'.' {
        return None;
    }
    let mut e = 0;
    let mut hangul = false;
    while e < rest.len() && e < 253 {
        if rest[e].is_ascii_alphanumeric() || matches!(rest[e], b'.' | b'-') {
            e += 1;
        } else if let Some(k) = hangul_at(&rest[e..]) {
            e += k;
            hangul = true;
        } else {
            break;
        }
    }
    while e > 0 && matches!(rest[e - 1], b'.' | b'-') {
        e -= 1;
    }
    if !hangul {
        return None;
    }
    let dom = &rest[..e];
    let dot = dom.iter().rposition(|&c| c == b'.')?;
    let last = &dom[dot + 1..];
    let tld = if last.first()?.is_ascii_alphabetic() {
        let k = last.iter().take_while(|c| c.is_ascii_alphabetic()).count();
        (2..=24).contains(&k).then_some(k)?
    } else {
        HANGUL_TLDS.iter().find(|t| last.starts_with(t.as_bytes()))?.len()
    };
    let len = dot + 1 + tld;
    let labels_ok = rest[..len]
        .split(|&c| c == b'.')
        .all(|l| !l.is_empty() && l.len() <= 63 && l[0] != b'-' && l[l.len() - 1] != b'-');
    labels_ok.then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_issuers() {
        assert!(card(b"4111111111111111"));
        assert!(!card(b"4111111111111112"));
        assert!(card(b"378282246310005"));
        assert!(card(b"5555555555554444"));
        assert!(card(b"2221000000000009"));
        assert!(card(b"6011111111111117"));
        assert!(!card(b"1234567812345670")); // Luhn-valid, no issuer
        assert!(!card(b"411111111111"));
    }

    #[test]
    fn registration_numbers() {
        assert_eq!(registration(b"9605191741041", false), Some(RegKind::Resident));
        assert_eq!(registration(b"5501016957659", false), Some(RegKind::Foreigner));
        assert_eq!(registration(b"9613191741041", false), None); // month 13
        assert_eq!(registration(b"9502301741041", false), None); // 30 February
        assert_eq!(registration(b"9605199741041", false), None); // gender digit 9
        assert_eq!(registration(b"0002293000000", false), Some(RegKind::Resident)); // 2000 is leap
        assert_eq!(registration(b"9902291000000", false), None); // 1999 is not
        assert_eq!(registration(b"9901013000000", false), None); // 2099: future
                                                                 // strict: 800101-1234560 has the right check digit, ...7 does not
        assert!(registration(b"8001011234560", true).is_some());
        assert!(registration(b"8001011234567", true).is_none());
        assert!(registration(b"8001011234567", false).is_some());
    }

    #[test]
    fn phones() {
        assert!(kr_phone(&[b"01012345678"]));
        assert!(kr_phone(&[b"010", b"1234", b"5678"]));
        assert!(kr_phone(&[b"02", b"123", b"4567"]));
        assert!(kr_phone(&[b"031", b"641", b"4110"]));
        assert!(!kr_phone(&[b"0101234567"])); // 010 needs 8 more digits
        assert!(!kr_phone(&[b"099", b"123", b"4567"]));
        assert!(kr_phone_intl(&[b"10", b"8859", b"8440"]));
        assert!(kr_phone_intl(&[b"1088598440"]));
    }

    #[test]
    fn ips_and_licences() {
        assert!(ipv4(&[b"192", b"168", b"0", b"1"]));
        assert!(!ipv4(&[b"256", b"1", b"1", b"1"]));
        assert!(!ipv4(&[b"01", b"1", b"1", b"1"]));
        assert!(kr_driver_license(&[b"11", b"19", b"123456", b"01"]));
        assert!(!kr_driver_license(&[b"99", b"19", b"123456", b"01"]));
    }

    #[test]
    fn emails() {
        assert!(email(b"gildong", b"example.com"));
        assert!(!email(b"gildong", b"localhost"));
        assert!(!email(b"a", b"example.c0m"));
        assert!(!email(b"", b"example.com"));
        assert_eq!(email_idn(b"park", "회사.한국".as_bytes()), Some("회사.한국".len()));
        assert_eq!(email_idn(b"park", "회사.한국에서 확인".as_bytes()), Some("회사.한국".len()));
        assert_eq!(email_idn(b"kim", "메일.example.com입니다".as_bytes()), Some("메일.example.com".len()));
        assert_eq!(email_idn(b"kim", b"example.com"), None);
        assert_eq!(email_idn(b"kim", "회사".as_bytes()), None);
    }
}
