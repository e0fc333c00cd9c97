//! The [`ChunkWriter`]: plans each chunk once (de-duplication, rate-limit digest), then sends the plan's
//! messages in order. A chunk that fails half-way keeps its plan, so the engine's retry sends only what is
//! still missing and never counts a repeat twice.
use crate::blocks::{self, Alert};
use crate::client::{SendError, SlackClient, MAX_RETRY_AFTER};
use crate::config::SlackConfig;
use crate::dedup::{fingerprint, Deduper, Summary, Verdict};
use crate::ratelimit::RateLimiter;
use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::Value as Json;
use sluice_core::buffer::{Chunk, ChunkWriter, WriteError};
use sluice_core::metrics::Counter;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

/// The counters of `@type slack`.
#[derive(Debug, Default)]
pub struct SlackMetrics {
    /// Messages Slack accepted (alerts, summaries, digests).
    pub sent: Counter,
    /// Alerts not sent because one with the same fingerprint was sent within `dedup_window`.
    pub suppressed: Counter,
    /// Alerts folded into a digest message by the rate limit.
    pub digested: Counter,
    /// Send attempts that failed (any reason; retried ones included).
    pub failed: Counter,
    /// Summaries (`×N more`) among `sent`.
    pub summaries: Counter,
    /// Messages given up on (Slack refused them for good, or summaries that could not be delivered).
    pub dropped: Counter,
}

impl SlackMetrics {
    /// The counters as `sluice_slack_*` metrics (the engine adds `plugin_id` and `type`).
    pub fn report(&self, sink: &mut dyn sluice_core::metrics::MetricSink) {
        let c = |sink: &mut dyn sluice_core::metrics::MetricSink, name: &str, help: &str, v: &Counter| {
            sink.counter(name, help, &[], v.get())
        };
        c(
            sink,
            "sluice_slack_messages_sent_total",
            "Messages Slack accepted (alerts, summaries, digests).",
            &self.sent,
        );
        c(
            sink,
            "sluice_slack_alerts_suppressed_total",
            "Alerts not sent because the same one was sent within dedup_window.",
            &self.suppressed,
        );
        c(sink, "sluice_slack_alerts_digested_total", "Alerts folded into a digest by the rate limit.", &self.digested);
        c(sink, "sluice_slack_send_failures_total", "Send attempts that failed (retried ones included).", &self.failed);
        c(sink, "sluice_slack_summaries_sent_total", "Summary messages sent.", &self.summaries);
        sink.counter(
            "sluice_records_dropped_total",
            "Records dropped, by component and reason.",
            &[("reason", "slack_refused")],
            self.dropped.get(),
        );
    }
}

/// One message of a chunk's plan.
struct Planned {
    channel_key: String,
    body: Json,
    /// Entry positions in the chunk this message stands for (rejected together if Slack refuses it).
    entries: Vec<usize>,
}

struct Plan {
    messages: Vec<Planned>,
    next: usize,
    rejected: Vec<(usize, String)>,
    created: Instant,
}

pub(crate) struct Inner {
    pub(crate) cfg: SlackConfig,
    client: SlackClient,
    limiter: RateLimiter,
    dedup: Mutex<Deduper>,
    plans: Mutex<HashMap<[u8; 16], Plan>>,
    pending_summaries: Mutex<Vec<(Summary, u32)>>,
    pub(crate) metrics: Arc<SlackMetrics>,
    ticker_started: AtomicBool,
    stop: tokio::sync::Notify,
    stopped: AtomicBool,
}

/// `@type slack`'s destination.
pub struct SlackWriter {
    inner: Arc<Inner>,
}

/// Plans older than this belong to chunks the engine gave up on.
const PLAN_TTL: Duration = Duration::from_secs(6 * 3600);
const SUMMARY_ATTEMPTS: u32 = 5;

enum Outcome {
    Sent,
    Refused(String),
    Later(WriteError),
}

impl SlackWriter {
    pub fn new(cfg: SlackConfig) -> Result<Self, crate::client::ClientError> {
        let client = SlackClient::new(&cfg)?;
        let limiter = RateLimiter::new(cfg.rate_limit_per_minute, cfg.min_interval);
        let dedup = Mutex::new(Deduper::new(cfg.dedup_window));
        Ok(SlackWriter {
            inner: Arc::new(Inner {
                cfg,
                client,
                limiter,
                dedup,
                plans: Mutex::new(HashMap::new()),
                pending_summaries: Mutex::new(Vec::new()),
                metrics: Arc::new(SlackMetrics::default()),
                ticker_started: AtomicBool::new(false),
                stop: tokio::sync::Notify::new(),
                stopped: AtomicBool::new(false),
            }),
        })
    }

    pub fn metrics(&self) -> Arc<SlackMetrics> {
        self.inner.metrics.clone()
    }

    /// Start the task that sends summaries when windows close (once, from inside the runtime).
    fn ensure_ticker(&self) {
        if self.inner.cfg.dedup_window.is_zero() || self.inner.ticker_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let inner = self.inner.clone();
        let tick = (self.inner.cfg.dedup_window / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        tokio::spawn(
            async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(tick) => {}
                        _ = inner.stop.notified() => return,
                    }
                    if inner.stopped.load(Ordering::SeqCst) {
                        return;
                    }
                    let due = inner.dedup.lock().due(Instant::now());
                    inner.send_summaries(due).await;
                }
            }
            .in_current_span(),
        );
    }
}

impl Inner {
    fn channel_key(&self, ch: Option<&str>) -> String {
        ch.map(str::to_string).unwrap_or_else(|| self.cfg.default_channel_key())
    }

    /// Decide what a chunk becomes: alerts that pass de-duplication, and per channel at most what the
    /// rate limit allows now, the rest folded into one digest.
    fn plan(&self, chunk: &Chunk) -> Plan {
        let now = Instant::now();
        // (channel key, alert, entry index, fingerprint), in chunk order.
        let mut to_send: Vec<(String, Alert, usize, String)> = Vec::new();
        let mut corrupt = 0usize;
        {
            let mut dedup = self.dedup.lock();
            for (i, ev) in chunk.events().enumerate() {
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(_) => {
                        corrupt += 1;
                        break;
                    }
                };
                let alert = Alert::from_record(&self.cfg, ev.tag.as_str(), ev.time, &ev.record);
                let fp = fingerprint(&self.cfg.fingerprint_keys, &alert, &ev.record);
                match dedup.observe(&fp, &alert, now) {
                    Verdict::Send => to_send.push((self.channel_key(alert.channel.as_deref()), alert, i, fp)),
                    Verdict::Suppress => self.metrics.suppressed.inc(),
                }
            }
        }
        if corrupt > 0 {
            self.metrics.dropped.inc();
            tracing::error!(chunk = %chunk.id_hex(), "slack: chunk has a corrupt entry; entries after it are skipped");
        }
        // Group by channel, keeping order.
        let mut order: Vec<String> = Vec::new();
        let mut by_channel: HashMap<String, Vec<(Alert, usize, String)>> = HashMap::new();
        for (ch, a, i, fp) in to_send {
            if !by_channel.contains_key(&ch) {
                order.push(ch.clone());
            }
            by_channel.entry(ch).or_default().push((a, i, fp));
        }
        let mut messages = Vec::new();
        for ch in order {
            let Some(alerts) = by_channel.remove(&ch) else {
                continue;
            };
            let allowed = self.limiter.available(&ch).max(1) as usize;
            let (direct, rest) = if alerts.len() <= allowed {
                (alerts, Vec::new())
            } else {
                let mut a = alerts;
                let rest = a.split_off(allowed - 1);
                (a, rest)
            };
            for (a, i, _) in direct {
                let body = blocks::finish(&self.cfg, blocks::alert_payload(&self.cfg, &a));
                messages.push(Planned { channel_key: ch.clone(), body, entries: vec![i] });
            }
            if !rest.is_empty() {
                self.metrics.digested.add(rest.len() as u64);
                tracing::warn!(channel = %ch, alerts = rest.len(), "slack: rate limit reached; sending one digest instead");
                let channel = rest.first().and_then(|(a, _, _)| a.channel.clone());
                let mut groups: Vec<(Alert, u64)> = Vec::new();
                let mut index: HashMap<String, usize> = HashMap::new();
                let mut entries = Vec::new();
                for (a, i, fp) in rest {
                    entries.push(i);
                    match index.get(&fp) {
                        Some(&g) => groups[g].1 += 1,
                        None => {
                            index.insert(fp, groups.len());
                            groups.push((a, 1));
                        }
                    }
                }
                let body = blocks::finish(&self.cfg, blocks::digest_payload(&self.cfg, channel, &groups));
                messages.push(Planned { channel_key: ch.clone(), body, entries });
            }
        }
        Plan { messages, next: 0, rejected: Vec::new(), created: now }
    }

    /// Send one message, waiting out 429s up to `max_429_waits` times.
    async fn send_one(&self, channel_key: &str, body: &Json) -> Outcome {
        let mut waits = 0u32;
        loop {
            self.limiter.acquire(channel_key).await;
            match self.client.post(body).await {
                Ok(()) => {
                    self.metrics.sent.inc();
                    return Outcome::Sent;
                }
                Err(SendError::RateLimited { after }) => {
                    self.metrics.failed.inc();
                    self.limiter.pause(channel_key, after);
                    waits += 1;
                    tracing::warn!(channel = %channel_key, retry_after_ms = after.as_millis() as u64, "slack: 429 rate limited");
                    if waits > self.cfg.max_429_waits || after > MAX_RETRY_AFTER {
                        return Outcome::Later(WriteError::Retryable {
                            message: format!("slack rate limited (Retry-After {}s)", after.as_secs_f64()),
                            after: Some(after),
                        });
                    }
                }
                Err(SendError::Retryable(m)) => {
                    self.metrics.failed.inc();
                    return Outcome::Later(WriteError::retryable(format!("slack: {m}")));
                }
                Err(SendError::Fatal(m)) => {
                    self.metrics.failed.inc();
                    return Outcome::Refused(m);
                }
            }
        }
    }

    async fn send_summaries(&self, fresh: Vec<Summary>) {
        let mut queue: Vec<(Summary, u32)> = std::mem::take(&mut *self.pending_summaries.lock());
        queue.extend(fresh.into_iter().map(|s| (s, 0)));
        let mut keep = Vec::new();
        for (s, attempts) in queue {
            let ch = self.channel_key(s.alert.channel.as_deref());
            let body = blocks::finish(
                &self.cfg,
                blocks::summary_payload(&self.cfg, &s.alert, s.more, s.window, &s.fingerprint),
            );
            match self.send_one(&ch, &body).await {
                Outcome::Sent => self.metrics.summaries.inc(),
                Outcome::Refused(m) => {
                    self.metrics.dropped.inc();
                    tracing::error!(channel = %ch, error = %m, "slack: summary refused by Slack; dropped");
                }
                Outcome::Later(e) => {
                    if attempts + 1 >= SUMMARY_ATTEMPTS {
                        self.metrics.dropped.inc();
                        tracing::error!(channel = %ch, error = %e, "slack: summary not delivered after retries; dropped");
                    } else {
                        tracing::warn!(channel = %ch, error = %e, "slack: summary not delivered; will retry");
                        keep.push((s, attempts + 1));
                    }
                }
            }
        }
        self.pending_summaries.lock().extend(keep);
    }
}

#[async_trait]
impl ChunkWriter for SlackWriter {
    fn report(&self, sink: &mut dyn sluice_core::metrics::MetricSink) {
        self.inner.metrics.report(sink);
    }

    async fn write(&self, chunk: &Chunk) -> Result<(), WriteError> {
        self.ensure_ticker();
        let inner = &self.inner;
        let existing = {
            let mut plans = inner.plans.lock();
            plans.retain(|_, p| p.created.elapsed() < PLAN_TTL);
            plans.remove(&chunk.id)
        };
        let mut plan = existing.unwrap_or_else(|| inner.plan(chunk));
        while plan.next < plan.messages.len() {
            let msg = &plan.messages[plan.next];
            match inner.send_one(&msg.channel_key, &msg.body).await {
                Outcome::Sent => plan.next += 1,
                Outcome::Refused(m) => {
                    tracing::error!(chunk = %chunk.id_hex(), channel = %msg.channel_key, error = %m, "slack: message refused");
                    for &i in &msg.entries {
                        plan.rejected.push((i, m.clone()));
                    }
                    plan.next += 1;
                }
                Outcome::Later(e) => {
                    tracing::warn!(
                        chunk = %chunk.id_hex(),
                        sent = plan.next,
                        remaining = plan.messages.len() - plan.next,
                        error = %e,
                        "slack: write failed; the rest of the chunk will be retried"
                    );
                    inner.plans.lock().insert(chunk.id, plan);
                    return Err(e);
                }
            }
        }
        if plan.rejected.is_empty() {
            Ok(())
        } else {
            let n = plan.rejected.len();
            Err(WriteError::Partial {
                message: format!("slack refused messages for {n} records"),
                retry: Vec::new(),
                rejected: plan.rejected,
            })
        }
    }

    async fn close(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.stop.notify_waiters();
        let rest = self.inner.dedup.lock().drain();
        if !rest.is_empty() || !self.inner.pending_summaries.lock().is_empty() {
            let limit = Duration::from_secs(10);
            if tokio::time::timeout(limit, self.inner.send_summaries(rest)).await.is_err() {
                tracing::warn!("slack: summaries not all sent at shutdown");
            }
        }
        let m = &self.inner.metrics;
        tracing::info!(
            sent = m.sent.get(),
            suppressed = m.suppressed.get(),
            digested = m.digested.get(),
            failed = m.failed.get(),
            summaries = m.summaries.get(),
            dropped = m.dropped.get(),
            "slack: output closed"
        );
    }
}
