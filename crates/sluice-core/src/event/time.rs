use std::time::{SystemTime, UNIX_EPOCH};

/// Fluentd's EventTime: seconds since the epoch and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventTime {
    pub sec: i64,
    pub nsec: u32,
}

impl EventTime {
    pub const fn new(sec: i64, nsec: u32) -> Self {
        EventTime { sec, nsec }
    }

    pub fn now() -> Self {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => EventTime::new(d.as_secs() as i64, d.subsec_nanos()),
            Err(_) => EventTime::default(),
        }
    }

    pub fn from_f64(f: f64) -> Self {
        let sec = f.floor();
        let nsec = ((f - sec) * 1e9).round().clamp(0.0, 999_999_999.0) as u32;
        EventTime::new(sec as i64, nsec)
    }

    pub fn as_f64(&self) -> f64 {
        self.sec as f64 + self.nsec as f64 / 1e9
    }

    pub fn as_nanos(&self) -> i128 {
        self.sec as i128 * 1_000_000_000 + self.nsec as i128
    }
}
