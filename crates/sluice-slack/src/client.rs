//! HTTP to Slack: an incoming webhook or `chat.postMessage`. Errors carry Slack's error code and the HTTP
//! status, never the URL or the token.
use crate::config::{Endpoint, Secret, SlackConfig};
use serde_json::Value as Json;
use std::time::Duration;

/// Longest `Retry-After` we honour inside a write; longer ones are handed to the engine's backoff.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// HTTP 429 (or `ok:false, error:ratelimited`): wait `after`, then try again.
    #[error("rate limited by Slack (retry after {after:?})")]
    RateLimited { after: Duration },
    /// 5xx, timeouts, refused connections: worth retrying later.
    #[error("{0}")]
    Retryable(String),
    /// 4xx and Slack errors that will not go away (invalid_auth, channel_not_found, invalid_blocks...).
    #[error("{0}")]
    Fatal(String),
}

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client: {0}")]
pub struct ClientError(String);

pub struct SlackClient {
    http: reqwest::Client,
    endpoint: Endpoint,
}

/// Keep only what looks like a Slack error code (`invalid_payload`), so bodies never reach logs whole.
fn error_code(body: &str) -> String {
    let code: String = body.trim().chars().take(64).take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    if code.is_empty() {
        "unknown_error".into()
    } else {
        code
    }
}

/// A `Retry-After` over a day is taken as a day, so a huge value cannot overflow a Duration.
fn retry_after(resp: &reqwest::Response) -> Duration {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(86_400.0)))
        .unwrap_or(Duration::from_secs(1))
}

const RETRYABLE_API_ERRORS: &[&str] =
    &["internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"];

impl SlackClient {
    pub fn new(cfg: &SlackConfig) -> Result<Self, ClientError> {
        let mut b = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("sluice-slack/", env!("CARGO_PKG_VERSION")));
        if let Some(p) = &cfg.https_proxy {
            let proxy =
                reqwest::Proxy::https(p).map_err(|e| ClientError(format!("https_proxy: {}", e.without_url())))?;
            b = b.proxy(proxy);
        }
        let http = b.build().map_err(|e| ClientError(e.without_url().to_string()))?;
        Ok(SlackClient { http, endpoint: cfg.endpoint.clone() })
    }

    fn secret(&self) -> Option<&Secret> {
        match &self.endpoint {
            Endpoint::Webhook { url } => Some(url),
            Endpoint::Api { token, .. } => Some(token),
            Endpoint::File { .. } => None,
        }
    }

    fn transport(&self, e: reqwest::Error) -> SendError {
        let kind = if e.is_timeout() {
            "timeout"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        let e = e.without_url();
        let mut detail = sluice_core::util::error_chain(&e);
        if let Some(secret) = self.secret() {
            detail = secret.redact_in(&detail);
        }
        SendError::Retryable(format!("{kind}: {detail}"))
    }

    /// Post one message.
    pub async fn post(&self, body: &Json) -> Result<(), SendError> {
        match &self.endpoint {
            Endpoint::File { path } => append_line(path, body).await,
            Endpoint::Webhook { url } => {
                let resp = self.http.post(url.expose()).json(body).send().await.map_err(|e| self.transport(e))?;
                let status = resp.status();
                if status.as_u16() == 429 {
                    return Err(SendError::RateLimited { after: retry_after(&resp) });
                }
                let text = resp.text().await.unwrap_or_default();
                if status.is_success() {
                    return Ok(());
                }
                let code = error_code(&text);
                if status.is_server_error() || status.as_u16() == 408 {
                    Err(SendError::Retryable(format!("webhook answered HTTP {} ({code})", status.as_u16())))
                } else {
                    Err(SendError::Fatal(format!("webhook answered HTTP {} ({code})", status.as_u16())))
                }
            }
            Endpoint::Api { token, api_base } => {
                let url = format!("{api_base}chat.postMessage");
                let resp = self
                    .http
                    .post(url)
                    .bearer_auth(token.expose())
                    .json(body)
                    .send()
                    .await
                    .map_err(|e| self.transport(e))?;
                let status = resp.status();
                if status.as_u16() == 429 {
                    return Err(SendError::RateLimited { after: retry_after(&resp) });
                }
                if status.is_server_error() || status.as_u16() == 408 {
                    return Err(SendError::Retryable(format!("chat.postMessage answered HTTP {}", status.as_u16())));
                }
                let text = resp.text().await.unwrap_or_default();
                let parsed: Option<Json> = serde_json::from_str(&text).ok();
                let ok = parsed.as_ref().and_then(|j| j.get("ok")).and_then(Json::as_bool);
                match ok {
                    Some(true) => Ok(()),
                    _ => {
                        let code = parsed
                            .as_ref()
                            .and_then(|j| j.get("error"))
                            .and_then(Json::as_str)
                            .map(error_code)
                            .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
                        if code == "ratelimited" {
                            Err(SendError::RateLimited { after: Duration::from_secs(1) })
                        } else if RETRYABLE_API_ERRORS.contains(&code.as_str()) {
                            Err(SendError::Retryable(format!("chat.postMessage failed: {code}")))
                        } else {
                            Err(SendError::Fatal(format!("chat.postMessage failed: {code}")))
                        }
                    }
                }
            }
        }
    }
}

/// The `file://` stand-in: one JSON line per message, appended whole in one write.
async fn append_line(path: &std::path::Path, body: &Json) -> Result<(), SendError> {
    use tokio::io::AsyncWriteExt;
    let mut line = serde_json::to_vec(body).map_err(|e| SendError::Fatal(format!("cannot encode the message: {e}")))?;
    line.push(b'\n');
    let mut f = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
        .map_err(|e| SendError::Retryable(format!("cannot open {}: {e}", path.display())))?;
    f.write_all(&line).await.map_err(|e| SendError::Retryable(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::error_code;

    #[test]
    fn error_codes_are_short_and_safe() {
        assert_eq!(error_code("invalid_payload"), "invalid_payload");
        assert_eq!(error_code("no_text\n"), "no_text");
        assert_eq!(error_code("<html>secret stuff"), "unknown_error");
    }
}
