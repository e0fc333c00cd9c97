//! Fluentd's retry state machine: one per output, started by the first failed write, cleared by a success.
use super::config::{RetryConfig, RetryType};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RetryState {
    pub start: Instant,
    /// Failed attempts so far.
    pub steps: u32,
    pub next: Instant,
}

/// The wait before retry number `steps` (1 = after the first failure), before randomization.
pub fn interval(cfg: &RetryConfig, steps: u32) -> Duration {
    let secs = match cfg.kind {
        RetryType::Periodic => cfg.wait.as_secs_f64(),
        RetryType::ExponentialBackoff => {
            let exp = steps.saturating_sub(1).min(1000) as i32;
            cfg.wait.as_secs_f64() * cfg.base.powi(exp)
        }
    };
    let mut secs = if secs.is_finite() { secs } else { f64::MAX / 2.0 };
    if let Some(m) = cfg.max_interval {
        secs = secs.min(m.as_secs_f64());
    }
    Duration::from_secs_f64(secs.clamp(0.0, 10.0 * 365.0 * 86400.0))
}

impl RetryState {
    /// Record a failure at `now`; `after` overrides the computed wait (a server's `Retry-After`).
    pub fn step(prev: Option<RetryState>, cfg: &RetryConfig, now: Instant, after: Option<Duration>) -> RetryState {
        let mut st = prev.unwrap_or(RetryState { start: now, steps: 0, next: now });
        st.steps += 1;
        let mut wait = interval(cfg, st.steps);
        if cfg.randomize {
            // Fluentd's randomize_width 0.125: +-12.5%.
            let r: f64 = rand::random::<f64>() * 2.0 - 1.0;
            wait = Duration::from_secs_f64((wait.as_secs_f64() * (1.0 + 0.125 * r)).max(0.0));
        }
        if let Some(a) = after {
            wait = wait.max(a);
        }
        let mut next = now + wait;
        // The last retry happens at the timeout, not after it.
        if !cfg.forever {
            let deadline = st.start + cfg.timeout;
            if next > deadline && now < deadline {
                next = deadline;
            }
        }
        st.next = next;
        st
    }

    /// Retries are exhausted (`retry_timeout` passed or `retry_max_times` reached).
    pub fn exhausted(&self, cfg: &RetryConfig, now: Instant) -> bool {
        if cfg.forever {
            return false;
        }
        if let Some(m) = cfg.max_times {
            if self.steps > m {
                return true;
            }
        }
        now >= self.start + cfg.timeout
    }

    /// Time to hand chunks to `<secondary>` (`retry_secondary_threshold` of the timeout or of max_times).
    pub fn secondary_due(&self, cfg: &RetryConfig, now: Instant) -> bool {
        if cfg.forever {
            return false;
        }
        if let Some(m) = cfg.max_times {
            if self.steps as f64 >= (m as f64 * cfg.secondary_threshold).ceil() && self.steps >= 1 {
                return true;
            }
        }
        now >= self.start + cfg.timeout.mul_f64(cfg.secondary_threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RetryConfig {
        RetryConfig {
            kind: RetryType::ExponentialBackoff,
            wait: Duration::from_secs(1),
            base: 2.0,
            max_interval: Some(Duration::from_secs(10)),
            randomize: false,
            timeout: Duration::from_secs(3600),
            max_times: Some(5),
            forever: false,
            secondary_threshold: 0.8,
        }
    }

    #[test]
    fn exponential_intervals_capped() {
        let c = cfg();
        let v: Vec<u64> = (1..=6).map(|s| interval(&c, s).as_secs()).collect();
        assert_eq!(v, vec![1, 2, 4, 8, 10, 10]);
        let p = RetryConfig { kind: RetryType::Periodic, ..cfg() };
        assert_eq!(interval(&p, 5), Duration::from_secs(1));
    }

    #[test]
    fn limits() {
        let c = cfg();
        let now = Instant::now();
        let mut st = None;
        for _ in 0..5 {
            st = Some(RetryState::step(st, &c, now, None));
        }
        let s = st.clone().unwrap();
        assert!(!s.exhausted(&c, now));
        assert!(s.secondary_due(&c, now));
        let s = RetryState::step(st, &c, now, None);
        assert!(s.exhausted(&c, now));
        let first = RetryState::step(None, &c, now, None);
        assert!(first.exhausted(&c, now + Duration::from_secs(3601)));
        assert_eq!(first.next, now + Duration::from_secs(1));
    }

    #[test]
    fn forever_never_gives_up_nor_uses_secondary() {
        let c = RetryConfig { forever: true, ..cfg() };
        let now = Instant::now();
        let mut st = None;
        for _ in 0..50 {
            st = Some(RetryState::step(st, &c, now, None));
        }
        let s = st.unwrap();
        assert!(!s.exhausted(&c, now + Duration::from_secs(1_000_000)));
        assert!(!s.secondary_due(&c, now + Duration::from_secs(1_000_000)));
        // A server's Retry-After lengthens the wait.
        let s = RetryState::step(None, &c, now, Some(Duration::from_secs(7)));
        assert_eq!(s.next, now + Duration::from_secs(7));
    }
}
