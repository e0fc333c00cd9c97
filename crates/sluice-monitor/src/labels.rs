//! fluent-plugin-prometheus's `<labels>`: a value is a record accessor (`$.a.b`, `$['a']`), or a string
//! with placeholders `${tag}`, `${tag_parts[N]}`, `${hostname}`, `${worker_id}` and `${record_key}`.
use sluice_core::accessor::Accessor;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::Map;

/// sluice runs one worker process: `${worker_id}` is always 0.
pub const WORKER_ID: &str = "0";

#[derive(Debug, Clone)]
pub enum Part {
    Lit(String),
    Tag,
    TagIndex(i64),
    Hostname,
    WorkerId,
    Key(String),
}

#[derive(Debug, Clone)]
pub enum LabelValue {
    Accessor(Accessor),
    Template(Vec<Part>),
}

impl LabelValue {
    fn parse(el: &Element, key: &str, v: &str) -> Result<Self, ConfigError> {
        if v.starts_with("$.") || v.starts_with("$[") {
            return Ok(LabelValue::Accessor(Accessor::parse_conf(el, key, v)?));
        }
        let mut parts = Vec::new();
        let mut rest = v;
        while let Some(i) = rest.find("${") {
            let Some(end) = rest[i..].find('}') else { break };
            if i > 0 {
                parts.push(Part::Lit(rest[..i].to_string()));
            }
            let name = &rest[i + 2..i + end];
            parts.push(match name {
                "tag" => Part::Tag,
                "hostname" => Part::Hostname,
                "worker_id" => Part::WorkerId,
                n if n.starts_with("tag_parts[") && n.ends_with(']') => {
                    let idx = &n["tag_parts[".len()..n.len() - 1];
                    match idx.trim().parse::<i64>() {
                        Ok(i) => Part::TagIndex(i),
                        Err(_) => {
                            return Err(el.error_at(key, format!("placeholder ${{{n}}}: index must be an integer")))
                        }
                    }
                }
                n => Part::Key(n.to_string()),
            });
            rest = &rest[i + end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        Ok(LabelValue::Template(parts))
    }

    fn is_static(&self) -> bool {
        match self {
            LabelValue::Accessor(_) => false,
            LabelValue::Template(p) => p.iter().all(|p| matches!(p, Part::Lit(_) | Part::Hostname | Part::WorkerId)),
        }
    }

    /// The label's value for one event. An accessor that finds nothing gives an empty value.
    pub fn expand(&self, tag: &str, hostname: &str, record: &Map, out: &mut String) {
        out.clear();
        match self {
            LabelValue::Accessor(a) => {
                if let Some(v) = a.get(record) {
                    v.append_display(out);
                }
            }
            LabelValue::Template(parts) => {
                for p in parts {
                    match p {
                        Part::Lit(s) => out.push_str(s),
                        Part::Tag => out.push_str(tag),
                        Part::Hostname => out.push_str(hostname),
                        Part::WorkerId => out.push_str(WORKER_ID),
                        Part::TagIndex(i) => {
                            let parts: Vec<&str> = tag.split('.').collect();
                            let idx = if *i < 0 { parts.len() as i64 + i } else { *i };
                            if let Some(s) = usize::try_from(idx).ok().and_then(|i| parts.get(i)) {
                                out.push_str(s);
                            }
                        }
                        Part::Key(k) => match record.get(k) {
                            Some(v) => v.append_display(out),
                            // Fluentd leaves an unknown placeholder as it is.
                            None => {
                                out.push_str("${");
                                out.push_str(k);
                                out.push('}');
                            }
                        },
                    }
                }
            }
        }
    }
}

/// The `<labels>` of a section (at most one), in order.
pub fn parse(el: &Element) -> Result<Vec<(String, LabelValue)>, ConfigError> {
    let all: Vec<&Element> = el.sections("labels").collect();
    if all.len() > 1 {
        return Err(all[1].error("labels section must have at most 1"));
    }
    let Some(l) = all.first() else { return Ok(Vec::new()) };
    l.mark_all_used();
    l.attrs.iter().map(|a| Ok((a.key.clone(), LabelValue::parse(l, &a.key, &a.value)?))).collect()
}

/// `<labels>` of the monitor inputs: only `${hostname}`/`${worker_id}` and literals, expanded once.
pub fn parse_static(el: &Element, plugin: &str, hostname: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let labels = parse(el)?;
    let empty = Map::new();
    let mut out = Vec::with_capacity(labels.len());
    for (k, v) in labels {
        if !v.is_static() {
            let loc = el.section("labels").unwrap_or(el);
            return Err(loc.error_at(&k, format!("record accessor syntax is not available in {plugin}")));
        }
        let mut s = String::new();
        v.expand("", hostname, &empty, &mut s);
        out.push((k, s));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::event::Value;

    fn expand(v: &str, tag: &str, record: &Map) -> String {
        let el = Element::new("labels", "", sluice_core::config::Location::new("t.conf", 1));
        let lv = LabelValue::parse(&el, "k", v).unwrap();
        let mut out = String::new();
        lv.expand(tag, "host1", record, &mut out);
        out
    }

    #[test]
    fn placeholders_and_accessors() {
        let mut r = Map::new();
        let mut inner = Map::new();
        inner.insert("b", Value::from("deep"));
        r.insert("a", Value::Map(inner));
        r.insert("code", Value::Int(500));
        assert_eq!(expand("${tag}", "app.web.x", &r), "app.web.x");
        assert_eq!(expand("p-${tag_parts[1]}", "app.web.x", &r), "p-web");
        assert_eq!(expand("${tag_parts[-1]}", "app.web.x", &r), "x");
        assert_eq!(expand("${tag_parts[9]}", "app.web.x", &r), "");
        assert_eq!(expand("${hostname}/${worker_id}", "t", &r), "host1/0");
        assert_eq!(expand("$.a.b", "t", &r), "deep");
        assert_eq!(expand("${code}", "t", &r), "500");
        assert_eq!(expand("$.missing", "t", &r), "");
    }
}
