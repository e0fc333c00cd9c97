//! `@type kubernetes_metadata` with the API: the names from the tag, journald fields or the record (as
//! the tag-only filter of sluice-plugins reads them), then the pod's and namespace's metadata from the
//! caches the worker fills. A pod the caches do not know is looked up with a GET, waiting at most
//! `open_timeout + read_timeout` and only while the API answers; otherwise, or when the lookup fails, the
//! record passes with the names alone and is counted.
use crate::client::Client;
use crate::meta::PodMeta;
use crate::worker::{Shared, Worker};
use sluice_core::event::{EventTime, Events, Map, Value};
use sluice_core::metrics::MetricSink;
use sluice_core::plugin::{ErrorEvents, Filter};
use sluice_plugins::filters::kubernetes_metadata::{KubernetesMetadata as Names, Meta};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How often the warning about records without API metadata is logged (the count is kept always).
const WARN_EVERY: Duration = Duration::from_secs(30);

pub struct KubeFilter {
    names: Names,
    shared: Arc<Shared>,
    /// Built (and its TLS files read) at configure time; the worker takes it when it starts.
    client: Arc<Client>,
    worker: OnceLock<Option<Worker>>,
    started: Instant,
    last_warn: AtomicU64,
}

/// What the caches say about one record's pod.
enum Found {
    Pod(Arc<PodMeta>, Option<Arc<crate::meta::NsMeta>>),
    Absent(crate::cache::Absent),
    Unknown,
}

impl KubeFilter {
    pub fn new(names: Names, shared: Shared, client: Client) -> KubeFilter {
        KubeFilter {
            names,
            shared: Arc::new(shared),
            client: Arc::new(client),
            worker: OnceLock::new(),
            started: Instant::now(),
            last_warn: AtomicU64::new(0),
        }
    }

    fn worker(&self) -> Option<&Worker> {
        self.worker
            .get_or_init(|| match Worker::start(self.shared.clone(), self.client.clone()) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::error!("{e}; records get the names from their source only");
                    None
                }
            })
            .as_ref()
    }

    fn cached(&self, ns: &str, pod: &str, cid: Option<&str>) -> Option<Found> {
        let now = Instant::now();
        let mut st = self.shared.store.lock();
        let ns_needed = !self.shared.cfg.skip_namespace_metadata;
        if let Some(p) = st.pod(ns, pod, cid, now) {
            let n = if ns_needed { st.namespace(ns, now) } else { None };
            if ns_needed && n.is_none() {
                return None;
            }
            return Some(Found::Pod(p, n));
        }
        st.absent(ns, pod, now).map(Found::Absent)
    }

    fn find(&self, ns: &str, pod: &str, cid: Option<&str>) -> Found {
        let stats = &self.shared.stats;
        if let Some(f) = self.cached(ns, pod, cid) {
            stats.pod_cache_hits.inc();
            return f;
        }
        stats.pod_cache_misses.inc();
        let Some(worker) = self.worker() else { return Found::Unknown };
        let healthy = self.shared.healthy.load(Ordering::Relaxed);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let asked = worker.request(&self.shared, ns, Some(pod), healthy.then_some(tx));
        if asked && healthy {
            let budget = self.shared.cfg.open_timeout + self.shared.cfg.read_timeout;
            if rx.recv_timeout(budget).is_err() {
                stats.lookups_timed_out.inc();
            }
            if let Some(f) = self.cached(ns, pod, cid) {
                return f;
            }
        }
        // The pod is known but its namespace could not be read (yet): the pod's metadata alone.
        let now = Instant::now();
        match self.shared.store.lock().pod(ns, pod, cid, now) {
            Some(p) => Found::Pod(p, None),
            None => Found::Unknown,
        }
    }

    fn warn_without_api(&self, records: usize) {
        self.shared.stats.records_without_api.add(records as u64);
        let now = self.started.elapsed().as_secs() + WARN_EVERY.as_secs();
        let last = self.last_warn.load(Ordering::Relaxed);
        if now >= last + WARN_EVERY.as_secs()
            && self.last_warn.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            tracing::warn!(
                records = self.shared.stats.records_without_api.get(),
                "kubernetes_metadata: the Kubernetes API did not answer for some pods; their records pass with the names from their source only"
            );
        }
    }

    /// The plugin's `get_metadata_for_record`: the `docker` and `kubernetes` maps, or `None` when the API
    /// could not be asked (then the caller decides what the names alone give).
    fn maps(&self, m: &Meta, time: EventTime) -> Option<(Value, Value)> {
        let (Some(ns), Some(pod)) = (m.namespace.as_str(), m.pod_name.as_str()) else {
            return Some(self.names.metadata_maps(m));
        };
        let cid = m.docker_id.as_ref().and_then(Value::as_str);
        let found = self.find(ns, pod, cid);
        if matches!(found, Found::Unknown) {
            return None;
        }
        let mut k = Map::with_capacity(16);
        k.insert("container_name", m.container_name.clone());
        k.insert("namespace_name", m.namespace.clone());
        k.insert("pod_name", m.pod_name.clone());
        match found {
            Found::Pod(p, n) => {
                if let Some(c) = cid.and_then(|c| p.container(c)) {
                    if !self.shared.opts.skip_container_metadata {
                        k.insert("container_image", c.image.clone());
                        k.insert("container_image_id", c.image_id.clone());
                    }
                }
                for (key, v) in p.fields.iter() {
                    k.insert(key.clone(), v.clone());
                }
                if let Some(n) = n {
                    for (key, v) in n.fields.iter() {
                        k.insert(key.clone(), v.clone());
                    }
                }
            }
            Found::Absent(a) => {
                if let Some(n) = a.ns {
                    // The plugin: the pod is gone, its namespace is older than the record, so the record
                    // is trusted to be of that namespace; the container id stands in for the pod id.
                    let rec = time.as_f64() as i64;
                    if n.created.is_some_and(|c| c <= rec) {
                        if let Some(id) = &m.docker_id {
                            k.insert("pod_id", id.clone());
                        }
                    }
                    for (key, v) in n.fields.iter() {
                        k.insert(key.clone(), v.clone());
                    }
                } else if a.ns_missing && self.shared.cfg.allow_orphans {
                    // Neither the pod nor its namespace exists: the plugin's orphaned record.
                    k.insert("orphaned_namespace", m.namespace.clone());
                    k.insert("namespace_name", Value::Str(self.shared.cfg.orphaned_namespace_name.clone()));
                    k.insert("namespace_id", Value::Str(self.shared.cfg.orphaned_namespace_id.clone()));
                }
            }
            Found::Unknown => {}
        }
        let mut d = Map::with_capacity(1);
        d.insert("container_id", m.docker_id.clone().unwrap_or_else(|| Value::from("")));
        Some((Value::Map(d), Value::Map(k)))
    }
}

impl Filter for KubeFilter {
    fn start(&self) {
        let _ = self.worker();
    }

    fn filter(&self, tag: &str, events: &mut Events, _errors: &mut ErrorEvents) {
        let _ = self.worker(); // started here when the engine did not call start (tests, tools)
        let names = &self.names;
        let Some(first) = events.first().map(|e| e.time) else { return };
        // The tag's metadata once per batch, as the plugin does.
        let from_tag = if names.use_journal() == Some(true) { None } else { names.meta_from_tag(tag) };
        let n = events.len();
        let tag_maps = from_tag.map(|m| {
            self.maps(&m, first).unwrap_or_else(|| {
                self.warn_without_api(n);
                names.metadata_maps(&m)
            })
        });
        for ev in events.iter_mut() {
            let mut maps = tag_maps.clone();
            if names.use_journal() != Some(false) {
                if let Some(m) = names.meta_from_journal(&ev.record) {
                    maps = Some(self.maps(&m, ev.time).unwrap_or_else(|| {
                        self.warn_without_api(1);
                        names.metadata_maps(&m)
                    }));
                }
            }
            if names.lookup_from_k8s_field() {
                if let Some(m) = names.meta_from_fields(&ev.record) {
                    match self.maps(&m, ev.time) {
                        Some(found) => maps = Some(found),
                        // Without the API the record's own maps are the best there is.
                        None => {
                            self.warn_without_api(1);
                            continue;
                        }
                    }
                }
            }
            if let Some((docker, kube)) = maps {
                ev.record.insert("docker", docker);
                ev.record.insert("kubernetes", kube);
            }
        }
    }

    fn report(&self, sink: &mut dyn MetricSink) {
        let s = &self.shared.stats;
        let c = |sink: &mut dyn MetricSink, name: &str, help: &str, v: u64| sink.counter(name, help, &[], v);
        c(sink, "sluice_kubernetes_metadata_api_requests_total", "Calls to the Kubernetes API.", s.api_requests.get());
        c(
            sink,
            "sluice_kubernetes_metadata_api_errors_total",
            "Failed calls to the Kubernetes API.",
            s.api_errors.get(),
        );
        c(
            sink,
            "sluice_kubernetes_metadata_watch_restarts_total",
            "Pod and namespace watches opened again.",
            s.watch_restarts.get(),
        );
        c(
            sink,
            "sluice_kubernetes_metadata_watch_gone_total",
            "Watches that ended with 410 Gone (listed again).",
            s.watch_gone.get(),
        );
        c(sink, "sluice_kubernetes_metadata_watch_events_total", "Watch events received.", s.watch_events.get());
        c(
            sink,
            "sluice_kubernetes_metadata_cache_hits_total",
            "Records whose pod was in the cache.",
            s.pod_cache_hits.get(),
        );
        c(
            sink,
            "sluice_kubernetes_metadata_cache_misses_total",
            "Records whose pod was not in the cache.",
            s.pod_cache_misses.get(),
        );
        c(sink, "sluice_kubernetes_metadata_lookups_total", "Pods looked up with a GET.", s.lookups.get());
        c(
            sink,
            "sluice_kubernetes_metadata_lookups_timed_out_total",
            "Lookups a batch stopped waiting for.",
            s.lookups_timed_out.get(),
        );
        c(
            sink,
            "sluice_kubernetes_metadata_records_without_api_metadata_total",
            "Records that passed with the names from their source only (the API did not answer).",
            s.records_without_api.get(),
        );
        let (pods, namespaces) = {
            let st = self.shared.store.lock();
            (st.pod_count(), st.namespace_count())
        };
        sink.gauge("sluice_kubernetes_metadata_pod_cache_size", "Pods in the cache.", &[], pods as f64);
        sink.gauge(
            "sluice_kubernetes_metadata_namespace_cache_size",
            "Namespaces in the cache.",
            &[],
            namespaces as f64,
        );
    }
}
