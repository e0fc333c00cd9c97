//! The background side: one thread with its own small tokio runtime, so nothing here can stall the
//! router (and a router thread waiting for a lookup cannot stall it). It lists and watches the pods of
//! this node and the namespaces into the [`Store`], reconnecting with backoff and listing again after
//! `410 Gone`, and answers the filter's lookups of pods it does not know with a GET.
use crate::cache::{Absent, Store};
use crate::client::{encode, ApiError, Client};
use crate::config::ApiConfig;
use crate::meta::MetaOptions;
use crate::model::{Namespace, Pod, Status, WatchEvent};
use parking_lot::Mutex;
use sluice_core::metrics::Counter;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};

/// Longest wait between two watch reconnections.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct Stats {
    pub api_requests: Counter,
    pub api_errors: Counter,
    pub watch_restarts: Counter,
    pub watch_gone: Counter,
    pub pod_cache_hits: Counter,
    pub pod_cache_misses: Counter,
    pub lookups: Counter,
    pub lookups_timed_out: Counter,
    pub records_without_api: Counter,
    pub watch_events: Counter,
}

/// What the filter and the worker share.
pub struct Shared {
    pub cfg: ApiConfig,
    pub opts: MetaOptions,
    pub store: Mutex<Store>,
    pub stats: Stats,
    /// False after a failed call until one succeeds: lookups then do not make records wait.
    pub healthy: AtomicBool,
    pending: Mutex<HashSet<(String, String)>>,
}

impl Shared {
    pub fn new(cfg: ApiConfig, opts: MetaOptions) -> Shared {
        let store = Store::new(cfg.cache_size, cfg.cache_ttl);
        Shared {
            cfg,
            opts,
            store: Mutex::new(store),
            stats: Stats::default(),
            healthy: AtomicBool::new(true),
            pending: Mutex::new(HashSet::new()),
        }
    }

    fn ok(&self) {
        self.healthy.store(true, Ordering::Relaxed);
    }

    fn failed(&self, e: &ApiError) {
        self.stats.api_errors.inc();
        if matches!(e, ApiError::Transport(_))
            || matches!(e, ApiError::Http { code, .. } if *code >= 500 || *code == 401 || *code == 403)
        {
            self.healthy.store(false, Ordering::Relaxed);
        }
    }
}

/// A pod (or only a namespace, `pod: None`) the filter wants; `done` is told when the answer is stored.
pub struct Lookup {
    pub ns: String,
    pub pod: Option<String>,
    pub done: Option<std::sync::mpsc::SyncSender<()>>,
}

/// The running worker; dropping it stops the thread.
pub struct Worker {
    tx: mpsc::UnboundedSender<Lookup>,
    stop: Arc<Notify>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.notify_one();
    }
}

impl Worker {
    pub fn start(shared: Arc<Shared>, client: Arc<Client>) -> Result<Worker, String> {
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = Arc::new(Notify::new());
        let stop2 = stop.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("kubernetes_metadata: cannot start its runtime: {e}"))?;
        std::thread::Builder::new()
            .name("sluice-kube".into())
            .spawn(move || {
                rt.block_on(async move {
                    tokio::select! {
                        _ = run(shared, client, rx) => {}
                        _ = stop2.notified() => {}
                    }
                })
            })
            .map_err(|e| format!("kubernetes_metadata: cannot start its thread: {e}"))?;
        Ok(Worker { tx, stop })
    }

    /// Ask for `ns`/`pod` unless the same lookup is already on its way; false when it is.
    pub fn request(
        &self,
        shared: &Shared,
        ns: &str,
        pod: Option<&str>,
        done: Option<std::sync::mpsc::SyncSender<()>>,
    ) -> bool {
        let key = (ns.to_string(), pod.unwrap_or("").to_string());
        if !shared.pending.lock().insert(key) {
            return false;
        }
        shared.stats.lookups.inc();
        let _ = self.tx.send(Lookup { ns: ns.to_string(), pod: pod.map(str::to_string), done });
        true
    }
}

async fn run(shared: Arc<Shared>, client: Arc<Client>, mut rx: mpsc::UnboundedReceiver<Lookup>) {
    if shared.cfg.watch {
        tokio::spawn(reflect(shared.clone(), client.clone(), Kind::Pods));
        if !shared.cfg.skip_namespace_metadata {
            tokio::spawn(reflect(shared.clone(), client.clone(), Kind::Namespaces));
        }
    }
    if let Some(every) = shared.cfg.stats_interval {
        tokio::spawn(stats_loop(shared.clone(), every));
    }
    while let Some(l) = rx.recv().await {
        tokio::spawn(lookup(shared.clone(), client.clone(), l));
    }
}

fn pod_path(ns: &str, pod: &str) -> String {
    format!("/namespaces/{}/pods/{}", encode(ns), encode(pod))
}

async fn lookup(shared: Arc<Shared>, client: Arc<Client>, l: Lookup) {
    let now = Instant::now;
    let mut pod_missing = false;
    // A pod the watch brought meanwhile (only its namespace was missing) needs no GET.
    let wanted = l.pod.as_ref().filter(|p| shared.store.lock().pod(&l.ns, p, None, now()).is_none());
    if let Some(pod) = wanted {
        shared.stats.api_requests.inc();
        match client.get::<Pod>(&pod_path(&l.ns, pod)).await {
            Ok(Some(p)) => {
                shared.ok();
                let m = shared.opts.pod(&p);
                shared.store.lock().put_pod(m, now());
            }
            Ok(None) => {
                shared.ok();
                pod_missing = true;
            }
            Err(e) => {
                shared.failed(&e);
                tracing::debug!("kubernetes_metadata: cannot get pod {}/{}: {e}", l.ns, pod);
            }
        }
    }
    let mut ns_missing = false;
    let mut ns_meta = None;
    if !shared.cfg.skip_namespace_metadata {
        ns_meta = shared.store.lock().namespace(&l.ns, now());
        if ns_meta.is_none() {
            shared.stats.api_requests.inc();
            match client.get::<Namespace>(&format!("/namespaces/{}", encode(&l.ns))).await {
                Ok(Some(n)) => {
                    shared.ok();
                    let m = shared.opts.namespace(&n);
                    let mut st = shared.store.lock();
                    st.put_namespace(m, now());
                    ns_meta = st.namespace(&l.ns, now());
                }
                Ok(None) => {
                    shared.ok();
                    ns_missing = true;
                }
                Err(e) => {
                    shared.failed(&e);
                    tracing::debug!("kubernetes_metadata: cannot get namespace {}: {e}", l.ns);
                }
            }
        }
    }
    if pod_missing {
        if let Some(pod) = &l.pod {
            shared.store.lock().put_absent(&l.ns, pod, Absent { ns: ns_meta, ns_missing }, now());
        }
    }
    shared.pending.lock().remove(&(l.ns.clone(), l.pod.clone().unwrap_or_default()));
    if let Some(done) = l.done {
        let _ = done.try_send(());
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Pods,
    Namespaces,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Pods => "pod",
            Kind::Namespaces => "namespace",
        }
    }
    fn path(self) -> &'static str {
        match self {
            Kind::Pods => "/pods",
            Kind::Namespaces => "/namespaces",
        }
    }
}

fn store_object(shared: &Shared, kind: Kind, obj: serde_json::Value) -> Result<(), ApiError> {
    match kind {
        Kind::Pods => {
            let p: Pod = serde_json::from_value(obj).map_err(|e| ApiError::Decode(e.to_string()))?;
            let m = shared.opts.pod(&p);
            shared.store.lock().put_pod(m, Instant::now());
        }
        Kind::Namespaces => {
            let n: Namespace = serde_json::from_value(obj).map_err(|e| ApiError::Decode(e.to_string()))?;
            let m = shared.opts.namespace(&n);
            shared.store.lock().put_namespace(m, Instant::now());
        }
    }
    Ok(())
}

/// List, then watch from the list's resourceVersion; a watch that ends is opened again from the last
/// version seen, a `410 Gone` (as an HTTP answer or an ERROR event) lists again.
async fn reflect(shared: Arc<Shared>, client: Arc<Client>, kind: Kind) {
    let selector = match kind {
        Kind::Pods => shared.cfg.node_name.as_ref().map(|n| format!("spec.nodeName={n}")),
        Kind::Namespaces => None,
    };
    let selector = selector.as_deref();
    let mut rv: Option<String> = None;
    let mut failures: u32 = 0;
    loop {
        let result = reflect_once(&shared, &client, kind, selector, &mut rv, &mut failures).await;
        let e = match result {
            Ok(()) => continue,
            Err(e) => e,
        };
        shared.stats.watch_restarts.inc();
        if e.is_gone() {
            shared.stats.watch_gone.inc();
            tracing::info!("kubernetes_metadata: 410 Gone on the {} watch; listing again", kind.name());
            rv = None;
            continue;
        }
        shared.failed(&e);
        let wait = backoff(&shared.cfg, failures);
        failures = failures.saturating_add(1);
        if failures == shared.cfg.watch_retry_max_times.max(1) {
            tracing::error!(
                "kubernetes_metadata: the {} watch failed {failures} times in a row ({e}); records pass with the names from their source until it is back; retrying every {:?} at most",
                kind.name(),
                MAX_BACKOFF
            );
        } else {
            tracing::info!("kubernetes_metadata: {} watch: {e}; retrying in {wait:?}", kind.name());
        }
        tokio::time::sleep(wait).await;
    }
}

fn backoff(cfg: &ApiConfig, failures: u32) -> Duration {
    let factor = cfg.watch_retry_backoff_base.checked_pow(failures.min(30)).unwrap_or(u32::MAX);
    cfg.watch_retry_interval.checked_mul(factor).unwrap_or(MAX_BACKOFF).min(MAX_BACKOFF)
}

async fn reflect_once(
    shared: &Shared,
    client: &Client,
    kind: Kind,
    selector: Option<&str>,
    rv: &mut Option<String>,
    failures: &mut u32,
) -> Result<(), ApiError> {
    if rv.is_none() {
        shared.stats.api_requests.inc();
        let list = client.list::<serde_json::Value>(kind.path(), selector).await?;
        shared.ok();
        for item in list.items {
            store_object(shared, kind, item)?;
        }
        *rv = Some(list.metadata.resource_version.unwrap_or_else(|| "0".into()));
    }
    let from = rv.clone().unwrap_or_else(|| "0".into());
    shared.stats.api_requests.inc();
    let started = Instant::now();
    let mut w = client.watch(kind.path(), selector, &from).await?;
    shared.ok();
    let mut events = 0u64;
    while let Some(ev) = w.next().await? {
        let WatchEvent { kind: ty, object } = ev;
        shared.stats.watch_events.inc();
        if ty == "ERROR" {
            let st: Status = serde_json::from_value(object).unwrap_or_default();
            let code = st.code.unwrap_or(500);
            return Err(ApiError::Http { code, message: st.message.unwrap_or_default() });
        }
        if let Some(v) = object.pointer("/metadata/resourceVersion").and_then(|v| v.as_str()) {
            *rv = Some(v.to_string());
        }
        events += 1;
        *failures = 0;
        match ty.as_str() {
            // A deleted pod stays in the cache (with its last state): its last lines may still come.
            "ADDED" | "MODIFIED" | "DELETED" => store_object(shared, kind, object)?,
            _ => {} // BOOKMARK: only the version matters
        }
    }
    // A stream the server ends at once, again and again, must not become a busy loop.
    if events == 0 && started.elapsed() < Duration::from_secs(1) {
        return Err(ApiError::Transport("the watch ended at once".into()));
    }
    Ok(())
}

async fn stats_loop(shared: Arc<Shared>, every: Duration) {
    let mut t = tokio::time::interval(every);
    t.tick().await;
    loop {
        t.tick().await;
        let (pods, namespaces) = {
            let st = shared.store.lock();
            (st.pod_count(), st.namespace_count())
        };
        let s = &shared.stats;
        tracing::info!(
            pod_cache_size = pods,
            namespace_cache_size = namespaces,
            pod_cache_hits = s.pod_cache_hits.get(),
            pod_cache_misses = s.pod_cache_misses.get(),
            api_requests = s.api_requests.get(),
            api_errors = s.api_errors.get(),
            watch_restarts = s.watch_restarts.get(),
            records_without_api_metadata = s.records_without_api.get(),
            "kubernetes_metadata stats"
        );
    }
}
