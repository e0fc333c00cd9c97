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
}

/// The machine's host name, as `#{Socket.gethostname}` and `${hostname}` give it.
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
