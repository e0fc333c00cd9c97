//! The `ChunkWriter`: map a chunk's events to LogEntries, batch them within the API's limits and send
//! them to `entries:write`, turning the answers into what the buffer engine should do next.
use crate::auth::{Metadata, TokenSource};
use crate::entry::{build_entry, request_body, EntryOptions};
use crate::resource::{Platform, Resource};
use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::Value as J;
use sluice_core::buffer::{Chunk, ChunkWriter, WriteError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::OnceCell;

/// Request limits (Cloud Logging quotas: 10 MB per request, about 256 KB per entry).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_request_bytes: usize,
    pub max_entries_per_request: usize,
    pub max_entry_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_request_bytes: 9_500_000, max_entries_per_request: 1000, max_entry_bytes: 256 * 1024 }
    }
}

/// What is configured about the platform; the metadata server fills the gaps when allowed.
#[derive(Debug, Clone, Default)]
pub struct PlatformConfig {
    pub project_id: Option<String>,
    pub zone: Option<String>,
    pub vm_id: Option<String>,
    pub vm_name: Option<String>,
    pub cluster_name: Option<String>,
    pub cluster_location: Option<String>,
    pub use_metadata_service: bool,
}

pub struct WriterConfig {
    pub entry: EntryOptions,
    pub platform: PlatformConfig,
    pub partial_success: bool,
    pub split_logs_by_tag: bool,
    pub logging_api_url: String,
    pub limits: Limits,
}

pub struct GoogleCloudWriter {
    cfg: WriterConfig,
    http: reqwest::Client,
    tokens: TokenSource,
    metadata: Metadata,
    platform: OnceCell<Platform>,
    dropped: Mutex<BTreeMap<String, u64>>,
    stats: WriteStats,
}

/// What Cloud Logging answered, for `sluice_gcp_*` metrics.
#[derive(Default)]
struct WriteStats {
    requests: AtomicU64,
    entries_delivered: AtomicU64,
    /// Requests answered with `WriteLogEntriesPartialErrors` (some entries written, some rejected).
    partial_requests: AtomicU64,
    /// Entries the API rejected (partial errors or a whole request refused): to `<secondary>`/`@ERROR`.
    entries_rejected: AtomicU64,
}

/// How one request went.
enum Sent {
    Ok,
    /// Try again later (429, 5xx, network, auth).
    Retry {
        message: String,
        after: Option<Duration>,
    },
    /// The whole request was refused for good.
    RejectAll(String),
    /// Per-entry errors: (index in the request, reason); the rest were written.
    Partial(Vec<(usize, String)>),
}

const PARTIAL_ERRORS_TYPE: &str = "type.googleapis.com/google.logging.v2.WriteLogEntriesPartialErrors";

fn short(s: &str, n: usize) -> String {
    s.chars().take(n).filter(|c| *c != '\n').collect()
}

/// The `error` object of a Google API error body: (status word, message, partial errors).
fn parse_error_body(body: &str) -> (String, String, Option<Vec<(usize, String)>>) {
    let v: J = serde_json::from_str(body).unwrap_or(J::Null);
    let err = &v["error"];
    let status = err["status"].as_str().unwrap_or("").to_string();
    let message = short(err["message"].as_str().unwrap_or(body), 300);
    let mut partial = None;
    if let Some(details) = err["details"].as_array() {
        for d in details {
            if d["@type"].as_str() == Some(PARTIAL_ERRORS_TYPE) {
                let mut list = Vec::new();
                if let Some(m) = d["logEntryErrors"].as_object() {
                    for (k, e) in m {
                        if let Ok(i) = k.parse::<usize>() {
                            let code = e["code"].as_i64().unwrap_or(0);
                            let msg = short(e["message"].as_str().unwrap_or(""), 200);
                            list.push((i, format!("code {code}: {msg}")));
                        }
                    }
                }
                list.sort_by_key(|(i, _)| *i);
                partial = Some(list);
            }
        }
    }
    (status, message, partial)
}

/// A `Retry-After` longer than a day is taken as a day: the header comes from outside, and a huge value must
/// not overflow a Duration.
const MAX_RETRY_AFTER_SECS: f64 = 86_400.0;

fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(MAX_RETRY_AFTER_SECS)))
}

fn zone_of(s: &str) -> String {
    s.trim().rsplit('/').next().unwrap_or("").to_string()
}

impl GoogleCloudWriter {
    pub fn new(cfg: WriterConfig, http: reqwest::Client, tokens: TokenSource, metadata: Metadata) -> Self {
        Self {
            cfg,
            http,
            tokens,
            metadata,
            platform: OnceCell::new(),
            dropped: Mutex::new(BTreeMap::new()),
            stats: WriteStats::default(),
        }
    }

    /// Entries dropped so far, by reason.
    pub fn dropped_counts(&self) -> BTreeMap<String, u64> {
        self.dropped.lock().clone()
    }

    fn count_dropped(&self, reason: &str, n: u64) {
        *self.dropped.lock().entry(reason.to_string()).or_insert(0) += n;
    }

    /// The platform: configured values, then the credentials' project, then the metadata server.
    pub async fn platform(&self) -> Result<&Platform, WriteError> {
        self.platform.get_or_try_init(|| self.resolve_platform()).await
    }

    async fn resolve_platform(&self) -> Result<Platform, WriteError> {
        let c = &self.cfg.platform;
        let mut p = Platform {
            project_id: c
                .project_id
                .clone()
                .or_else(|| self.tokens.credentials().project_id().map(str::to_string))
                .unwrap_or_default(),
            zone: c.zone.clone(),
            vm_id: c.vm_id.clone(),
            vm_name: c.vm_name.clone(),
            cluster_name: c.cluster_name.clone(),
            cluster_location: c.cluster_location.clone(),
        };
        if c.use_metadata_service {
            let md = &self.metadata;
            // The first answer tells whether a metadata server is there at all.
            match md.get("project/project-id").await {
                Ok(id) => {
                    if p.project_id.is_empty() {
                        p.project_id = id.trim().to_string();
                    }
                    let fill = |slot: &mut Option<String>, v: Result<String, _>, f: fn(&str) -> String| {
                        if slot.is_none() {
                            if let Ok(v) = v {
                                let v = f(&v);
                                if !v.is_empty() {
                                    *slot = Some(v);
                                }
                            }
                        }
                    };
                    let trim = |s: &str| s.trim().to_string();
                    fill(&mut p.zone, md.get("instance/zone").await, zone_of);
                    fill(&mut p.vm_id, md.get("instance/id").await, trim);
                    fill(&mut p.vm_name, md.get("instance/name").await, trim);
                    fill(&mut p.cluster_name, md.get("instance/attributes/cluster-name").await, trim);
                    fill(&mut p.cluster_location, md.get("instance/attributes/cluster-location").await, trim);
                }
                Err(e) => {
                    tracing::info!(error = %e, "no GCE metadata server; using configured values only");
                }
            }
        }
        if p.project_id.is_empty() {
            return Err(WriteError::retryable(
                "google_cloud: no project_id (set project_id, use a key file that has one, or run on GCE)",
            ));
        }
        Ok(p)
    }

    async fn send(&self, body: Vec<u8>) -> Sent {
        let token = match self.tokens.token().await {
            Ok(t) => t,
            Err(e) => return Sent::Retry { message: format!("authentication failed: {e}"), after: None },
        };
        let url = format!("{}/v2/entries:write", self.cfg.logging_api_url.trim_end_matches('/'));
        let resp = self
            .http
            .post(&url)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return Sent::Retry { message: format!("entries:write request failed: {e}"), after: None },
        };
        let status = resp.status().as_u16();
        let after = retry_after(resp.headers());
        let text = resp.text().await.unwrap_or_default();
        if (200..300).contains(&status) {
            return Sent::Ok;
        }
        let (word, message, partial) = parse_error_body(&text);
        let what = format!("entries:write HTTP {status} {word}: {message}");
        match status {
            401 => {
                self.tokens.invalidate().await;
                Sent::Retry { message: what, after }
            }
            400 | 403 => match partial {
                // Without partialSuccess the API writes nothing when one entry is bad.
                Some(list) if !list.is_empty() && self.cfg.partial_success => Sent::Partial(list),
                _ => Sent::RejectAll(what),
            },
            408 | 429 => Sent::Retry { message: what, after },
            s if s >= 500 => Sent::Retry { message: what, after },
            _ => Sent::RejectAll(what),
        }
    }
}

/// One request's worth of entries: chunk indexes and the entries serialized, joined with commas.
struct Batch {
    idx: Vec<usize>,
    entries: Vec<u8>,
    bytes: usize,
    split: Option<(String, Resource)>,
}

#[async_trait]
impl ChunkWriter for GoogleCloudWriter {
    fn report(&self, sink: &mut dyn sluice_core::metrics::MetricSink) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let st = &self.stats;
        sink.counter("sluice_gcp_requests_total", "entries:write requests sent.", &[], get(&st.requests));
        sink.counter(
            "sluice_gcp_entries_delivered_total",
            "Entries Cloud Logging accepted.",
            &[],
            get(&st.entries_delivered),
        );
        sink.counter(
            "sluice_gcp_partial_failures_total",
            "Requests Cloud Logging answered with partial errors (some entries rejected, the others written).",
            &[],
            get(&st.partial_requests),
        );
        let rejected = get(&st.entries_rejected);
        sink.counter(
            "sluice_gcp_entries_rejected_total",
            "Entries Cloud Logging rejected (handed to <secondary>/@ERROR).",
            &[],
            rejected,
        );
        let all: u64 = self.dropped.lock().values().sum();
        sink.counter(
            "sluice_gcp_entries_refused_total",
            "Entries sluice could not send (too large, unbuildable; handed to <secondary>/@ERROR).",
            &[],
            all.saturating_sub(rejected),
        );
    }

    async fn write(&self, chunk: &Chunk) -> Result<(), WriteError> {
        let platform = self.platform().await?;
        let now = chrono::Utc::now();
        let limits = &self.cfg.limits;
        let mut rejected: Vec<(usize, String)> = Vec::new();
        // Groups keyed by log name when split_logs_by_tag, one group otherwise; insertion order kept.
        let mut groups: Vec<(String, Vec<Batch>)> = Vec::new();
        let mut total = 0usize;
        let mut scratch = Vec::with_capacity(1024);

        for (i, ev) in chunk.events().enumerate() {
            total = i + 1;
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    let reason = format!("corrupt chunk entry: {e}");
                    let end = chunk.records.max(i + 1);
                    self.count_dropped(&reason, (end - i) as u64);
                    rejected.extend((i..end).map(|j| (j, reason.clone())));
                    total = chunk.records.max(i + 1);
                    break;
                }
            };
            let built = match build_entry(&self.cfg.entry, platform, &ev.tag, ev.time, ev.record, now) {
                Ok(b) => b,
                Err(reason) => {
                    self.count_dropped(&reason, 1);
                    rejected.push((i, reason));
                    continue;
                }
            };
            // Each entry is serialized once, into the request it goes in.
            scratch.clear();
            let size = match built.write_json(&mut scratch) {
                Ok(()) => scratch.len(),
                Err(_) => usize::MAX,
            };
            if size > limits.max_entry_bytes {
                let reason = format!("entry larger than the {}-byte limit", limits.max_entry_bytes);
                self.count_dropped(&reason, 1);
                rejected.push((i, reason));
                continue;
            }
            let key = if self.cfg.split_logs_by_tag { built.log_name.clone() } else { String::new() };
            let gi = match groups.iter().position(|(k, _)| *k == key) {
                Some(gi) => gi,
                None => {
                    groups.push((key, Vec::new()));
                    groups.len() - 1
                }
            };
            let batches = &mut groups[gi].1;
            let full = batches.last().is_none_or(|b| {
                b.idx.len() >= limits.max_entries_per_request || b.bytes + size + 1 > limits.max_request_bytes
            });
            if full {
                let split = self.cfg.split_logs_by_tag.then(|| (built.log_name.clone(), built.resource.clone()));
                batches.push(Batch { idx: Vec::new(), entries: Vec::new(), bytes: 256, split });
            }
            if let Some(b) = batches.last_mut() {
                if !b.idx.is_empty() {
                    b.entries.push(b',');
                }
                b.idx.push(i);
                b.entries.extend_from_slice(&scratch);
                b.bytes += size + 1;
            }
        }

        let mut retry: Vec<usize> = Vec::new();
        let mut retry_msg: Option<(String, Option<Duration>)> = None;
        let mut whole_rejects: Option<String> = None;
        let mut entry_rejects = 0usize;
        let mut delivered = 0usize;
        let tag = chunk.metadata.tag.as_deref().unwrap_or("");
        for batch in groups.into_iter().flat_map(|(_, b)| b) {
            if retry_msg.is_some() {
                retry.extend(batch.idx);
                continue;
            }
            let n = batch.idx.len();
            let split = batch.split.as_ref().map(|(l, r)| (l.as_str(), r));
            let body = request_body(&batch.entries, self.cfg.partial_success, split);
            drop(batch.entries);
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            match self.send(body).await {
                Sent::Ok => {
                    delivered += n;
                    self.stats.entries_delivered.fetch_add(n as u64, Ordering::Relaxed);
                }
                Sent::Retry { message, after } => {
                    tracing::warn!(tag, entries = n, error = %message, "google_cloud: write failed, will retry");
                    retry.extend(batch.idx);
                    retry_msg = Some((message, after));
                }
                Sent::RejectAll(message) => {
                    tracing::warn!(tag, entries = n, error = %message, "google_cloud: request rejected");
                    self.count_dropped(&message, n as u64);
                    self.stats.entries_rejected.fetch_add(n as u64, Ordering::Relaxed);
                    rejected.extend(batch.idx.iter().map(|i| (*i, message.clone())));
                    whole_rejects = Some(message);
                }
                Sent::Partial(errors) => {
                    let mut bad = 0usize;
                    for (ri, reason) in errors {
                        if let Some(ci) = batch.idx.get(ri) {
                            self.count_dropped(&reason, 1);
                            tracing::warn!(tag, entry = ri, error = %reason, "google_cloud: entry rejected");
                            rejected.push((*ci, reason));
                            bad += 1;
                        }
                    }
                    entry_rejects += bad;
                    delivered += n - bad;
                    self.stats.partial_requests.fetch_add(1, Ordering::Relaxed);
                    self.stats.entries_rejected.fetch_add(bad as u64, Ordering::Relaxed);
                    self.stats.entries_delivered.fetch_add((n - bad) as u64, Ordering::Relaxed);
                }
            }
        }

        if retry.is_empty() && rejected.is_empty() {
            return Ok(());
        }
        if rejected.is_empty() && delivered == 0 {
            let (message, after) = retry_msg.unwrap_or_default();
            return Err(WriteError::Retryable { message, after });
        }
        if retry.is_empty() && delivered == 0 && entry_rejects == 0 && rejected.len() == total {
            if let Some(message) = whole_rejects {
                if rejected.iter().all(|(_, r)| *r == message) {
                    return Err(WriteError::Unrecoverable { message });
                }
            }
        }
        rejected.sort_by_key(|(i, _)| *i);
        retry.sort_unstable();
        let message = match &retry_msg {
            Some((m, _)) => format!("{} entries to retry ({m}), {} rejected", retry.len(), rejected.len()),
            None => format!("{} of {total} entries rejected", rejected.len()),
        };
        Err(WriteError::Partial { message, retry, rejected })
    }
}

#[cfg(test)]
mod retry_after_tests {
    use super::*;

    #[test]
    fn a_huge_retry_after_is_capped_instead_of_panicking() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "1e30".parse().expect("header value"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(86_400)));
        h.insert(reqwest::header::RETRY_AFTER, "2.5".parse().expect("header value"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs_f64(2.5)));
        h.insert(reqwest::header::RETRY_AFTER, "-1".parse().expect("header value"));
        assert_eq!(retry_after(&h), None);
    }
}
