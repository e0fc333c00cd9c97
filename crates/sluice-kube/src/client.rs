//! A small HTTPS client for the four core/v1 calls the filter makes: list, watch and get of pods and
//! namespaces. The bearer token file is read again for every request, so a rotated service-account
//! token is used as soon as the kubelet writes it. Errors never carry the token.
//!
//! HTTP/1.1 over hyper's connection API and tokio-rustls (ring), with a few idle connections kept for
//! the short calls and one connection per watch. Not reqwest: its pool, URL, proxy and HTTP/2 layers
//! are code the worker does not need, and code the idle process touches is resident memory on every
//! node (docs/BENCHMARKS.md, issue 21).
use crate::config::ApiConfig;
use crate::model::{List, Status, WatchEvent};
use http_body_util::BodyExt;
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, RootCertStore};
use tokio_rustls::TlsConnector;

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

type Body = http_body_util::Empty<Bytes>;

pub struct Client {
    /// None for an `http://` URL.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    host: String,
    port: u16,
    /// The `Host` header: the URL's authority.
    authority: String,
    /// The URL's path up to the API version, without a trailing slash.
    base_path: String,
    open_timeout: Duration,
    read_timeout: Duration,
    token_file: Option<std::path::PathBuf>,
    /// Connections a short call finished with, for the next one.
    idle: Mutex<Vec<SendRequest<Body>>>,
}

/// How long the API server keeps a watch open before ending it (it picks a time near this).
pub const WATCH_SECONDS: u64 = 290;
/// Idle connections kept for the short calls (lookups come in bursts when pods start).
const MAX_IDLE: usize = 4;
/// A list or object body larger than this is refused (bounds memory on hostile input).
const MAX_BODY: usize = 256 << 20;
/// Of an error's body, only this much is read (for its Status message).
const MAX_ERROR_BODY: usize = 64 << 10;

fn transport(kind: &str, e: &dyn std::error::Error) -> ApiError {
    ApiError::Transport(format!("{kind}: {}", sluice_core::util::error_chain(e)))
}

fn timeout() -> ApiError {
    ApiError::Transport("timeout".into())
}

/// Percent-encode all but the unreserved characters: keeps a name one path segment, a value one
/// query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn read_pem_certs(what: &str, path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| SetupError(format!("{what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(SetupError(format!("{what} {}: no certificate in it", path.display())));
    }
    Ok(certs)
}

fn tls_config(cfg: &ApiConfig) -> Result<rustls::ClientConfig, SetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError(e.to_string()))?;
    let builder = if !cfg.verify_ssl {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        match &cfg.ca_file {
            // The cluster's CA is the one to trust for the API server, not the public roots.
            Some(ca) => {
                for c in read_pem_certs("ca_file", ca)? {
                    roots.add(c).map_err(|e| SetupError(format!("ca_file {}: {e}", ca.display())))?;
                }
            }
            // As the plugin (Ruby's OpenSSL): the system's trust store.
            None => {
                for c in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(c);
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    let mut tls = match (&cfg.client_cert, &cfg.client_key) {
        (Some(cert), Some(key)) => {
            let certs = read_pem_certs("client_cert", cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| SetupError(format!("client_key {}: {e}", key.display())))?;
            builder.with_client_auth_cert(certs, key).map_err(|e| SetupError(format!("client_cert/client_key: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

impl Client {
    pub fn new(cfg: &ApiConfig) -> Result<Client, SetupError> {
        let uri: hyper::Uri = cfg.base.parse().map_err(|e| SetupError(format!("kubernetes_url: {e}")))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(SetupError("kubernetes_url must be an https:// (or http://) URL".into())),
        };
        let authority = uri.authority().ok_or_else(|| SetupError("kubernetes_url has no host".into()))?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = if https {
            let name = ServerName::try_from(host.clone())
                .map_err(|e| SetupError(format!("kubernetes_url host {host}: {e}")))?;
            Some((TlsConnector::from(Arc::new(tls_config(cfg)?)), name))
        } else {
            None
        };
        Ok(Client {
            tls,
            host,
            port,
            authority: authority.as_str().to_string(),
            base_path: uri.path().trim_end_matches('/').to_string(),
            open_timeout: cfg.open_timeout,
            read_timeout: cfg.read_timeout,
            token_file: cfg.bearer_token_file.clone(),
            idle: Mutex::new(Vec::new()),
        })
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

    /// A new connection, TLS included, within `open_timeout`.
    async fn connect(&self) -> Result<SendRequest<Body>, ApiError> {
        let open = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| transport("connection failed", &e))?;
            let _ = tcp.set_nodelay(true);
            match &self.tls {
                Some((tls, name)) => {
                    let s = tls.connect(name.clone(), tcp).await.map_err(|e| transport("connection failed", &e))?;
                    handshake(s).await
                }
                None => handshake(tcp).await,
            }
        };
        tokio::time::timeout(self.open_timeout, open).await.map_err(|_| timeout())?
    }

    fn request(&self, path: &str, query: &[(&str, &str)]) -> Result<Request<Body>, ApiError> {
        let mut uri = format!("{}{path}", self.base_path);
        for (i, (k, v)) in query.iter().enumerate() {
            uri.push(if i == 0 { '?' } else { '&' });
            uri.push_str(&encode(k));
            uri.push('=');
            uri.push_str(&encode(v));
        }
        let mut req = Request::get(uri)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::USER_AGENT, concat!("sluice-kube/", env!("CARGO_PKG_VERSION")))
            .header(hyper::header::ACCEPT, "application/json");
        if let Some(t) = self.token() {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        req.body(Body::new()).map_err(|e| transport("request failed", &e))
    }

    /// Send on `conn`; the answer's head within `read_timeout`.
    async fn send_on(&self, conn: &mut SendRequest<Body>, req: Request<Body>) -> Result<Response<Incoming>, ApiError> {
        match tokio::time::timeout(self.read_timeout, conn.send_request(req)).await {
            Err(_) => Err(timeout()),
            Ok(Err(e)) => Err(transport("request failed", &e)),
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// An error status into [`ApiError::Http`], with the Status body's message.
    async fn check(&self, resp: Response<Incoming>) -> Result<Response<Incoming>, ApiError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = read_body(resp.into_body(), MAX_ERROR_BODY, self.read_timeout).await.unwrap_or_default();
        let st: Status = serde_json::from_slice(&body).unwrap_or_default();
        let mut message = st.message.unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
        message.truncate(300);
        Err(ApiError::Http { code: status.as_u16(), message })
    }

    /// A short call: an idle connection if one is left (a fresh one when it turns out closed), its
    /// whole body, and the connection back to the idle ones.
    async fn json<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T, ApiError> {
        let reused = {
            let mut idle = self.idle.lock();
            std::iter::from_fn(|| idle.pop()).find(|c| c.is_ready())
        };
        let (conn, resp) = match reused {
            Some(mut c) => match self.send_on(&mut c, self.request(path, query)?).await {
                Ok(r) => (c, r),
                // The server closed it meanwhile: a GET can be sent again, on a new connection. (Not
                // after a timeout: the server is slow, and a second wait would double the filter's.)
                Err(_) if c.is_closed() => self.send_new(path, query).await?,
                Err(e) => return Err(e),
            },
            None => self.send_new(path, query).await?,
        };
        let body = match self.check(resp).await {
            Ok(r) => read_body(r.into_body(), MAX_BODY, self.read_timeout).await?,
            Err(e) => {
                self.keep(conn).await;
                return Err(e);
            }
        };
        self.keep(conn).await;
        serde_json::from_slice(&body).map_err(|e| ApiError::Decode(e.to_string()))
    }

    async fn send_new(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<(SendRequest<Body>, Response<Incoming>), ApiError> {
        let mut c = self.connect().await?;
        let r = self.send_on(&mut c, self.request(path, query)?).await?;
        Ok((c, r))
    }

    /// Keep a connection whose answer was read to the end for the next short call.
    async fn keep(&self, mut conn: SendRequest<Body>) {
        // Ready again once hyper has seen the end of the answer; a closed one never is.
        if tokio::time::timeout(Duration::from_millis(100), conn.ready()).await.is_ok_and(|r| r.is_ok()) {
            let mut idle = self.idle.lock();
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
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

    /// Open a watch from `rv`, on a connection of its own.
    pub async fn watch(&self, path: &str, selector: Option<&str>, rv: &str) -> Result<Watch, ApiError> {
        let secs = WATCH_SECONDS.to_string();
        let mut q = vec![("watch", "1"), ("resourceVersion", rv), ("timeoutSeconds", secs.as_str())];
        if let Some(s) = selector {
            q.push(("fieldSelector", s));
        }
        let mut conn = self.connect().await?;
        let resp = self.send_on(&mut conn, self.request(path, &q)?).await?;
        let resp = self.check(resp).await?;
        Ok(Watch { body: resp.into_body(), buf: Vec::new() })
    }
}

/// The HTTP/1.1 handshake on an open stream; the connection is driven by a task of the worker's runtime.
async fn handshake<S>(io: S) -> Result<SendRequest<Body>, ApiError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| transport("connection failed", &e))?;
    tokio::spawn(async move {
        // Its errors reach the request that was using it.
        let _ = conn.await;
    });
    Ok(send)
}

/// Read a body to its end within `limit` bytes, each read within `read_timeout`.
async fn read_body(mut body: Incoming, limit: usize, read_timeout: Duration) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(read_timeout, body.frame()).await {
            Err(_) => return Err(timeout()),
            Ok(None) => return Ok(out),
            Ok(Some(Err(e))) => return Err(transport("request failed", &e)),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if out.len().saturating_add(data.len()) > limit {
                        return Err(ApiError::Decode(format!("answer larger than {} MiB", limit >> 20)));
                    }
                    out.extend_from_slice(&data);
                }
            }
        }
    }
}

/// A watch stream: newline-delimited WatchEvents.
pub struct Watch {
    body: Incoming,
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
            match tokio::time::timeout(WATCH_IDLE, self.body.frame()).await {
                Err(_) => return Err(ApiError::Transport("watch idle for too long".into())),
                Ok(Some(Err(e))) => return Err(transport("request failed", &e)),
                Ok(None) => {
                    let rest = std::mem::take(&mut self.buf);
                    let rest = rest.trim_ascii();
                    if rest.is_empty() {
                        return Ok(None);
                    }
                    return serde_json::from_slice(rest).map(Some).map_err(|e| ApiError::Decode(e.to_string()));
                }
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

/// `verify_ssl false`: any certificate is accepted (as the plugin's VERIFY_NONE); the handshake's
/// signatures are still checked, so the peer holds the certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
