//! Access tokens for the Logging API: a service-account key (JWT bearer grant at the key's
//! `token_uri`), gcloud user credentials (refresh-token grant), or the GCE/GKE metadata server
//! (workload identity). The token is cached and refreshed before it expires.
//!
//! Signing uses the `jsonwebtoken` crate (RS256); the grant itself is two HTTP calls.
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

pub const LOGGING_SCOPE: &str = "https://www.googleapis.com/auth/logging.write";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const DEFAULT_METADATA_HOST: &str = "169.254.169.254";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read credentials file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("credentials file {path} is not valid: {reason}")]
    BadFile { path: String, reason: String },
    #[error("token request to {url} failed: {reason}")]
    Request { url: String, reason: String },
    #[error("token endpoint {url} answered HTTP {status}: {reason}")]
    Status { url: String, status: u16, reason: String },
}

/// The private parts of a service-account key file.
#[derive(Clone, Deserialize)]
pub struct ServiceAccountKey {
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub private_key_id: Option<String>,
    pub private_key: String,
    pub client_email: String,
    #[serde(default)]
    pub token_uri: Option<String>,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey").field("client_email", &self.client_email).finish_non_exhaustive()
    }
}

#[derive(Clone, Deserialize)]
pub struct AuthorizedUser {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    #[serde(default)]
    pub token_uri: Option<String>,
    #[serde(default, alias = "quota_project_id")]
    pub project_id: Option<String>,
}

impl std::fmt::Debug for AuthorizedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizedUser").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// Where tokens come from.
#[derive(Debug, Clone)]
pub enum Credentials {
    ServiceAccount(ServiceAccountKey),
    AuthorizedUser(AuthorizedUser),
    Metadata,
}

impl Credentials {
    /// Read a key file: a service account key or gcloud's `authorized_user` file.
    pub fn from_file(path: &Path) -> Result<Self, AuthError> {
        let p = path.display().to_string();
        let text = std::fs::read(path).map_err(|source| AuthError::Read { path: p.clone(), source })?;
        Self::from_json(&text).map_err(|reason| AuthError::BadFile { path: p, reason })
    }

    pub fn from_json(text: &[u8]) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Kind {
            #[serde(rename = "type")]
            kind: Option<String>,
        }
        let k: Kind = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
        match k.kind.as_deref() {
            Some("service_account") => {
                let key: ServiceAccountKey =
                    serde_json::from_slice(text).map_err(|e| format!("service account key: {e}"))?;
                jsonwebtoken::EncodingKey::from_rsa_pem(key.private_key.as_bytes())
                    .map_err(|e| format!("private_key is not an RSA PEM key: {e}"))?;
                Ok(Credentials::ServiceAccount(key))
            }
            Some("authorized_user") => {
                let u: AuthorizedUser =
                    serde_json::from_slice(text).map_err(|e| format!("authorized_user credentials: {e}"))?;
                Ok(Credentials::AuthorizedUser(u))
            }
            other => Err(format!("unsupported credentials type {other:?} (want service_account or authorized_user)")),
        }
    }

    /// The project the credentials belong to, when the file says.
    pub fn project_id(&self) -> Option<&str> {
        match self {
            Credentials::ServiceAccount(k) => k.project_id.as_deref(),
            Credentials::AuthorizedUser(u) => u.project_id.as_deref(),
            Credentials::Metadata => None,
        }
    }

    /// Application default credentials: `explicit` (the plugin parameter), else
    /// `GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's well-known file, else the metadata server.
    pub fn discover(explicit: Option<&Path>) -> Result<Self, AuthError> {
        if let Some(p) = explicit {
            return Self::from_file(p);
        }
        if let Some(p) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").filter(|p| !p.is_empty()) {
            return Self::from_file(Path::new(&p));
        }
        if let Some(p) = gcloud_default_file().filter(|p| p.is_file()) {
            return Self::from_file(&p);
        }
        Ok(Credentials::Metadata)
    }
}

fn gcloud_default_file() -> Option<PathBuf> {
    let dir = match std::env::var_os("CLOUDSDK_CONFIG") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".config").join("gcloud"),
    };
    Some(dir.join("application_default_credentials.json"))
}

/// The metadata server (`GCE_METADATA_HOST`, default 169.254.169.254).
#[derive(Debug, Clone)]
pub struct Metadata {
    base: String,
    http: reqwest::Client,
}

impl Metadata {
    pub fn from_env(timeout: Duration) -> Self {
        let host = std::env::var("GCE_METADATA_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_METADATA_HOST.to_string());
        Self::new(&host, timeout)
    }

    pub fn new(host: &str, timeout: Duration) -> Self {
        let base = if host.starts_with("http://") || host.starts_with("https://") {
            format!("{}/computeMetadata/v1/", host.trim_end_matches('/'))
        } else {
            format!("http://{host}/computeMetadata/v1/")
        };
        let http =
            reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).no_proxy().build().unwrap_or_default();
        Self { base, http }
    }

    /// `GET computeMetadata/v1/PATH` as text.
    pub async fn get(&self, path: &str) -> Result<String, AuthError> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .header("Metadata-Flavor", "Google")
            .send()
            .await
            .map_err(|e| AuthError::Request { url: url.clone(), reason: e.to_string() })?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| AuthError::Request { url: url.clone(), reason: e.to_string() })?;
        if !status.is_success() {
            return Err(AuthError::Status { url, status: status.as_u16(), reason: short(&body) });
        }
        Ok(body)
    }
}

fn short(s: &str) -> String {
    let mut s: String = s.chars().take(300).collect();
    s.retain(|c| c != '\n');
    s
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Debug, Clone)]
struct Cached {
    token: String,
    refresh_at: Instant,
}

/// Hands out bearer tokens, refreshing them before they expire.
pub struct TokenSource {
    creds: Credentials,
    http: reqwest::Client,
    metadata: Metadata,
    cache: Mutex<Option<Cached>>,
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

impl TokenSource {
    pub fn new(creds: Credentials, http: reqwest::Client, metadata: Metadata) -> Self {
        Self { creds, http, metadata, cache: Mutex::new(None) }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    /// A valid token: the cached one, or a new one when it is close to expiry.
    pub async fn token(&self) -> Result<String, AuthError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok(c.token.clone());
            }
        }
        let fetched = self.fetch().await?;
        let lifetime = Duration::from_secs(fetched.expires_in.unwrap_or(3600).max(1));
        // Refresh a minute early, or half-way through a short-lived token.
        let margin = (lifetime / 2).min(Duration::from_secs(60));
        let token = fetched.access_token;
        *cache = Some(Cached { token: token.clone(), refresh_at: Instant::now() + lifetime - margin });
        tracing::debug!(lifetime_s = lifetime.as_secs(), "obtained a Cloud Logging access token");
        Ok(token)
    }

    /// Forget the cached token (after the API answered 401).
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    async fn fetch(&self) -> Result<TokenResponse, AuthError> {
        match &self.creds {
            Credentials::ServiceAccount(key) => {
                let uri = key.token_uri.as_deref().unwrap_or(DEFAULT_TOKEN_URI);
                let assertion = sign_assertion(key, uri)?;
                let form = [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", &assertion)];
                self.post_form(uri, &form).await
            }
            Credentials::AuthorizedUser(u) => {
                let uri = u.token_uri.as_deref().unwrap_or(DEFAULT_TOKEN_URI);
                let form = [
                    ("grant_type", "refresh_token"),
                    ("client_id", u.client_id.as_str()),
                    ("client_secret", u.client_secret.as_str()),
                    ("refresh_token", u.refresh_token.as_str()),
                ];
                self.post_form(uri, &form).await
            }
            Credentials::Metadata => {
                let body = self.metadata.get("instance/service-accounts/default/token").await?;
                serde_json::from_str(&body).map_err(|e| AuthError::Request {
                    url: "metadata token".into(),
                    reason: format!("bad token response: {e}"),
                })
            }
        }
    }

    async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<TokenResponse, AuthError> {
        let resp = self
            .http
            .post(url)
            .form(form)
            .send()
            .await
            .map_err(|e| AuthError::Request { url: url.into(), reason: e.to_string() })?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| AuthError::Request { url: url.into(), reason: e.to_string() })?;
        if !status.is_success() {
            return Err(AuthError::Status { url: url.into(), status: status.as_u16(), reason: short(&body) });
        }
        serde_json::from_str(&body)
            .map_err(|e| AuthError::Request { url: url.into(), reason: format!("bad token response: {e}") })
    }
}

/// The RS256-signed JWT for the JWT bearer grant.
pub fn sign_assertion(key: &ServiceAccountKey, audience: &str) -> Result<String, AuthError> {
    let bad = |reason: String| AuthError::BadFile { path: key.client_email.clone(), reason };
    let enc = jsonwebtoken::EncodingKey::from_rsa_pem(key.private_key.as_bytes()).map_err(|e| bad(e.to_string()))?;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = key.private_key_id.clone();
    let iat = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let claims = Claims { iss: &key.client_email, scope: LOGGING_SCOPE, aud: audience, iat, exp: iat + 3600 };
    jsonwebtoken::encode(&header, &claims, &enc).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_files() {
        assert!(Credentials::from_json(b"{}").is_err());
        assert!(Credentials::from_json(b"not json").is_err());
        let e = Credentials::from_json(br#"{"type":"service_account","private_key":"nope","client_email":"a@b"}"#)
            .unwrap_err();
        assert!(e.contains("RSA"), "{e}");
        let u = Credentials::from_json(
            br#"{"type":"authorized_user","client_id":"i","client_secret":"s","refresh_token":"r"}"#,
        )
        .unwrap();
        assert!(matches!(u, Credentials::AuthorizedUser(_)));
    }

    #[test]
    fn metadata_base() {
        let m = Metadata::new("127.0.0.1:9", Duration::from_secs(1));
        assert_eq!(m.base, "http://127.0.0.1:9/computeMetadata/v1/");
    }
}
