//! `@type slack` parameters: fluent-plugin-slack's names and defaults, plus sluice's flood control.
use sluice_core::config::{ConfigError, Element};
use sluice_core::timefmt::TimeFormatter;
use std::fmt;
use std::time::Duration;

/// A secret string (webhook URL, token). Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The value, for building a request only.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Replace every occurrence of the secret (and of its path part, for URLs) in `text`.
    pub fn redact_in(&self, text: &str) -> String {
        let mut out = text.to_string();
        if self.0.len() >= 4 {
            out = out.replace(&self.0, "[REDACTED]");
        }
        // A webhook URL's secret is its path: error texts sometimes show only the path.
        if let Some(idx) = self.0.find("://") {
            if let Some(p) = self.0[idx + 3..].find('/') {
                let path = &self.0[idx + 3 + p..];
                if path.len() > 1 {
                    out = out.replace(path, "/[REDACTED]");
                }
            }
        }
        out
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// Where messages go.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// An incoming webhook: the URL is the credential.
    Webhook { url: Secret },
    /// `chat.postMessage` with a bot/user token. `api_base` ends with `/`.
    Api { token: Secret, api_base: String },
    /// `webhook_url file:///PATH`: each message is appended to PATH as one JSON line, exactly the body that
    /// would be posted. A local stand-in for Slack (demos, checking alerts before a webhook exists).
    File { path: std::path::PathBuf },
}

/// A printf-style template (`%s` only, `%%` for a percent sign) and the record keys that fill it.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub format: String,
    pub keys: Vec<String>,
}

impl Template {
    /// Check that the template has as many `%s` as there are keys (fluent-plugin-slack's rule).
    pub fn new(format: String, keys: Vec<String>) -> Result<Self, String> {
        let n = count_specifiers(&format);
        if n != keys.len() {
            return Err(format!(
                "string specifier '%s' count ({n}) does not match the number of keys ({})",
                keys.len()
            ));
        }
        Ok(Template { format, keys })
    }

    /// Fill the template; each value goes through `conv` (escaping) first.
    pub fn render(&self, values: &[String]) -> String {
        let mut out = String::with_capacity(self.format.len() + 32);
        let mut vals = values.iter();
        let mut chars = self.format.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '%' {
                match chars.peek() {
                    Some('s') => {
                        chars.next();
                        if let Some(v) = vals.next() {
                            out.push_str(v);
                        }
                        continue;
                    }
                    Some('%') => {
                        chars.next();
                        out.push('%');
                        continue;
                    }
                    _ => {}
                }
            }
            out.push(c);
        }
        out
    }
}

fn count_specifiers(format: &str) -> usize {
    let mut n = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.peek() {
                Some('s') => {
                    n += 1;
                    chars.next();
                }
                Some('%') => {
                    chars.next();
                }
                _ => {}
            }
        }
    }
    n
}

/// Everything `@type slack` reads from its `<match>`.
#[derive(Debug, Clone)]
pub struct SlackConfig {
    pub endpoint: Endpoint,
    pub channel: Option<String>,
    /// `channel_keys`: fill `%s` in `channel` from the record (one channel per message).
    pub channel_keys: Vec<String>,
    pub username: Option<String>,
    pub icon_emoji: Option<String>,
    pub icon_url: Option<String>,
    pub message: Template,
    pub title: Option<Template>,
    /// `None`: derived from the severity (danger / warning / good) only when `color` is set.
    pub color: Option<String>,
    pub mrkdwn: bool,
    pub link_names: bool,
    pub parse: Option<String>,
    pub verbose_fallback: bool,
    pub as_user: Option<bool>,
    pub https_proxy: Option<String>,
    pub request_timeout: Duration,
    /// Same fingerprint within this window: sent once, then summed up. Zero turns de-duplication off.
    pub dedup_window: Duration,
    /// Record keys the fingerprint is built from; empty: the normalised message.
    pub fingerprint_keys: Vec<String>,
    /// Messages per channel per minute before the rest of a flush is replaced by one digest.
    pub rate_limit_per_minute: u32,
    /// Least time between two messages to one channel (Slack allows about one per second).
    pub min_interval: Duration,
    /// How often 429 is waited out inside one write before the chunk is handed back to the engine.
    pub max_429_waits: u32,
    /// Keys shown as fields; empty: sluice's defaults (pod, namespace, container, host, time, trace id).
    pub field_keys: Vec<String>,
    /// The `time` value `message_keys`/`title_keys` can name: `time_format` (`%H:%M:%S`) in local time,
    /// UTC (`utc`) or `timezone`, as Fluentd's time formatter does.
    pub time_formatter: TimeFormatter,
}

const DEFAULT_API: &str = "https://slack.com/api/";

fn secs(f: f64) -> Duration {
    Duration::from_secs_f64(if f.is_finite() && f > 0.0 { f } else { 0.0 })
}

impl SlackConfig {
    pub fn from_element(conf: &Element) -> Result<Self, ConfigError> {
        let webhook = conf.opt_str("webhook_url").filter(|s| !s.trim().is_empty());
        let token = conf.opt_str("token").filter(|s| !s.trim().is_empty());
        let slack_api_url = conf.opt_str("slack_api_url");
        if conf.has("slackbot_url") {
            return Err(conf
                .error_at("slackbot_url", "'slackbot_url' (Slackbot remote control) is not supported")
                .with_hint("use 'webhook_url' or 'token' with 'channel'"));
        }
        let channel = conf.opt_str("channel").filter(|s| !s.trim().is_empty()).map(|c| normalise_channel(&c));
        let endpoint = match (webhook, token) {
            (Some(_), Some(_)) => {
                return Err(conf.error("'webhook_url' and 'token' are both set").with_hint("set only one of them"))
            }
            (None, None) => {
                return Err(conf.error("one of 'webhook_url' or 'token' is required").with_hint(
                    "add 'webhook_url https://hooks.slack.com/services/...' or 'token xoxb-...' with 'channel'",
                ))
            }
            (Some(url), None) => match url.trim().strip_prefix("file://") {
                Some(path) => {
                    if !path.starts_with('/') {
                        return Err(conf
                            .error_at("webhook_url", "a file:// 'webhook_url' needs an absolute path")
                            .with_hint("write file:///var/lib/sluice/slack.jsonl"));
                    }
                    Endpoint::File { path: path.into() }
                }
                None => {
                    check_url(&url).map_err(|m| conf.error_at("webhook_url", format!("'webhook_url' {m}")))?;
                    Endpoint::Webhook { url: Secret::new(url.trim()) }
                }
            },
            (None, Some(tok)) => {
                if channel.is_none() {
                    return Err(conf.error("'channel' is required with 'token'").with_hint("add 'channel #alerts'"));
                }
                let mut base = slack_api_url.clone().unwrap_or_else(|| DEFAULT_API.to_string());
                check_url(&base).map_err(|m| conf.error_at("slack_api_url", format!("'slack_api_url' {m}")))?;
                if !base.ends_with('/') {
                    base.push('/');
                }
                Endpoint::Api { token: Secret::new(tok.trim()), api_base: base }
            }
        };
        let channel_keys = conf.array_or_empty("channel_keys")?;
        if let Some(ch) = &channel {
            if count_specifiers(ch) != channel_keys.len() {
                return Err(conf.error_at(
                    "channel_keys",
                    "string specifier '%s' for channel and channel_keys specification mismatch",
                ));
            }
        } else if !channel_keys.is_empty() {
            return Err(conf.error_at("channel_keys", "'channel_keys' needs 'channel'"));
        }

        let message_keys = conf.array("message_keys")?;
        let message = match (conf.opt_str("message"), message_keys) {
            (Some(m), Some(k)) => Template::new(m, k),
            (Some(m), None) => Template::new(m, Vec::new()),
            (None, Some(k)) => Template::new(vec!["%s"; k.len()].join(" "), k),
            (None, None) => Template::new("%s".into(), vec!["message".into()]),
        }
        .map_err(|m| conf.error_at("message_keys", format!("message: {m}")))?;
        let title_keys = conf.array("title_keys")?;
        let title = match (conf.opt_str("title"), title_keys) {
            (Some(t), Some(k)) => Some(Template::new(t, k)),
            (Some(t), None) => Some(Template::new(t, Vec::new())),
            (None, Some(k)) => Some(Template::new(vec!["%s"; k.len()].join(" "), k)),
            (None, None) => None,
        }
        .transpose()
        .map_err(|m| conf.error_at("title_keys", format!("title: {m}")))?;

        let parse = match conf.opt_str("parse") {
            None => None,
            Some(_) => Some(conf.enum_or("parse", &["full", "none"], "none")?),
        };
        let https_proxy = conf.opt_str("https_proxy").filter(|s| !s.trim().is_empty());
        if let Some(p) = &https_proxy {
            check_url(p).map_err(|m| conf.error_at("https_proxy", format!("'https_proxy' {m}")))?;
        }
        let rate = conf.int_or("rate_limit_per_minute", 20)?;
        if !(1..=6000).contains(&rate) {
            return Err(conf.error_at("rate_limit_per_minute", "'rate_limit_per_minute' must be 1..6000"));
        }
        if conf.has("icon_emoji") && conf.has("icon_url") {
            return Err(conf.error_at("icon_url", "either of 'icon_emoji' or 'icon_url' can be specified"));
        }
        let as_user = match conf.has("as_user") {
            true => Some(conf.bool_or("as_user", false)?),
            false => None,
        };
        if as_user == Some(true) && (conf.has("username") || conf.has("icon_emoji") || conf.has("icon_url")) {
            return Err(conf.error_at(
                "as_user",
                "'username', 'icon_emoji' and 'icon_url' cannot be specified when 'as_user' is set to true",
            ));
        }
        // fluent-plugin-slack injects `time` (time_format, local time unless `utc`) for message_keys.
        let time_format = conf.str_or("time_format", "%H:%M:%S");
        let localtime = conf.bool_or("localtime", true)? && !conf.bool_or("utc", false)?;
        let timezone = conf.opt_str("timezone");
        let time_formatter = TimeFormatter::new(Some(&time_format), localtime, timezone.as_deref()).map_err(|e| {
            conf.error_at(if timezone.is_some() { "timezone" } else { "time_format" }, e)
                .with_hint("a zone like Asia/Seoul, +09:00 or UTC")
        })?;
        // Parameters of fluent-plugin-slack that change nothing here, read so they raise no warning.
        for k in ["mrkdwn_in", "auto_channels_create", "include_tag_key", "include_time_key", "tag_key", "time_key"] {
            let _ = conf.get(k);
        }
        Ok(SlackConfig {
            endpoint,
            channel,
            channel_keys,
            username: conf.opt_str("username"),
            icon_emoji: conf.opt_str("icon_emoji"),
            icon_url: conf.opt_str("icon_url"),
            message,
            title,
            color: conf.opt_str("color").filter(|s| !s.trim().is_empty()),
            mrkdwn: conf.bool_or("mrkdwn", true)?,
            link_names: conf.bool_or("link_names", true)?,
            parse,
            verbose_fallback: conf.bool_or("verbose_fallback", false)?,
            as_user,
            time_formatter,
            https_proxy,
            request_timeout: secs(conf.time_or("request_timeout", 30.0)?),
            dedup_window: secs(conf.time_or("dedup_window", 300.0)?),
            fingerprint_keys: conf.array_or_empty("fingerprint_keys")?,
            rate_limit_per_minute: rate as u32,
            min_interval: secs(conf.time_or("min_interval", 1.0)?),
            max_429_waits: conf.int_or("max_429_waits", 3)?.clamp(0, 100) as u32,
            field_keys: conf.array_or_empty("field_keys")?,
        })
    }

    /// The key the rate limiter and summaries use for a channel (the webhook's own channel when unset).
    pub fn default_channel_key(&self) -> String {
        self.channel.clone().unwrap_or_else(|| "(webhook)".to_string())
    }
}

/// fluent-plugin-slack's channel rule: URL-unescaped, `#` added unless it starts with `#` (we also leave
/// `@user` and channel ids such as `C024BE91L` alone).
fn normalise_channel(c: &str) -> String {
    let c = percent_decode(c.trim());
    let is_id = c.len() >= 9
        && c.starts_with(['C', 'G', 'D'])
        && c.chars().all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit());
    if c.starts_with('#') || c.starts_with('@') || is_id {
        c
    } else {
        format!("#{c}")
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// Check a URL without ever echoing it (it may be a secret).
fn check_url(u: &str) -> Result<(), String> {
    let t = u.trim();
    match reqwest::Url::parse(t) {
        Ok(url) if url.scheme() == "https" || url.scheme() == "http" => {
            if url.host_str().is_none() {
                Err("has no host".into())
            } else {
                Ok(())
            }
        }
        Ok(_) => Err("must be an http(s) URL".into()),
        Err(e) => Err(format!("is not a valid URL ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_renders_and_checks_count() {
        let t = Template::new("%s on %s (100%%)".into(), vec!["a".into(), "b".into()]).unwrap();
        assert_eq!(t.render(&["x".into(), "y".into()]), "x on y (100%)");
        assert!(Template::new("%s".into(), vec![]).is_err());
        assert!(Template::new("%s %s".into(), vec!["a".into()]).is_err());
    }

    #[test]
    fn channels_like_fluent_plugin_slack() {
        assert_eq!(normalise_channel("general"), "#general");
        assert_eq!(normalise_channel("#general"), "#general");
        assert_eq!(normalise_channel("%23general"), "#general");
        assert_eq!(normalise_channel("@alice"), "@alice");
        assert_eq!(normalise_channel("C024BE91L"), "C024BE91L");
        assert_eq!(normalise_channel("%s-alerts"), "#%s-alerts");
        assert_eq!(normalise_channel("é%"), "#é%");
    }

    #[test]
    fn secret_is_redacted() {
        let s = Secret::new("https://hooks.slack.com/services/T1/B2/abcdef");
        assert_eq!(format!("{s} {s:?}"), "[REDACTED] Secret([REDACTED])");
        let t =
            s.redact_in("error for url (https://hooks.slack.com/services/T1/B2/abcdef) path /services/T1/B2/abcdef");
        assert!(!t.contains("abcdef"), "{t}");
    }
}
