//! `@type kubernetes_metadata` (fluent-plugin-kubernetes_metadata_filter) with the Kubernetes API:
//! pod ids and IPs, labels, annotations, container images and namespace metadata, from a list+watch
//! of this node's pods and of the namespaces, an LRU cache and GETs for what the cache lacks.
//!
//! Without an API server (no `kubernetes_url` and no `KUBERNETES_SERVICE_HOST`), it is the tag-only
//! filter of sluice-plugins. The client is a small one over hyper and tokio-rustls (`client`) with serde types for only
//! the fields used (`model`), rather than kube-rs and k8s-openapi, to keep build time and binary small.
pub mod cache;
pub mod client;
pub mod config;
pub mod filter;
pub mod meta;
pub mod model;
pub mod worker;

use sluice_core::config::{ConfigError, Element};
use sluice_core::plugin::{BuildCtx, Filter, Registry};
use sluice_plugins::filters::kubernetes_metadata::KubernetesMetadata as Names;
use std::sync::Arc;

/// Register `@type kubernetes_metadata`, replacing the tag-only one of sluice-plugins.
pub fn register(reg: &mut Registry) {
    reg.register_filter("kubernetes_metadata", build);
}

pub fn build(s: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Filter>, ConfigError> {
    let names = Names::from_element(s)?;
    match config::api_config(s)? {
        Some((cfg, opts)) => {
            // Read the TLS files now, so a broken ca_file or client key is a configuration error.
            let client = client::Client::new(&cfg).map_err(|e| s.error(e.to_string()))?;
            Ok(Arc::new(filter::KubeFilter::new(names, worker::Shared::new(cfg, opts), client)))
        }
        None => {
            tracing::debug!(
                "kubernetes_metadata: no kubernetes_url and no KUBERNETES_SERVICE_HOST: names from the tag only"
            );
            Ok(Arc::new(names))
        }
    }
}
