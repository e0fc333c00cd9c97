//! Flood control: a fingerprint per alert, one message per fingerprint per `dedup_window`, then a summary
//! (`×142 more in the last 5 min`) when the window closes.
use crate::blocks::{lookup, Alert};
use regex::Regex;
use sluice_core::event::Map;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::time::Instant;

/// At most this many open windows are kept; past it the oldest are closed early.
const MAX_STATES: usize = 10_000;

fn normaliser() -> &'static [(Regex, &'static str)] {
    static RES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    RES.get_or_init(|| {
        let pats: [(&str, &str); 5] = [
            // ISO-8601 / RFC 3339 and "2026-11-25 06:00:00,123" timestamps.
            (r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?", "<ts>"),
            // Clock times and syslog-style dates.
            (r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b", "<ts>"),
            (r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "<id>"),
            // Hex strings, and any word with a digit in it (numbers, ids like req_8fK2, ip parts).
            (r"\b(?:0[xX][0-9a-fA-F]+|[0-9a-fA-F]{8,}|[A-Za-z_]*[0-9][A-Za-z0-9_]*)\b", "#"),
            (r"\s+", " "),
        ];
        pats.iter().filter_map(|(p, r)| Regex::new(p).ok().map(|re| (re, *r))).collect()
    })
}

/// The message with timestamps, ids, hex strings and numbers replaced, so repeats of one error match.
pub fn normalise(text: &str) -> String {
    let mut s = text.to_string();
    for (re, rep) in normaliser() {
        s = re.replace_all(&s, *rep).into_owned();
    }
    s.trim().to_string()
}

/// FNV-1a, 64 bits: stable across runs, so a fingerprint shown in Slack means the same thing tomorrow.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0x1f)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The fingerprint of an alert: from `fingerprint_keys` when set, else severity, service, channel and the
/// normalised message.
pub fn fingerprint(keys: &[String], alert: &Alert, record: &Map) -> String {
    let channel = alert.channel.as_deref().unwrap_or("");
    let h = if keys.is_empty() {
        let sev = alert.severity.as_deref().unwrap_or("");
        let norm = normalise(&alert.raw_message);
        fnv1a(&[sev, &alert.service, channel, &norm])
    } else {
        let vals: Vec<String> =
            keys.iter().map(|k| lookup(record, k).map(|v| v.to_display_string()).unwrap_or_default()).collect();
        let mut parts: Vec<&str> = vals.iter().map(String::as_str).collect();
        parts.push(channel);
        fnv1a(&parts)
    };
    format!("{h:016x}")
}

/// What to do with one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    Suppress,
}

/// A closed window with repeats to report.
#[derive(Debug, Clone)]
pub struct Summary {
    pub fingerprint: String,
    /// The last alert seen with this fingerprint.
    pub alert: Alert,
    pub more: u64,
    pub window: Duration,
}

struct State {
    opened: Instant,
    last: Alert,
    suppressed: u64,
}

/// Open windows, one per fingerprint.
pub struct Deduper {
    window: Duration,
    states: HashMap<String, State>,
    /// Summaries of windows closed by a new alert before the ticker saw them.
    ready: Vec<Summary>,
}

impl Deduper {
    pub fn new(window: Duration) -> Self {
        Deduper { window, states: HashMap::new(), ready: Vec::new() }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    pub fn observe(&mut self, fp: &str, alert: &Alert, now: Instant) -> Verdict {
        if self.window.is_zero() {
            return Verdict::Send;
        }
        if let Some(s) = self.states.get_mut(fp) {
            if now.duration_since(s.opened) < self.window {
                s.suppressed += 1;
                s.last = alert.clone();
                return Verdict::Suppress;
            }
            if let Some(s) = self.states.remove(fp) {
                self.close(fp.to_string(), s);
            }
        }
        if self.states.len() >= MAX_STATES {
            self.evict_oldest();
        }
        self.states.insert(fp.to_string(), State { opened: now, last: alert.clone(), suppressed: 0 });
        Verdict::Send
    }

    fn close(&mut self, fp: String, s: State) {
        if s.suppressed > 0 {
            self.ready.push(Summary { fingerprint: fp, alert: s.last, more: s.suppressed, window: self.window });
        }
    }

    fn evict_oldest(&mut self) {
        if let Some(fp) = self.states.iter().min_by_key(|(_, s)| s.opened).map(|(k, _)| k.clone()) {
            if let Some(s) = self.states.remove(&fp) {
                self.close(fp, s);
            }
        }
    }

    /// Close every window older than `dedup_window`; summaries for those with repeats.
    pub fn due(&mut self, now: Instant) -> Vec<Summary> {
        let expired: Vec<String> = self
            .states
            .iter()
            .filter(|(_, s)| now.duration_since(s.opened) >= self.window)
            .map(|(k, _)| k.clone())
            .collect();
        for fp in expired {
            if let Some(s) = self.states.remove(&fp) {
                self.close(fp, s);
            }
        }
        std::mem::take(&mut self.ready)
    }

    /// Close everything (shutdown).
    pub fn drain(&mut self) -> Vec<Summary> {
        let all: Vec<(String, State)> = self.states.drain().collect();
        for (fp, s) in all {
            self.close(fp, s);
        }
        std::mem::take(&mut self.ready)
    }

    pub fn open_windows(&self) -> usize {
        self.states.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_variable_parts() {
        let a = normalise("2026-11-25T06:00:01.123Z FATAL order 12345 failed: id=7f3a9c0d1e2f req_8fK2 uuid 123e4567-e89b-12d3-a456-426614174000 at 0xdeadBEEF");
        let b = normalise("2026-11-26T07:10:11Z FATAL order 99 failed: id=00aa11bb22cc req_x9 uuid 00000000-0000-0000-0000-000000000000 at 0x1");
        assert_eq!(a, b);
        assert_ne!(normalise("disk full on /var"), normalise("connection refused"));
        assert_eq!(normalise("deadbeefcafe and x"), "# and x");
    }
}
