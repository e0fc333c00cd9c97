//! TEMPORARY stand-in for sluice_core::timefmt::TimeParser until it lands. Not for commit.
use chrono::{DateTime, Datelike, NaiveDateTime, TimeZone};
use sluice_core::event::EventTime;

#[derive(Clone, Debug)]
pub struct TimeParser {
    format: Option<String>,
    localtime: bool,
    offset: Option<i32>,
}

fn tz_offset(tz: &str) -> Option<i32> {
    let (sign, rest) = match tz.as_bytes().first()? {
        b'+' => (1, &tz[1..]),
        b'-' => (-1, &tz[1..]),
        _ => return if tz == "UTC" || tz.contains('/') { Some(0) } else { None },
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    let (h, m) = match digits.len() { 2 => (&digits[..2], "00"), 4 => (&digits[..2], &digits[2..]), _ => return None };
    Some(sign * (h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60))
}

impl TimeParser {
    pub fn new(format: Option<&str>, localtime: bool, timezone: Option<&str>) -> Result<Self, String> {
        let offset = match timezone { Some(tz) => Some(tz_offset(tz).ok_or("bad tz")?), None => None };
        Ok(TimeParser { format: format.map(|f| f.replace("%L", "%f").replace("%N", "%f")), localtime, offset })
    }
    pub fn parse(&self, s: &str) -> Result<EventTime, String> {
        let to_et = |dt: DateTime<chrono::FixedOffset>| EventTime::new(dt.timestamp(), dt.timestamp_subsec_nanos());
        let Some(f) = &self.format else {
            return DateTime::parse_from_rfc3339(s).map(to_et).or_else(|_| DateTime::parse_from_str(s, "%a %b %d %H:%M:%S%.f %Y %z").map(to_et)).or_else(|_| {
                NaiveDateTime::parse_from_str(s, "%a %b %d %H:%M:%S%.f %Y").map(|n| { let dt = chrono::Utc.from_utc_datetime(&n); EventTime::new(dt.timestamp(), dt.timestamp_subsec_nanos()) })
            }).map_err(|e| e.to_string());
        };
        if f.contains("%z") {
            return DateTime::parse_from_str(s, f).map(to_et).map_err(|e| e.to_string());
        }
        let (f2, s2) = if f.contains("%Y") { (f.clone(), s.to_string()) } else { (format!("%Y {f}"), format!("{} {s}", chrono::Utc::now().year())) };
        let n = NaiveDateTime::parse_from_str(&s2, &f2).map_err(|e| e.to_string())?;
        let off = self.offset.unwrap_or(0);
        let _ = self.localtime;
        let secs = n.and_utc().timestamp() - off as i64;
        Ok(EventTime::new(secs, n.and_utc().timestamp_subsec_nanos()))
    }
}
