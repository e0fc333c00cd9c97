//! Ruby-compatible `strftime`/`strptime` for Fluentd's `time_format`, `localtime`/`utc` and `timezone`.
//!
//! * [`TimeFormatter`] renders an [`EventTime`] like Ruby's `Time#strftime` (flags `-`, `_`, `0`, `^`, `#`,
//!   widths, `%N`/`%3N`/`%L`, `%z`/`%:z`/`%::z`, `%Z`, `%s`, `%Q`, the composite `%c %D %F %T %R %r %x %X %v %+`).
//!   The text of the last second is cached: consecutive events mostly share a second, so the common case
//!   only writes the fraction digits.
//! * [`TimeParser`] parses like Ruby's `Time.strptime` (and `Time.parse`/`Time.iso8601` when no format is
//!   given): missing leading fields come from "now" in the target zone (no year means the current year),
//!   whitespace in the format matches any run of whitespace, `%z` accepts `Z`, `UTC`, `+09`, `+0900`,
//!   `+09:00`. Unlike `Time.strptime`, text left over after the format (other than whitespace) is an error,
//!   as with the `strptime` gem Fluentd uses.
//! * Zones: `+09:00`, `+0900`, `-05`, `UTC`, or an IANA name (`Asia/Seoul`). No zone means UTC, or the
//!   system zone when `localtime` is set.
use crate::event::EventTime;
use chrono::{Offset, TimeZone};
use chrono_tz::OffsetName;
use parking_lot::Mutex;
use std::fmt::Write as _;

// ---------------------------------------------------------------------------------------------------------
// Calendar arithmetic (proleptic Gregorian, days since 1970-01-01).

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

// ---------------------------------------------------------------------------------------------------------
// Zones.

#[derive(Clone, Debug, PartialEq)]
enum Zone {
    Utc,
    Fixed(i32),
    Named(chrono_tz::Tz),
    Local,
}

/// `+09:00`, `+0900`, `+09`, `-05:30`, `Z`: seconds east of UTC.
fn parse_numeric_offset(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest: Vec<u8> = b[1..].iter().copied().filter(|c| *c != b':').collect();
    if rest.is_empty() || rest.len() > 6 || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |r: &[u8]| r.iter().fold(0i32, |a, d| a * 10 + (d - b'0') as i32);
    let (h, m, sec) = match rest.len() {
        1 | 2 => (num(&rest), 0, 0),
        3 => (num(&rest[..1]), num(&rest[1..]), 0),
        4 => (num(&rest[..2]), num(&rest[2..]), 0),
        6 => (num(&rest[..2]), num(&rest[2..4]), num(&rest[4..])),
        _ => return None,
    };
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60 + sec))
}

impl Zone {
    fn parse(s: &str) -> Result<Zone, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty timezone".into());
        }
        if let Some(o) = parse_numeric_offset(t) {
            return Ok(if o == 0 { Zone::Fixed(0) } else { Zone::Fixed(o) });
        }
        if t.eq_ignore_ascii_case("utc") || t.eq_ignore_ascii_case("z") {
            return Ok(Zone::Utc);
        }
        t.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| format!("Unsupported timezone '{s}'"))
    }

    fn from_params(localtime: bool, timezone: Option<&str>) -> Result<Zone, String> {
        match timezone {
            Some(tz) => Zone::parse(tz),
            None if localtime => Ok(Zone::Local),
            None => Ok(Zone::Utc),
        }
    }

    /// Offset (seconds east of UTC) at a UTC instant.
    fn offset_at(&self, sec: i64) -> i32 {
        match self {
            Zone::Utc => 0,
            Zone::Fixed(o) => *o,
            Zone::Named(tz) => match chrono::DateTime::from_timestamp(sec, 0) {
                Some(dt) => tz.offset_from_utc_datetime(&dt.naive_utc()).fix().local_minus_utc(),
                None => 0,
            },
            Zone::Local => match chrono::DateTime::from_timestamp(sec, 0) {
                Some(dt) => chrono::Local.offset_from_utc_datetime(&dt.naive_utc()).local_minus_utc(),
                None => 0,
            },
        }
    }

    /// Offset for a wall-clock time in this zone (seconds since the epoch as if the wall clock were UTC).
    /// Ambiguous times take the earlier instant; times in a gap use the offset before the gap.
    fn offset_for_local(&self, local: i64) -> i32 {
        fn pick<T: TimeZone>(tz: &T, local: i64) -> Option<i32> {
            let naive = chrono::DateTime::from_timestamp(local, 0)?.naive_utc();
            tz.from_local_datetime(&naive).earliest().map(|dt| dt.offset().fix().local_minus_utc())
        }
        match self {
            Zone::Utc => 0,
            Zone::Fixed(o) => *o,
            Zone::Named(tz) => pick(tz, local).unwrap_or_else(|| self.offset_at(local - 86_400)),
            Zone::Local => pick(&chrono::Local, local).unwrap_or_else(|| self.offset_at(local - 86_400)),
        }
    }

    /// `%Z`: Ruby prints `UTC` for UTC times, nothing for fixed offsets, the abbreviation for named zones.
    fn abbreviation(&self, sec: i64, out: &mut String) {
        match self {
            Zone::Utc => out.push_str("UTC"),
            Zone::Fixed(_) => {}
            Zone::Named(tz) => {
                if let Some(dt) = chrono::DateTime::from_timestamp(sec, 0) {
                    let off = tz.offset_from_utc_datetime(&dt.naive_utc());
                    match off.abbreviation() {
                        Some(a) => out.push_str(a),
                        None => write_offset(off.fix().local_minus_utc(), 0, out),
                    }
                }
            }
            Zone::Local => local_abbreviation(sec, out),
        }
    }
}

#[cfg(unix)]
fn local_abbreviation(sec: i64, out: &mut String) {
    let t = sec as libc::time_t;
    // SAFETY: localtime_r only writes into the `tm` we own; tm_zone points to static storage in libc.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() || tm.tm_zone.is_null() {
            return;
        }
        out.push_str(&std::ffi::CStr::from_ptr(tm.tm_zone).to_string_lossy());
    }
}

#[cfg(not(unix))]
fn local_abbreviation(sec: i64, out: &mut String) {
    if Zone::Local.offset_at(sec) == 0 {
        out.push_str("UTC");
    }
}

fn write_offset(off: i32, colons: u8, out: &mut String) {
    let sign = if off < 0 { '-' } else { '+' };
    let a = off.unsigned_abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    let _ = match colons {
        0 => write!(out, "{sign}{h:02}{m:02}"),
        1 => write!(out, "{sign}{h:02}:{m:02}"),
        _ => write!(out, "{sign}{h:02}:{m:02}:{s:02}"),
    };
}

// ---------------------------------------------------------------------------------------------------------
// Format strings.

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Flags {
    no_pad: bool,
    space: bool,
    zero: bool,
    upper: bool,
    swap: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum Item {
    Lit(String),
    Conv { c: char, flags: Flags, width: Option<usize>, colons: u8 },
}

impl Item {
    fn is_subsec(&self) -> bool {
        matches!(self, Item::Conv { c: 'L' | 'N' | 'Q', .. })
    }
}

fn composite(c: char) -> Option<&'static str> {
    Some(match c {
        'c' => "%a %b %e %H:%M:%S %Y",
        'D' | 'x' => "%m/%d/%y",
        'F' => "%Y-%m-%d",
        'T' | 'X' => "%H:%M:%S",
        'R' => "%H:%M",
        'r' => "%I:%M:%S %p",
        'v' => "%e-%^b-%4Y",
        '+' => "%a %b %e %H:%M:%S %Z %Y",
        _ => return None,
    })
}

const KNOWN: &str = "YCymBbhdejHkIlPpMSLNzZAauwsQUWGgVnt%";

fn compile(fmt: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut lit = String::new();
    let chars: Vec<char> = fmt.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if ch != '%' {
            lit.push(ch);
            i += 1;
            continue;
        }
        // %[flags][width][:]conv
        let start = i;
        i += 1;
        let mut flags = Flags::default();
        while let Some(&f) = chars.get(i) {
            match f {
                '-' => flags.no_pad = true,
                '_' => flags.space = true,
                '0' => flags.zero = true,
                '^' => flags.upper = true,
                '#' => flags.swap = true,
                _ => break,
            }
            i += 1;
        }
        let mut width: Option<usize> = None;
        while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
            width = Some(width.unwrap_or(0).saturating_mul(10).saturating_add(d as usize).min(1024));
            i += 1;
        }
        let mut colons = 0u8;
        while chars.get(i) == Some(&':') && colons < 3 {
            colons += 1;
            i += 1;
        }
        let Some(&c) = chars.get(i) else {
            lit.extend(&chars[start..]);
            break;
        };
        i += 1;
        if (colons > 0 && c != 'z') || !(KNOWN.contains(c) || composite(c).is_some()) {
            // Unknown conversions are copied as they are, as Ruby does.
            lit.extend(&chars[start..i]);
            continue;
        }
        match c {
            '%' => lit.push('%'),
            'n' => lit.push('\n'),
            't' => lit.push('\t'),
            _ => {
                if !lit.is_empty() {
                    items.push(Item::Lit(std::mem::take(&mut lit)));
                }
                if let Some(exp) = composite(c) {
                    for mut it in compile(exp) {
                        if let Item::Conv { flags: f, .. } = &mut it {
                            f.upper |= flags.upper;
                        }
                        items.push(it);
                    }
                } else {
                    items.push(Item::Conv { c, flags, width, colons });
                }
            }
        }
    }
    if !lit.is_empty() {
        items.push(Item::Lit(lit));
    }
    items
}

// ---------------------------------------------------------------------------------------------------------
// Formatting.

/// Broken-down local time of one second.
struct Tm {
    sec_utc: i64,
    offset: i32,
    year: i64,
    mon: u32,
    mday: u32,
    yday: u32,
    wday: u32,
    hour: u32,
    min: u32,
    sec: u32,
}

impl Tm {
    fn at(sec_utc: i64, zone: &Zone) -> Tm {
        let offset = zone.offset_at(sec_utc);
        let local = sec_utc + offset as i64;
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400) as u32;
        let (year, mon, mday) = civil_from_days(days);
        let yday = (days - days_from_civil(year, 1, 1)) as u32 + 1;
        let wday = (days + 4).rem_euclid(7) as u32;
        Tm { sec_utc, offset, year, mon, mday, yday, wday, hour: secs / 3600, min: secs / 60 % 60, sec: secs % 60 }
    }

    /// ISO 8601 week-based year and week number.
    fn iso_week(&self) -> (i64, u32) {
        let wday = if self.wday == 0 { 7 } else { self.wday } as i64;
        let week = (self.yday as i64 - wday + 10) / 7;
        if week < 1 {
            let py = self.year - 1;
            let pdays = if is_leap(py) { 366 } else { 365 };
            let yday = self.yday as i64 + pdays;
            return (py, ((yday - wday + 10) / 7) as u32);
        }
        let ydays = if is_leap(self.year) { 366 } else { 365 };
        if week == 53 && (self.yday as i64 - wday) > ydays - 4 {
            return (self.year + 1, 1);
        }
        (self.year, week as u32)
    }
}

fn pad_num(v: i64, flags: Flags, width: Option<usize>, def_width: usize, def_space: bool, out: &mut String) {
    let w = if flags.no_pad { 0 } else { width.unwrap_or(def_width) };
    let space = !flags.zero && (flags.space || def_space);
    let digits = v.unsigned_abs().to_string();
    let neg = v < 0;
    let len = digits.len() + neg as usize;
    if space {
        for _ in len..w {
            out.push(' ');
        }
        if neg {
            out.push('-');
        }
    } else {
        if neg {
            out.push('-');
        }
        for _ in len..w {
            out.push('0');
        }
    }
    out.push_str(&digits);
}

fn pad_str(s: &str, flags: Flags, width: Option<usize>, upper_default: bool, out: &mut String) {
    let text = if flags.upper || (flags.swap && upper_default) {
        s.to_uppercase()
    } else if flags.swap {
        s.to_lowercase()
    } else {
        s.to_string()
    };
    if let Some(w) = width {
        let pad = if flags.zero { '0' } else { ' ' };
        for _ in text.chars().count()..w {
            out.push(pad);
        }
    }
    out.push_str(&text);
}

fn write_frac(nsec: u32, digits: usize, out: &mut String) {
    let s = format!("{nsec:09}");
    if digits <= 9 {
        out.push_str(&s[..digits]);
    } else {
        out.push_str(&s);
        for _ in 9..digits {
            out.push('0');
        }
    }
}

fn render(item: &Item, tm: &Tm, nsec: u32, zone: &Zone, out: &mut String) {
    let Item::Conv { c, flags, width, colons } = item else {
        if let Item::Lit(s) = item {
            out.push_str(s);
        }
        return;
    };
    let (flags, width) = (*flags, *width);
    match c {
        'Y' => pad_num(tm.year, flags, width, if tm.year < 0 { 5 } else { 4 }, false, out),
        'C' => pad_num(tm.year.div_euclid(100), flags, width, 2, false, out),
        'y' => pad_num(tm.year.rem_euclid(100), flags, width, 2, false, out),
        'm' => pad_num(tm.mon as i64, flags, width, 2, false, out),
        'd' => pad_num(tm.mday as i64, flags, width, 2, false, out),
        'e' => pad_num(tm.mday as i64, flags, width, 2, true, out),
        'j' => pad_num(tm.yday as i64, flags, width, 3, false, out),
        'H' => pad_num(tm.hour as i64, flags, width, 2, false, out),
        'k' => pad_num(tm.hour as i64, flags, width, 2, true, out),
        'I' | 'l' => {
            let h = match tm.hour % 12 {
                0 => 12,
                h => h,
            };
            pad_num(h as i64, flags, width, 2, *c == 'l', out)
        }
        'M' => pad_num(tm.min as i64, flags, width, 2, false, out),
        'S' => pad_num(tm.sec as i64, flags, width, 2, false, out),
        'L' => write_frac(nsec, width.unwrap_or(3), out),
        'N' => write_frac(nsec, width.unwrap_or(9), out),
        'B' => pad_str(MONTHS[(tm.mon - 1) as usize], flags, width, true, out),
        'b' | 'h' => pad_str(&MONTHS[(tm.mon - 1) as usize][..3], flags, width, true, out),
        'A' => pad_str(WEEKDAYS[tm.wday as usize], flags, width, true, out),
        'a' => pad_str(&WEEKDAYS[tm.wday as usize][..3], flags, width, true, out),
        'p' => {
            let s = if tm.hour < 12 { "AM" } else { "PM" };
            // `%#p` is lower case in Ruby.
            pad_str(s, Flags { swap: false, ..flags }, width, false, &mut *out);
            if flags.swap {
                let n = out.len() - 2;
                let lower = out[n..].to_lowercase();
                out.truncate(n);
                out.push_str(&lower);
            }
        }
        'P' => pad_str(if tm.hour < 12 { "am" } else { "pm" }, flags, width, true, out),
        'u' => pad_num(if tm.wday == 0 { 7 } else { tm.wday } as i64, flags, width, 1, false, out),
        'w' => pad_num(tm.wday as i64, flags, width, 1, false, out),
        'U' => pad_num(((tm.yday + 6 - tm.wday) / 7) as i64, flags, width, 2, false, out),
        'W' => pad_num(((tm.yday + 6 - (tm.wday + 6) % 7) / 7) as i64, flags, width, 2, false, out),
        'G' => pad_num(tm.iso_week().0, flags, width, 4, false, out),
        'g' => pad_num(tm.iso_week().0.rem_euclid(100), flags, width, 2, false, out),
        'V' => pad_num(tm.iso_week().1 as i64, flags, width, 2, false, out),
        's' => pad_num(tm.sec_utc, flags, width, 1, false, out),
        'Q' => pad_num(tm.sec_utc * 1000 + (nsec / 1_000_000) as i64, flags, width, 1, false, out),
        'z' => write_offset(tm.offset, *colons, out),
        'Z' => {
            let mut s = String::new();
            zone.abbreviation(tm.sec_utc, &mut s);
            pad_str(&s, flags, width, true, out);
        }
        _ => {}
    }
}

struct FmtCache {
    sec: i64,
    /// The text between fraction-dependent items: `parts.len() == subsec items + 1`.
    parts: Vec<String>,
}

/// Ruby `strftime` for event times. `format(None)` gives ISO 8601 (`2024-05-01T12:00:00Z` in UTC,
/// `2024-05-01T21:00:00+09:00` elsewhere), as Ruby's `Time#iso8601` does.
pub struct TimeFormatter {
    items: Vec<Item>,
    zone: Zone,
    cache: Mutex<Option<FmtCache>>,
}

impl Clone for TimeFormatter {
    fn clone(&self) -> Self {
        TimeFormatter { items: self.items.clone(), zone: self.zone.clone(), cache: Mutex::new(None) }
    }
}

impl std::fmt::Debug for TimeFormatter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeFormatter").field("items", &self.items).field("zone", &self.zone).finish()
    }
}

impl TimeFormatter {
    /// `format` is a Ruby strftime format (None: ISO 8601); `timezone` wins over `localtime`.
    pub fn new(format: Option<&str>, localtime: bool, timezone: Option<&str>) -> Result<Self, String> {
        let zone = Zone::from_params(localtime, timezone)?;
        let items = match format {
            Some(f) => compile(f),
            None if zone == Zone::Utc => compile("%Y-%m-%dT%H:%M:%SZ"),
            None => compile("%Y-%m-%dT%H:%M:%S%:z"),
        };
        Ok(TimeFormatter { items, zone, cache: Mutex::new(None) })
    }

    /// Whether the output depends on the fraction of a second.
    pub fn has_subsec(&self) -> bool {
        self.items.iter().any(Item::is_subsec)
    }

    pub fn format(&self, t: EventTime) -> String {
        let mut s = String::with_capacity(32);
        self.format_into(t, &mut s);
        s
    }

    /// Append the formatted time to `out`.
    pub fn format_into(&self, t: EventTime, out: &mut String) {
        let Some(mut guard) = self.cache.try_lock() else {
            // Another thread is formatting: do it without the cache rather than wait.
            let tm = Tm::at(t.sec, &self.zone);
            for it in &self.items {
                render(it, &tm, t.nsec, &self.zone, out);
            }
            return;
        };
        if let Some(c) = guard.as_ref().filter(|c| c.sec == t.sec) {
            let mut parts = c.parts.iter();
            if let Some(p) = parts.next() {
                out.push_str(p);
            }
            for it in self.items.iter().filter(|i| i.is_subsec()) {
                render(it, &Tm::at_cached(t.sec), t.nsec, &self.zone, out);
                if let Some(p) = parts.next() {
                    out.push_str(p);
                }
            }
            return;
        }
        let tm = Tm::at(t.sec, &self.zone);
        let mut parts = vec![String::new()];
        for it in &self.items {
            if it.is_subsec() {
                parts.push(String::new());
            } else if let Some(last) = parts.last_mut() {
                render(it, &tm, t.nsec, &self.zone, last);
            }
        }
        let mut iter = parts.iter();
        if let Some(p) = iter.next() {
            out.push_str(p);
        }
        for it in self.items.iter().filter(|i| i.is_subsec()) {
            render(it, &tm, t.nsec, &self.zone, out);
            if let Some(p) = iter.next() {
                out.push_str(p);
            }
        }
        *guard = Some(FmtCache { sec: t.sec, parts });
    }
}

impl Tm {
    /// Subsecond items (`%L`, `%N`, `%Q`) only read `sec_utc` and the nanoseconds.
    fn at_cached(sec_utc: i64) -> Tm {
        Tm { sec_utc, offset: 0, year: 0, mon: 1, mday: 1, yday: 1, wday: 0, hour: 0, min: 0, sec: 0 }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Parsing.

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
        let b = self.s.as_bytes();
        let start = self.pos;
        let mut i = start;
        let mut ns: u32 = 0;
        while i < b.len() && i - start < max && b[i].is_ascii_digit() {
            if i - start < 9 {
                ns = ns * 10 + (b[i] - b'0') as u32;
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..9 {
            ns *= 10;
        }
        self.pos = i;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(f: &str, tz: Option<&str>, t: EventTime) -> String {
        TimeFormatter::new(Some(f), false, tz).unwrap().format(t)
    }

    fn parse(f: &str, tz: Option<&str>, s: &str) -> Result<EventTime, String> {
        TimeParser::new(Some(f), false, tz).unwrap().parse(s)
    }

    // 2024-05-01T12:34:56.123456789Z, a Wednesday, day 122.
    const T: EventTime = EventTime::new(1_714_566_896, 123_456_789);

    #[test]
    fn calendar_round_trip() {
        for d in [-800_000i64, -1, 0, 1, 59, 10_000, 19_844, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn strftime_basics() {
        assert_eq!(fmt("%Y-%m-%dT%H:%M:%S%z", None, T), "2024-05-01T12:34:56+0000");
        assert_eq!(fmt("%Y-%m-%dT%H:%M:%S.%N%:z", None, T), "2024-05-01T12:34:56.123456789+00:00");
        assert_eq!(fmt("%Y-%m-%dT%H:%M:%S.%3N", None, T), "2024-05-01T12:34:56.123");
        assert_eq!(fmt("%L|%6N|%N|%12N", None, T), "123|123456|123456789|123456789000");
        assert_eq!(fmt("%d/%b/%Y:%H:%M:%S %z", Some("+09:00"), T), "01/May/2024:21:34:56 +0900");
        assert_eq!(fmt("%a %A %b %B %^b %^a %#B", None, T), "Wed Wednesday May May MAY WED MAY");
        assert_eq!(fmt("%e|%-d|%_m|%j|%y|%C|%u|%w", None, T), " 1|1| 5|122|24|20|3|3");
        assert_eq!(fmt("%I %l %p %P %#p", None, EventTime::new(1_714_522_000, 0)), "12 12 AM am am");
        assert_eq!(fmt("%s %Q", None, T), "1714566896 1714566896123");
        assert_eq!(fmt("%F %T | %D | %R | %r", None, T), "2024-05-01 12:34:56 | 05/01/24 | 12:34 | 12:34:56 PM");
        assert_eq!(fmt("%c", None, T), "Wed May  1 12:34:56 2024");
        assert_eq!(fmt("%::z %Z", Some("-05:30"), T), "-05:30:00 ");
        assert_eq!(fmt("%Z %z", Some("UTC"), T), "UTC +0000");
        assert_eq!(fmt("100%% %Ex %n", None, T), "100% %Ex \n");
        assert_eq!(fmt("%5Y|%-H|%10A|%010d", None, T), "02024|12| Wednesday|0000000001");
        assert_eq!(fmt("%G-W%V-%u %U %W", None, T), "2024-W18-3 17 18");
        assert_eq!(fmt("%G-W%V", None, EventTime::new(1_704_067_200 - 86_400, 0)), "2023-W52"); // 2023-12-31
        assert_eq!(fmt("%G-W%V", None, EventTime::new(1_735_603_200, 0)), "2025-W01");
        // 2024-12-31
    }

    #[test]
    fn strftime_named_zones() {
        assert_eq!(fmt("%Y-%m-%d %H:%M:%S %z %Z", Some("Asia/Seoul"), T), "2024-05-01 21:34:56 +0900 KST");
        // Daylight saving time: New York is -04:00 in May, -05:00 in January.
        assert_eq!(fmt("%H:%M %:z %Z", Some("America/New_York"), T), "08:34 -04:00 EDT");
        assert_eq!(fmt("%H:%M %:z %Z", Some("America/New_York"), EventTime::new(1_704_112_200, 0)), "07:30 -05:00 EST");
        assert!(TimeFormatter::new(None, false, Some("Mars/Olympus")).is_err());
        assert!(TimeFormatter::new(None, false, Some("+25:00")).is_err());
    }

    #[test]
    fn default_format_is_iso8601() {
        assert_eq!(TimeFormatter::new(None, false, None).unwrap().format(T), "2024-05-01T12:34:56Z");
        assert_eq!(TimeFormatter::new(None, false, Some("+0900")).unwrap().format(T), "2024-05-01T21:34:56+09:00");
        assert_eq!(TimeFormatter::new(None, true, Some("Asia/Tokyo")).unwrap().format(T), "2024-05-01T21:34:56+09:00");
    }

    #[test]
    fn cache_keeps_fractions_right() {
        let f = TimeFormatter::new(Some("%H:%M:%S.%L [%N] %Q"), false, None).unwrap();
        assert!(f.has_subsec());
        assert_eq!(f.format(EventTime::new(10, 1_000_000)), "00:00:10.001 [001000000] 10001");
        assert_eq!(f.format(EventTime::new(10, 999_000_000)), "00:00:10.999 [999000000] 10999");
        assert_eq!(f.format(EventTime::new(11, 0)), "00:00:11.000 [000000000] 11000");
        let mut s = String::from(">");
        f.format_into(EventTime::new(11, 5), &mut s);
        assert_eq!(s, ">00:00:11.000 [000000005] 11000");
        let g = TimeFormatter::new(Some("%Y"), false, None).unwrap();
        assert!(!g.has_subsec());
        assert_eq!(g.format(T), "2024");
        assert_eq!(g.clone().format(T), "2024");
    }

    #[test]
    fn strptime_fluentd_examples() {
        // Fluentd docs: apache/nginx time format.
        assert_eq!(
            parse("%d/%b/%Y:%H:%M:%S %z", None, "28/Feb/2013:12:00:00 +0900"),
            Ok(EventTime::new(1_362_020_400, 0))
        );
        // The regexp parser example: no zone, UTC.
        assert_eq!(
            parse("%Y-%m-%d %H:%M:%S %z", None, "2013-02-28 12:00:00 +0900"),
            Ok(EventTime::new(1_362_020_400, 0))
        );
        assert_eq!(parse("%Y-%m-%dT%H:%M:%S.%NZ", None, "2024-05-01T12:34:56.123456789Z"), Ok(T));
        assert_eq!(
            parse("%Y-%m-%dT%H:%M:%S.%L%z", None, "2024-05-01T21:34:56.123+09:00"),
            Ok(EventTime::new(T.sec, 123_000_000))
        );
        assert_eq!(parse("%Y-%m-%d %H:%M:%S", Some("+09:00"), "2024-05-01 21:34:56"), Ok(EventTime::new(T.sec, 0)));
        assert_eq!(parse("%Y-%m-%d %H:%M:%S", Some("Asia/Seoul"), "2024-05-01 21:34:56"), Ok(EventTime::new(T.sec, 0)));
        assert_eq!(
            parse("%Y-%m-%d %H:%M:%S", Some("America/New_York"), "2024-05-01 08:34:56"),
            Ok(EventTime::new(T.sec, 0))
        );
        assert_eq!(parse("%s", None, "1362020400"), Ok(EventTime::new(1_362_020_400, 0)));
        assert_eq!(parse("%s.%N", None, "1362020400.5"), Ok(EventTime::new(1_362_020_400, 500_000_000)));
        assert_eq!(parse("%Q", None, "1362020400123"), Ok(EventTime::new(1_362_020_400, 123_000_000)));
        assert_eq!(parse("%j %Y", None, "122 2024"), Ok(EventTime::new(1_714_521_600, 0)));
        assert_eq!(parse("%m/%d/%y %I:%M:%S %p", None, "05/01/24 12:34:56 PM"), Ok(EventTime::new(T.sec, 0)));
        assert_eq!(parse("%m/%d/%y %I:%M %p", None, "05/01/24 12:00 am"), Ok(EventTime::new(1_714_521_600, 0)));
        assert_eq!(parse("%B %e %Y %T", None, "may  1 2024 12:34:56"), Ok(EventTime::new(T.sec, 0)));
        assert_eq!(parse("%a, %d %b %Y %T %Z", None, "Wed, 01 May 2024 12:34:56 GMT"), Ok(EventTime::new(T.sec, 0)));
        assert_eq!(parse("%F %T %Z", None, "2024-05-01 21:34:56 Asia/Tokyo"), Ok(EventTime::new(T.sec, 0)));
        assert_eq!(parse("%F %T %z", None, "2024-05-01 12:34:56 UTC"), Ok(EventTime::new(T.sec, 0)));
        // Whitespace in the format matches any run of whitespace.
        assert_eq!(parse("%F %T", None, "2024-05-01\t  12:34:56"), Ok(EventTime::new(T.sec, 0)));
    }

    #[test]
    fn strptime_missing_year_is_current_year() {
        let year = Tm::at(EventTime::now().sec, &Zone::Utc).year;
        let t = parse("%b %d %H:%M:%S", None, "Jan  2 03:04:05").unwrap();
        assert_eq!(t.sec, days_from_civil(year, 1, 2) * 86_400 + 3 * 3600 + 4 * 60 + 5);
        // Only a time of day: today.
        let t = parse("%H:%M:%S", None, "00:00:01").unwrap();
        let today = EventTime::now().sec.div_euclid(86_400);
        assert!((today - 1..=today).contains(&t.sec.div_euclid(86_400)));
    }

    #[test]
    fn strptime_errors() {
        assert!(parse("%Y-%m-%d", None, "2024-13-01").is_err());
        assert!(parse("%Y-%m-%d", None, "2024-05").is_err());
        assert!(parse("%Y-%m-%d", None, "2024-05-01 junk").is_err());
        assert!(parse("%Y-%m-%d", None, "").is_err());
        assert!(parse("%d/%b/%Y", None, "01/Mai/2024").is_err());
        assert!(parse("%H:%M:%S %z", None, "12:00:00 +99:00").is_err());
        assert!(parse("%I %p", None, "13 PM").is_err());
        assert!(parse("%Y-%m-%d", None, "２０２４-05-01").is_err());
        assert!(TimeParser::new(Some("%Y"), false, Some("Nowhere/City")).is_err());
        // Trailing whitespace is fine.
        assert_eq!(parse("%Y-%m-%d", None, "2024-05-01 \n"), Ok(EventTime::new(1_714_521_600, 0)));
    }

    #[test]
    fn no_format_parses_like_time_parse() {
        let p = TimeParser::new(None, false, None).unwrap();
        let want = EventTime::new(T.sec, 0);
        for s in [
            "2024-05-01T12:34:56Z",
            "2024-05-01T21:34:56+09:00",
            "2024-05-01T12:34:56",
            "2024-05-01 12:34:56 +0000",
            "2024-05-01 12:34:56 UTC",
            "2024-05-01 21:34:56 +0900",
            "2024/05/01 12:34:56",
            "01/May/2024:12:34:56 +0000",
            "Wed, 01 May 2024 12:34:56 +0000",
            "Wed May  1 12:34:56 2024",
            "Wed May 01 12:34:56 UTC 2024",
            "20240501T123456Z",
        ] {
            assert_eq!(p.parse(s), Ok(want), "{s}");
        }
        assert_eq!(p.parse("2024-05-01T12:34:56.123456789Z"), Ok(T));
        assert_eq!(p.parse("2024-05-01"), Ok(EventTime::new(1_714_521_600, 0)));
        assert!(p.parse("not a time").is_err());
        assert!(p.parse("").is_err());

        let iso = TimeParser::new(Some("%iso8601"), false, None).unwrap();
        assert_eq!(iso.parse("2024-05-01T21:34:56.123456789+09:00"), Ok(T));
        assert!(iso.parse("Wed May  1 12:34:56 2024").is_err());

        let seoul = TimeParser::new(None, false, Some("Asia/Seoul")).unwrap();
        assert_eq!(seoul.parse("2024-05-01 21:34:56"), Ok(want));
        assert_eq!(seoul.parse("2024-05-01 12:34:56 Z"), Ok(want));
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_round_trips(sec in -2_000_000_000i64..4_000_000_000i64, nsec in 0u32..1_000_000_000,
                                         zi in 0usize..4) {
            let zone = ["+09:00", "-05:30", "UTC", "America/New_York"][zi];
            let t = EventTime::new(sec, nsec);
            let f = TimeFormatter::new(Some("%Y-%m-%dT%H:%M:%S.%N%:z"), false, Some(zone)).unwrap();
            let text = f.format(t);
            let p = TimeParser::new(Some("%Y-%m-%dT%H:%M:%S.%N%z"), false, None).unwrap();
            proptest::prop_assert_eq!(p.parse(&text), Ok(t), "{}", text);
            let p = TimeParser::new(None, false, None).unwrap();
            proptest::prop_assert_eq!(p.parse(&text), Ok(t), "{}", text);
        }
    }

    #[test]
    fn parse_cache_returns_same_result() {
        let p = TimeParser::new(Some("%F %T"), false, None).unwrap();
        assert_eq!(p.parse("2024-05-01 12:34:56"), Ok(EventTime::new(T.sec, 0)));
        assert_eq!(p.parse("2024-05-01 12:34:56"), Ok(EventTime::new(T.sec, 0)));
        assert_eq!(p.parse("2024-05-01 12:34:57"), Ok(EventTime::new(T.sec + 1, 0)));
        assert!(p.parse("2024-05-01 12:34").is_err());
        assert_eq!(p.parse("2024-05-01 12:34:57"), Ok(EventTime::new(T.sec + 1, 0)));
    }

    #[test]
    fn dst_gap_and_overlap() {
        // 2024-03-10 02:30 does not exist in New York; 2024-11-03 01:30 happens twice (earlier wins).
        let p = TimeParser::new(Some("%F %T"), false, Some("America/New_York")).unwrap();
        assert!(p.parse("2024-03-10 02:30:00").is_ok());
        assert_eq!(p.parse("2024-11-03 01:30:00"), Ok(EventTime::new(1_730_611_800, 0)));
    }
}
