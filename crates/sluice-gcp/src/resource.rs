//! The monitored resource of a log entry: `k8s_container` from the record's `kubernetes` map or from
//! the tag, else `gce_instance` when the VM is known, else `global`.
use regex::Regex;
use sluice_core::event::{Map, Value};
use std::collections::BTreeMap;

/// fluent-plugin-google-cloud's default `kubernetes_tag_regexp`, made to also accept the tag of a CRI
/// log file (`kubernetes.var.log.containers.POD_NAMESPACE_CONTAINER-<64 hex id>.log`).
pub const DEFAULT_K8S_TAG_REGEXP: &str = r"(?:^|\.)(?P<pod_name>[^_.]+)_(?P<namespace_name>[^_.]+)_(?P<container_name>[^_.]+?)(?:-(?P<container_id>[0-9a-f]{64}))?(?:\.log)?$";

/// What is known about where sluice runs: from parameters, the key file and the metadata server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Platform {
    pub project_id: String,
    pub zone: Option<String>,
    pub vm_id: Option<String>,
    pub vm_name: Option<String>,
    pub cluster_name: Option<String>,
    pub cluster_location: Option<String>,
}

/// A `MonitoredResource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub kind: &'static str,
    pub labels: BTreeMap<String, String>,
}

impl Resource {
    pub fn to_json(&self) -> serde_json::Value {
        let labels: serde_json::Map<String, serde_json::Value> =
            self.labels.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        serde_json::json!({ "type": self.kind, "labels": labels })
    }

    /// Append [`Resource::to_json`]'s JSON without building the value (once per entry).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use sluice_core::event::write_json_str;
        out.extend_from_slice(b"{\"type\":");
        write_json_str(self.kind.as_bytes(), out);
        out.extend_from_slice(b",\"labels\":{");
        for (i, (k, v)) in self.labels.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_str(k.as_bytes(), out);
            out.push(b':');
            write_json_str(v.as_bytes(), out);
        }
        out.extend_from_slice(b"}}");
    }
}

/// Where the k8s names came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sNames {
    pub namespace_name: String,
    pub pod_name: String,
    pub container_name: String,
}

/// Compiled `kubernetes_tag_regexp`.
#[derive(Debug, Clone)]
pub struct TagMatcher {
    re: Regex,
}

impl TagMatcher {
    pub fn new(pattern: &str) -> Result<Self, String> {
        let re = Regex::new(pattern).map_err(|e| e.to_string())?;
        for g in ["pod_name", "namespace_name", "container_name"] {
            if !re.capture_names().flatten().any(|n| n == g) {
                return Err(format!("the regexp has no named group '{g}'"));
            }
        }
        Ok(Self { re })
    }

    pub fn names(&self, tag: &str) -> Option<K8sNames> {
        let c = self.re.captures(tag)?;
        let get = |n: &str| c.name(n).map(|m| m.as_str().to_string()).filter(|s| !s.is_empty());
        Some(K8sNames {
            namespace_name: get("namespace_name")?,
            pod_name: get("pod_name")?,
            container_name: get("container_name")?,
        })
    }
}

fn str_of(m: &Map, key: &str) -> Option<String> {
    match m.get(key)? {
        Value::Str(s) if !s.is_empty() => Some(s.to_string()),
        _ => None,
    }
}

/// Names from a `kubernetes` map as the kubernetes_metadata filter writes it.
fn names_from_record(record: &Map) -> Option<K8sNames> {
    let k = record.get("kubernetes")?.as_map()?;
    Some(K8sNames {
        namespace_name: str_of(k, "namespace_name")?,
        pod_name: str_of(k, "pod_name")?,
        container_name: str_of(k, "container_name")?,
    })
}

fn k8s_container(p: &Platform, n: K8sNames) -> Resource {
    let mut labels = BTreeMap::new();
    labels.insert("project_id".into(), p.project_id.clone());
    let location = p.cluster_location.clone().or_else(|| p.zone.clone()).unwrap_or_default();
    labels.insert("location".into(), location);
    labels.insert("cluster_name".into(), p.cluster_name.clone().unwrap_or_default());
    labels.insert("namespace_name".into(), n.namespace_name);
    labels.insert("pod_name".into(), n.pod_name);
    labels.insert("container_name".into(), n.container_name);
    Resource { kind: "k8s_container", labels }
}

/// The resource when the record says nothing about Kubernetes.
pub fn default_resource(p: &Platform) -> Resource {
    let mut labels = BTreeMap::new();
    match (&p.vm_id, &p.zone) {
        (Some(id), Some(zone)) => {
            labels.insert("instance_id".into(), id.clone());
            labels.insert("zone".into(), zone.clone());
            Resource { kind: "gce_instance", labels }
        }
        _ => {
            labels.insert("project_id".into(), p.project_id.clone());
            Resource { kind: "global", labels }
        }
    }
}

/// Decide the resource of one entry. When the record's `kubernetes` map was used, it (and `docker`) are
/// taken out of the payload, and the pod's labels are returned to become `k8s-pod/NAME` entry labels.
pub fn resource_for(
    p: &Platform,
    tag: &str,
    record: &mut Map,
    matcher: &TagMatcher,
) -> (Resource, Vec<(String, String)>) {
    if let Some(n) = names_from_record(record) {
        let mut pod_labels = Vec::new();
        if let Some(Value::Map(k)) = record.remove("kubernetes") {
            if let Some(Value::Map(l)) = k.get("labels") {
                for (key, v) in l.iter() {
                    pod_labels.push((format!("k8s-pod/{key}"), v.to_display_string()));
                }
            }
        }
        record.remove("docker");
        return (k8s_container(p, n), pod_labels);
    }
    if let Some(n) = matcher.names(tag) {
        return (k8s_container(p, n), Vec::new());
    }
    (default_resource(p), Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform() -> Platform {
        Platform {
            project_id: "proj".into(),
            zone: Some("europe-west1-b".into()),
            cluster_name: Some("prod".into()),
            cluster_location: Some("europe-west1".into()),
            ..Default::default()
        }
    }

    #[test]
    fn cri_path_tag() {
        let m = TagMatcher::new(DEFAULT_K8S_TAG_REGEXP).unwrap();
        let id = "0123456789abcdef".repeat(4);
        let tag = format!("kubernetes.var.log.containers.web-7d4b9c-xk2p_shop_nginx-{id}.log");
        let n = m.names(&tag).unwrap();
        assert_eq!(n.pod_name, "web-7d4b9c-xk2p");
        assert_eq!(n.namespace_name, "shop");
        assert_eq!(n.container_name, "nginx");
        let n = m.names("k8s.api-0_default_api").unwrap();
        assert_eq!((n.pod_name.as_str(), n.container_name.as_str()), ("api-0", "api"));
        assert!(m.names("app.access").is_none());
    }

    #[test]
    fn record_wins_and_is_removed() {
        let m = TagMatcher::new(DEFAULT_K8S_TAG_REGEXP).unwrap();
        let mut k = Map::new();
        k.insert("namespace_name", Value::Str("ns".into()));
        k.insert("pod_name", Value::Str("pod".into()));
        k.insert("container_name", Value::Str("c".into()));
        let mut l = Map::new();
        l.insert("app", Value::Str("web".into()));
        k.insert("labels", Value::Map(l));
        let mut rec = Map::new();
        rec.insert("kubernetes", Value::Map(k));
        rec.insert("message", Value::Str("hi".into()));
        let (r, labels) = resource_for(&platform(), "x.a_b_c", &mut rec, &m);
        assert_eq!(r.kind, "k8s_container");
        assert_eq!(r.labels["pod_name"], "pod");
        assert_eq!(r.labels["location"], "europe-west1");
        assert_eq!(labels, vec![("k8s-pod/app".to_string(), "web".to_string())]);
        assert!(!rec.contains_key("kubernetes"));
    }

    #[test]
    fn fallbacks() {
        let mut p = platform();
        assert_eq!(default_resource(&p).kind, "global");
        p.vm_id = Some("123".into());
        let r = default_resource(&p);
        assert_eq!(r.kind, "gce_instance");
        assert_eq!(r.labels["zone"], "europe-west1-b");
        assert!(TagMatcher::new("(?P<pod_name>.*)").is_err());
    }
}
