//! The scanner: one pass over a string finds candidates cheaply, validators decide.
//!
//! - `@` (memchr) starts the e-mail check;
//! - a keyword automaton (aho-corasick, ASCII case-insensitive) finds `AKIA`/`ASIA`, `eyJ`, `bearer`,
//!   `password`-like and `secret_access_key`-like keys, and the text right after each is checked by hand;
//! - one byte loop splits the rest into words (ASCII letters first: only passports can match) and numeric
//!   spans (digit runs joined by single `-`, ` ` or `.`), whose windows go to the number validators;
//! - user rules run only when their `RegexSet` says one matches;
//! - text holding `%XX` escapes or form-encoded spaces (`010+7045+5673`) is decoded and scanned again, and
//!   what is found there is mapped back to the encoded span as written.
//!
//! Boundaries: a match is never preceded or followed by an ASCII letter or digit; Hangul and punctuation
//! around it are fine, and so is the letter of a JSON escape (`\n010-1234-5678`, `\u003e...`).
use crate::context::{self, Label};
use crate::decode::{self, Decoded};
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

/// Where a scanned value sits: its field name, and whether it was a number in the record (not text).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ctx<'a> {
    pub key: Option<&'a str>,
    pub numeric: bool,
}

/// Reusable buffers, so the hot path does not allocate.
#[derive(Debug, Default)]
pub struct Scratch {
    runs: Vec<(usize, usize)>,
    seps: Vec<u8>,
    digits: Vec<u8>,
    decoded: Decoded,
    decoded_matches: Vec<Match>,
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

/// Whether the bytes right before `s` end a JSON escape (`\n`, `\t`, `\u003e`, or escaped again as in JSON
/// inside JSON: `\\n`): its letter or hex digits are not a word the value continues.
fn escape_before(b: &[u8], s: usize) -> bool {
    if s >= 2 && matches!(b[s - 1], b'n' | b'r' | b't' | b'b' | b'f') && b[s - 2] == b'\\' {
        return true;
    }
    s >= 6 && b[s - 6] == b'\\' && b[s - 5] == b'u' && b[s - 4..s].iter().all(u8::is_ascii_hexdigit)
}

/// Nothing before `s` that a value there would continue.
fn left_clear(b: &[u8], s: usize) -> bool {
    s == 0 || !alnum(b[s - 1]) || escape_before(b, s)
}

/// Length of the escape sequence at the backslash `i` (`\n` 2, `\u003e` 6, `\\n` 3 in JSON inside JSON),
/// or of the run of backslashes.
fn escape_len(b: &[u8], i: usize) -> usize {
    let mut j = i;
    while j < b.len() && b[j] == b'\\' {
        j += 1;
    }
    match b.get(j) {
        Some(b'u') if b.len() >= j + 5 && b[j + 1..j + 5].iter().all(u8::is_ascii_hexdigit) => j + 5 - i,
        Some(b'n' | b'r' | b't' | b'b' | b'f') => j + 1 - i,
        _ => j - i,
    }
}

/// Bytes that can start a word, a number or an escape in `words_and_numbers`.
static STARTS: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || matches!(b, b'+' | b'\\' | b'(' | b'%');
        c += 1;
    }
    t
};

/// Values this filter wrote itself (or an upstream filter did, like Rails' `[FILTERED]`): never masked
/// again (keeps masking idempotent).
pub fn is_masked_value(s: &str) -> bool {
    s.starts_with("tok_")
        || s.starts_with("[REDACTED")
        || s == "[FILTERED]"
        || (!s.is_empty() && s.bytes().all(|b| b == b'*'))
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
    pub fn scan(&self, s: &str, cx: Ctx<'_>, out: &mut Vec<Match>, scratch: &mut Scratch) -> Result<(), ScanError> {
        out.clear();
        if s.len() > self.max_size {
            return Err(ScanError::TooLarge(s.len()));
        }
        let b = s.as_bytes();
        let encoded = self.builtin(b, &cx, out, scratch);
        if self.rule_set.is_some() {
            self.user_rules(s, out, scratch);
        }
        if encoded {
            let mut dec = std::mem::take(&mut scratch.decoded);
            let mut found = std::mem::take(&mut scratch.decoded_matches);
            found.clear();
            if decode::decode(b, &mut dec) {
                self.builtin(&dec.text, &cx, &mut found, scratch);
                match std::str::from_utf8(&dec.text) {
                    Ok(text) if self.rule_set.is_some() => self.user_rules(text, &mut found, scratch),
                    _ => {}
                }
                for m in &found {
                    let (mut start, mut end) = dec.original(m.start, m.end);
                    while start > 0 && !s.is_char_boundary(start) {
                        start -= 1;
                    }
                    while end < s.len() && !s.is_char_boundary(end) {
                        end += 1;
                    }
                    if end > start && !is_masked_value(&s[start..end]) {
                        out.push(Match { start, end, kind: m.kind });
                    }
                }
            }
            scratch.decoded = dec;
            scratch.decoded_matches = found;
        }
        resolve_overlaps(out);
        Ok(())
    }

    /// The built-in detectors over `b`. Returns whether `b` holds percent-escapes or form-encoded spaces.
    fn builtin(&self, b: &[u8], cx: &Ctx<'_>, out: &mut Vec<Match>, scratch: &mut Scratch) -> bool {
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
        self.words_and_numbers(b, cx, out, scratch)
    }

    fn user_rules(&self, s: &str, out: &mut Vec<Match>, scratch: &mut Scratch) {
        let Some(set) = &self.rule_set else { return };
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

    fn email_at(&self, b: &[u8], at: usize, out: &mut Vec<Match>) {
        let is_local = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-');
        let is_dom = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-');
        let mut s = at;
        while s > 0 && is_local(b[s - 1]) {
            s -= 1;
        }
        // `\nkim@...`, `\u003ckim@...`: the escape is not part of the address
        if s > 0 && b[s - 1] == b'\\' {
            s += match b[s] {
                b'u' if s + 5 <= at && b[s + 1..s + 5].iter().all(u8::is_ascii_hexdigit) => 5,
                b'n' | b'r' | b't' | b'b' | b'f' => 1,
                _ => 0,
            };
        }
        // A local part longer than 64 characters holds a prefix (`com.example.app.handler.kim@...`): the
        // address is its last part, from a `.` on.
        if at - s > 64 {
            let cut = at - 64;
            s = match memchr::memchr(b'.', &b[cut..at]) {
                Some(d) if cut + d + 1 < at => cut + d + 1,
                _ => cut,
            };
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
        } else {
            // an internationalised domain: `park@회사.한국`
            if let Some(len) = validate::email_idn(&b[s..at], &b[at + 1..]) {
                out.push(Match { start: s, end: at + 1 + len, kind: Detector::Email.id() });
            }
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
                if !left_clear(b, ks) || e > b.len() || (e < b.len() && alnum(b[e])) {
                    return;
                }
                if b[ke..e].iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
                    out.push(Match { start: ks, end: e, kind: Detector::AwsAccessKey.id() });
                }
            }
            Trigger::Jwt => {
                if &b[ks..ke] != b"eyJ" || (ks > 0 && (b64url(b[ks - 1]) || b[ks - 1] == b'.') && !escape_before(b, ks))
                {
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
                if ks > 0 && b[ks - 1].is_ascii_alphabetic() && !escape_before(b, ks) {
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
                if is_token(&b[s..p]) {
                    out.push(Match { start: s, end: p, kind: Detector::BearerToken.id() });
                }
            }
            Trigger::Password => {
                // `/etc/passwd: permission denied` names a file, not a field
                if ks > 0 && b[ks - 1] == b'/' {
                    return;
                }
                if let Some((s, e)) = assigned_value(b, ks, ke) {
                    // `PWD=/home/app`: the shell's working directory
                    let pwd = b[ks..ke].eq_ignore_ascii_case(b"pwd");
                    if pwd && matches!(b[s], b'/' | b'~') {
                        return;
                    }
                    out.push(Match { start: s, end: e, kind: Detector::Password.id() });
                }
            }
            Trigger::AwsSecret => {
                if let Some((s, e)) = assigned_value(b, ks, ke) {
                    let v = &b[s..e];
                    let ok = v.len() == 40 && v.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'/' || *c == b'+');
                    if ok {
                        out.push(Match { start: s, end: e, kind: Detector::AwsSecretKey.id() });
                    }
                }
            }
        }
    }

    fn numbers_on(&self) -> bool {
        self.enabled.has(Detector::Card)
            || self.enabled.has(Detector::KrRrn)
            || self.enabled.has(Detector::KrFrn)
            || self.enabled.has(Detector::Phone)
            || self.enabled.has(Detector::Ipv4)
            || self.enabled.has(Detector::KrDriverLicense)
    }

    /// Returns whether the text holds `%XX` escapes or form-encoded spaces (noted on the way, so clean text
    /// costs no extra pass).
    fn words_and_numbers(&self, b: &[u8], cx: &Ctx<'_>, out: &mut Vec<Match>, sc: &mut Scratch) -> bool {
        let mut encoded = false;
        let numbers = self.numbers_on();
        let passport = self.enabled.has(Detector::KrPassport);
        let paren = self.enabled.has(Detector::Phone);
        let n = b.len();
        let mut i = 0;
        while i < n {
            // what cannot start anything (spaces, punctuation, Hangul) is skipped in a tight loop
            while i < n && !STARTS[usize::from(b[i])] {
                i += 1;
            }
            if i == n {
                break;
            }
            let c = b[i];
            if c == b'\\' {
                // the letter of `\n`, `\t`, `\u003e` does not start a word
                i += escape_len(b, i);
                continue;
            }
            if c == b'%' {
                encoded |= decode::escape_at(b, i).is_some();
                i += 1;
                continue;
            }
            if c == b'+' && !encoded {
                encoded = decode::form_space(b, i);
            }
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
            if c == b'(' && paren && left_clear(b, i) {
                if let Some(e) = paren_phone(b, i) {
                    out.push(Match { start: i, end: e, kind: Detector::Phone.id() });
                    i = e;
                    continue;
                }
            }
            let plus =
                c == b'+' && i + 1 < n && b[i + 1].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphabetic());
            if numbers && (c.is_ascii_digit() || plus) {
                i = self.numeric_span(b, i, plus, cx, out, sc);
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
        encoded
    }

    /// Parse the numeric span starting at `i` and try its windows. Returns where the span ends.
    fn numeric_span(
        &self,
        b: &[u8],
        i: usize,
        plus: bool,
        cx: &Ctx<'_>,
        out: &mut Vec<Match>,
        sc: &mut Scratch,
    ) -> usize {
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
            // `040503 - 3431463`: a registration number with spaces around its hyphen
            if p - s == 6 {
                if let Some(k) = spaced_hyphen(b, p) {
                    sc.seps.push(b'-');
                    p += k;
                    continue;
                }
            }
            break;
        }
        let tainted = p < n && b[p].is_ascii_alphabetic();
        // The rest of a tainted span's word is not a fresh word either (`5678M41777631`).
        let mut end = p;
        while tainted && end < n && alnum(b[end]) {
            end += 1;
        }
        if plus {
            // fall through: a `+` number is never a code or a float
        } else if i >= 2 && matches!(b[i - 1], b'-' | b'_') && alnum(b[i - 2]) && !label_word_before(b, i - 1) {
            // `SKU-010-3573-4598`, `ORD_4111111111111111`: a number inside a code
            return end;
        } else if tainted && matches!(b[p], b'e' | b'E') && sc.runs.len() <= 2 {
            // `4.111111111111111e15`: a number in exponent form
            if let Some(e) = self.exponent_number(b, i, p, cx, out, sc) {
                return e.max(end);
            }
        }
        // `4111111111111111.0`: a float with an integral value ends the number
        let mut r = sc.runs.len();
        if !tainted
            && r >= 2
            && sc.seps[r - 2] == b'.'
            && sc.runs[r - 2].1 - sc.runs[r - 2].0 >= 7
            && b[sc.runs[r - 1].0..sc.runs[r - 1].1].iter().all(|&d| d == b'0')
        {
            r -= 1;
        }
        let tainted_end = tainted && r == sc.runs.len();
        // `v1.2.3.4`, `host.10.0.0.1`, `Chrome/120.0.0.0`: not an address (other kinds still count:
        // `Tel.010-8999-7524`, `No.400206-2465121`)
        let not_ip = !plus
            && i >= 2
            && ((b[i - 1] == b'.' && alnum(b[i - 2])) || (b[i - 1] == b'/' && product_token_before(b, i - 1)));
        if r == 1 && (sc.runs[0].1 - sc.runs[0].0) < 9 {
            return end;
        }
        let mut a = 0;
        while a < r {
            if a > 0 && sc.seps[a - 1] != b' ' {
                a += 1;
                continue;
            }
            let mut found = false;
            let hi = (a + 5).min(r);
            for z in (a..hi).rev() {
                if (z + 1 < r && sc.seps[z] != b' ') || (z + 1 == r && tainted_end) {
                    continue;
                }
                let with_plus = plus && a == 0;
                if let Some(kind) = self.window(b, a, z, with_plus, a == 0 && not_ip, cx, sc) {
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

    /// `4.111111111111111e15`, `4111111111111111E+0`: the integer an exponent-form number stands for, checked
    /// as a card or registration number. `p` is the `e`. Returns the end of the number when it matched.
    fn exponent_number(
        &self,
        b: &[u8],
        i: usize,
        p: usize,
        cx: &Ctx<'_>,
        out: &mut Vec<Match>,
        sc: &mut Scratch,
    ) -> Option<usize> {
        let (int, frac) = match sc.runs.len() {
            1 => (sc.runs[0], (p, p)),
            _ if sc.seps[0] == b'.' => (sc.runs[0], sc.runs[1]),
            _ => return None,
        };
        let mut q = p + 1;
        if q < b.len() && b[q] == b'+' {
            q += 1;
        }
        let es = q;
        while q < b.len() && b[q].is_ascii_digit() && q - es < 3 {
            q += 1;
        }
        if q == es || (q < b.len() && alnum(b[q])) {
            return None;
        }
        let exp: usize = std::str::from_utf8(&b[es..q]).ok()?.parse().ok()?;
        let frac_len = frac.1 - frac.0;
        if exp < frac_len || int.1 - int.0 + exp > 19 {
            return None;
        }
        sc.digits.clear();
        sc.digits.extend_from_slice(&b[int.0..int.1]);
        sc.digits.extend_from_slice(&b[frac.0..frac.1]);
        sc.digits.extend(std::iter::repeat_n(b'0', exp - frac_len));
        while sc.digits.len() > 1 && sc.digits[0] == b'0' {
            sc.digits.remove(0);
        }
        let d = &sc.digits[..];
        let on = |det: Detector| self.enabled.has(det);
        let kind = if d.len() == 13 && (on(Detector::KrRrn) || on(Detector::KrFrn)) {
            match validate::registration(d, self.strict) {
                Some(RegKind::Resident) if on(Detector::KrRrn) && reg_allowed(b, i, d, true, cx) => {
                    Some(Detector::KrRrn.id())
                }
                Some(RegKind::Foreigner) if on(Detector::KrFrn) && reg_allowed(b, i, d, true, cx) => {
                    Some(Detector::KrFrn.id())
                }
                _ => None,
            }
        } else {
            None
        };
        let kind = kind.or_else(|| (on(Detector::Card) && validate::card(d)).then(|| Detector::Card.id()))?;
        out.push(Match { start: i, end: q, kind });
        Some(q)
    }

    #[allow(clippy::too_many_arguments)]
    fn window(
        &self,
        b: &[u8],
        a: usize,
        z: usize,
        plus: bool,
        not_ip: bool,
        cx: &Ctx<'_>,
        sc: &mut Scratch,
    ) -> Option<KindId> {
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
            let undashed = groups.len() == 1;
            match validate::registration(d, self.strict) {
                Some(RegKind::Resident) if on(Detector::KrRrn) && reg_allowed(b, sc.runs[a].0, d, undashed, cx) => {
                    return Some(Detector::KrRrn.id())
                }
                Some(RegKind::Foreigner) if on(Detector::KrFrn) && reg_allowed(b, sc.runs[a].0, d, undashed, cx) => {
                    return Some(Detector::KrFrn.id())
                }
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
        if on(Detector::Ipv4)
            && !not_ip
            && groups.len() == 4
            && seps.iter().all(|&s| s == b'.')
            && validate::ipv4(groups)
        {
            return Some(Detector::Ipv4.id());
        }
        None
    }
}

/// Whether a number that validates as a registration number is one, given what its context says. The
/// nearest label in the text wins (`rrn=` yes; `ts=`, `order ` no), then the field name; then a plausible
/// epoch-milliseconds value is a time when it is stored as a number or opens a line. A time label only
/// overrules the undashed form (`960519-1741041` is never a time).
fn reg_allowed(b: &[u8], start: usize, digits: &[u8], undashed: bool, cx: &Ctx<'_>) -> bool {
    let text = context::label_before(b, start);
    match text {
        Label::Registration => return true,
        Label::Order => return false,
        Label::Time if undashed => return false,
        _ => {}
    }
    match cx.key.map_or(Label::Other, |k| context::classify(k.as_bytes())) {
        Label::Registration => return true,
        Label::Order => return false,
        Label::Time if undashed => return false,
        _ => {}
    }
    // A plausible epoch value stored as a number, or opening a line: a time.
    !(undashed && (cx.numeric || text == Label::LineStart) && context::plausible_epoch_ms(digits))
}

/// A hyphen with spaces around it (` - `, ` -`, `- `) or a dash of another kind (`–`, `—`, `－`, spaced
/// or not) at `p`, when exactly seven digits follow (the back half of a registration number). Returns the
/// separator's length.
fn spaced_hyphen(b: &[u8], p: usize) -> Option<usize> {
    let rest = &b[p..];
    let mut k = usize::from(rest.first() == Some(&b' '));
    let dash = if rest[k..].starts_with(b"-") {
        1
    } else if ["–", "—", "－"].iter().any(|d| rest[k..].starts_with(d.as_bytes())) {
        3
    } else {
        return None;
    };
    k += dash;
    if rest.get(k) == Some(&b' ') {
        k += 1;
    }
    // a plain `-` is a separator of its own (`numeric_span`)
    if k == 1 {
        return None;
    }
    let digits = rest[k..].iter().take_while(|c| c.is_ascii_digit()).count();
    (digits == 7).then_some(k)
}

/// The word before a `-`/`_` at `j` labels the number after it (`Tel-010...`, `rrn_960519...`) rather than
/// being a code's prefix (`SKU-010-3573-4598`).
fn label_word_before(b: &[u8], j: usize) -> bool {
    let mut s = j;
    while s > 0 && b[s - 1].is_ascii_alphabetic() && j - s < 8 {
        s -= 1;
    }
    if s > 0 && alnum(b[s - 1]) {
        return false;
    }
    let mut w = [0u8; 8];
    let len = j - s;
    if len == 0 || len > w.len() {
        return false;
    }
    w[..len].copy_from_slice(&b[s..j]);
    w[..len].make_ascii_lowercase();
    matches!(
        &w[..len],
        b"tel"
            | b"phone"
            | b"hp"
            | b"mobile"
            | b"cell"
            | b"fax"
            | b"no"
            | b"card"
            | b"rrn"
            | b"frn"
            | b"jumin"
            | b"ssn"
    )
}

/// A product token before the `/` at `j` (`Chrome/`, `Edg/`, `curl/`): what follows is a version. A path
/// segment (`/hosts/10.1.2.3`) is not a product.
fn product_token_before(b: &[u8], j: usize) -> bool {
    let mut s = j;
    while s > 0 && (alnum(b[s - 1]) || matches!(b[s - 1], b'-' | b'_')) && j - s < 40 {
        s -= 1;
    }
    s < j
        && b[s].is_ascii_alphabetic()
        && (s == 0 || matches!(b[s - 1], b' ' | b'(' | b';' | b',' | b'"' | b'\'' | b'=' | b'\t' | b'['))
}

/// `(010)1267-4816`, `(063) 883-1584`, `(02)1234-5678`: a Korean number with its prefix in parentheses.
/// `i` is the `(`; returns the end.
fn paren_phone(b: &[u8], i: usize) -> Option<usize> {
    let n = b.len();
    let digits = |p: &mut usize| {
        let s = *p;
        while *p < n && b[*p].is_ascii_digit() {
            *p += 1;
        }
        (s, *p)
    };
    let mut p = i + 1;
    let g1 = digits(&mut p);
    if !(2..=3).contains(&(g1.1 - g1.0)) || b[g1.0] != b'0' || p >= n || b[p] != b')' {
        return None;
    }
    p += 1;
    if p < n && matches!(b[p], b' ' | b'-') {
        p += 1;
    }
    let mut g2 = digits(&mut p);
    let g3 = if p + 1 < n && matches!(b[p], b'-' | b' ' | b'.') && b[p + 1].is_ascii_digit() {
        p += 1;
        digits(&mut p)
    } else if (7..=8).contains(&(g2.1 - g2.0)) {
        let split = g2.1 - 4;
        let g3 = (split, g2.1);
        g2.1 = split;
        g3
    } else {
        return None;
    };
    if p < n && (alnum(b[p]) || (matches!(b[p], b'-' | b'.') && p + 1 < n && b[p + 1].is_ascii_digit())) {
        return None;
    }
    validate::kr_phone(&[&b[g1.0..g1.1], &b[g2.0..g2.1], &b[g3.0..g3.1]]).then_some(p)
}

/// A bearer token: at least 8 characters, `=` only as base64 padding at the end, and random-looking (a
/// digit, or a capital letter after the first character). `bearer authentication` and
/// `token_type=bearer expires_in=3600` are words.
fn is_token(t: &[u8]) -> bool {
    if t.len() < 8 || t.starts_with(b"tok_") {
        return false;
    }
    let body = {
        let mut e = t.len();
        while e > 0 && t[e - 1] == b'=' {
            e -= 1;
        }
        &t[..e]
    };
    if body.contains(&b'=') {
        return false;
    }
    body.iter().any(u8::is_ascii_digit) || body[1..].iter().any(u8::is_ascii_uppercase)
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

/// `<`, `\u003c` or `&lt;` right before `s`: the close that goes with it.
fn xml_open_before(b: &[u8], s: usize) -> Option<(&'static [u8], &'static [u8])> {
    let head = &b[..s];
    if head.ends_with(b"<") {
        Some((b">", b"<"))
    } else if head.len() >= 6 && head[s - 6..].eq_ignore_ascii_case(b"\\u003c") {
        Some((b"\\u003e", b"\\u003c"))
    } else if head.ends_with(b"&lt;") {
        Some((b"&gt;", b"&lt;"))
    } else {
        None
    }
}

/// The text of an XML element named by the keyword at `ks..ke` (`<password>v</password>`, `<ns:Password>`,
/// `<SecretAccessKey>`, also JSON- or HTML-escaped: `\u003cpassword\u003e`, `&lt;password&gt;`).
fn xml_value(b: &[u8], ks: usize, ke: usize) -> Option<(usize, usize)> {
    let mut s = ks;
    let (close, stop) = loop {
        if let Some(pair) = xml_open_before(b, s) {
            break pair;
        }
        if s == 0 || ks - s >= 32 || !(alnum(b[s - 1]) || matches!(b[s - 1], b'_' | b'-' | b':')) {
            return None;
        }
        s -= 1;
    };
    let mut rest = &b[ke..];
    // attributes: `<password type="text">`
    if close == b">" && rest.first() == Some(&b' ') {
        let gt = memchr::memchr2(b'>', b'<', &rest[..rest.len().min(256)])?;
        if rest[gt] != b'>' || rest[gt - 1] == b'/' {
            return None;
        }
        rest = &rest[gt..];
    }
    if rest.len() < close.len() || !rest[..close.len()].eq_ignore_ascii_case(close) {
        return None;
    }
    let vs = b.len() - rest.len() + close.len();
    let ve = vs + find_ci(&b[vs..], stop).unwrap_or(b.len() - vs);
    (ve > vs && !std::str::from_utf8(&b[vs..ve]).is_ok_and(is_masked_value)).then_some((vs, ve))
}

/// ASCII case-insensitive search for a short needle.
fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    memchr::memchr_iter(first, hay)
        .find(|&i| hay.len() >= i + needle.len() && hay[i..i + needle.len()].eq_ignore_ascii_case(needle))
}

/// The value after a key such as `password`: `password=v`, `password: v`, `"password":"v"`,
/// `\"password\":\"v\"` (escaped any number of times), Ruby's `"password"=>"v"` and `:password => 'v'`,
/// and XML elements. Returns the value's span (without quotes), or `None` when the keyword is not
/// followed by an assignment (`password reset`, `password_hint=`), or the value is already masked.
fn assigned_value(b: &[u8], ks: usize, ke: usize) -> Option<(usize, usize)> {
    if let Some(v) = xml_value(b, ks, ke) {
        return Some(v);
    }
    let n = b.len();
    let mut p = ke;
    // closing quote of a quoted key, escaped or not
    let mut q = p;
    while q < n && b[q] == b'\\' {
        q += 1;
    }
    if q < n && (b[q] == b'"' || (q == p && b[q] == b'\'')) {
        p = q + 1;
    }
    while p < n && b[p] == b' ' {
        p += 1;
    }
    if p >= n || !(b[p] == b'=' || b[p] == b':') {
        return None;
    }
    p += 1;
    // Ruby's hash rocket `=>`
    if b[p - 1] == b'=' && p < n && b[p] == b'>' {
        p += 1;
    }
    while p < n && b[p] == b' ' {
        p += 1;
    }
    let mut q = p;
    while q < n && b[q] == b'\\' {
        q += 1;
    }
    let depth = q - p;
    let (s, e) = if q < n && (b[q] == b'"' || (depth == 0 && b[q] == b'\'')) {
        // A quoted value ends at the quote escaped as its opening one was (`\"` for `\"`); more
        // backslashes mean a quote inside the value.
        let quote = b[q];
        let s = q + 1;
        let mut e = n;
        let mut j = s;
        while let Some(off) = memchr::memchr(quote, &b[j..]) {
            let at = j + off;
            let mut k = 0;
            while at - k > s && b[at - k - 1] == b'\\' {
                k += 1;
            }
            let closes = if depth == 0 { k % 2 == 0 } else { k <= depth };
            if closes {
                e = at - k;
                break;
            }
            j = at + 1;
        }
        (s, e)
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
