//! The scanner: one pass over a string finds candidates cheaply, validators decide.
//!
//! - `@` (memchr) starts the e-mail check;
//! - a keyword automaton (aho-corasick, ASCII case-insensitive) finds `AKIA`/`ASIA`, `eyJ`, `bearer`,
//!   `password`-like and `secret_access_key`-like keys, and the text right after each is checked by hand;
//! - one byte loop splits the rest into words (ASCII letters first: only passports can match) and numeric
//!   spans (digit runs joined by single `-`, ` ` or `.`), whose windows go to the number validators;
//! - user rules run only when their `RegexSet` says one matches.
//!
//! Boundaries: a match is never preceded or followed by an ASCII letter or digit; Hangul and punctuation
//! around it are fine.
use crate::kind::{Detector, DetectorSet, KindId, FIRST_RULE};
use crate::validate::{self, RegKind};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Regex, RegexSet};

/// One found span (byte offsets into the scanned string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub start: usize,
    pub end: usize,
    pub kind: KindId,
}

/// A user rule's validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleValidator {
    None,
    Luhn,
}

/// A `<rule>`: a regular expression with an optional validator.
#[derive(Debug)]
pub struct Rule {
    pub name: String,
    pub regex: Regex,
    pub validator: RuleValidator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    AwsAccess,
    Jwt,
    Bearer,
    Password,
    AwsSecret,
}

/// Why a value could not be scanned (the record then fails closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("value of {0} bytes is larger than max_value_size")]
    TooLarge(usize),
}

/// Reusable buffers, so the hot path does not allocate.
#[derive(Debug, Default)]
pub struct Scratch {
    runs: Vec<(usize, usize)>,
    seps: Vec<u8>,
    digits: Vec<u8>,
}

pub struct Scanner {
    enabled: DetectorSet,
    strict: bool,
    max_size: usize,
    keywords: Option<(AhoCorasick, Vec<Trigger>)>,
    rules: Vec<Rule>,
    rule_set: Option<RegexSet>,
}

#[inline]
fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

#[inline]
fn b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Values this filter wrote itself: never masked again (keeps masking idempotent).
pub fn is_masked_value(s: &str) -> bool {
    s.starts_with("tok_") || s.starts_with("[REDACTED") || (!s.is_empty() && s.bytes().all(|b| b == b'*'))
}

impl Scanner {
    pub fn new(enabled: DetectorSet, strict: bool, max_size: usize, rules: Vec<Rule>) -> Result<Self, regex::Error> {
        let mut pats: Vec<&str> = Vec::new();
        let mut trig = Vec::new();
        let mut add = |p: &'static str, t: Trigger| {
            pats.push(p);
            trig.push(t);
        };
        if enabled.has(Detector::AwsAccessKey) {
            add("AKIA", Trigger::AwsAccess);
            add("ASIA", Trigger::AwsAccess);
        }
        if enabled.has(Detector::Jwt) {
            add("eyJ", Trigger::Jwt);
        }
        if enabled.has(Detector::BearerToken) {
            add("bearer", Trigger::Bearer);
        }
        if enabled.has(Detector::Password) {
            for p in ["password", "passwd", "passphrase", "pwd", "비밀번호"] {
                add(p, Trigger::Password);
            }
        }
        if enabled.has(Detector::AwsSecretKey) {
            for p in ["secret_access_key", "secretaccesskey", "secret-access-key", "aws_secret_key", "awssecretkey"] {
                add(p, Trigger::AwsSecret);
            }
        }
        let keywords = if pats.is_empty() {
            None
        } else {
            let ac = AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostLongest)
                .build(&pats)
                .map_err(|e| regex::Error::Syntax(e.to_string()))?;
            Some((ac, trig))
        };
        let rule_set =
            if rules.is_empty() { None } else { Some(RegexSet::new(rules.iter().map(|r| r.regex.as_str()))?) };
        Ok(Scanner { enabled, strict, max_size, keywords, rules, rule_set })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Find every match in `s`, sorted by start, without overlaps.
    pub fn scan(&self, s: &str, out: &mut Vec<Match>, scratch: &mut Scratch) -> Result<(), ScanError> {
        out.clear();
        if s.len() > self.max_size {
            return Err(ScanError::TooLarge(s.len()));
        }
        let b = s.as_bytes();
        if self.enabled.has(Detector::Email) {
            for at in memchr::memchr_iter(b'@', b) {
                self.email_at(b, at, out);
            }
        }
        if let Some((ac, trig)) = &self.keywords {
            for m in ac.find_iter(b) {
                let t = trig[m.pattern().as_usize()];
                self.keyword_at(b, m.start(), m.end(), t, out);
            }
        }
        if self.enabled.has(Detector::Ipv6) {
            let mut last_end = 0;
            for c in memchr::memchr_iter(b':', b) {
                if c >= last_end {
                    if let Some(e) = self.ipv6_at(b, c, out) {
                        last_end = e;
                    }
                }
            }
        }
        self.words_and_numbers(b, out, scratch);
        if let Some(set) = &self.rule_set {
            for idx in set.matches(s).iter() {
                let rule = &self.rules[idx];
                for m in rule.regex.find_iter(s) {
                    if m.start() == m.end() {
                        continue;
                    }
                    let ok = match rule.validator {
                        RuleValidator::None => true,
                        RuleValidator::Luhn => {
                            scratch.digits.clear();
                            scratch.digits.extend(m.as_str().bytes().filter(u8::is_ascii_digit));
                            validate::luhn(&scratch.digits)
                        }
                    };
                    if ok && !is_masked_value(m.as_str()) {
                        out.push(Match { start: m.start(), end: m.end(), kind: FIRST_RULE + idx as KindId });
                    }
                }
            }
        }
        resolve_overlaps(out);
        Ok(())
    }

    fn email_at(&self, b: &[u8], at: usize, out: &mut Vec<Match>) {
        let is_local = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-');
        let is_dom = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-');
        let mut s = at;
        while s > 0 && is_local(b[s - 1]) && at - s <= 64 {
            s -= 1;
        }
        while s < at && matches!(b[s], b'.' | b'-' | b'+') {
            s += 1;
        }
        let mut e = at + 1;
        while e < b.len() && is_dom(b[e]) && e - at <= 254 {
            e += 1;
        }
        while e > at + 1 && matches!(b[e - 1], b'.' | b'-') {
            e -= 1;
        }
        if validate::email(&b[s..at], &b[at + 1..e]) {
            out.push(Match { start: s, end: e, kind: Detector::Email.id() });
        }
    }

    /// An IPv6 address around the `:` at `c`: the run of hex digits, `:` and `.` parsed by `std`.
    fn ipv6_at(&self, b: &[u8], c: usize, out: &mut Vec<Match>) -> Option<usize> {
        let ch = |x: u8| x.is_ascii_hexdigit() || x == b':' || x == b'.';
        let mut s = c;
        while s > 0 && ch(b[s - 1]) && c - s < 45 {
            s -= 1;
        }
        let mut e = c + 1;
        while e < b.len() && ch(b[e]) && e - s < 45 {
            e += 1;
        }
        while e > c + 1 && b[e - 1] == b'.' {
            e -= 1;
        }
        while s < c && b[s] == b'.' {
            s += 1;
        }
        if (s > 0 && alnum(b[s - 1])) || (e < b.len() && alnum(b[e])) {
            return None;
        }
        let mut cand = &b[s..e];
        for _ in 0..2 {
            let colons = cand.iter().filter(|&&x| x == b':').count();
            if colons >= 2 && cand.iter().any(u8::is_ascii_hexdigit) {
                let text = std::str::from_utf8(cand).ok()?;
                if text.parse::<std::net::Ipv6Addr>().is_ok() {
                    let end = s + cand.len();
                    out.push(Match { start: s, end, kind: Detector::Ipv6.id() });
                    return Some(end);
                }
            }
            // `fe80::1: failed`: a trailing single colon belongs to the sentence
            if cand.ends_with(b":") && !cand.ends_with(b"::") {
                cand = &cand[..cand.len() - 1];
            } else {
                break;
            }
        }
        Some(e)
    }

    fn keyword_at(&self, b: &[u8], ks: usize, ke: usize, t: Trigger, out: &mut Vec<Match>) {
        match t {
            Trigger::AwsAccess => {
                let prefix = &b[ks..ke];
                if prefix != b"AKIA" && prefix != b"ASIA" {
                    return;
                }
                let e = ks + 20;
                if (ks > 0 && alnum(b[ks - 1])) || e > b.len() || (e < b.len() && alnum(b[e])) {
                    return;
                }
                if b[ke..e].iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
                    out.push(Match { start: ks, end: e, kind: Detector::AwsAccessKey.id() });
                }
            }
            Trigger::Jwt => {
                if &b[ks..ke] != b"eyJ" || (ks > 0 && (b64url(b[ks - 1]) || b[ks - 1] == b'.')) {
                    return;
                }
                let n = b.len();
                let seg = |p: &mut usize| {
                    let s = *p;
                    while *p < n && b64url(b[*p]) {
                        *p += 1;
                    }
                    *p - s
                };
                let mut p = ks;
                let l1 = seg(&mut p);
                if p >= n || b[p] != b'.' {
                    return;
                }
                p += 1;
                let l2 = seg(&mut p);
                if p >= n || b[p] != b'.' {
                    return;
                }
                p += 1;
                seg(&mut p);
                // JWE compact form has five segments
                for _ in 0..2 {
                    if p + 1 < n && b[p] == b'.' && b64url(b[p + 1]) {
                        p += 1;
                        seg(&mut p);
                    } else {
                        break;
                    }
                }
                if l1 >= 10 && l2 >= 10 {
                    out.push(Match { start: ks, end: p, kind: Detector::Jwt.id() });
                }
            }
            Trigger::Bearer => {
                if ks > 0 && b[ks - 1].is_ascii_alphabetic() {
                    return;
                }
                let mut p = ke;
                while p < b.len() && (b[p] == b' ' || b[p] == b'\t') {
                    p += 1;
                }
                if p == ke {
                    return;
                }
                let s = p;
                let tok =
                    |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'~' | b'+' | b'/' | b'=' | b'-');
                while p < b.len() && tok(b[p]) {
                    p += 1;
                }
                if p - s >= 8 && !b[s..].starts_with(b"tok_") {
                    out.push(Match { start: s, end: p, kind: Detector::BearerToken.id() });
                }
            }
            Trigger::Password => {
                if let Some((s, e)) = assigned_value(b, ke) {
                    out.push(Match { start: s, end: e, kind: Detector::Password.id() });
                }
            }
            Trigger::AwsSecret => {
                if let Some((s, e)) = assigned_value(b, ke) {
                    let v = &b[s..e];
                    let ok = v.len() == 40 && v.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'/' || *c == b'+');
                    if ok {
                        out.push(Match { start: s, end: e, kind: Detector::AwsSecretKey.id() });
                    }
                }
            }
        }
    }

    fn words_and_numbers(&self, b: &[u8], out: &mut Vec<Match>, sc: &mut Scratch) {
        let numbers = self.enabled.has(Detector::Card)
            || self.enabled.has(Detector::KrRrn)
            || self.enabled.has(Detector::KrFrn)
            || self.enabled.has(Detector::Phone)
            || self.enabled.has(Detector::Ipv4)
            || self.enabled.has(Detector::KrDriverLicense);
        let passport = self.enabled.has(Detector::KrPassport);
        let n = b.len();
        let mut i = 0;
        while i < n {
            let c = b[i];
            if c.is_ascii_alphabetic() {
                let s = i;
                while i < n && alnum(b[i]) {
                    i += 1;
                }
                // Our own tokens (`tok_` + hex) are not scanned again.
                if i - s == 3 && &b[s..i] == b"tok" && i < n && b[i] == b'_' {
                    i += 1;
                    while i < n && alnum(b[i]) {
                        i += 1;
                    }
                    continue;
                }
                if passport && i - s == 9 && is_passport(&b[s..i]) {
                    out.push(Match { start: s, end: i, kind: Detector::KrPassport.id() });
                }
                continue;
            }
            let plus =
                c == b'+' && i + 1 < n && b[i + 1].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphabetic());
            if numbers && (c.is_ascii_digit() || plus) {
                i = self.numeric_span(b, i, plus, out, sc);
                continue;
            }
            if c.is_ascii_digit() {
                while i < n && alnum(b[i]) {
                    i += 1;
                }
                continue;
            }
            i += 1;
        }
    }

    /// Parse the numeric span starting at `i` and try its windows. Returns where the span ends.
    fn numeric_span(&self, b: &[u8], i: usize, plus: bool, out: &mut Vec<Match>, sc: &mut Scratch) -> usize {
        let n = b.len();
        sc.runs.clear();
        sc.seps.clear();
        let mut p = if plus { i + 1 } else { i };
        loop {
            let s = p;
            while p < n && b[p].is_ascii_digit() {
                p += 1;
            }
            sc.runs.push((s, p));
            if p + 1 < n && matches!(b[p], b'-' | b' ' | b'.') && b[p + 1].is_ascii_digit() {
                sc.seps.push(b[p]);
                p += 1;
                continue;
            }
            break;
        }
        let tainted = p < n && b[p].is_ascii_alphabetic();
        // The rest of a tainted span's word is not a fresh word either (`5678M41777631`).
        let mut end = p;
        while tainted && end < n && alnum(b[end]) {
            end += 1;
        }
        // `v1.2.3.4`, `host.10.0.0.1`: the span continues a word.
        let left_blocked = !plus && i >= 2 && b[i - 1] == b'.' && alnum(b[i - 2]);
        let r = sc.runs.len();
        if r == 1 && (sc.runs[0].1 - sc.runs[0].0) < 9 {
            return end;
        }
        let mut a = 0;
        while a < r {
            if (a == 0 && left_blocked) || (a > 0 && sc.seps[a - 1] != b' ') {
                a += 1;
                continue;
            }
            let mut found = false;
            let hi = (a + 5).min(r);
            for z in (a..hi).rev() {
                if (z + 1 < r && sc.seps[z] != b' ') || (z + 1 == r && tainted) {
                    continue;
                }
                let with_plus = plus && a == 0;
                if let Some(kind) = self.window(b, a, z, with_plus, sc) {
                    let start = if with_plus { i } else { sc.runs[a].0 };
                    out.push(Match { start, end: sc.runs[z].1, kind });
                    a = z + 1;
                    found = true;
                    break;
                }
            }
            if !found {
                a += 1;
            }
        }
        end
    }

    fn window(&self, b: &[u8], a: usize, z: usize, plus: bool, sc: &mut Scratch) -> Option<KindId> {
        // windows have at most 5 groups (see `numeric_span`): no allocation
        let mut buf: [&[u8]; 5] = [&[]; 5];
        let k = (z - a + 1).min(5);
        for (slot, &(s, e)) in buf.iter_mut().zip(&sc.runs[a..a + k]) {
            *slot = &b[s..e];
        }
        let groups = &buf[..k];
        let seps = &sc.seps[a..z];
        sc.digits.clear();
        for g in groups {
            sc.digits.extend_from_slice(g);
        }
        let d = &sc.digits[..];
        let total = d.len();
        let uniform = seps.windows(2).all(|w| w[0] == w[1]);
        let sep = seps.first().copied();
        let on = |det: Detector| self.enabled.has(det);
        if plus {
            if !on(Detector::Phone) || seps.contains(&b'.') || total > 15 {
                return None;
            }
            let ok = if groups[0] == b"82" {
                validate::kr_phone_intl(&groups[1..])
            } else if groups.len() == 1 && d.starts_with(b"82") {
                validate::kr_phone_intl(&[&d[2..]])
            } else {
                validate::e164(d)
            };
            return ok.then(|| Detector::Phone.id());
        }
        if total > 19 {
            return None;
        }
        if total == 13
            && (on(Detector::KrRrn) || on(Detector::KrFrn))
            && (groups.len() == 1 || (groups.len() == 2 && groups[0].len() == 6 && sep != Some(b'.')))
        {
            match validate::registration(d, self.strict) {
                Some(RegKind::Resident) if on(Detector::KrRrn) => return Some(Detector::KrRrn.id()),
                Some(RegKind::Foreigner) if on(Detector::KrFrn) => return Some(Detector::KrFrn.id()),
                _ => {}
            }
        }
        if on(Detector::Card)
            && (13..=19).contains(&total)
            && (groups.len() == 1 || (uniform && sep != Some(b'.') && groups[0].len() == 4 && groups.len() <= 5))
            && validate::card(d)
        {
            return Some(Detector::Card.id());
        }
        if on(Detector::Phone)
            && (9..=11).contains(&total)
            && (groups.len() == 1 || (groups.len() == 3 && uniform))
            && validate::kr_phone(groups)
        {
            return Some(Detector::Phone.id());
        }
        if on(Detector::KrDriverLicense)
            && groups.len() == 4
            && seps.iter().all(|&s| s == b'-')
            && validate::kr_driver_license(groups)
        {
            return Some(Detector::KrDriverLicense.id());
        }
        if on(Detector::Ipv4) && groups.len() == 4 && seps.iter().all(|&s| s == b'.') && validate::ipv4(groups) {
            return Some(Detector::Ipv4.id());
        }
        None
    }
}

/// Korean passport: type letter then 8 digits (`M12345678`), or the 2021 format letter, 3 digits, letter,
/// 4 digits (`M123A4567`).
fn is_passport(w: &[u8]) -> bool {
    if w.len() != 9 || !matches!(w[0], b'M' | b'S' | b'R' | b'G' | b'D' | b'O' | b'T') {
        return false;
    }
    w[1..].iter().all(u8::is_ascii_digit)
        || (w[1..4].iter().all(u8::is_ascii_digit)
            && w[4].is_ascii_uppercase()
            && w[5..].iter().all(u8::is_ascii_digit))
}

/// The value after a key such as `password`: `password=v`, `password: v`, `"password":"v"`,
/// `\"password\":\"v\"`. Returns the value's span (without quotes), or `None` when the keyword is not
/// followed by an assignment (`password reset`, `password_hint=`), or the value is already masked.
fn assigned_value(b: &[u8], mut p: usize) -> Option<(usize, usize)> {
    let n = b.len();
    // closing quote of a quoted key
    if p < n && b[p] == b'\\' && p + 1 < n && b[p + 1] == b'"' {
        p += 2;
    } else if p < n && (b[p] == b'"' || b[p] == b'\'') {
        p += 1;
    }
    while p < n && b[p] == b' ' {
        p += 1;
    }
    if p >= n || !(b[p] == b'=' || b[p] == b':') {
        return None;
    }
    p += 1;
    while p < n && b[p] == b' ' {
        p += 1;
    }
    let (s, e) = if p + 1 < n && b[p] == b'\\' && b[p + 1] == b'"' {
        let s = p + 2;
        let rel = memchr::memmem::find(&b[s..], b"\\\"")?;
        (s, s + rel)
    } else if p < n && (b[p] == b'"' || b[p] == b'\'') {
        let q = b[p];
        let s = p + 1;
        let mut e = s;
        while e < n && b[e] != q {
            if b[e] == b'\\' {
                e += 1;
            }
            e += 1;
        }
        (s, e.min(n))
    } else {
        let s = p;
        let mut e = s;
        while e < n && !matches!(b[e], b' ' | b'\t' | b'\r' | b'\n' | b',' | b';' | b'&' | b'}' | b'"' | b'\'') {
            e += 1;
        }
        (s, e)
    };
    if e <= s {
        return None;
    }
    let v = std::str::from_utf8(&b[s..e]).ok()?;
    if is_masked_value(v) {
        return None;
    }
    Some((s, e))
}

/// Keep the earliest match at each place (the longest when two start together), drop those overlapping it.
fn resolve_overlaps(m: &mut Vec<Match>) {
    if m.len() < 2 {
        return;
    }
    m.sort_by(|x, y| x.start.cmp(&y.start).then(y.end.cmp(&x.end)));
    let mut keep = 0;
    for i in 0..m.len() {
        if keep == 0 || m[i].start >= m[keep - 1].end {
            m[keep] = m[i];
            keep += 1;
        }
    }
    m.truncate(keep);
}
