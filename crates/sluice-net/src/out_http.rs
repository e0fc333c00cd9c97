//! `<match> @type http`: Fluentd's out_http on the buffer engine. Each chunk is one request to `endpoint`
//! (placeholders resolved per chunk), its body the chunk's records through `<format>` (default json, one
//! object per line; `json_array` makes it a JSON array), optionally gzip-compressed.
//!
//! Answers: 2xx is delivered. A code in `retryable_response_codes` (default 503) is retried with backoff
//! (honouring `Retry-After`), as are connection errors and timeouts. Any other code makes the chunk
//! unrecoverable, so it goes to `<secondary>`/`@ERROR` at once; with `error_response_as_unrecoverable
//! false` it is dropped as in Fluentd, but counted and logged.
use async_trait::async_trait;
use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sluice_core::buffer::placeholders;
use sluice_core::buffer::{
    BufferDefaults, BufferedPlugin, Chunk, ChunkKeys, ChunkMetadata, ChunkWriter, WriteError, Zone,
};
use sluice_core::config::{compat, ConfigError, Element};
use sluice_core::metrics::{Counter, MetricSink};
use sluice_core::plugin::{BuildCtx, Formatter};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, RootCertStore};

/// A `Retry-After` longer than a day is taken as a day (it comes from outside; a huge value must not
/// overflow a Duration).
const MAX_RETRY_AFTER_SECS: f64 = 86_400.0;
/// Net::HTTP's default open and read timeouts.
const DEFAULT_TIMEOUT_SECS: u64 = 60;
/// How much of an error answer's body goes into the log and the error message.
const MAX_ERROR_BODY: usize = 512;

#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub method: reqwest::Method,
    pub content_type: String,
    pub json_array: bool,
    pub headers: HeaderMap,
    pub headers_from_placeholders: Vec<(HeaderName, String)>,
    pub gzip: bool,
    pub basic_auth: Option<(String, String)>,
    pub error_response_as_unrecoverable: bool,
    pub retryable_response_codes: Vec<u16>,
}

/// Fluentd's `setup_content_type`: the Content-Type that goes with a built-in formatter.
fn content_type_of(formatter: &str, json_array: bool) -> Option<&'static str> {
    Some(match formatter {
        "json" if json_array => "application/json",
        "json" => "application/x-ndjson",
        "csv" => "text/csv",
        "tsv" | "ltsv" => "text/tab-separated-values",
        "msgpack" => "application/x-msgpack",
        "out_file" | "single_value" | "stdout" | "hash" => "text/plain",
        _ => return None,
    })
}

fn header_name(s: &Element, key: &str, name: &str) -> Result<HeaderName, ConfigError> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| s.error_at(key, format!("'{name}' is not a valid header name")))
}

fn secs(s: &Element, key: &str) -> Result<Option<u64>, ConfigError> {
    match s.opt_int(key)? {
        None => Ok(None),
        Some(v) => u64::try_from(v).map(Some).map_err(|_| s.error_at(key, format!("{key} must be 0 or more"))),
    }
}

fn read_auth(s: &Element) -> Result<Option<(String, String)>, ConfigError> {
    let Some(a) = s.section("auth") else { return Ok(None) };
    match a.enum_or("method", &["basic", "aws_sigv4"], "basic")?.as_str() {
        "basic" => Ok(Some((a.str_or("username", ""), a.str_or("password", "")))),
        _ => {
            for k in ["aws_service", "aws_region", "aws_role_arn"] {
                let _ = a.get(k);
            }
            Err(a
                .error_at("method", "<auth> method aws_sigv4 is not supported by sluice's out_http")
                .with_hint("use basic auth, or send through a signing proxy (proxy parameter)"))
        }
    }
}

fn read_config(s: &Element, formatter_type: &str) -> Result<Config, ConfigError> {
    let endpoint = s.required_str("endpoint")?;
    let method = match s.enum_or("http_method", &["post", "put"], "post")?.as_str() {
        "put" => reqwest::Method::PUT,
        _ => reqwest::Method::POST,
    };
    let json_array = s.bool_or("json_array", false)?;
    if json_array && formatter_type != "json" {
        return Err(s.error_at("json_array", "json_array option could be used with json formatter only"));
    }
    let content_type = match s.opt_str("content_type") {
        Some(c) => c,
        None => content_type_of(formatter_type, json_array).map(str::to_string).ok_or_else(|| {
            s.error("can't determine Content-Type from formatter type. Set content_type parameter explicitly")
        })?,
    };
    let mut headers = HeaderMap::new();
    for (k, v) in s.hash("headers")?.unwrap_or_default() {
        let name = header_name(s, "headers", &k)?;
        let value = HeaderValue::from_str(&v)
            .map_err(|_| s.error_at("headers", format!("the value of header '{k}' is not a valid header value")))?;
        headers.insert(name, value);
    }
    let mut from_placeholders = Vec::new();
    for (k, v) in s.hash("headers_from_placeholders")?.unwrap_or_default() {
        from_placeholders.push((header_name(s, "headers_from_placeholders", &k)?, v));
    }
    // Fluentd 1.18 warns that the default (503) will change in v2; sluice keeps 503.
    let codes = match s.array("retryable_response_codes")? {
        None => vec![503],
        Some(list) => list
            .iter()
            .map(|c| {
                c.trim()
                    .parse::<u16>()
                    .map_err(|_| s.error_at("retryable_response_codes", format!("'{c}' is not an HTTP status code")))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    Ok(Config {
        endpoint,
        method,
        content_type,
        json_array,
        headers,
        headers_from_placeholders: from_placeholders,
        gzip: s.enum_or("compress", &["text", "gzip"], "text")? == "gzip",
        basic_auth: read_auth(s)?,
        error_response_as_unrecoverable: s.bool_or("error_response_as_unrecoverable", true)?,
        retryable_response_codes: codes,
    })
}

fn read_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{path} holds no certificate"));
    }
    Ok(certs)
}

/// The rustls client configuration from the `tls_*` parameters (read now, so a bad path is an error
/// with its line). rustls negotiates TLS 1.2 or 1.3 with its own safe cipher suites.
fn tls_config(s: &Element, read_files: bool) -> Result<Option<rustls::ClientConfig>, ConfigError> {
    if s.enum_or("tls_verify_mode", &["peer", "none"], "peer")? == "none" {
        return Err(s
            .error_at("tls_verify_mode", "tls_verify_mode none is not supported: sluice always verifies TLS")
            .with_hint("put the CA that signed the server certificate in tls_ca_cert_path"));
    }
    if s.enum_or("tls_version", &["TLSv1_1", "TLSv1_2", "TLSv1_3"], "TLSv1_2")? == "TLSv1_1" {
        return Err(s.error_at("tls_version", "TLSv1_1 is not supported: sluice speaks TLS 1.2 and 1.3"));
    }
    let _ = s.get("tls_ciphers");
    if s.has("tls_private_key_passphrase") {
        return Err(s
            .error_at("tls_private_key_passphrase", "encrypted private keys are not supported")
            .with_hint("use an unencrypted PEM key in tls_private_key_path"));
    }
    let ca = s.opt_str("tls_ca_cert_path");
    let cert = s.opt_str("tls_client_cert_path");
    let key = s.opt_str("tls_private_key_path");
    if cert.is_some() != key.is_some() {
        return Err(s.error("tls_client_cert_path and tls_private_key_path go together"));
    }
    if !read_files {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    match &ca {
        Some(p) => {
            for c in read_certs(p).map_err(|e| s.error_at("tls_ca_cert_path", e))? {
                roots.add(c).map_err(|e| s.error_at("tls_ca_cert_path", format!("{p}: {e}")))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| s.error(e.to_string()))?
        .with_root_certificates(roots);
    let mut cfg = match (cert, key) {
        (Some(c), Some(k)) => {
            let certs = read_certs(&c).map_err(|e| s.error_at("tls_client_cert_path", e))?;
            let key = PrivateKeyDer::from_pem_file(&k)
                .map_err(|e| s.error_at("tls_private_key_path", format!("cannot read {k}: {e}")))?;
            builder.with_client_auth_cert(certs, key).map_err(|e| s.error_at("tls_client_cert_path", e.to_string()))?
        }
        _ => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(cfg))
}

fn client(s: &Element, read_files: bool) -> Result<reqwest::Client, ConfigError> {
    let open = secs(s, "open_timeout")?.unwrap_or(DEFAULT_TIMEOUT_SECS);
    let read = secs(s, "read_timeout")?.unwrap_or(DEFAULT_TIMEOUT_SECS);
    let ssl = secs(s, "ssl_timeout")?.unwrap_or(0);
    // Accepted: connections are always kept and reused.
    let _ = s.bool_or("reuse_connections", false)?;
    let connect = Duration::from_secs(open.saturating_add(ssl));
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .http1_only()
        .connect_timeout(connect)
        .read_timeout(Duration::from_secs(read.max(1)))
        // A server that stops reading our body must not hold the flush forever (Net::HTTP's write_timeout).
        .timeout(connect + Duration::from_secs(read.saturating_add(DEFAULT_TIMEOUT_SECS)))
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")));
    // Fluentd's default proxy is $HTTP_PROXY (or $http_proxy), for every endpoint.
    let proxy = s
        .opt_str("proxy")
        .or_else(|| std::env::var("HTTP_PROXY").ok())
        .or_else(|| std::env::var("http_proxy").ok())
        .filter(|p| !p.is_empty());
    if let Some(p) = proxy {
        let px = reqwest::Proxy::all(&p).map_err(|e| s.error_at("proxy", format!("invalid proxy '{p}': {e}")))?;
        b = b.proxy(px);
    }
    if let Some(tls) = tls_config(s, read_files)? {
        b = b.use_preconfigured_tls(tls);
    }
    b.build().map_err(|e| s.error(format!("cannot set up the HTTP client: {e}")))
}

/// Percent-encode a placeholder value for a URL: only unreserved characters (and the `%XX` escapes the
/// placeholder code made) stay, so a value cannot add a path, query, fragment, user or host.
fn push_url_safe(out: &mut String, v: &str) {
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'%') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// `endpoint` for a chunk: its text as written, placeholder values URL-escaped.
pub fn expand_url(template: &str, meta: &ChunkMetadata, zone: &Zone, id: Option<&[u8; 16]>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(i) = rest.find("${") {
        let Some(j) = rest[i + 2..].find('}') else { break };
        out.push_str(&placeholders::expand_in(&rest[..i], meta, zone, id));
        push_url_safe(&mut out, &placeholders::expand_in(&rest[i..i + 3 + j], meta, zone, id));
        rest = &rest[i + 3 + j..];
    }
    out.push_str(&placeholders::expand_in(rest, meta, zone, id));
    out
}

fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(MAX_RETRY_AFTER_SECS)))
}

pub struct HttpWriter {
    cfg: Config,
    client: reqwest::Client,
    formatter: Arc<dyn Formatter>,
    /// Records of chunks answered with an error while `error_response_as_unrecoverable` is false.
    dropped: Counter,
}

impl HttpWriter {
    /// The request body: every record formatted, as a JSON array with `json_array` (Fluentd appends `,`
    /// to each formatted record and drops the last one).
    fn body(&self, chunk: &Chunk) -> Vec<u8> {
        let mut buf = Vec::with_capacity(chunk.bytesize() + chunk.bytesize() / 4 + 2);
        if self.cfg.json_array {
            buf.push(b'[');
        }
        let mut bad = 0usize;
        let mut first = true;
        for e in chunk.events() {
            match e {
                Ok(e) => {
                    if self.cfg.json_array && !first {
                        buf.push(b',');
                    }
                    first = false;
                    self.formatter.format(&e.tag, e.time, &e.record, &mut buf);
                }
                Err(_) => bad += 1,
            }
        }
        if self.cfg.json_array {
            buf.push(b']');
        }
        if bad > 0 {
            tracing::warn!(chunk = %chunk.id_hex(), "out_http: chunk has an undecodable entry; the rest is sent");
        }
        buf
    }

    fn headers(&self, meta: &ChunkMetadata, zone: &Zone, id: Option<&[u8; 16]>) -> Result<HeaderMap, WriteError> {
        let mut h = self.cfg.headers.clone();
        for (name, template) in &self.cfg.headers_from_placeholders {
            let v = placeholders::expand_in(template, meta, zone, id);
            let v = HeaderValue::from_str(&v).map_err(|_| {
                WriteError::unrecoverable(format!("out_http: header '{name}' resolves to a value that is not allowed"))
            })?;
            h.insert(name.clone(), v);
        }
        if let Ok(ct) = HeaderValue::from_str(&self.cfg.content_type) {
            h.insert(reqwest::header::CONTENT_TYPE, ct);
        }
        if let Some((user, pass)) = &self.cfg.basic_auth {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            if let Ok(mut v) = HeaderValue::from_str(&format!("Basic {token}")) {
                v.set_sensitive(true);
                h.insert(reqwest::header::AUTHORIZATION, v);
            }
        }
        if self.cfg.gzip {
            h.insert(reqwest::header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        Ok(h)
    }
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc =
        flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), flate2::Compression::default());
    enc.write_all(data)?;
    enc.finish()
}

/// An error answer's body for the log: at most [`MAX_ERROR_BODY`] bytes, on one line.
fn short(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[async_trait]
impl ChunkWriter for HttpWriter {
    async fn write(&self, chunk: &Chunk) -> Result<(), WriteError> {
        let (zone, id) = match placeholders::current() {
            Some(c) => (c.zone, Some(c.chunk_id)),
            None => (Zone::Local, Some(chunk.id)),
        };
        let meta = &chunk.metadata;
        let url = expand_url(&self.cfg.endpoint, meta, &zone, id.as_ref());
        let url = reqwest::Url::parse(&url)
            .map_err(|e| WriteError::unrecoverable(format!("out_http: endpoint '{url}' is not a URL: {e}")))?;
        let headers = self.headers(meta, &zone, id.as_ref())?;
        let body = self.body(chunk);
        let body = if self.cfg.gzip {
            gzip(&body).map_err(|e| WriteError::retryable(format!("out_http: gzip: {e}")))?
        } else {
            body
        };
        tracing::debug!(method = %self.cfg.method, url = %url, chunk = %chunk.id_hex(), "out_http: sending a chunk");
        let resp = self
            .client
            .request(self.cfg.method.clone(), url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| WriteError::retryable(format!("out_http: {} {url}: {e}", self.cfg.method)))?;
        let status = resp.status();
        if status.is_success() {
            // Read the answer so the connection can be reused; its content does not matter.
            let _ = resp.bytes().await;
            return Ok(());
        }
        let after = retry_after(resp.headers());
        let text = resp.bytes().await.map(|b| short(&b)).unwrap_or_default();
        let msg = format!("{} {} {text}", status.as_u16(), status.canonical_reason().unwrap_or(""));
        if self.cfg.retryable_response_codes.contains(&status.as_u16()) {
            return Err(WriteError::Retryable { message: format!("out_http: {msg}"), after });
        }
        if self.cfg.error_response_as_unrecoverable {
            return Err(WriteError::unrecoverable(format!("out_http: {msg}")));
        }
        self.dropped.add(chunk.records as u64);
        tracing::error!(
            method = %self.cfg.method, url = %url, records = chunk.records, dropped_total = self.dropped.get(),
            "out_http: got error response: {msg}; the chunk is dropped (error_response_as_unrecoverable false)"
        );
        Ok(())
    }

    fn report(&self, sink: &mut dyn MetricSink) {
        sink.counter(
            "sluice_records_dropped_total",
            "Records dropped, by component and reason.",
            &[("reason", "http_error_response")],
            self.dropped.get(),
        );
    }
}

impl BufferedPlugin for HttpWriter {
    /// out_http's buffer has no chunk keys.
    fn buffer_defaults() -> BufferDefaults {
        BufferDefaults { chunk_keys: "", ..Default::default() }
    }

    fn from_conf(s: &Element, ctx: &BuildCtx) -> Result<Self, ConfigError> {
        let compat_format = if s.section("format").is_none() { compat::format(s)? } else { None };
        let formatter_type =
            s.section("format").or(compat_format.as_ref()).and_then(|f| f.plugin_type()).unwrap_or("json").to_string();
        let cfg = read_config(s, &formatter_type)?;
        // An endpoint without placeholders is checked now, with its line, rather than at the first flush.
        if !placeholders::has_placeholders(&cfg.endpoint) {
            let url = reqwest::Url::parse(&cfg.endpoint)
                .map_err(|e| s.error_at("endpoint", format!("'{}' is not a URL: {e}", cfg.endpoint)))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(s.error_at("endpoint", "endpoint must be an http:// or https:// URL"));
            }
        }
        let formatter = ctx.registry.formatter_of(s, "json", ctx)?;
        let client = client(s, !ctx.dry_run)?;
        let keys = ChunkKeys::from_section(s.section("buffer"), &Self::buffer_defaults())?;
        placeholders::check_keys(&cfg.endpoint, &keys, s, "endpoint")?;
        for (_, v) in &cfg.headers_from_placeholders {
            placeholders::check_keys(v, &keys, s, "headers_from_placeholders")?;
        }
        Ok(HttpWriter { cfg, client, formatter, dropped: Counter::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_values_cannot_change_the_url_structure() {
        let meta = ChunkMetadata {
            tag: Some("evil.com#x".into()),
            timekey: None,
            variables: vec![("k".into(), "a/b?c=d@e".into())],
        };
        let u = expand_url("http://h:1/api/${tag}/${k}?x=1", &meta, &Zone::Utc, None);
        assert_eq!(u, "http://h:1/api/evil.com%23x/a%2Fb%3Fc%3Dd%40e?x=1");
        let u = reqwest::Url::parse(&u).unwrap();
        assert_eq!(u.host_str(), Some("h"));
    }

    #[test]
    fn content_types_follow_the_formatter() {
        assert_eq!(content_type_of("json", false), Some("application/x-ndjson"));
        assert_eq!(content_type_of("json", true), Some("application/json"));
        assert_eq!(content_type_of("msgpack", false), Some("application/x-msgpack"));
        assert_eq!(content_type_of("custom", false), None);
    }
}
