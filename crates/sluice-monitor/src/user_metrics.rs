//! `<metric>` sections of `<filter @type prometheus>` and `<match @type prometheus>`: counters, gauges,
//! summaries and histograms fed from records, with `<labels>` per metric and per plugin.
use crate::labels::{self, LabelValue};
use parking_lot::Mutex;
use sluice_core::accessor::Accessor;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Events, Map, Value};
use sluice_core::metrics::{Kind, MetricSink, Report};
use std::collections::HashMap;
use std::sync::Arc;

/// prometheus-client-ruby's default histogram buckets.
const DEFAULT_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Default, Clone)]
struct Series {
    /// Counter/gauge value, or the sum of observations.
    value: f64,
    count: u64,
    buckets: Vec<u64>,
}

struct Metric {
    name: String,
    desc: String,
    kind: Kind,
    key: Option<Accessor>,
    buckets: Vec<f64>,
    labels: Vec<(String, LabelValue)>,
    series: Mutex<HashMap<Vec<String>, Series>>,
}

fn kind_of(el: &Element) -> Result<Kind, ConfigError> {
    match el.get("type").map(str::trim) {
        Some("counter") => Ok(Kind::Counter),
        Some("gauge") => Ok(Kind::Gauge),
        Some("summary") => Ok(Kind::Summary),
        Some("histogram") => Ok(Kind::Histogram),
        _ => Err(el.error_at("type", "type option must be 'counter', 'gauge', 'summary' or 'histogram'")),
    }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

impl Metric {
    fn from_conf(el: &Element, plugin_labels: &[(String, LabelValue)]) -> Result<Self, ConfigError> {
        el.mark_all_used();
        let kind = kind_of(el)?;
        let name = el.get("name").map(str::trim).ok_or_else(|| el.error("metric requires 'name' option"))?;
        if !valid_name(name) {
            return Err(el.error_at("name", format!("invalid metric name {name:?}")));
        }
        let desc = el.get("desc").ok_or_else(|| el.error("metric requires 'desc' option"))?;
        let key = match el.get("key") {
            Some(k) => Some(Accessor::parse_conf(el, "key", k.trim())?),
            None if kind == Kind::Counter => None,
            None => return Err(el.error(format!("{} metric requires 'key' option", kind.as_str()))),
        };
        let buckets = match (kind, el.get("buckets")) {
            (Kind::Histogram, Some(b)) => {
                let mut v = Vec::new();
                for p in b.split(',') {
                    let f: f64 = p
                        .trim()
                        .parse()
                        .map_err(|_| el.error_at("buckets", format!("bucket {p:?} is not a number")))?;
                    v.push(f);
                }
                if v.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(el.error_at("buckets", "buckets must be in increasing order"));
                }
                v
            }
            (Kind::Histogram, None) => DEFAULT_BUCKETS.to_vec(),
            _ => Vec::new(),
        };
        let mut all = plugin_labels.to_vec();
        for (k, v) in labels::parse(el)? {
            match all.iter_mut().find(|(n, _)| *n == k) {
                Some(slot) => slot.1 = v,
                None => all.push((k, v)),
            }
        }
        Ok(Metric {
            name: name.to_string(),
            desc: desc.to_string(),
            kind,
            key,
            buckets,
            labels: all,
            series: Mutex::new(HashMap::new()),
        })
    }

    fn value_of(&self, record: &Map) -> Result<Option<f64>, ()> {
        let Some(key) = &self.key else { return Ok(Some(1.0)) };
        match key.get(record) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or(()),
        }
    }

    fn observe(&self, series: &mut HashMap<Vec<String>, Series>, labels: &[String], v: f64) {
        let s = match series.get_mut(labels) {
            Some(s) => s,
            None => series
                .entry(labels.to_vec())
                .or_insert_with(|| Series { buckets: vec![0; self.buckets.len()], ..Default::default() }),
        };
        match self.kind {
            Kind::Counter => {
                if v >= 0.0 {
                    s.value += v;
                }
            }
            Kind::Gauge => s.value = v,
            Kind::Summary => {
                s.value += v;
                s.count += 1;
            }
            Kind::Histogram => {
                s.value += v;
                s.count += 1;
                for (b, n) in self.buckets.iter().zip(s.buckets.iter_mut()) {
                    if v <= *b {
                        *n += 1;
                    }
                }
            }
        }
    }

    fn report(&self, sink: &mut dyn MetricSink) {
        let series = self.series.lock();
        let mut keys: Vec<&Vec<String>> = series.keys().collect();
        keys.sort();
        for k in keys {
            let s = &series[k];
            let mut labels: Vec<(&str, &str)> =
                self.labels.iter().map(|(n, _)| n.as_str()).zip(k.iter().map(String::as_str)).collect();
            match self.kind {
                Kind::Counter | Kind::Gauge => sink.sample(&self.name, &self.desc, self.kind, "", &labels, s.value),
                Kind::Summary => {
                    sink.sample(&self.name, &self.desc, self.kind, "_sum", &labels, s.value);
                    sink.sample(&self.name, &self.desc, self.kind, "_count", &labels, s.count as f64);
                }
                Kind::Histogram => {
                    let les: Vec<String> = self.buckets.iter().map(|b| format!("{b:?}")).collect();
                    for (le, n) in les.iter().zip(&s.buckets) {
                        labels.push(("le", le));
                        sink.sample(&self.name, &self.desc, self.kind, "_bucket", &labels, *n as f64);
                        labels.pop();
                    }
                    labels.push(("le", "+Inf"));
                    sink.sample(&self.name, &self.desc, self.kind, "_bucket", &labels, s.count as f64);
                    labels.pop();
                    sink.sample(&self.name, &self.desc, self.kind, "_sum", &labels, s.value);
                    sink.sample(&self.name, &self.desc, self.kind, "_count", &labels, s.count as f64);
                }
            }
        }
    }
}

/// The `<metric>`s of one plugin.
pub struct Metrics {
    metrics: Vec<Metric>,
    hostname: String,
}

impl Metrics {
    pub fn from_conf(el: &Element, hostname: &str) -> Result<Arc<Self>, ConfigError> {
        let plugin_labels = labels::parse(el)?;
        let metrics = el.sections("metric").map(|m| Metric::from_conf(m, &plugin_labels)).collect::<Result<_, _>>()?;
        Ok(Arc::new(Metrics { metrics, hostname: hostname.to_string() }))
    }

    /// Instrument a batch. Returns the positions of events whose value was not a number (Fluentd sends
    /// them to the error stream).
    pub fn instrument(&self, tag: &str, events: &Events) -> Vec<usize> {
        let mut bad = Vec::new();
        let mut buf = String::new();
        for m in &self.metrics {
            let mut series = m.series.lock();
            let mut key: Vec<String> = Vec::with_capacity(m.labels.len());
            for (i, ev) in events.iter().enumerate() {
                let v = match m.value_of(&ev.record) {
                    Ok(Some(v)) => v,
                    Ok(None) => continue,
                    Err(()) => {
                        if bad.last() != Some(&i) && !bad.contains(&i) {
                            bad.push(i);
                        }
                        continue;
                    }
                };
                key.clear();
                for (_, lv) in &m.labels {
                    lv.expand(tag, &self.hostname, &ev.record, &mut buf);
                    key.push(buf.clone());
                }
                m.observe(&mut series, &key, v);
            }
        }
        bad.sort_unstable();
        bad
    }
}

impl Report for Metrics {
    fn report(&self, sink: &mut dyn MetricSink) {
        for m in &self.metrics {
            m.report(sink);
        }
    }
}
