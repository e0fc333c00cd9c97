//! `@type google_cloud`: Google Cloud Logging output, accepting fluent-plugin-google-cloud's
//! configuration. REST `entries:write` on the buffered output engine.
pub mod auth;
pub mod client;
pub mod entry;
pub mod resource;
pub mod severity;

use auth::{Credentials, Metadata, TokenSource};
use client::{GoogleCloudWriter, Limits, PlatformConfig, WriterConfig};
use entry::{EntryOptions, SpecialKeys};
use resource::{TagMatcher, DEFAULT_K8S_TAG_REGEXP};
use sluice_core::buffer::{buffered, BufferDefaults, BufferedPlugin};
use sluice_core::config::{ConfigError, Element};
use sluice_core::plugin::{BuildCtx, Registry};
use std::path::Path;
use std::time::Duration;

pub const DEFAULT_LOGGING_API_URL: &str = "https://logging.googleapis.com";

/// Register `google_cloud`.
pub fn register(reg: &mut Registry) {
    reg.register_output("google_cloud", buffered::<GoogleCloudWriter>);
}

/// Buffer defaults of the Cloud Logging agent's documented configuration: 512 KiB chunks flushed
/// every 5 s, retries at most 5 minutes apart.
pub fn buffer_defaults() -> BufferDefaults {
    BufferDefaults {
        chunk_limit_size: 512 * 1024,
        flush_interval: Duration::from_secs(5),
        retry_max_interval: Some(Duration::from_secs(300)),
        ..BufferDefaults::default()
    }
}

impl BufferedPlugin for GoogleCloudWriter {
    fn buffer_defaults() -> BufferDefaults {
        buffer_defaults()
    }

    fn from_conf(conf: &Element, _ctx: &BuildCtx) -> Result<Self, ConfigError> {
        writer_from_conf(conf)
    }
}

fn opt_nonempty(conf: &Element, key: &str) -> Option<String> {
    conf.opt_str(key).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Build the writer from a `<match>` section (everything but `<buffer>`).
pub fn writer_from_conf(conf: &Element) -> Result<GoogleCloudWriter, ConfigError> {
    for old in ["auth_method", "private_key_email", "private_key_path", "private_key_passphrase"] {
        if conf.has(old) {
            conf.opt_str(old);
            return Err(conf.error_at(old, format!("'{old}' is no longer supported by google_cloud")).with_hint(
                "remove it; use GOOGLE_APPLICATION_CREDENTIALS or credentials_path with a service account key",
            ));
        }
    }
    if conf.bool_or("use_grpc", false)? {
        tracing::warn!("google_cloud: use_grpc is not supported; using the REST API");
    }
    // Accepted for compatibility, no effect (see docs/plugins/google_cloud.md).
    conf.bool_or("enable_monitoring", false)?;
    for k in ["monitoring_type", "non_utf8_replacement_string", "subservice_name", "metadata_agent_url", "statusz_port"]
    {
        conf.opt_str(k);
    }
    for k in ["coerce_to_utf8", "detect_subservice", "use_aws_availability_zone", "enable_metadata_agent"] {
        conf.bool_or(k, true)?;
    }

    let matcher_src = conf.str_or("kubernetes_tag_regexp", DEFAULT_K8S_TAG_REGEXP);
    let matcher = TagMatcher::new(&matcher_src)
        .map_err(|e| conf.error_at("kubernetes_tag_regexp", format!("invalid kubernetes_tag_regexp: {e}")))?;
    let d = SpecialKeys::default();
    let keys = SpecialKeys {
        http_request: conf.str_or("http_request_key", &d.http_request),
        operation: conf.str_or("operation_key", &d.operation),
        source_location: conf.str_or("source_location_key", &d.source_location),
        trace: conf.str_or("trace_key", &d.trace),
        span_id: conf.str_or("span_id_key", &d.span_id),
        insert_id: conf.str_or("insert_id_key", &d.insert_id),
        labels: conf.str_or("labels_key", &d.labels),
        trace_sampled: conf.str_or("trace_sampled_key", &d.trace_sampled),
    };
    let entry = EntryOptions {
        keys,
        labels: conf.hash("labels")?.unwrap_or_default(),
        label_map: conf.hash("label_map")?.unwrap_or_default(),
        detect_json: conf.bool_or("detect_json", false)?,
        autoformat_stackdriver_trace: conf.bool_or("autoformat_stackdriver_trace", true)?,
        adjust_invalid_timestamps: conf.bool_or("adjust_invalid_timestamps", true)?,
        require_valid_tags: conf.bool_or("require_valid_tags", false)?,
        matcher,
    };

    let platform = PlatformConfig {
        project_id: opt_nonempty(conf, "project_id"),
        zone: opt_nonempty(conf, "zone"),
        vm_id: opt_nonempty(conf, "vm_id"),
        vm_name: opt_nonempty(conf, "vm_name"),
        cluster_name: opt_nonempty(conf, "k8s_cluster_name"),
        cluster_location: opt_nonempty(conf, "k8s_cluster_location"),
        use_metadata_service: conf.bool_or("use_metadata_service", true)?,
    };

    let creds_path = opt_nonempty(conf, "credentials_path");
    let creds = Credentials::discover(creds_path.as_deref().map(Path::new)).map_err(|e| {
        let key = if creds_path.is_some() { "credentials_path" } else { "@type" };
        conf.error_at(key, e.to_string())
    })?;
    if platform.project_id.is_none() && creds.project_id().is_none() && !platform.use_metadata_service {
        return Err(conf
            .error("google_cloud needs a project: none configured and use_metadata_service is false")
            .with_hint("add 'project_id YOUR_PROJECT'"));
    }

    let logging_api_url = conf.str_or("logging_api_url", DEFAULT_LOGGING_API_URL).trim_end_matches('/').to_string();
    if !(logging_api_url.starts_with("https://") || logging_api_url.starts_with("http://")) {
        return Err(conf.error_at("logging_api_url", "logging_api_url must start with https:// or http://"));
    }
    let dl = Limits::default();
    let max_entries = conf.int_or("max_entries_per_request", dl.max_entries_per_request as i64)?;
    if max_entries < 1 {
        return Err(conf.error_at("max_entries_per_request", "max_entries_per_request must be at least 1"));
    }
    let max_bytes = conf.size_or("max_request_size", dl.max_request_bytes as u64)?;
    if !(1024..=10_000_000).contains(&max_bytes) {
        return Err(conf.error_at("max_request_size", "max_request_size must be between 1k and 10MB"));
    }
    let limits = Limits {
        max_entries_per_request: max_entries as usize,
        max_request_bytes: max_bytes as usize,
        max_entry_bytes: dl.max_entry_bytes,
    };
    let timeout = conf.time_or("request_timeout", 60.0)?;
    if !(timeout > 0.0 && timeout.is_finite()) {
        return Err(conf.error_at("request_timeout", "request_timeout must be positive"));
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(timeout))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| conf.error(format!("cannot create the HTTP client: {e}")))?;
    let metadata = Metadata::from_env(Duration::from_secs(3));
    let tokens = TokenSource::new(creds, http.clone(), metadata.clone());
    let cfg = WriterConfig {
        entry,
        platform,
        partial_success: conf.bool_or("partial_success", true)?,
        split_logs_by_tag: conf.bool_or("split_logs_by_tag", false)?,
        logging_api_url,
        limits,
    };
    Ok(GoogleCloudWriter::new(cfg, http, tokens, metadata))
}
