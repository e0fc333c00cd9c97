//! Collects samples from the metrics interface and writes them in the Prometheus text format 0.0.4 or
//! in OpenMetrics 1.0.0. Samples are grouped by family (one `# HELP`/`# TYPE` each), in first-seen order.
use sluice_core::metrics::{Kind, MetricSink};
use std::collections::HashMap;
use std::fmt::Write;

pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

struct Sample {
    suffix: String,
    labels: Vec<(String, String)>,
    value: f64,
}

struct Family {
    name: String,
    help: String,
    kind: Kind,
    samples: Vec<Sample>,
}

/// A scrape's worth of metric families.
#[derive(Default)]
pub struct Families {
    families: Vec<Family>,
    index: HashMap<String, usize>,
}

impl MetricSink for Families {
    fn sample(&mut self, name: &str, help: &str, kind: Kind, suffix: &str, labels: &[(&str, &str)], value: f64) {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.families.push(Family {
                    name: name.to_string(),
                    help: help.to_string(),
                    kind,
                    samples: Vec::new(),
                });
                self.index.insert(name.to_string(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        let fam = &mut self.families[i];
        if fam.kind != kind {
            // Two plugins declared the same name with different types: keep the first, as the client
            // registry of fluent-plugin-prometheus refuses the second.
            return;
        }
        let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        fam.samples.push(Sample { suffix: suffix.to_string(), labels, value });
    }
}

fn escape_help(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_label(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

fn value(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

fn sample_line(name: &str, suffix: &str, s: &Sample, out: &mut String) {
    out.push_str(name);
    out.push_str(suffix);
    if !s.labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in s.labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_label(v, out);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    value(s.value, out);
    out.push('\n');
}

impl Families {
    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }

    /// The Prometheus text format 0.0.4.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for f in &self.families {
            out.push_str("# HELP ");
            out.push_str(&f.name);
            out.push(' ');
            escape_help(&f.help, &mut out);
            out.push('\n');
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
            for s in &f.samples {
                sample_line(&f.name, &s.suffix, s, &mut out);
            }
        }
        out
    }

    /// OpenMetrics 1.0.0: a counter family is named without `_total` and its samples with it.
    pub fn openmetrics(&self) -> String {
        let mut out = String::new();
        for f in &self.families {
            let (name, suffix) = match f.kind {
                Kind::Counter => (f.name.strip_suffix("_total").unwrap_or(&f.name), "_total"),
                _ => (f.name.as_str(), ""),
            };
            let _ = writeln!(out, "# TYPE {name} {}", f.kind.as_str());
            out.push_str("# HELP ");
            out.push_str(name);
            out.push(' ');
            let mut help = String::new();
            escape_label(&f.help, &mut help);
            out.push_str(&help);
            out.push('\n');
            for s in &f.samples {
                let sfx = if s.suffix.is_empty() { suffix } else { s.suffix.as_str() };
                sample_line(name, sfx, s, &mut out);
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

/// True when the `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.split(',').any(|p| p.trim().starts_with("application/openmetrics-text")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_group_samples_and_escape_labels() {
        let mut f = Families::default();
        f.counter("a_total", "A.", &[("x", "1")], 1);
        f.gauge("b", "B.", &[], 2.5);
        f.counter("a_total", "A.", &[("x", "q\"\\\n")], 3);
        let t = f.text();
        assert_eq!(
            t,
            "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 1\na_total{x=\"q\\\"\\\\\\n\"} 3\n\
             # HELP b B.\n# TYPE b gauge\nb 2.5\n"
        );
        let o = f.openmetrics();
        assert!(o.contains("# TYPE a counter\n") && o.contains("a_total{x=\"1\"} 1\n") && o.ends_with("# EOF\n"));
    }
}
