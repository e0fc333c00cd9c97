//! Fluentd's phi accrual failure detector for out_forward nodes: heartbeat arrival gaps in a window, a
//! weighted mean, and `phi = (now - last - interval + 1) / mean / ln 10`. A node is detached when phi
//! exceeds `phi_threshold`, or when no heartbeat arrived for `hard_timeout`.

const SAMPLE_SIZE: usize = 1000;

#[derive(Debug, Clone)]
pub struct FailureDetector {
    heartbeat_interval: f64,
    hard_timeout: f64,
    last: f64,
    init_gap_usec: u64,
    window: std::collections::VecDeque<u64>,
}

impl FailureDetector {
    pub fn new(heartbeat_interval: f64, hard_timeout: f64, now: f64) -> Self {
        let init_gap_usec = (heartbeat_interval * 1e6).max(0.0) as u64;
        FailureDetector {
            heartbeat_interval,
            hard_timeout,
            last: now,
            init_gap_usec,
            window: std::collections::VecDeque::from([init_gap_usec]),
        }
    }

    pub fn hard_timeout(&self, now: f64) -> bool {
        now - self.last > self.hard_timeout
    }

    /// A heartbeat arrived at `now`.
    pub fn add(&mut self, now: f64) {
        if self.window.is_empty() {
            self.window.push_back(self.init_gap_usec);
        } else {
            let gap = ((now - self.last).max(0.0) * 1e6) as u64;
            self.window.push_back(gap);
            if self.window.len() > SAMPLE_SIZE {
                self.window.pop_front();
            }
        }
        self.last = now;
    }

    pub fn phi(&self, now: f64) -> f64 {
        if self.window.is_empty() {
            return 0.0;
        }
        let (mut sum, mut fact) = (0f64, 0f64);
        for (i, gap) in self.window.iter().enumerate() {
            let w = (i + 1) as f64;
            sum += *gap as f64 * w;
            fact += w;
        }
        let mean = (sum / fact).floor() / 1e6 - self.heartbeat_interval + 1.0;
        let t = now - self.last - self.heartbeat_interval + 1.0;
        t / mean / std::f64::consts::LN_10
    }

    pub fn sample_size(&self) -> usize {
        self.window.len()
    }

    pub fn clear(&mut self) {
        self.window.clear();
        self.last = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phi_grows_with_silence() {
        let mut f = FailureDetector::new(1.0, 60.0, 100.0);
        for i in 1..=10 {
            f.add(100.0 + i as f64);
        }
        assert!(f.phi(110.5) < 1.0);
        assert!(f.phi(150.0) > 16.0);
        assert!(!f.hard_timeout(150.0));
        assert!(f.hard_timeout(171.0));
    }
}
