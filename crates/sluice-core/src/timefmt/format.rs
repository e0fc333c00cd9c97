//! Formatting: Ruby's `Time#strftime`.
use super::civil::{Tm, MONTHS, WEEKDAYS};
use super::pattern::{compile, Flags, Item};
use super::zone::{write_offset, Zone};
use crate::event::EventTime;
use parking_lot::Mutex;

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

    /// A formatter in UTC; it cannot fail, since only a zone can be refused.
    pub fn utc(format: &str) -> Self {
        TimeFormatter { items: compile(format), zone: Zone::Utc, cache: Mutex::new(None) }
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

impl Zone {
    /// Ruby `strftime` of the second `sec` in this zone (buffer placeholders such as `%Y%m%d` in a path
    /// or an object key, resolved from a chunk's `timekey`).
    pub fn strftime(&self, sec: i64, fmt: &str) -> String {
        let mut out = String::with_capacity(fmt.len() + 16);
        self.strftime_into(sec, fmt, &mut out);
        out
    }

    /// [`Zone::strftime`], appended to `out`.
    pub fn strftime_into(&self, sec: i64, fmt: &str, out: &mut String) {
        let tm = Tm::at(sec, self);
        for it in &compile(fmt) {
            render(it, &tm, 0, self, out);
        }
    }
}
