//! TEMPORARY stand-in for sluice_core::timefmt::TimeFormatter until it lands. Not for commit.
use chrono::{FixedOffset, Local, TimeZone, Utc};
use sluice_core::event::EventTime;

#[derive(Clone, Debug)]
pub struct TimeFormatter {
    format: Option<String>,
    localtime: bool,
    offset: Option<i32>,
}

impl TimeFormatter {
    pub fn new(format: Option<&str>, localtime: bool, timezone: Option<&str>) -> Result<Self, String> {
        let offset = match timezone {
            Some("+0000" | "UTC" | "+00:00") => Some(0),
            Some("+0900" | "+09:00" | "Asia/Tokyo") => Some(9 * 3600),
            Some(_) => return Err("shim: unsupported tz".into()),
            None => None,
        };
        Ok(TimeFormatter { format: format.map(|f| f.replace("%N", "%9f").replace("%L", "%3f")), localtime, offset })
    }
    pub fn format(&self, t: EventTime) -> String {
        let f = self.format.clone();
        match (self.offset, self.localtime) {
            (Some(o), _) => {
                let dt = FixedOffset::east_opt(o).unwrap().timestamp_opt(t.sec, t.nsec).unwrap();
                dt.format(f.as_deref().unwrap_or("%Y-%m-%dT%H:%M:%S%:z")).to_string()
            }
            (None, true) => Local.timestamp_opt(t.sec, t.nsec).unwrap().format(f.as_deref().unwrap_or("%Y-%m-%dT%H:%M:%S%:z")).to_string(),
            (None, false) => Utc.timestamp_opt(t.sec, t.nsec).unwrap().format(f.as_deref().unwrap_or("%Y-%m-%dT%H:%M:%SZ")).to_string(),
        }
    }
}
