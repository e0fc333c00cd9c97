//! The metadata caches: pods by uid and namespaces by name, each an LRU of `cache_size` entries whose
//! entries expire `cache_ttl` after they were stored (the plugin's LruRedux TTL caches), plus the indexes
//! a record needs to find its pod (container id → pod, namespace/name → newest pod) and a short memory
//! of lookups that found nothing.
use crate::meta::{NsMeta, PodMeta};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a lookup that found no pod (or no namespace) is remembered before asking again.
pub const NOT_FOUND_TTL: Duration = Duration::from_secs(30);

struct Slot<V> {
    value: V,
    stored: Instant,
    used: u64,
}

/// A small LRU with a time-to-live. Eviction scans for the least recently used entry: with the plugin's
/// sizes (1000) and evictions only on inserts past the limit, that is cheaper than keeping a list.
pub struct LruTtl<K, V> {
    map: HashMap<K, Slot<V>>,
    cap: usize,
    ttl: Option<Duration>,
    tick: u64,
}

impl<K: Eq + Hash + Clone, V: Clone> LruTtl<K, V> {
    pub fn new(cap: usize, ttl: Option<Duration>) -> Self {
        LruTtl { map: HashMap::new(), cap: cap.max(1), ttl, tick: 0 }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The value, if present and not expired (an expired one is dropped and returned as evicted).
    pub fn get(&mut self, k: &K, now: Instant) -> (Option<V>, Option<V>) {
        self.tick = self.tick.wrapping_add(1);
        let expired = match self.map.get_mut(k) {
            None => return (None, None),
            Some(s) => {
                if self.ttl.is_some_and(|t| now.saturating_duration_since(s.stored) >= t) {
                    true
                } else {
                    s.used = self.tick;
                    return (Some(s.value.clone()), None);
                }
            }
        };
        debug_assert!(expired);
        (None, self.map.remove(k).map(|s| s.value))
    }

    /// Store `v`; returns what had to leave (the replaced value or the least recently used one).
    pub fn insert(&mut self, k: K, v: V, now: Instant) -> Vec<V> {
        self.tick = self.tick.wrapping_add(1);
        let mut gone = Vec::new();
        if let Some(old) = self.map.insert(k, Slot { value: v, stored: now, used: self.tick }) {
            gone.push(old.value);
            return gone;
        }
        while self.map.len() > self.cap {
            let oldest = self.map.iter().min_by_key(|(_, s)| s.used).map(|(k, _)| k.clone());
            match oldest.and_then(|k| self.map.remove(&k)) {
                Some(s) => gone.push(s.value),
                None => break,
            }
        }
        gone
    }
}

/// What a lookup found that is not a pod: remembered for [`NOT_FOUND_TTL`].
/// The API answered 404 for the pod; `ns` is its namespace when that exists, `ns_missing` when the API
/// answered 404 for the namespace too.
#[derive(Debug, Clone)]
pub struct Absent {
    pub ns: Option<Arc<NsMeta>>,
    pub ns_missing: bool,
}

pub struct Store {
    pods: LruTtl<String, Arc<PodMeta>>,
    by_container: HashMap<String, String>,
    by_name: HashMap<(String, String), String>,
    namespaces: LruTtl<String, Arc<NsMeta>>,
    absent: HashMap<(String, String), (Instant, Absent)>,
}

impl Store {
    pub fn new(cap: usize, ttl: Option<Duration>) -> Self {
        Store {
            pods: LruTtl::new(cap, ttl),
            by_container: HashMap::new(),
            by_name: HashMap::new(),
            namespaces: LruTtl::new(cap, ttl),
            absent: HashMap::new(),
        }
    }

    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    pub fn namespace_count(&self) -> usize {
        self.namespaces.len()
    }

    fn forget(&mut self, p: &PodMeta) {
        for c in &p.containers {
            if self.by_container.get(&c.id) == Some(&p.uid) {
                self.by_container.remove(&c.id);
            }
        }
        let key = (p.namespace.clone(), p.name.clone());
        if self.by_name.get(&key) == Some(&p.uid) {
            self.by_name.remove(&key);
        }
    }

    /// A pod from a list, a watch event or a GET. Deleted pods are stored too: their last lines may
    /// still be on their way, and they leave by age or size like any other entry.
    pub fn put_pod(&mut self, p: PodMeta, now: Instant) {
        let p = Arc::new(p);
        for old in self.pods.insert(p.uid.clone(), p.clone(), now) {
            self.forget(&old);
        }
        for c in &p.containers {
            self.by_container.insert(c.id.clone(), p.uid.clone());
        }
        let key = (p.namespace.clone(), p.name.clone());
        self.absent.remove(&key);
        self.by_name.insert(key, p.uid.clone());
    }

    pub fn put_namespace(&mut self, n: NsMeta, now: Instant) {
        self.namespaces.insert(n.name.clone(), Arc::new(n), now);
    }

    pub fn put_absent(&mut self, ns: &str, pod: &str, a: Absent, now: Instant) {
        if self.absent.len() > 10_000 {
            self.absent.retain(|_, (at, _)| now.saturating_duration_since(*at) < NOT_FOUND_TTL);
        }
        self.absent.insert((ns.to_string(), pod.to_string()), (now, a));
    }

    fn pod_by_uid(&mut self, uid: &str, now: Instant) -> Option<Arc<PodMeta>> {
        let (hit, expired) = self.pods.get(&uid.to_string(), now);
        if let Some(old) = expired {
            self.forget(&old);
        }
        hit
    }

    /// The pod a record belongs to: by its container id first (exact even when a pod of the same name
    /// was created again), else the newest pod of that namespace and name.
    pub fn pod(&mut self, ns: &str, name: &str, container_id: Option<&str>, now: Instant) -> Option<Arc<PodMeta>> {
        if let Some(uid) = container_id.and_then(|c| self.by_container.get(c)).cloned() {
            if let Some(p) = self.pod_by_uid(&uid, now) {
                return Some(p);
            }
        }
        let uid = self.by_name.get(&(ns.to_string(), name.to_string())).cloned()?;
        self.pod_by_uid(&uid, now)
    }

    pub fn namespace(&mut self, name: &str, now: Instant) -> Option<Arc<NsMeta>> {
        self.namespaces.get(&name.to_string(), now).0
    }

    pub fn absent(&mut self, ns: &str, pod: &str, now: Instant) -> Option<Absent> {
        let key = (ns.to_string(), pod.to_string());
        match self.absent.get(&key) {
            Some((at, a)) if now.saturating_duration_since(*at) < NOT_FOUND_TTL => Some(a.clone()),
            Some(_) => {
                self.absent.remove(&key);
                None
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_the_least_recently_used() {
        let now = Instant::now();
        let mut c = LruTtl::new(2, None);
        c.insert("a", 1, now);
        c.insert("b", 2, now);
        assert_eq!(c.get(&"a", now).0, Some(1));
        assert_eq!(c.insert("c", 3, now), vec![2]);
        assert_eq!(c.get(&"b", now).0, None);
        assert_eq!(c.get(&"a", now).0, Some(1));
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let now = Instant::now();
        let mut c = LruTtl::new(10, Some(Duration::from_secs(5)));
        c.insert("a", 1, now);
        assert_eq!(c.get(&"a", now + Duration::from_secs(4)).0, Some(1));
        assert_eq!(c.get(&"a", now + Duration::from_secs(5)), (None, Some(1)));
    }
}
