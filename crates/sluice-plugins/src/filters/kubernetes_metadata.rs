//! `kubernetes_metadata` (fluent-plugin-kubernetes_metadata_filter) without the Kubernetes API: the pod,
//! namespace, container and container id come from the tag (`var.log.containers.POD_NS_CONTAINER-ID.log`,
//! as in_tail names the files of `/var/log/containers`) or, for journald records, from `CONTAINER_NAME`
//! and `CONTAINER_ID_FULL`. The record gets the plugin's `docker` and `kubernetes` maps.
//!
//! This is the path without an API server. `sluice-kube` registers the same `@type` with the API lookups
//! (labels, annotations, ids, images, namespace metadata) and falls back to this one; it reuses the name
//! parsing below. Built alone (a registry without `sluice-kube`), the API parameters are accepted with a
//! warning.
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Events, Map, Str, Value};
use sluice_core::plugin::{BuildCtx, ErrorEvents, Filter};
use sluice_core::ruby::regexp::RubyRegex;
use std::sync::Arc;

/// The plugin's default `tag_to_kubernetes_name_regexp`.
pub const DEFAULT_TAG_REGEXP: &str = r"var\.log\.containers\.(?<pod_name>[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)_(?<namespace>[^_]+)_(?<container_name>.+)-(?<docker_id>[a-z0-9]{64})\.log$";

/// The plugin's default `container_name_to_kubernetes_regexp` (journald's `CONTAINER_NAME`).
pub const DEFAULT_CONTAINER_NAME_REGEXP: &str = r"^(?<name_prefix>[^_]+)_(?<container_name>[^\._]+)(\.(?<container_hash>[^_]+))?_(?<pod_name>[^_]+)_(?<namespace>[^_]+)_[^_]+_[^_]+$";

/// Parameters that only matter with the API server.
pub const API_PARAMS: &[&str] = &[
    "kubernetes_url",
    "apiVersion",
    "client_cert",
    "client_key",
    "ca_file",
    "verify_ssl",
    "bearer_token_file",
    "secret_dir",
    "watch",
    "cache_size",
    "cache_ttl",
    "annotation_match",
    "de_dot",
    "de_dot_separator",
    "de_slash",
    "allow_orphans",
    "orphaned_namespace_name",
    "orphaned_namespace_id",
    "skip_labels",
    "skip_container_metadata",
    "skip_master_url",
    "skip_namespace_metadata",
    "skip_pod_labels",
    "include_namespace_metadata",
    "include_namespace_id",
    "stats_interval",
    "ssl_partial_chain",
    "watch_retry_interval",
    "watch_retry_exponential_backoff_base",
    "watch_retry_max_times",
    "open_timeout",
    "read_timeout",
    "test_api_adapter",
    "cache_refresh",
    "cache_refresh_variation",
    "merge_json_log",
    "preserve_json_log",
    "time_fields",
    "tls_version",
];

pub struct KubernetesMetadata {
    tag_regexp: RubyRegex,
    container_name_regexp: RubyRegex,
    /// `use_journal`: None (the default) tries journald fields on every record, as the plugin does.
    use_journal: Option<bool>,
    lookup_from_k8s_field: bool,
    host: Option<Str>,
}

pub fn build(s: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Filter>, ConfigError> {
    let f = KubernetesMetadata::from_element(s)?;
    for p in API_PARAMS {
        if s.has(p) {
            let _ = s.get(p);
            tracing::warn!(
                at = %s.loc_of(p),
                parameter = p,
                "kubernetes_metadata: '{p}' needs the Kubernetes API, which this build does not call; ignored \
                 (labels, annotations and namespace metadata are not added)"
            );
        }
    }
    Ok(Arc::new(f))
}

impl KubernetesMetadata {
    /// The names part of the configuration (regexps, `use_journal`, `lookup_from_k8s_field`, the host).
    pub fn from_element(s: &Element) -> Result<Self, ConfigError> {
        let re = |key: &str, default: &str| -> Result<RubyRegex, ConfigError> {
            let v = s.str_or(key, default);
            RubyRegex::from_config(&v).map_err(|e| s.error_at(key, format!("'{key}' parameter: {e}")))
        };
        let tag_regexp = re("tag_to_kubernetes_name_regexp", DEFAULT_TAG_REGEXP)?;
        let container_name_regexp = re("container_name_to_kubernetes_regexp", DEFAULT_CONTAINER_NAME_REGEXP)?;
        let use_journal = match s.get("use_journal") {
            Some(_) => Some(s.bool_or("use_journal", false)?),
            None => None,
        };
        let lookup_from_k8s_field = s.bool_or("lookup_from_k8s_field", true)?;
        let host = std::env::var("K8S_NODE_NAME").ok().filter(|h| !h.is_empty()).map(Str::from);
        Ok(KubernetesMetadata { tag_regexp, container_name_regexp, use_journal, lookup_from_k8s_field, host })
    }

    /// `use_journal`: None (unset) tries journald fields on every record.
    pub fn use_journal(&self) -> Option<bool> {
        self.use_journal
    }

    pub fn lookup_from_k8s_field(&self) -> bool {
        self.lookup_from_k8s_field
    }

    /// K8S_NODE_NAME, read when the filter was built.
    pub fn host(&self) -> Option<&Str> {
        self.host.as_ref()
    }
}

/// The names a record's source carries: what the plugin's `get_metadata_for_record` starts from.
#[derive(Debug, Clone)]
pub struct Meta {
    pub namespace: Value,
    pub pod_name: Value,
    pub container_name: Value,
    pub docker_id: Option<Value>,
}

impl KubernetesMetadata {
    /// The `docker` and `kubernetes` maps from the names alone (no API).
    pub fn metadata_maps(&self, m: &Meta) -> (Value, Value) {
        let mut docker = Map::with_capacity(1);
        docker.insert("container_id", m.docker_id.clone().unwrap_or_else(|| Value::from("")));
        let mut k = Map::with_capacity(4);
        k.insert("container_name", m.container_name.clone());
        k.insert("namespace_name", m.namespace.clone());
        k.insert("pod_name", m.pod_name.clone());
        if let Some(h) = &self.host {
            k.insert("host", Value::Str(h.clone()));
        }
        (Value::Map(docker), Value::Map(k))
    }

    pub fn meta_from_tag(&self, tag: &str) -> Option<Meta> {
        let mut caps = Map::new();
        if !self.tag_regexp.captures_into(tag, &mut self.tag_regexp.slots(), &mut caps) {
            return None;
        }
        let mut get = |k: &str| caps.remove(k).unwrap_or(Value::Null);
        let docker_id = get("docker_id");
        Some(Meta {
            namespace: get("namespace"),
            pod_name: get("pod_name"),
            container_name: get("container_name"),
            docker_id: (!docker_id.is_null()).then_some(docker_id),
        })
    }

    pub fn meta_from_journal(&self, record: &Map) -> Option<Meta> {
        let name = record.get("CONTAINER_NAME")?;
        let id = record.get("CONTAINER_ID_FULL")?;
        let mut caps = Map::new();
        let text = name.match_text();
        if !self.container_name_regexp.captures_into(&text, &mut self.container_name_regexp.slots(), &mut caps) {
            tracing::debug!("kubernetes_metadata: CONTAINER_NAME does not match container_name_to_kubernetes_regexp");
            return None;
        }
        let mut get = |k: &str| caps.remove(k).unwrap_or(Value::Null);
        Some(Meta {
            namespace: get("namespace"),
            pod_name: get("pod_name"),
            container_name: get("container_name"),
            docker_id: Some(id.clone()),
        })
    }

    /// The plugin's `lookup_from_k8s_field`: does the record already carry its names?
    pub fn meta_from_fields(&self, record: &Map) -> Option<Meta> {
        let k = record.get("kubernetes")?.as_map()?;
        let d = record.get("docker")?.as_map()?;
        Some(Meta {
            namespace: k.get("namespace_name")?.clone(),
            pod_name: k.get("pod_name")?.clone(),
            container_name: k.get("container_name")?.clone(),
            docker_id: Some(d.get("container_id")?.clone()),
        })
    }
}

impl Filter for KubernetesMetadata {
    fn filter(&self, tag: &str, events: &mut Events, _errors: &mut ErrorEvents) {
        let tag_maps =
            if self.use_journal == Some(true) { None } else { self.meta_from_tag(tag).map(|m| self.metadata_maps(&m)) };
        for ev in events.iter_mut() {
            let mut maps = tag_maps.clone();
            if self.use_journal != Some(false) {
                if let Some(m) = self.meta_from_journal(&ev.record) {
                    maps = Some(self.metadata_maps(&m));
                }
            }
            if self.lookup_from_k8s_field && self.meta_from_fields(&ev.record).is_some() {
                // The plugin would look these names up in the API and replace the maps with what it finds;
                // without the API the record's own maps are the best there is: kept as they are.
                continue;
            }
            if let Some((docker, kube)) = maps {
                // `record.merge(metadata)`: the two maps replace any old ones.
                ev.record.insert("docker", docker);
                ev.record.insert("kubernetes", kube);
            }
        }
    }
}
