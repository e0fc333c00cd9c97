//! Turning records into Slack messages: Block Kit blocks plus a plain-text fallback, escaped as Slack
//! requires and cut to Slack's limits with a visible marker.
use crate::config::{SlackConfig, Template};
use serde_json::{json, Map as JsonMap, Value as Json};
use sluice_core::event::{EventTime, Map, Value};
use sluice_core::timefmt::TimeFormatter;

/// Slack's limits (Block Kit reference).
pub const MAX_BLOCKS: usize = 50;
pub const MAX_SECTION_TEXT: usize = 3000;
pub const MAX_HEADER_TEXT: usize = 150;
pub const MAX_FIELD_TEXT: usize = 2000;
pub const MAX_FIELDS: usize = 10;
/// Top-level `text`: Slack truncates past 40,000 characters and advises 4,000.
pub const MAX_FALLBACK_TEXT: usize = 4000;

/// Escape the three characters Slack's text parser reserves.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// Cut `s` (already escaped) to at most `max` characters, ending with a visible marker; never in the middle
/// of an `&amp;`-style entity.
pub fn truncate(s: &str, max: usize) -> String {
    let total = s.chars().count();
    if total <= max {
        return s.to_string();
    }
    let mut marker = format!("… [truncated {} chars]", total.saturating_sub(max));
    let mut keep = max.saturating_sub(marker.chars().count());
    if keep == 0 {
        marker = "…".into();
        keep = max.saturating_sub(1);
    }
    let mut head: String = s.chars().take(keep).collect();
    if let Some(amp) = head.rfind('&') {
        if !head[amp..].contains(';') && head.len() - amp <= 5 {
            head.truncate(amp);
        }
    }
    head.push_str(&marker);
    head
}

/// Plain text (header): no escaping, but no line breaks either.
fn plain_one_line(s: &str, max: usize) -> String {
    let flat: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let flat = flat.trim();
    if flat.chars().count() <= max {
        return flat.to_string();
    }
    let mut out: String = flat.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Look a key up: the exact key first (`logging.googleapis.com/trace`), then a dotted path into maps,
/// also `$.a.b` record-accessor style.
pub fn lookup<'a>(record: &'a Map, key: &str) -> Option<&'a Value> {
    if let Some(v) = record.get(key) {
        return Some(v);
    }
    let path = key.strip_prefix("$.").unwrap_or(key);
    let mut parts = path.split('.');
    let mut cur = record.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_map()?.get(p)?;
    }
    Some(cur)
}

fn lookup_str(record: &Map, key: &str) -> Option<String> {
    let v = lookup(record, key)?;
    if v.is_null() {
        return None;
    }
    let s = v.to_display_string();
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
}

fn first_of(record: &Map, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| lookup_str(record, k))
}

const SEVERITY_KEYS: &[&str] = &["severity", "level", "log_level", "loglevel", "lvl"];
const SERVICE_KEYS: &[&str] = &[
    "service",
    "service_name",
    "app",
    "application",
    "kubernetes.labels.app.kubernetes.io/name",
    "kubernetes.labels.app",
    "kubernetes.container_name",
];
const DEFAULT_FIELDS: &[(&str, &[&str])] = &[
    ("pod", &["kubernetes.pod_name", "pod", "pod_name"]),
    ("namespace", &["kubernetes.namespace_name", "namespace"]),
    ("container", &["kubernetes.container_name", "container", "container_name"]),
    ("host", &["host", "hostname", "kubernetes.host"]),
    ("trace id", &["trace_id", "traceId", "trace.id", "logging.googleapis.com/trace", "otelTraceID"]),
];

/// One alert, ready to be rendered. Text in `message` is already escaped for Slack.
#[derive(Debug, Clone)]
pub struct Alert {
    pub tag: String,
    pub time: EventTime,
    pub severity: Option<String>,
    pub service: String,
    /// The configured title, rendered (plain text, not escaped).
    pub title: Option<String>,
    /// Escaped message text (values escaped, the template's own mrkdwn kept).
    pub message: String,
    /// The unescaped values the message was made of: the default fingerprint source.
    pub raw_message: String,
    /// (label, escaped value).
    pub fields: Vec<(String, String)>,
    /// Channel to post to (`None`: the webhook's own).
    pub channel: Option<String>,
}

/// fluent-plugin-slack's injected `time`.
fn key_time(cfg: &SlackConfig, t: EventTime) -> String {
    cfg.time_formatter.format(t)
}

fn render_template(cfg: &SlackConfig, t: &Template, record: &Map, tag: &str, time: EventTime, esc: bool) -> String {
    let vals: Vec<String> = t
        .keys
        .iter()
        .map(|k| {
            let v = if k == "tag" && lookup(record, k).is_none() {
                tag.to_string()
            } else if k == "time" && lookup(record, k).is_none() {
                key_time(cfg, time)
            } else {
                lookup_str(record, k).unwrap_or_default()
            };
            if esc {
                escape(&v)
            } else {
                v
            }
        })
        .collect();
    t.render(&vals)
}

/// Format an event time as RFC 3339 in UTC, with milliseconds.
pub fn format_time(t: EventTime) -> String {
    static RFC3339_MS: std::sync::LazyLock<TimeFormatter> =
        std::sync::LazyLock::new(|| TimeFormatter::utc("%Y-%m-%dT%H:%M:%S.%LZ"));
    RFC3339_MS.format(t)
}

impl Alert {
    pub fn from_record(cfg: &SlackConfig, tag: &str, time: EventTime, record: &Map) -> Alert {
        let severity = first_of(record, SEVERITY_KEYS).map(|s| s.to_uppercase());
        let service = first_of(record, SERVICE_KEYS).unwrap_or_else(|| tag.to_string());
        let title = cfg.title.as_ref().map(|t| render_template(cfg, t, record, tag, time, false));
        let message = render_template(cfg, &cfg.message, record, tag, time, true);
        let raw_message = render_template(cfg, &cfg.message, record, tag, time, false);
        let mut fields = Vec::new();
        if cfg.field_keys.is_empty() {
            for (label, keys) in DEFAULT_FIELDS {
                if let Some(v) = first_of(record, keys) {
                    fields.push((label.to_string(), escape(&v)));
                }
                if *label == "host" {
                    fields.push(("time".to_string(), format_time(time)));
                }
            }
        } else {
            for k in &cfg.field_keys {
                if k == "time" {
                    fields.push(("time".into(), format_time(time)));
                } else if let Some(v) = lookup_str(record, k) {
                    fields.push((k.clone(), escape(&v)));
                }
            }
        }
        let channel = cfg.channel.as_ref().map(|c| {
            if cfg.channel_keys.is_empty() {
                c.clone()
            } else {
                let t = Template { format: c.clone(), keys: cfg.channel_keys.clone() };
                render_template(cfg, &t, record, tag, time, false)
            }
        });
        Alert { tag: tag.to_string(), time, severity, service, title, message, raw_message, fields, channel }
    }

    /// The header line: the title, or "SEVERITY · service".
    pub fn headline(&self) -> String {
        if let Some(t) = &self.title {
            return t.clone();
        }
        match &self.severity {
            Some(s) => format!("{s} · {}", self.service),
            None => self.service.clone(),
        }
    }

    fn color(&self) -> &'static str {
        match self.severity.as_deref() {
            Some("FATAL" | "CRITICAL" | "CRIT" | "ALERT" | "EMERGENCY" | "EMERG" | "ERROR" | "ERR" | "PANIC") => {
                "danger"
            }
            Some("WARN" | "WARNING") => "warning",
            _ => "good",
        }
    }
}

fn text_obj(mrkdwn: bool, text: String) -> Json {
    json!({"type": if mrkdwn { "mrkdwn" } else { "plain_text" }, "text": text})
}

fn header(text: &str) -> Json {
    let t = plain_one_line(text, MAX_HEADER_TEXT);
    json!({"type": "header", "text": {"type": "plain_text", "text": if t.is_empty() { "alert".to_string() } else { t }}})
}

/// The message body as section text: multi-line messages (stack traces) in a code block.
fn body_text(cfg: &SlackConfig, message: &str, max: usize) -> String {
    let message = if message.trim().is_empty() { "(empty message)" } else { message };
    if cfg.mrkdwn && message.contains('\n') && !message.contains("```") {
        format!("```{}```", truncate(message, max.saturating_sub(6)))
    } else {
        truncate(message, max)
    }
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or("")
}

/// A message's JSON without the channel/identity fields. `channel` is set by [`finish`].
pub struct Payload {
    pub channel: Option<String>,
    pub fallback: String,
    pub blocks: Vec<Json>,
    pub color: &'static str,
}

/// The alert message: header, body, fields.
pub fn alert_payload(cfg: &SlackConfig, a: &Alert) -> Payload {
    let head = a.headline();
    let mut blocks = vec![header(&head)];
    blocks.push(json!({"type": "section", "text": text_obj(cfg.mrkdwn, body_text(cfg, &a.message, MAX_SECTION_TEXT))}));
    if !a.fields.is_empty() {
        let fields: Vec<Json> = a
            .fields
            .iter()
            .take(MAX_FIELDS)
            .map(|(l, v)| {
                let label = escape(l);
                let t = if cfg.mrkdwn { format!("*{label}*\n{v}") } else { format!("{label}\n{v}") };
                text_obj(cfg.mrkdwn, truncate(&t, MAX_FIELD_TEXT))
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    let fallback = if cfg.verbose_fallback {
        truncate(&format!("{}: {}", escape(&head), a.message), MAX_FALLBACK_TEXT)
    } else {
        truncate(&format!("{}: {}", escape(&head), first_line(&a.message)), 300)
    };
    Payload { channel: a.channel.clone(), fallback, blocks, color: a.color() }
}

/// Human wording of a window: `5 min`, `30 s`, `1 h`.
pub fn human_window(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 3600.0 && (s / 3600.0).fract() == 0.0 {
        format!("{} h", s / 3600.0)
    } else if s >= 60.0 && (s / 60.0).fract() == 0.0 {
        format!("{} min", s / 60.0)
    } else if s.fract() == 0.0 {
        format!("{} s", s)
    } else {
        format!("{s:.1} s")
    }
}

/// The summary sent when a de-duplication window closes: `×142 more in the last 5 min`.
pub fn summary_payload(
    cfg: &SlackConfig,
    a: &Alert,
    more: u64,
    window: std::time::Duration,
    fingerprint: &str,
) -> Payload {
    let head = a.headline();
    let line = format!("×{more} more in the last {}", human_window(window));
    let quoted = truncate(first_line(&a.message), 500);
    let text = if cfg.mrkdwn {
        format!("*{line}*: {}\n&gt; {quoted}", escape(&head))
    } else {
        format!("{line}: {}\n{quoted}", escape(&head))
    };
    let blocks = vec![
        json!({"type": "section", "text": text_obj(cfg.mrkdwn, truncate(&text, MAX_SECTION_TEXT))}),
        json!({"type": "context", "elements": [text_obj(cfg.mrkdwn, format!("fingerprint {fingerprint} · last seen in {}", escape(&plain_one_line(&a.tag, 200))))]}),
    ];
    let fallback = truncate(&format!("{line}: {}: {}", escape(&head), first_line(&a.message)), 300);
    Payload { channel: a.channel.clone(), fallback, blocks, color: a.color() }
}

/// One digest replacing what the rate limit held back: one section per kind of alert, within 50 blocks.
pub fn digest_payload(cfg: &SlackConfig, channel: Option<String>, groups: &[(Alert, u64)]) -> Payload {
    let total: u64 = groups.iter().map(|(_, n)| n).sum();
    let head = format!("{total} alerts held back by the rate limit");
    let mut blocks = vec![header(&head)];
    // Header + sections + possibly one "and N more" section.
    let room = MAX_BLOCKS - 2;
    for (a, n) in groups.iter().take(if groups.len() > room + 1 { room } else { room + 1 }) {
        let t = if cfg.mrkdwn {
            format!("*×{n} {}*\n{}", escape(&a.headline()), truncate(first_line(&a.message), 500))
        } else {
            format!("×{n} {}\n{}", escape(&a.headline()), truncate(first_line(&a.message), 500))
        };
        blocks.push(json!({"type": "section", "text": text_obj(cfg.mrkdwn, truncate(&t, MAX_SECTION_TEXT))}));
    }
    if groups.len() > room + 1 {
        let rest = &groups[room..];
        let n: u64 = rest.iter().map(|(_, n)| n).sum();
        blocks.push(json!({"type": "section", "text": text_obj(cfg.mrkdwn, format!("…and {n} more alerts of {} other kinds", rest.len()))}));
    }
    let color = groups.iter().map(|(a, _)| a.color()).find(|c| *c == "danger").unwrap_or("warning");
    let fallback = truncate(&head, 300);
    Payload { channel, fallback, blocks, color }
}

/// The request body: identity fields, `text` fallback and blocks (in an attachment when `color` is set).
pub fn finish(cfg: &SlackConfig, p: Payload) -> Json {
    let mut m = JsonMap::new();
    if let Some(c) = p.channel {
        m.insert("channel".into(), Json::String(c));
    }
    if let Some(u) = &cfg.username {
        m.insert("username".into(), Json::String(u.clone()));
    }
    if let Some(i) = &cfg.icon_emoji {
        m.insert("icon_emoji".into(), Json::String(i.clone()));
    }
    if let Some(i) = &cfg.icon_url {
        m.insert("icon_url".into(), Json::String(i.clone()));
    }
    if let Some(a) = cfg.as_user {
        m.insert("as_user".into(), Json::Bool(a));
    }
    m.insert("link_names".into(), Json::Bool(cfg.link_names));
    if let Some(p) = &cfg.parse {
        m.insert("parse".into(), Json::String(p.clone()));
    }
    m.insert("mrkdwn".into(), Json::Bool(cfg.mrkdwn));
    match cfg.color.as_deref() {
        None => {
            m.insert("text".into(), Json::String(p.fallback));
            m.insert("blocks".into(), Json::Array(p.blocks));
        }
        Some(c) => {
            let color = if c == "auto" { p.color.to_string() } else { c.to_string() };
            m.insert("attachments".into(), json!([{"color": color, "fallback": p.fallback, "blocks": p.blocks}]));
        }
    }
    Json::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_reserved_characters() {
        assert_eq!(escape("a & <b> <!here>"), "a &amp; &lt;b&gt; &lt;!here&gt;");
    }

    #[test]
    fn truncates_visibly_within_limit() {
        let s = "x".repeat(5000);
        let t = truncate(&s, 3000);
        assert_eq!(t.chars().count(), 3000);
        assert!(t.ends_with("[truncated 2000 chars]"), "{}", &t[2900..]);
        assert_eq!(truncate("short", 3000), "short");
        // Never ends inside an entity.
        let s = format!("{}{}", "y".repeat(2975), "&amp;".repeat(100));
        let t = truncate(&s, 3000);
        assert!(t.chars().count() <= 3000);
        let head = t.split('…').next().unwrap();
        assert!(head.ends_with(';') || head.ends_with('y'), "{head}");
    }

    #[test]
    fn multibyte_counts_characters() {
        let s = "é".repeat(3100);
        let t = truncate(&s, 3000);
        assert_eq!(t.chars().count(), 3000);
    }

    #[test]
    fn human_windows() {
        use std::time::Duration;
        assert_eq!(human_window(Duration::from_secs(300)), "5 min");
        assert_eq!(human_window(Duration::from_secs(3600)), "1 h");
        assert_eq!(human_window(Duration::from_secs(2)), "2 s");
    }
}
