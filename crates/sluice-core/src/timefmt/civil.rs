//! Civil time: proleptic Gregorian calendar arithmetic (days since 1970-01-01) and the broken-down time
//! of one second in a zone.
use super::zone::Zone;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day number, the inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
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

pub fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub(super) const MONTHS: [&str; 12] = [
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
pub(super) const WEEKDAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// Broken-down local time of one second.
pub(super) struct Tm {
    pub(super) sec_utc: i64,
    pub(super) offset: i32,
    pub(super) year: i64,
    pub(super) mon: u32,
    pub(super) mday: u32,
    pub(super) yday: u32,
    pub(super) wday: u32,
    pub(super) hour: u32,
    pub(super) min: u32,
    pub(super) sec: u32,
}

impl Tm {
    pub(super) fn at(sec_utc: i64, zone: &Zone) -> Tm {
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
    pub(super) fn iso_week(&self) -> (i64, u32) {
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

impl Tm {
    /// Subsecond items (`%L`, `%N`, `%Q`) only read `sec_utc` and the nanoseconds.
    pub(super) fn at_cached(sec_utc: i64) -> Tm {
        Tm { sec_utc, offset: 0, year: 0, mon: 1, mday: 1, yday: 1, wday: 0, hour: 0, min: 0, sec: 0 }
    }
}
