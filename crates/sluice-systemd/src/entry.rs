//! `<entry>`: how a journal entry becomes a record (`field_map`, `field_map_strict`,
//! `fields_strip_underscores`, `fields_lowercase`), as fluent-plugin-systemd's entry mutator does it.
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::{Map, Value};

#[derive(Debug, Clone, Default)]
pub struct EntryConfig {
    /// New field -> the journal fields whose values it takes (joined by spaces), in `field_map` order.
    map: Vec<(String, Vec<String>)>,
    /// Every journal field `field_map` names (left out of the unmapped fields).
    sources: Vec<String>,
    strict: bool,
    strip_underscores: bool,
    lowercase: bool,
}

impl EntryConfig {
    pub fn from_conf(source: &Element) -> Result<Self, ConfigError> {
        let Some(s) = source.section("entry") else {
            return Ok(EntryConfig::default());
        };
        let pairs = field_map(s)?;
        let mut map: Vec<(String, Vec<String>)> = Vec::new();
        let mut sources = Vec::new();
        for (src, targets) in &pairs {
            sources.push(src.clone());
            for t in targets {
                match map.iter_mut().find(|(n, _)| n == t) {
                    Some((_, srcs)) => srcs.push(src.clone()),
                    None => map.push((t.clone(), vec![src.clone()])),
                }
            }
        }
        Ok(EntryConfig {
            map,
            sources,
            strict: s.bool_or("field_map_strict", false)?,
            strip_underscores: s.bool_or("fields_strip_underscores", false)?,
            lowercase: s.bool_or("fields_lowercase", false)?,
        })
    }

    fn is_identity(&self) -> bool {
        self.map.is_empty() && !self.strict && !self.strip_underscores && !self.lowercase
    }

    /// The record for an entry given as (field, value) pairs in stored order. A field the entry has twice
    /// keeps its last value, as the plugin's Hash does.
    pub fn record(&self, fields: Vec<(String, Value)>) -> Map {
        let mut out = Map::with_capacity(fields.len());
        if self.is_identity() {
            for (k, v) in fields {
                out.insert(k, v);
            }
            return out;
        }
        for (name, srcs) in &self.map {
            let vals: Vec<&Value> =
                srcs.iter().filter_map(|s| fields.iter().rev().find(|(k, _)| k == s).map(|(_, v)| v)).collect();
            match vals.as_slice() {
                [] => {}
                [one] => {
                    out.insert(name.as_str(), (*one).clone());
                }
                many => {
                    let joined = many.iter().map(|v| v.to_display_string()).collect::<Vec<_>>().join(" ");
                    out.insert(name.as_str(), Value::Str(joined.into()));
                }
            }
        }
        if self.strict {
            return out;
        }
        for (k, v) in fields {
            if self.sources.contains(&k) {
                continue;
            }
            let mut k = if self.strip_underscores { k.trim_start_matches('_').to_string() } else { k };
            if self.lowercase {
                k = k.to_lowercase();
            }
            // A mapped field of the same name gets this value in front of its own.
            let v = match out.get(&k) {
                Some(mapped) => Value::Str(format!("{} {}", v.to_display_string(), mapped.to_display_string()).into()),
                None => v,
            };
            out.insert(k, v);
        }
        out
    }
}

/// `field_map`: a JSON object whose values are a field name or an array of names, or Fluentd's `k:v,k2:v2`.
fn field_map(s: &Element) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    let Some(text) = s.get("field_map").map(str::trim) else {
        return Ok(Vec::new());
    };
    let bad = |why: &str| {
        s.error_at("field_map", format!("'field_map' {why}"))
            .with_hint(r#"e.g. field_map {"MESSAGE": "log", "_PID": ["process", "pid"]}"#)
    };
    if !text.starts_with('{') {
        return Ok(s.hash("field_map")?.unwrap_or_default().into_iter().map(|(k, v)| (k, vec![v])).collect());
    }
    let v: serde_json::Value = serde_json::from_str(text).map_err(|_| bad("is not valid JSON"))?;
    let obj = v.as_object().ok_or_else(|| bad("must be a JSON object"))?;
    let mut out = Vec::with_capacity(obj.len());
    for (k, v) in obj {
        let targets = match v {
            serde_json::Value::String(t) => vec![t.clone()],
            serde_json::Value::Array(a) => a
                .iter()
                .map(|t| {
                    t.as_str().map(str::to_string).ok_or_else(|| bad("values must be strings or arrays of strings"))
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(bad("values must be strings or arrays of strings")),
        };
        out.push((k.clone(), targets));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::config::parse_str;

    fn cfg(entry: &str) -> EntryConfig {
        let text = format!("<source>\n  @type systemd\n  <entry>\n{entry}\n  </entry>\n</source>\n");
        let root = parse_str(&text, std::path::Path::new("t.conf")).unwrap();
        EntryConfig::from_conf(root.section("source").unwrap()).unwrap()
    }

    fn fields() -> Vec<(String, Value)> {
        [
            ("MESSAGE", "hi"),
            ("_PID", "42"),
            ("_COMM", "kubelet"),
            ("_SYSTEMD_UNIT", "kubelet.service"),
            ("PRIORITY", "6"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), Value::Str((*v).into())))
        .collect()
    }

    fn text(m: &Map) -> Vec<(String, String)> {
        m.iter().map(|(k, v)| (k.to_string(), v.to_display_string())).collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    // The cases of the plugin's own entry mutator tests, on the same sample entry shape.
    #[test]
    fn field_map_joins_and_appends() {
        let c = cfg(r#"    field_map {"MESSAGE": "log", "_PID": ["process", "pid"], "_COMM": "process"}"#);
        let got = text(&c.record(fields()));
        assert_eq!(
            got,
            pairs(&[
                ("log", "hi"),
                ("process", "42 kubelet"),
                ("pid", "42"),
                ("_SYSTEMD_UNIT", "kubelet.service"),
                ("PRIORITY", "6")
            ])
        );
    }

    #[test]
    fn strict_keeps_only_mapped_fields() {
        let c = cfg("    field_map {\"MESSAGE\": \"log\"}\n    field_map_strict true");
        assert_eq!(text(&c.record(fields())), pairs(&[("log", "hi")]));
    }

    #[test]
    fn strip_underscores_and_lowercase() {
        let c = cfg("    fields_strip_underscores true\n    fields_lowercase true");
        assert_eq!(
            text(&c.record(fields())),
            pairs(&[
                ("message", "hi"),
                ("pid", "42"),
                ("comm", "kubelet"),
                ("systemd_unit", "kubelet.service"),
                ("priority", "6")
            ])
        );
        // An unmapped field landing on a mapped name goes in front of the mapped value.
        let c =
            cfg("    field_map {\"MESSAGE\": \"pid\"}\n    fields_strip_underscores true\n    fields_lowercase true");
        let got = text(&c.record(fields()));
        assert_eq!(got[0], ("pid".to_string(), "42 hi".to_string()));
    }

    #[test]
    fn bad_field_map_is_a_config_error() {
        let text = "<source>\n  @type systemd\n  <entry>\n    field_map {\"A\": 1}\n  </entry>\n</source>\n";
        let root = parse_str(text, std::path::Path::new("t.conf")).unwrap();
        let e = EntryConfig::from_conf(root.section("source").unwrap()).unwrap_err().to_string();
        assert!(e.contains("field_map") && e.contains("t.conf:4"), "{e}");
    }
}
