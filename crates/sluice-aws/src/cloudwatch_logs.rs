//! `@type cloudwatch_logs` (fluent-plugin-cloudwatch-logs): PutLogEvents to Amazon CloudWatch Logs.
//!
//! A chunk's events are grouped by (log group, log stream), sorted by time and sent in batches within the
//! API's limits: 1,048,576 bytes (each event's message plus 26 bytes), `max_events_per_batch` events and
//! less than 24 hours between the first and last event. What the plugin drops with a warning (events over
//! 256 KiB, empty messages, groups or streams that do not exist, events CloudWatch rejects as too old, too
//! new or expired) goes to `<secondary>`/`@ERROR` here, counted and logged without its content.
use crate::client::{describe_sdk_error, AwsParams, ErrorClass};
use crate::stats::WriterStats;
use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use aws_sdk_cloudwatchlogs::types::{InputLogEvent, RejectedLogEventsInfo};
use sluice_core::buffer::{placeholders, BufferedPlugin, Chunk, ChunkWriter, WriteError};
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{write_json_map, EventTime, Map, Value};
use sluice_core::inject::{Inject, InjectDefaults};
use sluice_core::plugin::BuildCtx;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;
use tracing::Instrument;

/// PutLogEvents limits.
pub const MAX_BATCH_BYTES: usize = 1_048_576;
pub const MAX_EVENT_BYTES: usize = 256 * 1024;
pub const EVENT_OVERHEAD: usize = 26;
pub const MAX_EVENTS: usize = 10_000;
const DAY_MS: i64 = 24 * 3600 * 1000;
/// The values PutRetentionPolicy accepts.
const RETENTION_DAYS: &[i64] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];
/// The longest a write sleeps on ThrottlingException before handing the rest back to the buffer's retry,
/// well inside the engine's `delayed_commit_timeout` (60 s by default).
const THROTTLE_BUDGET: Duration = Duration::from_secs(20);

/// Where the log group (or stream) name of an event comes from.
#[derive(Debug, Clone)]
enum NameFrom {
    /// `log_group_name`: a fixed name, with the buffer's placeholders (`${tag}`, `%Y`...).
    Fixed(String),
    /// `use_tag_as_group true`.
    Tag,
    /// `log_group_name_key`, with `remove_log_group_name_key`.
    Key { key: String, remove: bool },
}

impl NameFrom {
    /// `what` is `group` or `stream`.
    fn from_conf(conf: &Element, what: &str) -> Result<Self, ConfigError> {
        let (name, tag, key) =
            (format!("log_{what}_name"), format!("use_tag_as_{what}"), format!("log_{what}_name_key"));
        // As the plugin: exactly one of the three may be written (even `use_tag_as_group false` counts).
        if [&name, &tag, &key].iter().filter(|k| conf.has(k)).count() != 1 {
            return Err(conf.error(format!("Set only one of {name}, {tag} and {key}")));
        }
        let remove = conf.bool_or(&format!("remove_log_{what}_name_key"), false)?;
        if conf.has(&tag) {
            return if conf.bool_or(&tag, false)? {
                Ok(NameFrom::Tag)
            } else {
                Err(conf
                    .error_at(&tag, format!("'{tag} false' leaves no log {what} name"))
                    .with_hint(format!("set {name} or {key} instead, or {tag} true")))
            };
        }
        if let Some(k) = conf.opt_str(&key) {
            if k.is_empty() {
                return Err(conf.error_at(&key, format!("'{key}' must not be empty")));
            }
            return Ok(NameFrom::Key { key: k, remove });
        }
        let n = conf.required_str(&name)?;
        if n.is_empty() {
            return Err(conf.error_at(&name, format!("'{name}' must not be empty")));
        }
        Ok(NameFrom::Fixed(n))
    }

    /// The name for one event; None when its record has no usable value.
    fn resolve(&self, fixed: &str, tag: &str, record: &mut Map) -> Option<String> {
        let v = match self {
            NameFrom::Fixed(_) => return Some(fixed.to_string()),
            NameFrom::Tag => return Some(tag.to_string()),
            NameFrom::Key { key, remove: true } => record.remove(key)?,
            NameFrom::Key { key, remove: false } => record.get(key)?.clone(),
        };
        let s = v.to_display_string();
        (!s.is_empty()).then_some(s)
    }
}

/// A record key whose value configures a log group created by the output (`retention_in_days_key`,
/// `log_group_aws_tags_key`), with its `remove_*` flag.
#[derive(Debug, Clone)]
struct KeyParam {
    key: String,
    remove: bool,
}

impl KeyParam {
    fn from_conf(conf: &Element, key: &str, remove: &str) -> Result<Option<Self>, ConfigError> {
        match conf.opt_str(key).filter(|k| !k.is_empty()) {
            Some(key) => Ok(Some(KeyParam { key, remove: conf.bool_or(remove, false)? })),
            None => Ok(None),
        }
    }

    fn take(&self, record: &mut Map) -> Option<Value> {
        if self.remove {
            record.remove(&self.key)
        } else {
            record.get(&self.key).cloned()
        }
    }
}

/// What every stream job needs, shared with the tasks that send them.
struct Settings {
    auto_create_stream: bool,
    retention_in_days: Option<i32>,
    aws_tags: Option<HashMap<String, String>>,
    log_rejected_request: bool,
    max_events_per_batch: usize,
    throttle_wait: Duration,
    throttle_limit: Option<u32>,
    stats: Arc<WriterStats>,
    rejected: Arc<RejectStats>,
}

/// Events CloudWatch accepted the request for but did not store (`rejectedLogEventsInfo`).
#[derive(Debug, Default)]
pub struct RejectStats {
    pub too_old: AtomicU64,
    pub too_new: AtomicU64,
    pub expired: AtomicU64,
}

impl RejectStats {
    pub fn total(&self) -> u64 {
        self.too_old.load(Ordering::Relaxed)
            + self.too_new.load(Ordering::Relaxed)
            + self.expired.load(Ordering::Relaxed)
    }
}

pub struct CloudwatchLogsWriter {
    params: AwsParams,
    client: OnceCell<aws_sdk_cloudwatchlogs::Client>,
    group: NameFrom,
    stream: NameFrom,
    message_keys: Vec<String>,
    max_message_length: Option<usize>,
    retention_key: Option<KeyParam>,
    tags_key: Option<KeyParam>,
    inject: Option<Inject>,
    concurrency: usize,
    settings: Arc<Settings>,
    pub stats: Arc<WriterStats>,
    pub rejected: Arc<RejectStats>,
}

/// Read the plugin's parameters (everything but `<buffer>`).
pub fn writer(conf: &Element, ctx: &BuildCtx) -> Result<Arc<CloudwatchLogsWriter>, ConfigError> {
    CloudwatchLogsWriter::from_conf(conf, ctx).map(Arc::new)
}

impl BufferedPlugin for CloudwatchLogsWriter {
    // fluent-plugin-cloudwatch-logs keeps Fluentd's buffer defaults (memory, chunk_limit_size 8m, flush 60s).
    fn from_conf(conf: &Element, ctx: &BuildCtx) -> Result<Self, ConfigError> {
        let mut params = AwsParams::from_conf(conf, "region", "endpoint")?;
        if conf.bool_or("aws_use_sts", false)? {
            if params.assume_role.is_some() {
                return Err(
                    conf.error_at("aws_use_sts", "set either aws_use_sts or <assume_role_credentials>, not both")
                );
            }
            params.assume_role = Some(crate::client::AssumeRole {
                role_arn: conf.required_str("aws_sts_role_arn")?,
                role_session_name: conf.str_or("aws_sts_session_name", "fluentd"),
                external_id: None,
                duration_seconds: None,
                sts_endpoint_url: None,
            });
        }
        // Accepted for compatibility: the SDK's instance metadata provider has its own retries.
        let _ = conf.get("aws_instance_profile_credentials_retries");
        if conf.opt_str("http_proxy").is_some_and(|p| !p.is_empty()) {
            return Err(conf
                .error_at("http_proxy", "'http_proxy' is not supported by sluice's cloudwatch_logs output")
                .with_hint("remove it; sluice connects to the CloudWatch Logs endpoint directly"));
        }
        let group = NameFrom::from_conf(conf, "group")?;
        let stream = NameFrom::from_conf(conf, "stream")?;
        let auto_create_stream = conf.bool_or("auto_create_stream", false)?;
        let message_keys: Vec<String> =
            conf.array_or_empty("message_keys")?.into_iter().filter(|k| !k.is_empty()).collect();
        let max_message_length = match conf.opt_int("max_message_length")? {
            None => None,
            Some(n) if n > 0 => usize::try_from(n).ok(),
            Some(_) => return Err(conf.error_at("max_message_length", "'max_message_length' must be positive")),
        };
        let max_events = conf.int_or("max_events_per_batch", MAX_EVENTS as i64)?;
        if !(1..=MAX_EVENTS as i64).contains(&max_events) {
            return Err(conf.error_at(
                "max_events_per_batch",
                "'max_events_per_batch' must be between 1 and 10000 (the PutLogEvents limit)",
            ));
        }
        if conf.has("retention_in_days") && conf.has("retention_in_days_key") {
            return Err(conf.error("Set only one of retention_in_days, retention_in_days_key"));
        }
        if conf.has("log_group_aws_tags") && conf.has("log_group_aws_tags_key") {
            return Err(conf.error("Set only one of log_group_aws_tags, log_group_aws_tags_key"));
        }
        let retention_in_days = match conf.opt_int("retention_in_days")? {
            None => None,
            Some(d) if RETENTION_DAYS.contains(&d) => i32::try_from(d).ok(),
            Some(_) => {
                return Err(conf
                    .error_at("retention_in_days", "'retention_in_days' is not a value CloudWatch Logs accepts")
                    .with_hint("one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653"))
            }
        };
        let aws_tags = conf.hash("log_group_aws_tags")?.map(|kv| kv.into_iter().collect::<HashMap<_, _>>());
        // Both handlers write the same JSON here.
        conf.enum_or("json_handler", &["yajl", "json"], "yajl")?;
        let concurrency = conf.int_or("concurrency", 1)?;
        if !(1..=64).contains(&concurrency) {
            return Err(conf.error_at("concurrency", "'concurrency' must be between 1 and 64"));
        }
        let throttle_wait = conf.time_or("put_log_events_retry_wait", 1.0)?;
        let throttle_limit = conf.int_or("put_log_events_retry_limit", 17)?;
        let throttle_limit =
            (!conf.bool_or("put_log_events_disable_retry_limit", false)?).then(|| throttle_limit.clamp(0, 1000) as u32);
        let inject = Inject::from_conf(
            conf,
            ctx,
            InjectDefaults { time_type: "float", time_format: Some("%Y-%m-%dT%H:%M:%S%z") },
        )?;
        let stats = Arc::new(WriterStats::default());
        let rejected = Arc::new(RejectStats::default());
        Ok(CloudwatchLogsWriter {
            params,
            client: OnceCell::new(),
            group,
            stream,
            message_keys,
            max_message_length,
            retention_key: KeyParam::from_conf(conf, "retention_in_days_key", "remove_retention_in_days_key")?,
            tags_key: KeyParam::from_conf(conf, "log_group_aws_tags_key", "remove_log_group_aws_tags_key")?,
            inject,
            concurrency: concurrency as usize,
            settings: Arc::new(Settings {
                auto_create_stream,
                retention_in_days,
                aws_tags,
                log_rejected_request: conf.bool_or("log_rejected_request", false)?,
                max_events_per_batch: max_events as usize,
                throttle_wait: Duration::from_secs_f64(throttle_wait.clamp(0.0, 60.0)),
                throttle_limit,
                stats: stats.clone(),
                rejected: rejected.clone(),
            }),
            stats,
            rejected,
        })
    }
}

/// One event ready to send: its chunk entry, time in milliseconds and message.
#[derive(Debug, Clone)]
struct Pending {
    entry: usize,
    ts: i64,
    message: String,
}

impl Pending {
    fn size(&self) -> usize {
        self.message.len() + EVENT_OVERHEAD
    }
}

/// The events of one (group, stream) in a chunk, and how to create the group if it is missing.
struct StreamJob {
    group: String,
    stream: String,
    events: Vec<Pending>,
    retention: Option<i32>,
    tags: Option<HashMap<String, String>>,
}

/// What happened to the events of one stream job.
#[derive(Debug, Default)]
struct Outcome {
    delivered: usize,
    rejected: Vec<(usize, String)>,
    retry: Vec<usize>,
    error: Option<String>,
}

/// Split time-sorted events (timestamp, size) into PutLogEvents batches: at most `max_events` events and
/// [`MAX_BATCH_BYTES`], and less than 24 hours from the first event to the last.
pub fn split_batches(events: &[(i64, usize)], max_events: usize) -> Vec<Range<usize>> {
    let max_events = max_events.max(1);
    let mut out = Vec::new();
    let (mut start, mut bytes, mut first_ts) = (0usize, 0usize, 0i64);
    for (i, &(ts, size)) in events.iter().enumerate() {
        let n = i - start;
        if n > 0 && (n >= max_events || bytes + size > MAX_BATCH_BYTES || ts.saturating_sub(first_ts) >= DAY_MS) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        if i == start {
            first_ts = ts;
        }
        bytes += size;
    }
    if start < events.len() {
        out.push(start..events.len());
    }
    out
}

/// Milliseconds since the epoch, as the plugin computes them (`(time.to_f * 1000).floor`).
fn millis(t: EventTime) -> Option<i64> {
    t.sec.checked_mul(1000)?.checked_add(i64::from(t.nsec / 1_000_000))
}

/// The first `n` characters of `s`.
fn truncate_chars(s: &mut String, n: usize) {
    if let Some((i, _)) = s.char_indices().nth(n) {
        s.truncate(i);
    }
}

impl CloudwatchLogsWriter {
    async fn client(&self) -> aws_sdk_cloudwatchlogs::Client {
        self.client
            .get_or_init(|| async { aws_sdk_cloudwatchlogs::Client::new(&self.params.sdk_config().await) })
            .await
            .clone()
    }

    /// The message of one event: `message_keys`' values joined by spaces, or the record as JSON.
    fn message(&self, record: &Map) -> String {
        if self.message_keys.is_empty() {
            let mut out = Vec::with_capacity(256);
            write_json_map(record, &mut out);
            return String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        }
        let mut msg = String::new();
        for k in &self.message_keys {
            let Some(v) = record.get(k) else { continue };
            let before = msg.len();
            if before > 0 {
                msg.push(' ');
            }
            v.append_display(&mut msg);
            if msg.len() == before + usize::from(before > 0) {
                msg.truncate(before);
            }
        }
        msg
    }

    /// Group a chunk's events by (group, stream) in order of first appearance, each sorted by time;
    /// events that cannot be sent are returned as rejected.
    fn prepare(&self, chunk: &Chunk) -> (Vec<StreamJob>, Vec<(usize, String)>) {
        let fixed_group = match &self.group {
            NameFrom::Fixed(t) => placeholders::expand(t, &chunk.metadata),
            _ => String::new(),
        };
        let fixed_stream = match &self.stream {
            NameFrom::Fixed(t) => placeholders::expand(t, &chunk.metadata),
            _ => String::new(),
        };
        let mut jobs: Vec<StreamJob> = Vec::new();
        let mut index: HashMap<(String, String), usize> = HashMap::new();
        let mut rejected = Vec::new();
        for (i, ev) in chunk.events().enumerate() {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    rejected.push((i, format!("cloudwatch_logs: corrupt chunk entry: {e}")));
                    break;
                }
            };
            let tag = ev.tag.as_str();
            let mut record = ev.record;
            if let Some(inj) = &self.inject {
                inj.apply(tag, ev.time, &mut record);
            }
            let group = self.group.resolve(&fixed_group, tag, &mut record);
            let stream = self.stream.resolve(&fixed_stream, tag, &mut record);
            let retention = self.retention_key.as_ref().and_then(|k| k.take(&mut record));
            let tags = self.tags_key.as_ref().and_then(|k| k.take(&mut record));
            let (Some(group), Some(stream)) = (group, stream) else {
                self.stats.record_invalid();
                let which = if matches!(self.group, NameFrom::Key { .. }) { "group" } else { "stream" };
                tracing::warn!(tag, "cloudwatch_logs: record without a log {which} name rejected");
                rejected.push((i, format!("cloudwatch_logs: record of tag {tag} has no log group or stream name")));
                continue;
            };
            // As the plugin: top-level empty strings are left out of the message.
            record.retain(|_, v| {
                !matches!(v, Value::Str(s) if s.is_empty()) && !matches!(v, Value::Bytes(b) if b.is_empty())
            });
            let mut message = self.message(&record);
            if message.is_empty() {
                self.stats.record_invalid();
                tracing::warn!(tag, "cloudwatch_logs: empty message (message_keys not in the record) rejected");
                rejected.push((i, format!("cloudwatch_logs: record of tag {tag} makes an empty message")));
                continue;
            }
            if let Some(n) = self.max_message_length {
                truncate_chars(&mut message, n);
            }
            let size = message.len() + EVENT_OVERHEAD;
            if size > MAX_EVENT_BYTES {
                self.stats.record_oversize(tag, "cloudwatch_logs", size, MAX_EVENT_BYTES);
                rejected.push((
                    i,
                    format!("cloudwatch_logs: event of tag {tag} is {size} bytes, over the 262144 bytes PutLogEvents accepts"),
                ));
                continue;
            }
            let Some(ts) = millis(ev.time) else {
                self.stats.record_invalid();
                rejected.push((i, format!("cloudwatch_logs: event of tag {tag} has a time out of range")));
                continue;
            };
            let key = (group, stream);
            let j = match index.get(&key) {
                Some(&j) => j,
                None => {
                    jobs.push(StreamJob {
                        group: key.0.clone(),
                        stream: key.1.clone(),
                        events: Vec::new(),
                        // The group's settings come from its first record, as in the plugin.
                        retention: retention.as_ref().and_then(retention_of).or(self.settings.retention_in_days),
                        tags: tags.as_ref().and_then(tags_of).or_else(|| self.settings.aws_tags.clone()),
                    });
                    index.insert(key, jobs.len() - 1);
                    jobs.len() - 1
                }
            };
            jobs[j].events.push(Pending { entry: i, ts, message });
        }
        for j in &mut jobs {
            // Stable: events with the same time keep their order.
            j.events.sort_by_key(|e| e.ts);
        }
        (jobs, rejected)
    }
}

fn retention_of(v: &Value) -> Option<i32> {
    let d = match v {
        Value::Str(s) => s.trim().parse::<i64>().ok(),
        other => other.as_i64(),
    };
    match d {
        Some(d) if RETENTION_DAYS.contains(&d) => i32::try_from(d).ok(),
        _ => {
            tracing::warn!("cloudwatch_logs: retention_in_days_key holds no valid retention; the group gets none");
            None
        }
    }
}

fn tags_of(v: &Value) -> Option<HashMap<String, String>> {
    let Some(m) = v.as_map() else {
        tracing::warn!("cloudwatch_logs: log_group_aws_tags_key holds no hash; the group gets no tags");
        return None;
    };
    Some(m.iter().map(|(k, v)| (k.to_string(), v.to_display_string())).collect())
}

/// Why CloudWatch did not store an event of an accepted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rejection {
    TooNew,
    TooOld,
    Expired,
}

impl Rejection {
    fn describe(self) -> &'static str {
        match self {
            Rejection::TooNew => "too new (more than 2 hours in the future)",
            Rejection::TooOld => "too old (older than 14 days or the group's retention)",
            Rejection::Expired => "expired (older than the group's retention)",
        }
    }
}

/// Why the event at `k` of a batch was not stored, from the response's `rejectedLogEventsInfo`.
fn rejection(k: usize, info: &RejectedLogEventsInfo) -> Option<Rejection> {
    let k = i64::try_from(k).ok()?;
    let at_or_before = |end: Option<i32>| end.is_some_and(|e| k <= i64::from(e));
    if info.too_new_log_event_start_index().is_some_and(|s| k >= i64::from(s)) {
        Some(Rejection::TooNew)
    } else if at_or_before(info.too_old_log_event_end_index()) {
        Some(Rejection::TooOld)
    } else if at_or_before(info.expired_log_event_end_index()) {
        Some(Rejection::Expired)
    } else {
        None
    }
}

/// Create the job's log group (with its retention and tags) and stream; ones that exist are fine.
async fn create_group_and_stream(
    client: &aws_sdk_cloudwatchlogs::Client,
    job: &StreamJob,
) -> Result<(), (String, ErrorClass)> {
    let created = client.create_log_group().log_group_name(&job.group).set_tags(job.tags.clone()).send().await;
    match created {
        Ok(_) => {
            tracing::info!(group = %job.group, "cloudwatch_logs: log group created");
            if let Some(days) = job.retention {
                let r = client.put_retention_policy().log_group_name(&job.group).retention_in_days(days).send().await;
                if let Err(e) = r {
                    let (why, _) = describe_sdk_error(&e);
                    tracing::warn!(group = %job.group, "cloudwatch_logs: failed to set the retention policy: {why}");
                }
            }
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_already_exists_exception()) => {}
        Err(e) => return Err(describe_sdk_error(&e)),
    }
    match client.create_log_stream().log_group_name(&job.group).log_stream_name(&job.stream).send().await {
        Ok(_) => {
            tracing::info!(group = %job.group, stream = %job.stream, "cloudwatch_logs: log stream created");
            Ok(())
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_already_exists_exception()) => Ok(()),
        Err(e) => Err(describe_sdk_error(&e)),
    }
}

fn throttle_backoff(base: Duration, n: u32) -> Duration {
    let jitter = 1.0 + 0.25 * (rand::random::<f64>() - 0.5);
    base.mul_f64(2f64.powi(n.min(16) as i32) * jitter)
}

/// Send one stream's events batch by batch.
async fn send_stream(s: Arc<Settings>, client: aws_sdk_cloudwatchlogs::Client, job: StreamJob) -> Outcome {
    let mut out = Outcome::default();
    let sizes: Vec<(i64, usize)> = job.events.iter().map(|e| (e.ts, e.size())).collect();
    let batches = split_batches(&sizes, s.max_events_per_batch);
    let (mut created, mut throttles, mut slept) = (false, 0u32, Duration::ZERO);
    let mut bi = 0;
    let rest = |from: usize, batches: &[Range<usize>]| -> Vec<usize> {
        batches[from..].iter().flat_map(|r| job.events[r.clone()].iter().map(|e| e.entry)).collect()
    };
    while bi < batches.len() {
        let batch = &job.events[batches[bi].clone()];
        let events: Result<Vec<InputLogEvent>, _> =
            batch.iter().map(|e| InputLogEvent::builder().timestamp(e.ts).message(e.message.clone()).build()).collect();
        let events = match events {
            Ok(ev) => ev,
            Err(e) => {
                let why = format!("cloudwatch_logs: building the request: {e}");
                out.rejected.extend(batch.iter().map(|p| (p.entry, why.clone())));
                bi += 1;
                continue;
            }
        };
        s.stats.request();
        let res = client
            .put_log_events()
            .log_group_name(&job.group)
            .log_stream_name(&job.stream)
            .set_log_events(Some(events))
            .send()
            .await;
        let e = match res {
            Ok(resp) => {
                let mut n_rejected = 0usize;
                if let Some(info) = resp.rejected_log_events_info() {
                    for (k, p) in batch.iter().enumerate() {
                        if let Some(why) = rejection(k, info) {
                            n_rejected += 1;
                            let c = match why {
                                Rejection::TooNew => &s.rejected.too_new,
                                Rejection::TooOld => &s.rejected.too_old,
                                Rejection::Expired => &s.rejected.expired,
                            };
                            c.fetch_add(1, Ordering::Relaxed);
                            out.rejected.push((
                                p.entry,
                                format!(
                                    "cloudwatch_logs: event rejected by PutLogEvents as {} (group {}, stream {})",
                                    why.describe(),
                                    job.group,
                                    job.stream
                                ),
                            ));
                        }
                    }
                    let (new, old, exp) = (
                        info.too_new_log_event_start_index(),
                        info.too_old_log_event_end_index(),
                        info.expired_log_event_end_index(),
                    );
                    if s.log_rejected_request {
                        tracing::warn!(group = %job.group, stream = %job.stream, events = batch.len(), rejected = n_rejected,
                            too_new_log_event_start_index = ?new, too_old_log_event_end_index = ?old,
                            expired_log_event_end_index = ?exp, "cloudwatch_logs: PutLogEvents rejected events");
                    } else {
                        tracing::debug!(group = %job.group, stream = %job.stream, rejected = n_rejected,
                            "cloudwatch_logs: PutLogEvents rejected events");
                    }
                }
                out.delivered += batch.len() - n_rejected;
                tracing::debug!(group = %job.group, stream = %job.stream, events = batch.len(),
                    bytes = batch.iter().map(Pending::size).sum::<usize>(), "cloudwatch_logs: called PutLogEvents");
                bi += 1;
                throttles = 0;
                continue;
            }
            Err(e) => e,
        };
        let code = e.code().unwrap_or_default().to_string();
        if code == "ResourceNotFoundException" {
            if s.auto_create_stream && !created {
                created = true;
                match create_group_and_stream(&client, &job).await {
                    Ok(()) => continue,
                    Err((why, _)) => {
                        // Creating failed (throttled, permissions...): let the buffer retry the events.
                        out.retry.extend(rest(bi, &batches));
                        out.error = Some(format!("creating log group/stream {}/{}: {why}", job.group, job.stream));
                        return out;
                    }
                }
            }
            if !s.auto_create_stream {
                let why = format!(
                    "cloudwatch_logs: log group '{}' or stream '{}' does not exist and auto_create_stream is false",
                    job.group, job.stream
                );
                tracing::warn!(group = %job.group, stream = %job.stream,
                    "cloudwatch_logs: log group or stream does not exist (auto_create_stream false): events go to <secondary>/@ERROR");
                let entries = rest(bi, &batches);
                out.rejected.extend(entries.into_iter().map(|i| (i, why.clone())));
                return out;
            }
        }
        if code == "ThrottlingException" && s.throttle_limit.is_none_or(|l| throttles < l) {
            let wait = throttle_backoff(s.throttle_wait, throttles);
            if slept + wait <= THROTTLE_BUDGET {
                tracing::warn!(group = %job.group, stream = %job.stream, wait_ms = wait.as_millis() as u64,
                    "cloudwatch_logs: PutLogEvents throttled, retrying");
                tokio::time::sleep(wait).await;
                slept += wait;
                throttles += 1;
                continue;
            }
        }
        let (why, class) = describe_sdk_error(&e);
        match class {
            ErrorClass::Unrecoverable if code != "ResourceNotFoundException" => {
                // A request CloudWatch refuses (InvalidParameterException...) fails the same way again.
                let why = format!("cloudwatch_logs: PutLogEvents refused the batch: {why}");
                out.rejected.extend(batch.iter().map(|p| (p.entry, why.clone())));
                bi += 1;
            }
            _ => {
                out.retry.extend(rest(bi, &batches));
                out.error = Some(format!("PutLogEvents to {}/{} failed: {why}", job.group, job.stream));
                return out;
            }
        }
    }
    out
}

#[async_trait]
impl ChunkWriter for CloudwatchLogsWriter {
    async fn write(&self, chunk: &Chunk) -> Result<(), WriteError> {
        let tag = chunk.metadata.tag.clone().unwrap_or_default();
        let (jobs, mut rejected) = self.prepare(chunk);
        let mut retry = Vec::new();
        let mut errors = Vec::new();
        let mut delivered = 0usize;
        if !jobs.is_empty() {
            let client = self.client().await;
            let mut set = tokio::task::JoinSet::new();
            let mut outcomes = Vec::with_capacity(jobs.len());
            let span = tracing::Span::current();
            for job in jobs {
                if set.len() >= self.concurrency {
                    if let Some(r) = set.join_next().await {
                        outcomes.push(r);
                    }
                }
                set.spawn(send_stream(self.settings.clone(), client.clone(), job).instrument(span.clone()));
            }
            while let Some(r) = set.join_next().await {
                outcomes.push(r);
            }
            for r in outcomes {
                match r {
                    Ok(o) => {
                        delivered += o.delivered;
                        rejected.extend(o.rejected);
                        retry.extend(o.retry);
                        errors.extend(o.error);
                    }
                    // A panicked task: nothing is known about its events, so the whole chunk is retried.
                    Err(e) => return Err(WriteError::retryable(format!("cloudwatch_logs: send task failed: {e}"))),
                }
            }
        }
        self.stats.delivered(delivered);
        for e in &errors {
            tracing::warn!(tag = %tag, "cloudwatch_logs: {e}");
        }
        if rejected.is_empty() && retry.is_empty() {
            return Ok(());
        }
        let message = match errors.first() {
            Some(e) => format!("cloudwatch_logs: {e}"),
            None => format!("cloudwatch_logs: {} event(s) of tag {tag} rejected", rejected.len()),
        };
        if delivered == 0 && rejected.is_empty() {
            return Err(WriteError::retryable(message));
        }
        retry.sort_unstable();
        Err(WriteError::Partial { message, retry, rejected })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_at_count_bytes_and_day() {
        let ev = |n: usize, size: usize| vec![(0i64, size); n];
        assert_eq!(split_batches(&ev(5, 10), 2), vec![0..2, 2..4, 4..5]);
        // 1 MiB: four events of 300,000 bytes make batches of three and one.
        assert_eq!(split_batches(&ev(4, 300_000), 10_000), vec![0..3, 3..4]);
        assert_eq!(split_batches(&ev(2, MAX_BATCH_BYTES / 2), 10_000), vec![0..2]);
        // a span of exactly 24 hours starts a new batch
        let t = [(0, 1), (DAY_MS - 1, 1), (DAY_MS, 1), (DAY_MS + 5, 1)];
        assert_eq!(split_batches(&t, 100), vec![0..2, 2..4]);
        assert!(split_batches(&[], 3).is_empty());
    }

    #[test]
    fn millis_and_truncation() {
        assert_eq!(millis(EventTime { sec: 1_700_000_000, nsec: 999_999_999 }), Some(1_700_000_000_999));
        assert_eq!(millis(EventTime { sec: i64::MAX, nsec: 0 }), None);
        let mut s = "héllo wörld".to_string();
        truncate_chars(&mut s, 4);
        assert_eq!(s, "héll");
        let mut s = "ab".to_string();
        truncate_chars(&mut s, 10);
        assert_eq!(s, "ab");
    }

    #[test]
    fn rejection_indexes() {
        let info =
            RejectedLogEventsInfo::builder().too_old_log_event_end_index(1).too_new_log_event_start_index(4).build();
        let got: Vec<_> = (0..6).map(|k| rejection(k, &info)).collect();
        use Rejection::*;
        assert_eq!(got, vec![Some(TooOld), Some(TooOld), None, None, Some(TooNew), Some(TooNew)]);
        let info = RejectedLogEventsInfo::builder().expired_log_event_end_index(0).build();
        assert_eq!(rejection(0, &info), Some(Expired));
        assert_eq!(rejection(1, &info), None);
    }
}
