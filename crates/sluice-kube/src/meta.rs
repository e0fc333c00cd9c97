//! What the filter keeps of a Pod and a Namespace: the plugin's `parse_pod_metadata` and
//! `parse_namespace_metadata`, with labels and annotations already de-dotted and filtered, as record
//! values ready to be copied into records.
use crate::model::{Namespace, Pod, StrMap};
use sluice_core::event::{Map, Str, Value};
use sluice_core::ruby::regexp::RubyRegex;

/// The options that shape parsed metadata.
pub struct MetaOptions {
    pub annotation_match: Vec<RubyRegex>,
    pub de_dot: Option<String>,
    pub de_slash: Option<String>,
    pub skip_pod_labels: bool,
    pub skip_namespace_labels: bool,
    pub skip_container_metadata: bool,
    pub include_ownerrefs: bool,
    pub master_url: Option<Str>,
}

/// One container of a pod, found by its runtime id.
#[derive(Debug, Clone)]
pub struct ContainerMeta {
    /// The id without its `containerd://` / `docker://` / `cri-o://` scheme.
    pub id: String,
    pub image: Value,
    pub image_id: Value,
}

#[derive(Debug, Clone)]
pub struct PodMeta {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub node: Option<String>,
    pub containers: Vec<ContainerMeta>,
    /// The plugin's pod map minus `containers`, in its order: `namespace_name`, `pod_id`, `pod_name`,
    /// `pod_ip`, `host`, `annotations`, `labels`, `master_url` (absent ones left out).
    pub fields: Map,
}

#[derive(Debug, Clone)]
pub struct NsMeta {
    pub uid: String,
    pub name: String,
    /// Seconds since the epoch, for the plugin's "namespace older than the record" test.
    pub created: Option<i64>,
    /// `namespace_id`, `namespace_labels`, `namespace_annotations`.
    pub fields: Map,
}

impl PodMeta {
    pub fn container(&self, id: &str) -> Option<&ContainerMeta> {
        self.containers.iter().find(|c| c.id == id)
    }
}

/// `docker://abc` → `abc` (the plugin strips any `[-_a-zA-Z0-9]+://` scheme).
pub fn strip_scheme(id: &str) -> &str {
    match id.find("://") {
        Some(i) if i > 0 && id[..i].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => {
            &id[i + 3..]
        }
        _ => id,
    }
}

impl MetaOptions {
    /// de_dot then de_slash, as the plugin does: a renamed key moves to the end of the map.
    fn rename_keys(&self, map: &StrMap) -> Map {
        self.rename_ordered(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    fn annotations(&self, all: Option<&StrMap>) -> Map {
        let mut picked = StrMap::new();
        let mut order: Vec<String> = Vec::new();
        if let Some(all) = all {
            // The plugin loops over the regexps, then the annotations: a key's place is set by the first
            // regexp that matched it.
            for re in &self.annotation_match {
                for (k, v) in all {
                    if re.is_match(k) && picked.insert(k.clone(), v.clone()).is_none() {
                        order.push(k.clone());
                    }
                }
            }
        }
        let ordered: Vec<(String, String)> =
            order.into_iter().filter_map(|k| picked.remove(&k).map(|v| (k, v))).collect();
        self.rename_ordered(ordered)
    }

    /// Pass 1 (de_dot) moves renamed keys to the end; pass 2 (de_slash) does the same over its result.
    fn rename_ordered(&self, pairs: Vec<(String, String)>) -> Map {
        let mut first: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        let mut dotted = Vec::new();
        for (k, v) in pairs {
            match &self.de_dot {
                Some(sep) if k.contains('.') => dotted.push((k.replace('.', sep), v)),
                _ => first.push((k, v)),
            }
        }
        first.extend(dotted);
        let mut out = Map::with_capacity(first.len());
        let mut slashed = Vec::new();
        for (k, v) in first {
            match &self.de_slash {
                Some(sep) if k.contains('/') => slashed.push((k.replace('/', sep), v)),
                _ => {
                    out.insert(k, Value::from(v.as_str()));
                }
            }
        }
        for (k, v) in slashed {
            out.insert(k, Value::from(v.as_str()));
        }
        out
    }

    pub fn pod(&self, pod: &Pod) -> PodMeta {
        let md = &pod.metadata;
        let namespace = md.namespace.clone().unwrap_or_default();
        let status = pod.status.as_ref();
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let mut containers = Vec::new();
        if let Some(st) = status {
            let lists = [&st.container_statuses, &st.init_container_statuses, &st.ephemeral_container_statuses];
            for cs in lists.into_iter().flatten().flatten() {
                let Some(id) = cs.container_id.as_deref().filter(|i| !i.is_empty()) else { continue };
                containers.push(ContainerMeta {
                    id: strip_scheme(id).to_string(),
                    image: Value::from(cs.image.as_str()),
                    image_id: Value::from(cs.image_id.as_str()),
                });
            }
        }
        let mut f = Map::with_capacity(8);
        f.insert("namespace_name", Value::from(namespace.as_str()));
        f.insert("pod_id", Value::from(md.uid.as_str()));
        f.insert("pod_name", Value::from(md.name.as_str()));
        if let Some(ip) = status.and_then(|s| s.pod_ip.as_deref()) {
            f.insert("pod_ip", Value::from(ip));
        }
        if let Some(n) = &node {
            f.insert("host", Value::from(n.as_str()));
        }
        if self.include_ownerrefs {
            if let Some(refs) = &md.owner_references {
                let list = refs
                    .iter()
                    .map(|r| {
                        let mut m = Map::with_capacity(2);
                        m.insert("kind", Value::from(r.kind.as_str()));
                        m.insert("name", Value::from(r.name.as_str()));
                        Value::Map(m)
                    })
                    .collect();
                f.insert("ownerrefs", Value::Array(list));
            }
        }
        let annotations = self.annotations(md.annotations.as_ref());
        if !annotations.is_empty() {
            f.insert("annotations", Value::Map(annotations));
        }
        if !self.skip_pod_labels {
            if let Some(l) = md.labels.as_ref().filter(|l| !l.is_empty()) {
                f.insert("labels", Value::Map(self.rename_keys(l)));
            }
        }
        if let Some(u) = &self.master_url {
            f.insert("master_url", Value::Str(u.clone()));
        }
        if self.skip_container_metadata {
            containers.iter_mut().for_each(|c| {
                c.image = Value::Null;
                c.image_id = Value::Null;
            });
        }
        PodMeta { uid: md.uid.clone(), namespace, name: md.name.clone(), node, containers, fields: f }
    }

    pub fn namespace(&self, ns: &Namespace) -> NsMeta {
        let md = &ns.metadata;
        let mut f = Map::with_capacity(3);
        f.insert("namespace_id", Value::from(md.uid.as_str()));
        if !self.skip_namespace_labels {
            if let Some(l) = md.labels.as_ref().filter(|l| !l.is_empty()) {
                f.insert("namespace_labels", Value::Map(self.rename_keys(l)));
            }
        }
        let annotations = self.annotations(md.annotations.as_ref());
        if !annotations.is_empty() {
            f.insert("namespace_annotations", Value::Map(annotations));
        }
        let created = md
            .creation_timestamp
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp());
        NsMeta { uid: md.uid.clone(), name: md.name.clone(), created, fields: f }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(de_dot: Option<&str>, de_slash: Option<&str>) -> MetaOptions {
        MetaOptions {
            annotation_match: vec![RubyRegex::from_config("^example\\.com/").unwrap()],
            de_dot: de_dot.map(String::from),
            de_slash: de_slash.map(String::from),
            skip_pod_labels: false,
            skip_namespace_labels: false,
            skip_container_metadata: false,
            include_ownerrefs: false,
            master_url: None,
        }
    }

    fn keys(m: &Map) -> Vec<String> {
        m.keys().map(|k| k.to_string()).collect()
    }

    #[test]
    fn de_dot_renames_and_moves_keys_to_the_end() {
        let labels: StrMap = [("app.kubernetes.io/name", "web"), ("tier", "front"), ("a.b", "c")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(keys(&opts(Some("_"), None).rename_keys(&labels)), ["tier", "a_b", "app_kubernetes_io/name"]);
        assert_eq!(keys(&opts(Some("_"), Some("__")).rename_keys(&labels)), ["tier", "a_b", "app_kubernetes_io__name"]);
        assert_eq!(keys(&opts(None, None).rename_keys(&labels)), ["a.b", "app.kubernetes.io/name", "tier"]);
    }

    #[test]
    fn annotations_only_those_matching() {
        let ann: StrMap = [("example.com/owner", "x"), ("other", "y")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(keys(&opts(Some("_"), None).annotations(Some(&ann))), ["example_com/owner"]);
    }

    #[test]
    fn schemes_are_stripped() {
        assert_eq!(strip_scheme("containerd://abc"), "abc");
        assert_eq!(strip_scheme("cri-o://abc"), "abc");
        assert_eq!(strip_scheme("abc"), "abc");
    }
}
