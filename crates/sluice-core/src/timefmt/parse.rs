//! Parsing: Ruby's `Time.strptime`, and `Time.parse`/`Time.iso8601` when no format is given.
use super::civil::{days_from_civil, Tm, MONTHS, WEEKDAYS};
use super::pattern::{compile, Item};
use super::zone::{parse_numeric_offset, Zone};
use crate::event::EventTime;
use parking_lot::Mutex;

#[derive(Default, Debug)]
struct Parsed {
    year: Option<i64>,
    century: Option<i64>,
    mon: Option<u32>,
    mday: Option<u32>,
    yday: Option<u32>,
    hour: Option<u32>,
    min: Option<u32>,
    sec: Option<u32>,
    nsec: Option<u32>,
    pm: Option<bool>,
    offset: Option<i32>,
    zone: Option<Zone>,
    epoch: Option<(i64, u32)>,
}

struct Input<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Input<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }
    fn skip_ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start().len();
    }
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }
    /// Up to `max` digits (at least one), with an optional sign when `signed`.
    fn num(&mut self, max: usize, signed: bool) -> Option<i64> {
        let b = self.s.as_bytes();
        let mut i = self.pos;
        let mut neg = false;
        if signed && matches!(b.get(i), Some(b'+' | b'-')) {
            neg = b[i] == b'-';
            i += 1;
        }
        let start = i;
        let mut v: i64 = 0;
        while i < b.len() && i - start < max && b[i].is_ascii_digit() {
            v = v.checked_mul(10)?.checked_add((b[i] - b'0') as i64)?;
            i += 1;
        }
        if i == start {
            return None;
        }
        self.pos = i;
        Some(if neg { -v } else { v })
    }
    /// A two-digit-ish field that may be preceded by one space (`%e`, `%k`, `%l`, and Ruby allows it for
    /// `%d`/`%H` too).
    fn num_sp(&mut self, max: usize) -> Option<i64> {
        if self.peek() == Some(b' ') {
            self.pos += 1;
        }
        self.num(max, false)
    }
    /// Case-insensitive match of one of `names` (full names first, then the 3-letter abbreviations).
    fn name(&mut self, names: &[&str]) -> Option<usize> {
        let r = self.rest();
        for (i, n) in names.iter().enumerate() {
            if r.len() >= n.len() && r.is_char_boundary(n.len()) && r[..n.len()].eq_ignore_ascii_case(n) {
                self.pos += n.len();
                return Some(i);
            }
        }
        for (i, n) in names.iter().enumerate() {
            let a = &n[..3];
            if r.len() >= 3 && r.is_char_boundary(3) && r[..3].eq_ignore_ascii_case(a) {
                self.pos += 3;
                return Some(i);
            }
        }
        None
    }
    /// Fraction digits as nanoseconds (extra digits beyond nine are read and dropped).
    fn frac(&mut self, max: usize) -> Option<u32> {
        let (ns, n) = frac_digits(&self.s.as_bytes()[self.pos..], max);
        if n == 0 {
            return None;
        }
        self.pos += n;
        Some(ns)
    }
    /// `%z`/`%Z`: `Z`, `UTC`/`GMT` (optionally followed by an offset), numeric offsets, common abbreviations
    /// and, for `%Z`, IANA names.
    fn zone(&mut self, names: bool) -> Option<Zone> {
        let r = self.rest();
        let b = r.as_bytes();
        if matches!(b.first(), Some(b'+' | b'-')) {
            let mut n = 1;
            while n < b.len() && n < 9 && (b[n].is_ascii_digit() || b[n] == b':') {
                n += 1;
            }
            // Shrink until it parses (e.g. `+09:00]` or `+0900 2024`).
            while n > 1 {
                if let Some(o) = parse_numeric_offset(&r[..n]) {
                    self.pos += n;
                    return Some(Zone::Fixed(o));
                }
                n -= 1;
            }
            return None;
        }
        let alpha = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
        if alpha == 0 {
            return None;
        }
        let word = &r[..alpha];
        let upper = word.to_ascii_uppercase();
        if matches!(upper.as_str(), "Z" | "UTC" | "GMT" | "UT") {
            self.pos += alpha;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                let save = self.pos;
                if let Some(z) = self.zone(false) {
                    return Some(z);
                }
                self.pos = save;
            }
            return Some(Zone::Utc);
        }
        let abbr = match upper.as_str() {
            "EST" => Some(-5),
            "EDT" => Some(-4),
            "CST" => Some(-6),
            "CDT" => Some(-5),
            "MST" => Some(-7),
            "MDT" => Some(-6),
            "PST" => Some(-8),
            "PDT" => Some(-7),
            "JST" | "KST" => Some(9),
            "CET" => Some(1),
            "CEST" => Some(2),
            "EET" => Some(2),
            "EEST" => Some(3),
            "WET" => Some(0),
            "BST" => Some(1),
            _ => None,
        };
        if let Some(h) = abbr {
            self.pos += alpha;
            return Some(Zone::Fixed(h * 3600));
        }
        if names {
            let n =
                b.iter().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'_' | b'-' | b'+')).count();
            if let Ok(tz) = r[..n].parse::<chrono_tz::Tz>() {
                self.pos += n;
                return Some(Zone::Named(tz));
            }
        }
        None
    }
}

/// The fraction digits at the start of `b` (at most `max`) as nanoseconds, and how many digits were read;
/// digits beyond nine are read and dropped.
fn frac_digits(b: &[u8], max: usize) -> (u32, usize) {
    let mut ns: u32 = 0;
    let mut n = 0;
    while n < b.len() && n < max && b[n].is_ascii_digit() {
        if n < 9 {
            ns = ns * 10 + (b[n] - b'0') as u32;
        }
        n += 1;
    }
    for _ in n..9 {
        ns *= 10;
    }
    (ns, n)
}

/// Exactly `b.len()` ASCII digits.
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |v, &c| c.is_ascii_digit().then(|| v * 10 + (c - b'0') as u32))
}

/// A strict RFC 3339 timestamp with an explicit zone (`Z`, `+09:00` or `+0900`) and up to nine fraction
/// digits: the CRI and Docker log formats, and ISO times in JSON logs. A fast path for parsers whose
/// format is exactly that; [`TimeParser`] reads every other shape.
pub fn parse_rfc3339(s: &str) -> Option<EventTime> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = digits(&b[0..4])? as i64;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let min = digits(&b[14..16])?;
    let sec = digits(&b[17..19])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nsec = 0u32;
    if b[i] == b'.' || b[i] == b',' {
        let (ns, n) = frac_digits(&b[i + 1..], usize::MAX);
        if n == 0 {
            return None;
        }
        nsec = ns;
        i += 1 + n;
    }
    let offset: i64 = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') => {
            let rest = &b[i + 1..];
            let (h, m) = match rest.len() {
                5 if rest[2] == b':' => (digits(&rest[0..2])?, digits(&rest[3..5])?),
                4 => (digits(&rest[0..2])?, digits(&rest[2..4])?),
                _ => return None,
            };
            // Ruby refuses an offset out of range (`+99:00`) as the full parser does.
            if h > 23 || m > 59 {
                return None;
            }
            let o = (h * 3600 + m * 60) as i64;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + (hour * 3600 + min * 60 + sec) as i64 - offset;
    Some(EventTime::new(secs, nsec))
}

fn parse_items(items: &[Item], s: &str) -> Result<Parsed, String> {
    let mut p = Parsed::default();
    let mut inp = Input { s, pos: 0 };
    let bad = |what: &str| format!("{what} does not match");
    for it in items {
        match it {
            Item::Lit(l) => {
                for ch in l.chars() {
                    if ch.is_whitespace() {
                        inp.skip_ws();
                    } else if inp.rest().starts_with(ch) {
                        inp.pos += ch.len_utf8();
                    } else {
                        return Err(bad(&format!("'{ch}'")));
                    }
                }
            }
            Item::Conv { c, width, .. } => {
                let w = |d: usize| width.unwrap_or(d);
                let ok = match c {
                    'Y' => inp.num(w(4), true).map(|v| p.year = Some(v)),
                    'C' => inp.num(w(2), true).map(|v| p.century = Some(v)),
                    'y' => inp.num(w(2), false).map(|v| p.year = Some(if v < 69 { v + 2000 } else { v + 1900 })),
                    'm' => inp.num(w(2), false).map(|v| p.mon = Some(v as u32)),
                    'd' | 'e' => inp.num_sp(w(2)).map(|v| p.mday = Some(v as u32)),
                    'j' => inp.num(w(3), false).map(|v| p.yday = Some(v as u32)),
                    'H' | 'k' => inp.num_sp(w(2)).map(|v| p.hour = Some(v as u32)),
                    'I' | 'l' => inp.num_sp(w(2)).map(|v| {
                        p.hour = Some(v as u32);
                        p.pm.get_or_insert(false);
                    }),
                    'M' => inp.num(w(2), false).map(|v| p.min = Some(v as u32)),
                    'S' => inp.num(w(2), false).map(|v| p.sec = Some(v as u32)),
                    'L' | 'N' => inp.frac(width.unwrap_or(usize::MAX)).map(|v| p.nsec = Some(v)),
                    'B' | 'b' | 'h' => inp.name(&MONTHS).map(|i| p.mon = Some(i as u32 + 1)),
                    'A' | 'a' => inp.name(&WEEKDAYS).map(|_| ()),
                    'p' | 'P' => {
                        let r = inp.rest();
                        let pick = ["A.M.", "P.M.", "AM", "PM"].iter().find(|t| {
                            r.len() >= t.len() && r.is_char_boundary(t.len()) && r[..t.len()].eq_ignore_ascii_case(t)
                        });
                        pick.map(|t| {
                            inp.pos += t.len();
                            p.pm = Some(t.starts_with(['P', 'p']));
                        })
                    }
                    'u' | 'w' => inp.num(1, false).map(|_| ()),
                    'U' | 'W' | 'V' | 'g' => inp.num(2, false).map(|_| ()),
                    'G' => inp.num(4, true).map(|_| ()),
                    's' => inp.num(usize::MAX, true).map(|v| p.epoch = Some((v, 0))),
                    'Q' => inp
                        .num(usize::MAX, true)
                        .map(|v| p.epoch = Some((v.div_euclid(1000), (v.rem_euclid(1000) * 1_000_000) as u32))),
                    'z' | 'Z' => inp.zone(*c == 'Z').map(|z| match z {
                        Zone::Fixed(o) => p.offset = Some(o),
                        Zone::Utc => p.offset = Some(0),
                        other => p.zone = Some(other),
                    }),
                    _ => Some(()),
                };
                if ok.is_none() {
                    return Err(bad(&format!("%{c}")));
                }
            }
        }
    }
    if !inp.rest().trim().is_empty() {
        return Err(format!("invalid time '{s}': unexpected text after the time"));
    }
    Ok(p)
}

fn resolve(p: Parsed, default_zone: &Zone) -> Result<EventTime, String> {
    if let Some((sec, ms_ns)) = p.epoch {
        // `%s` is absolute: a zone in the same text only changes how Ruby would print it.
        return Ok(EventTime::new(sec, p.nsec.unwrap_or(ms_ns)));
    }
    let zone = match (p.offset, &p.zone) {
        (Some(o), _) => Zone::Fixed(o),
        (None, Some(z)) => z.clone(),
        (None, None) => default_zone.clone(),
    };
    let mut year = p.year;
    if let Some(c) = p.century {
        year = Some(c * 100 + year.map(|y| y.rem_euclid(100)).unwrap_or(0));
    }
    if year.is_none()
        && p.mon.is_none()
        && p.mday.is_none()
        && p.yday.is_none()
        && p.hour.is_none()
        && p.min.is_none()
        && p.sec.is_none()
        && p.nsec.is_none()
    {
        return Err("no time information".into());
    }
    let mut hour = p.hour;
    if let (Some(h), Some(pm)) = (hour, p.pm) {
        if h == 0 || h > 12 {
            return Err(format!("hour {h} out of range for a 12-hour clock"));
        }
        hour = Some(h % 12 + if pm { 12 } else { 0 });
    }
    // Ruby's Time.strptime: fields before the first given one come from now (in the target zone).
    let (mut mon, mut mday, mut min, mut sec) = (p.mon, p.mday, p.min, p.sec);
    if year.is_none() {
        let now = EventTime::now().sec;
        let tm = Tm::at(now, &zone);
        year = Some(tm.year);
        if p.yday.is_none() && mon.is_none() {
            mon = Some(tm.mon);
            if mday.is_none() {
                mday = Some(tm.mday);
                if hour.is_none() {
                    hour = Some(tm.hour);
                    if min.is_none() {
                        min = Some(tm.min);
                        if sec.is_none() {
                            sec = Some(tm.sec);
                        }
                    }
                }
            }
        }
    }
    let year = year.unwrap_or(1970);
    let (mon, mday) = (mon.unwrap_or(1), mday.unwrap_or(1));
    let (hour, min, sec) = (hour.unwrap_or(0), min.unwrap_or(0), sec.unwrap_or(0));
    if !(1..=12).contains(&mon) || !(1..=31).contains(&mday) || hour > 24 || min > 59 || sec > 60 {
        return Err("argument out of range".into());
    }
    let days = match p.yday {
        Some(yd) if (1..=366).contains(&yd) => days_from_civil(year, 1, 1) + yd as i64 - 1,
        Some(_) => return Err("day of year out of range".into()),
        None => days_from_civil(year, mon, 1) + mday as i64 - 1,
    };
    let local = days * 86_400 + (hour * 3600 + min * 60 + sec) as i64;
    let utc = local - zone.offset_for_local(local) as i64;
    Ok(EventTime::new(utc, p.nsec.unwrap_or(0)))
}

/// The shapes `Time.parse` (no `time_format`) is expected to read in logs, tried in order.
const FALLBACK_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S.%N%z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%N",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M%z",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S.%N %z",
    "%Y-%m-%d %H:%M:%S %z",
    "%Y-%m-%d %H:%M:%S.%N",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S.%N %z",
    "%Y/%m/%d %H:%M:%S %z",
    "%Y/%m/%d %H:%M:%S.%N",
    "%Y/%m/%d %H:%M:%S",
    "%d/%b/%Y:%H:%M:%S %z",
    "%a, %d %b %Y %H:%M:%S %z",
    "%d %b %Y %H:%M:%S %z",
    "%a %b %d %H:%M:%S.%N %Y",
    "%a %b %d %H:%M:%S %Y",
    "%a %b %d %H:%M:%S %Z %Y",
    "%a %b %d %H:%M:%S %z %Y",
    "%b %d %H:%M:%S.%N",
    "%b %d %H:%M:%S",
    "%b %d %Y %H:%M:%S",
    "%Y%m%dT%H%M%S%z",
    "%Y%m%dT%H%M%S",
    "%Y-%m-%d",
    "%H:%M:%S.%N",
    "%H:%M:%S",
];

#[derive(Clone, Debug)]
enum ParseMode {
    Format(Vec<Item>),
    /// `%iso8601`: ISO 8601 date-times only.
    Iso8601(Vec<Vec<Item>>),
    /// No format: `Time.parse`-like.
    Guess(Vec<Vec<Item>>),
}

/// Ruby `Time.strptime` for event times. Like Fluentd's parser, it remembers the last text it parsed:
/// consecutive log lines often carry the same timestamp.
pub struct TimeParser {
    mode: ParseMode,
    zone: Zone,
    last: Mutex<Option<(String, EventTime)>>,
}

impl Clone for TimeParser {
    fn clone(&self) -> Self {
        TimeParser { mode: self.mode.clone(), zone: self.zone.clone(), last: Mutex::new(None) }
    }
}

impl std::fmt::Debug for TimeParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeParser").field("mode", &self.mode).field("zone", &self.zone).finish()
    }
}

impl TimeParser {
    /// `format` is a Ruby strptime format, `%iso8601` (Fluentd's special value), or None for `Time.parse`
    /// behaviour; `timezone` wins over `localtime` for times without a zone.
    pub fn new(format: Option<&str>, localtime: bool, timezone: Option<&str>) -> Result<Self, String> {
        let zone = Zone::from_params(localtime, timezone)?;
        let mode = match format {
            Some("%iso8601") => ParseMode::Iso8601(FALLBACK_FORMATS[..6].iter().map(|f| compile(f)).collect()),
            Some(f) => {
                if f.trim().is_empty() {
                    return Err("time_format is empty".into());
                }
                ParseMode::Format(compile(f))
            }
            None => ParseMode::Guess(FALLBACK_FORMATS.iter().map(|f| compile(f)).collect()),
        };
        Ok(TimeParser { mode, zone, last: Mutex::new(None) })
    }

    pub fn parse(&self, s: &str) -> Result<EventTime, String> {
        if let Some(guard) = self.last.try_lock() {
            if let Some((text, t)) = guard.as_ref() {
                if text == s {
                    return Ok(*t);
                }
            }
        }
        let t = self.parse_uncached(s)?;
        if let Some(mut guard) = self.last.try_lock() {
            match guard.as_mut() {
                Some((text, last)) => {
                    text.clear();
                    text.push_str(s);
                    *last = t;
                }
                None => *guard = Some((s.to_string(), t)),
            }
        }
        Ok(t)
    }

    fn parse_uncached(&self, s: &str) -> Result<EventTime, String> {
        match &self.mode {
            ParseMode::Format(items) => resolve(parse_items(items, s)?, &self.zone),
            ParseMode::Iso8601(list) | ParseMode::Guess(list) => {
                let t = s.trim();
                for items in list {
                    if let Ok(p) = parse_items(items, t) {
                        return resolve(p, &self.zone);
                    }
                }
                Err("not a recognised date/time".into())
            }
        }
    }
}
