//! A small HTTPS client for the four core/v1 calls the filter makes: list, watch and get of pods and
//! namespaces. The bearer token file is read again for every request, so a rotated service-account
//! token is used as soon as the kubelet writes it. Errors never carry the token.
use crate::config::ApiConfig;
use crate::model::{List, Status, WatchEvent};
use serde::de::DeserializeOwned;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Connection refused, TLS failure, timeout, a body cut short: the API server is not reachable.
    #[error("{0}")]
    Transport(String),
    /// The API answered with an HTTP error (and maybe a Status body).
    #[error("HTTP {code}: {message}")]
    Http { code: u16, message: String },
    /// The body is not the JSON we expect.
    #[error("bad answer: {0}")]
    Decode(String),
}

impl ApiError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::Http { code: 404, .. })
    }
    pub fn is_gone(&self) -> bool {
        matches!(self, ApiError::Http { code: 410, .. })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("kubernetes_metadata: cannot set up the API client: {0}")]
pub struct SetupError(String);

pub struct Client {
    /// Short calls (list, get): `open_timeout` to connect, `read_timeout` between reads.
    http: reqwest::Client,
    /// Watches: no read timeout of reqwest's, the watch loop times out idle streams itself.
    stream: reqwest::Client,
    base: String,
    token_file: Option<std::path::PathBuf>,
}

/// How long the API server keeps a watch open before ending it (it picks a time near this).
pub const WATCH_SECONDS: u64 = 290;

fn transport(e: reqwest::Error) -> ApiError {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let detail = sluice_core::util::error_chain(&e);
    ApiError::Transport(format!("{kind}: {detail}"))
}

impl Client {
    pub fn new(cfg: &ApiConfig) -> Result<Client, SetupError> {
        let builder = || -> Result<reqwest::ClientBuilder, SetupError> {
            let mut b = reqwest::Client::builder()
                .connect_timeout(cfg.open_timeout)
                .user_agent(concat!("sluice-kube/", env!("CARGO_PKG_VERSION")))
                .danger_accept_invalid_certs(!cfg.verify_ssl);
            if let Some(ca) = &cfg.ca_file {
                let pem = std::fs::read(ca).map_err(|e| SetupError(format!("ca_file {}: {e}", ca.display())))?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| SetupError(format!("ca_file {}: {e}", ca.display())))?;
                if certs.is_empty() {
                    return Err(SetupError(format!("ca_file {}: no certificate in it", ca.display())));
                }
                // The cluster's CA is the one to trust for the API server, not the public roots.
                b = b.tls_built_in_root_certs(false);
                for c in certs {
                    b = b.add_root_certificate(c);
                }
            }
            if let (Some(cert), Some(key)) = (&cfg.client_cert, &cfg.client_key) {
                let mut pem =
                    std::fs::read(cert).map_err(|e| SetupError(format!("client_cert {}: {e}", cert.display())))?;
                pem.push(b'\n');
                pem.extend(std::fs::read(key).map_err(|e| SetupError(format!("client_key {}: {e}", key.display())))?);
                let id = reqwest::Identity::from_pem(&pem)
                    .map_err(|e| SetupError(format!("client_cert/client_key: {e}")))?;
                b = b.identity(id);
            }
            Ok(b)
        };
        let http =
            builder()?.read_timeout(cfg.read_timeout).build().map_err(|e| SetupError(e.without_url().to_string()))?;
        let stream = builder()?.build().map_err(|e| SetupError(e.without_url().to_string()))?;
        Ok(Client { http, stream, base: cfg.base.clone(), token_file: cfg.bearer_token_file.clone() })
    }

    fn token(&self) -> Option<String> {
        let path = self.token_file.as_ref()?;
        match std::fs::read_to_string(path) {
            Ok(t) => Some(t.trim().to_string()).filter(|t| !t.is_empty()),
            Err(e) => {
                tracing::warn!("kubernetes_metadata: cannot read bearer_token_file {}: {e}", path.display());
                None
            }
        }
    }

    async fn send(&self, stream: bool, path: &str, query: &[(&str, &str)]) -> Result<reqwest::Response, ApiError> {
        let http = if stream { &self.stream } else { &self.http };
        let mut req = http.get(format!("{}{path}", self.base)).query(query);
        if let Some(t) = self.token() {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let st: Status = serde_json::from_str(&body).unwrap_or_default();
        let mut message = st.message.unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
        message.truncate(300);
        Err(ApiError::Http { code: status.as_u16(), message })
    }

    async fn json<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T, ApiError> {
        let resp = self.send(false, path, query).await?;
        let bytes = resp.bytes().await.map_err(transport)?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode(e.to_string()))
    }

    /// A list, from the API server's cache (`resourceVersion=0`, as the plugin asks).
    pub async fn list<T: DeserializeOwned>(&self, path: &str, selector: Option<&str>) -> Result<List<T>, ApiError> {
        let mut q = vec![("resourceVersion", "0")];
        if let Some(s) = selector {
            q.push(("fieldSelector", s));
        }
        self.json(path, &q).await
    }

    /// One object; `Ok(None)` is a 404.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, ApiError> {
        match self.json(path, &[("resourceVersion", "0")]).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Open a watch from `rv`.
    pub async fn watch(&self, path: &str, selector: Option<&str>, rv: &str) -> Result<Watch, ApiError> {
        let secs = WATCH_SECONDS.to_string();
        let mut q = vec![("watch", "1"), ("resourceVersion", rv), ("timeoutSeconds", secs.as_str())];
        if let Some(s) = selector {
            q.push(("fieldSelector", s));
        }
        let resp = self.send(true, path, &q).await?;
        Ok(Watch { resp, buf: Vec::new() })
    }
}

/// A watch stream: newline-delimited WatchEvents.
pub struct Watch {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

/// Longest silence on a watch before it is taken as dead (the server ends a watch after
/// [`WATCH_SECONDS`], so a longer silence means a half-open connection).
const WATCH_IDLE: Duration = Duration::from_secs(WATCH_SECONDS + 60);
/// One watch event larger than this is refused (a pod is a few kB; this bounds memory on hostile input).
const MAX_EVENT: usize = 16 << 20;

impl Watch {
    /// The next event, `Ok(None)` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<WatchEvent>, ApiError> {
        loop {
            if let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                return serde_json::from_slice(line).map(Some).map_err(|e| ApiError::Decode(e.to_string()));
            }
            if self.buf.len() > MAX_EVENT {
                return Err(ApiError::Decode("watch event larger than 16 MiB".into()));
            }
            match tokio::time::timeout(WATCH_IDLE, self.resp.chunk()).await {
                Err(_) => return Err(ApiError::Transport("watch idle for too long".into())),
                Ok(Err(e)) => return Err(transport(e)),
                Ok(Ok(None)) => {
                    let rest = std::mem::take(&mut self.buf);
                    let rest = rest.trim_ascii();
                    if rest.is_empty() {
                        return Ok(None);
                    }
                    return serde_json::from_slice(rest).map(Some).map_err(|e| ApiError::Decode(e.to_string()));
                }
                Ok(Ok(Some(bytes))) => self.buf.extend_from_slice(&bytes),
            }
        }
    }
}
