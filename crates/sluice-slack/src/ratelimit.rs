//! Per-channel rate limit: a token bucket (`rate_limit_per_minute`), a least interval between messages
//! (`min_interval`, Slack allows about one per second) and the pause a 429's `Retry-After` asks for.
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

struct Bucket {
    tokens: f64,
    refilled: Instant,
    next_allowed: Instant,
}

pub struct RateLimiter {
    per_minute: f64,
    min_interval: Duration,
    channels: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32, min_interval: Duration) -> Self {
        RateLimiter { per_minute: f64::from(per_minute.max(1)), min_interval, channels: Mutex::new(HashMap::new()) }
    }

    fn with<R>(&self, ch: &str, now: Instant, f: impl FnOnce(&mut Bucket) -> R) -> R {
        let mut map = self.channels.lock();
        let b = map.entry(ch.to_string()).or_insert_with(|| Bucket {
            tokens: self.per_minute,
            refilled: now,
            next_allowed: now,
        });
        let dt = now.saturating_duration_since(b.refilled).as_secs_f64();
        b.tokens = (b.tokens + dt * self.per_minute / 60.0).min(self.per_minute);
        b.refilled = now;
        f(b)
    }

    /// Whole messages the channel may take now without waiting for the bucket.
    pub fn available(&self, ch: &str) -> u32 {
        self.with(ch, Instant::now(), |b| b.tokens.floor().max(0.0) as u32)
    }

    /// Take one message's worth, or say how long to wait before asking again.
    pub fn try_take(&self, ch: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let per_sec = self.per_minute / 60.0;
        let min = self.min_interval;
        self.with(ch, now, |b| {
            if b.next_allowed > now {
                return Err(b.next_allowed - now);
            }
            if b.tokens < 1.0 {
                return Err(Duration::from_secs_f64(((1.0 - b.tokens) / per_sec).max(0.001)));
            }
            b.tokens -= 1.0;
            b.next_allowed = now + min;
            Ok(())
        })
    }

    /// Wait until the channel may take a message, then take it.
    pub async fn acquire(&self, ch: &str) {
        while let Err(wait) = self.try_take(ch) {
            tokio::time::sleep(wait).await;
        }
    }

    /// Slack said 429: nothing to this channel for `d`.
    pub fn pause(&self, ch: &str, d: Duration) {
        let now = Instant::now();
        self.with(ch, now, |b| {
            if b.next_allowed < now + d {
                b.next_allowed = now + d;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bucket_and_interval() {
        let rl = RateLimiter::new(3, Duration::from_millis(0));
        assert_eq!(rl.available("#a"), 3);
        for _ in 0..3 {
            assert!(rl.try_take("#a").is_ok());
        }
        assert!(rl.try_take("#a").is_err());
        // Another channel has its own bucket.
        assert!(rl.try_take("#b").is_ok());
        let rl = RateLimiter::new(60, Duration::from_secs(1));
        assert!(rl.try_take("#a").is_ok());
        let w = rl.try_take("#a").unwrap_err();
        assert!(w <= Duration::from_secs(1) && w > Duration::from_millis(500));
        rl.pause("#b", Duration::from_secs(5));
        assert!(rl.try_take("#b").unwrap_err() > Duration::from_secs(4));
    }
}
