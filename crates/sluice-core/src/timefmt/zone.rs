//! Zones: UTC, fixed offsets (`+09:00`), IANA names (`Asia/Tokyo`) and the system zone, as Fluentd's
//! `timezone`, `localtime`/`utc` and the buffer's `timekey_zone`/`timekey_use_utc` name them.
use chrono::{Offset, TimeZone};
use chrono_tz::OffsetName;
use std::fmt::Write as _;

/// The zone a time is shown in or read in: the one type for `timezone`, `localtime`/`utc`, and the
/// buffer's `timekey_zone`/`timekey_use_utc` (time slices and strftime placeholders).
#[derive(Clone, Debug, PartialEq)]
pub enum Zone {
    Utc,
    /// Seconds east of UTC.
    Fixed(i32),
    Named(chrono_tz::Tz),
    /// The system zone.
    Local,
}

/// `+09:00`, `+0900`, `+09`, `-05:30`, `Z`: seconds east of UTC.
pub(super) fn parse_numeric_offset(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    // The digits without colons, in place: this runs for every parsed `%z`.
    let mut buf = [0u8; 6];
    let mut len = 0;
    for &c in b[1..].iter().filter(|c| **c != b':') {
        if len == buf.len() || !c.is_ascii_digit() {
            return None;
        }
        buf[len] = c;
        len += 1;
    }
    if len == 0 {
        return None;
    }
    let rest = &buf[..len];
    let num = |r: &[u8]| r.iter().fold(0i32, |a, d| a * 10 + (d - b'0') as i32);
    let (h, m, sec) = match rest.len() {
        1 | 2 => (num(rest), 0, 0),
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
    /// `+09:00`, `+0900`, `+09`, `-05:30`, `UTC`, `Z`, or an IANA name (`Asia/Tokyo`).
    pub fn parse(s: &str) -> Result<Zone, String> {
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

    /// Fluentd's zone parameters: `timezone` wins over `localtime`; neither means UTC.
    pub fn from_params(localtime: bool, timezone: Option<&str>) -> Result<Zone, String> {
        match timezone {
            Some(tz) => Zone::parse(tz),
            None if localtime => Ok(Zone::Local),
            None => Ok(Zone::Utc),
        }
    }

    /// Offset (seconds east of UTC) at a UTC instant.
    pub fn offset_at(&self, sec: i64) -> i32 {
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

    /// Start of the `timekey` slice (seconds, at least 1) holding `sec`, aligned in this zone as Fluentd
    /// does (a `1d` slice starts at local midnight).
    pub fn slice_start(&self, sec: i64, timekey: i64) -> i64 {
        let off = self.offset_at(sec) as i64;
        let local = sec.saturating_add(off);
        local.saturating_sub(local.rem_euclid(timekey.max(1))).saturating_sub(off)
    }

    /// Offset for a wall-clock time in this zone (seconds since the epoch as if the wall clock were UTC).
    /// Ambiguous times take the earlier instant; times in a gap use the offset before the gap.
    pub(super) fn offset_for_local(&self, local: i64) -> i32 {
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
    pub(super) fn abbreviation(&self, sec: i64, out: &mut String) {
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

pub(super) fn write_offset(off: i32, colons: u8, out: &mut String) {
    let sign = if off < 0 { '-' } else { '+' };
    let a = off.unsigned_abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    let _ = match colons {
        0 => write!(out, "{sign}{h:02}{m:02}"),
        1 => write!(out, "{sign}{h:02}:{m:02}"),
        _ => write!(out, "{sign}{h:02}:{m:02}:{s:02}"),
    };
}
