//! Small helpers shared by the core and plugins.
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Lets a warning through at most once per interval per key, and says how many were held back, so a
/// flood of bad input cannot flood sluice's own log.
pub struct RateLimiter {
    interval: Duration,
    state: Mutex<HashMap<String, (Instant, u64)>>,
}

impl RateLimiter {
    pub fn new(interval: Duration) -> Self {
        RateLimiter { interval, state: Mutex::new(HashMap::new()) }
    }

    /// `Some(suppressed)` when the caller should log now (with the count held back since the last time).
    pub fn check(&self, key: &str) -> Option<u64> {
        let now = Instant::now();
        let mut st = self.state.lock();
        if st.len() > 10_000 {
            st.clear();
        }
        match st.get_mut(key) {
            Some((last, suppressed)) => {
                if now.duration_since(*last) >= self.interval {
                    let n = *suppressed;
                    *last = now;
                    *suppressed = 0;
                    Some(n)
                } else {
                    *suppressed += 1;
                    None
                }
            }
            None => {
                st.insert(key.to_string(), (now, 0));
                Some(0)
            }
        }
    }

    /// The keys whose window has ended with suppressed messages, and their counts, so that a flood that
    /// stops is still reported. Their windows are forgotten: the next `check` logs at once.
    pub fn take_due(&self) -> Vec<(String, u64)> {
        let now = Instant::now();
        let mut due = Vec::new();
        self.state.lock().retain(|k, (last, suppressed)| {
            if now.duration_since(*last) < self.interval {
                return true;
            }
            if *suppressed > 0 {
                due.push((k.clone(), *suppressed));
            }
            false
        });
        due
    }

    /// Every suppressed count not reported yet (at shutdown).
    pub fn take_all(&self) -> Vec<(String, u64)> {
        let mut st = self.state.lock();
        let all = st.drain().filter(|(_, (_, n))| *n > 0).map(|(k, (_, n))| (k, n)).collect();
        all
    }
}

/// 16 bytes as 32 lowercase hex digits (chunk ids, Fluentd's `unique_id` and `SecureRandom.hex(16)`).
pub fn hex16(bytes: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0x0f) as usize] as char);
    }
    out
}

/// An error with its sources, `outer: inner: ...` (HTTP clients hide the useful part in the sources).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        src = s.source();
    }
    text
}

/// The machine's host name, as `#{Socket.gethostname}` and `${hostname}` give it.
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex16_is_lowercase_and_zero_padded() {
        let mut id = [0u8; 16];
        id[0] = 0x0a;
        id[15] = 0xff;
        assert_eq!(hex16(&id), "0a0000000000000000000000000000ff");
    }

    #[test]
    fn rate_limiter_counts_suppressed() {
        let rl = RateLimiter::new(Duration::from_millis(50));
        assert_eq!(rl.check("a"), Some(0));
        assert_eq!(rl.check("a"), None);
        assert_eq!(rl.check("a"), None);
        assert_eq!(rl.check("b"), Some(0));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(rl.check("a"), Some(2));
    }

    #[test]
    fn suppressed_counts_are_reported_when_the_window_ends_and_at_the_end() {
        let rl = RateLimiter::new(Duration::from_millis(50));
        assert_eq!(rl.check("a"), Some(0));
        assert_eq!(rl.check("a"), None);
        assert_eq!(rl.check("b"), Some(0));
        assert_eq!(rl.check("b"), None);
        assert_eq!(rl.check("b"), None);
        assert!(rl.take_due().is_empty(), "windows still open");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(rl.check("c"), Some(0));
        assert_eq!(rl.check("c"), None);
        let mut due = rl.take_due();
        due.sort();
        assert_eq!(due, vec![("a".to_string(), 1), ("b".to_string(), 2)]);
        assert_eq!(rl.check("a"), Some(0), "a reported window starts afresh");
        assert_eq!(rl.take_all(), vec![("c".to_string(), 1)]);
        assert!(rl.take_all().is_empty());
    }
}
