//! The filter's API parameters, with fluent-plugin-kubernetes_metadata_filter's names and defaults
//! (its 2.x line, the one with `de_dot`, `use_journal` and `lookup_from_k8s_field`), and the in-cluster
//! defaults: `KUBERNETES_SERVICE_HOST`/`_PORT` and the service account's token and CA.
use crate::meta::MetaOptions;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::Str;
use sluice_core::ruby::regexp::RubyRegex;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_SECRET_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Parameters of older or newer plugin versions that change nothing here: accepted with a warning.
const IGNORED: &[&str] = &[
    "merge_json_log",
    "preserve_json_log",
    "include_namespace_metadata",
    "include_namespace_id",
    "cache_refresh",
    "cache_refresh_variation",
    "time_fields",
    "tls_version",
    "ignore_nil",
];

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `kubernetes_url` as written (the records' `master_url`).
    pub url: String,
    /// The core API's base: `<url>/<apiVersion>` (`/api` is added to a URL without a path).
    pub base: String,
    pub ca_file: Option<PathBuf>,
    pub verify_ssl: bool,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub bearer_token_file: Option<PathBuf>,
    pub watch: bool,
    pub node_name: Option<String>,
    pub open_timeout: Duration,
    pub read_timeout: Duration,
    pub watch_retry_interval: Duration,
    pub watch_retry_backoff_base: u32,
    pub watch_retry_max_times: u32,
    pub cache_size: usize,
    pub cache_ttl: Option<Duration>,
    pub stats_interval: Option<Duration>,
    pub skip_namespace_metadata: bool,
    pub allow_orphans: bool,
    pub orphaned_namespace_name: Str,
    pub orphaned_namespace_id: Str,
}

fn positive_secs(s: &Element, key: &str, default: f64) -> Result<Duration, ConfigError> {
    let v = s.float_or(key, default)?;
    if !(v > 0.0 && v.is_finite() && v < 1e9) {
        return Err(s.error_at(key, format!("'{key}' must be a positive number of seconds")));
    }
    Ok(Duration::from_secs_f64(v))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// The URL the plugin builds from the service environment: `https://HOST:PORT/api` (IPv6 in brackets).
fn in_cluster_url() -> Option<String> {
    let host = env("KUBERNETES_SERVICE_HOST")?;
    let port = env("KUBERNETES_SERVICE_PORT")?;
    let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host };
    Some(format!("https://{host}:{port}/api"))
}

/// Read the API part of `s`: `None` when no API server is configured or found (the tag-only filter).
pub fn api_config(s: &Element) -> Result<Option<(ApiConfig, MetaOptions)>, ConfigError> {
    for p in IGNORED {
        if s.has(p) {
            let _ = s.get(p);
            tracing::warn!(at = %s.loc_of(p), parameter = p, "kubernetes_metadata: '{p}' is not used by this plugin version; ignored");
        }
    }
    if s.has("test_api_adapter") {
        return Err(s.error_at(
            "test_api_adapter",
            "'test_api_adapter' (a Ruby class for the plugin's own tests) is not supported",
        ));
    }
    let api_version = s.str_or("apiVersion", "v1");
    if api_version != "v1" {
        return Err(s.error_at("apiVersion", format!("apiVersion '{api_version}' is not supported: only v1")));
    }
    let de_dot = s.bool_or("de_dot", true)?;
    let de_dot_separator = s.str_or("de_dot_separator", "_");
    if de_dot && de_dot_separator.contains('.') {
        return Err(s.error_at("de_dot_separator", "Invalid de_dot_separator: cannot be or contain '.'"));
    }
    let de_slash = s.bool_or("de_slash", false)?;
    let de_slash_separator = s.str_or("de_slash_separator", "__");
    if de_slash && de_slash_separator.contains('/') {
        return Err(s.error_at("de_slash_separator", "Invalid de_slash_separator: cannot be or contain '/'"));
    }
    let mut annotation_match = Vec::new();
    for re in s.array_or_empty("annotation_match")? {
        match RubyRegex::from_config(&re) {
            Ok(r) => annotation_match.push(r),
            // The plugin logs an invalid expression and goes on without it.
            Err(e) => {
                tracing::error!(at = %s.loc_of("annotation_match"), "kubernetes_metadata: invalid regular expression in annotation_match: {e}")
            }
        }
    }
    let skip_labels = s.bool_or("skip_labels", false)?;
    let skip_pod_labels = skip_labels || s.bool_or("skip_pod_labels", false)?;
    let skip_namespace_labels = skip_labels || s.bool_or("skip_namespace_labels", false)?;
    let skip_container_metadata = s.bool_or("skip_container_metadata", false)?;
    let skip_master_url = s.bool_or("skip_master_url", false)?;
    let skip_namespace_metadata = s.bool_or("skip_namespace_metadata", false)?;
    let include_ownerrefs = s.bool_or("include_ownerrefs_metadata", false)?;
    let watch = s.bool_or("watch", true)?;
    let verify_ssl = s.bool_or("verify_ssl", true)?;
    // rustls takes any certificate of ca_file as a trust anchor, which is what ssl_partial_chain asks.
    let _ = s.bool_or("ssl_partial_chain", false)?;
    let cache_size = s.int_or("cache_size", 1000)?;
    if cache_size <= 0 {
        return Err(s.error_at("cache_size", "'cache_size' must be positive"));
    }
    let cache_ttl = s.int_or("cache_ttl", 3600)?;
    let stats_interval = s.int_or("stats_interval", 30)?;
    let open_timeout = positive_secs(s, "open_timeout", 3.0)?;
    let read_timeout = positive_secs(s, "read_timeout", 10.0)?;
    let watch_retry_interval = positive_secs(s, "watch_retry_interval", 1.0)?;
    let backoff_base = s.int_or("watch_retry_exponential_backoff_base", 2)?;
    let max_times = s.int_or("watch_retry_max_times", 10)?;
    let allow_orphans = s.bool_or("allow_orphans", true)?;
    let orphaned_namespace_name = Str::from(s.str_or("orphaned_namespace_name", ".orphaned").as_str());
    let orphaned_namespace_id = Str::from(s.str_or("orphaned_namespace_id", "orphaned").as_str());
    let secret_dir = PathBuf::from(s.str_or("secret_dir", DEFAULT_SECRET_DIR));
    let path = |k: &str| s.opt_str(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut ca_file = path("ca_file");
    let mut bearer_token_file = path("bearer_token_file");
    let client_cert = path("client_cert");
    let client_key = path("client_key");
    if client_cert.is_some() != client_key.is_some() {
        let k = if client_cert.is_some() { "client_cert" } else { "client_key" };
        return Err(s.error_at(k, "client_cert and client_key go together"));
    }

    let url = match s.opt_str("kubernetes_url").filter(|u| !u.is_empty()) {
        Some(u) => u,
        None => match in_cluster_url() {
            Some(u) => u,
            None => return Ok(None),
        },
    };
    let parsed: hyper::Uri =
        url.parse().map_err(|e| s.error_at("kubernetes_url", format!("'kubernetes_url' is not a URL: {e}")))?;
    if !matches!(parsed.scheme_str(), Some("https" | "http")) || parsed.host().is_none_or(str::is_empty) {
        return Err(s.error_at("kubernetes_url", "'kubernetes_url' must be an https:// (or http://) URL"));
    }
    let mut base = url.trim_end_matches('/').to_string();
    if parsed.path().trim_matches('/').is_empty() {
        base.push_str("/api");
    }
    base.push('/');
    base.push_str(&api_version);

    if secret_dir.is_dir() {
        let ca = secret_dir.join("ca.crt");
        let token = secret_dir.join("token");
        if ca_file.is_none() && ca.is_file() {
            ca_file = Some(ca);
        }
        if bearer_token_file.is_none() && token.is_file() {
            bearer_token_file = Some(token);
        }
    }
    for (k, p) in [("ca_file", &ca_file), ("client_cert", &client_cert), ("client_key", &client_key)] {
        if let Some(p) = p {
            check_readable(s, k, p)?;
        }
    }
    let node_name = env("K8S_NODE_NAME");
    if watch && node_name.is_none() {
        tracing::warn!("kubernetes_metadata: the environment variable K8S_NODE_NAME is not set to the node name: every pod of the cluster is watched");
    }
    let cfg = ApiConfig {
        url: url.clone(),
        base,
        ca_file,
        verify_ssl,
        client_cert,
        client_key,
        bearer_token_file,
        watch,
        node_name,
        open_timeout,
        read_timeout,
        watch_retry_interval,
        watch_retry_backoff_base: u32::try_from(backoff_base.clamp(1, 10)).unwrap_or(2),
        watch_retry_max_times: u32::try_from(max_times.max(0)).unwrap_or(10),
        cache_size: usize::try_from(cache_size).unwrap_or(1000),
        cache_ttl: (cache_ttl >= 0).then(|| Duration::from_secs(cache_ttl.unsigned_abs())),
        stats_interval: (stats_interval > 0).then(|| Duration::from_secs(stats_interval.unsigned_abs())),
        skip_namespace_metadata,
        allow_orphans,
        orphaned_namespace_name,
        orphaned_namespace_id,
    };
    let opts = MetaOptions {
        annotation_match,
        de_dot: de_dot.then_some(de_dot_separator),
        de_slash: de_slash.then_some(de_slash_separator),
        skip_pod_labels,
        skip_namespace_labels,
        skip_container_metadata,
        include_ownerrefs,
        master_url: (!skip_master_url).then(|| Str::from(url.as_str())),
    };
    Ok(Some((cfg, opts)))
}

fn check_readable(s: &Element, key: &str, p: &Path) -> Result<(), ConfigError> {
    std::fs::metadata(p).map(|_| ()).map_err(|e| s.error_at(key, format!("'{key}': cannot read {}: {e}", p.display())))
}
