//! The `<source> @type systemd` parameters of fluent-plugin-systemd.
use crate::entry::EntryConfig;
use crate::storage::StorageConfig;
use sluice_core::config::{ConfigError, Element};
use sluice_core::plugin::BuildCtx;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct SystemdConfig {
    pub path: PathBuf,
    /// OR-ed terms, each a list of `FIELD=value` matches (AND between fields, OR within one field).
    pub matches: Vec<Vec<Vec<u8>>>,
    pub read_from_head: bool,
    pub tag: String,
    pub storage: StorageConfig,
    pub entry: EntryConfig,
}

impl SystemdConfig {
    pub fn from_conf(s: &Element, ctx: &BuildCtx) -> Result<Self, ConfigError> {
        let tag = s.required_str("tag")?;
        let path = PathBuf::from(s.str_or("path", "/var/log/journal"));
        let key = if s.has("matches") {
            "matches"
        } else if s.has("filters") {
            tracing::warn!("systemd: 'filters' is deprecated; use 'matches'");
            "filters"
        } else {
            "matches"
        };
        Ok(SystemdConfig {
            path,
            matches: parse_matches(s, key)?,
            read_from_head: s.bool_or("read_from_head", false)?,
            tag,
            storage: StorageConfig::from_conf(s, ctx)?,
            entry: EntryConfig::from_conf(s)?,
        })
    }
}

/// `matches [{"_SYSTEMD_UNIT": "kubelet.service"}, {"_PID": [1, 2]}]`.
fn parse_matches(s: &Element, key: &str) -> Result<Vec<Vec<Vec<u8>>>, ConfigError> {
    let Some(text) = s.get(key).map(str::trim) else {
        return Ok(Vec::new());
    };
    let bad = |why: String| {
        s.error_at(key, format!("'{key}' {why}"))
            .with_hint(r#"e.g. matches [{"_SYSTEMD_UNIT": "kubelet.service"}, {"_SYSTEMD_UNIT": ["docker.service", "containerd.service"]}]"#)
    };
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(format!("is not a JSON array of objects: {e}")))?;
    let terms = v.as_array().ok_or_else(|| bad("must be a JSON array of objects".into()))?;
    let mut out = Vec::with_capacity(terms.len());
    for t in terms {
        let obj = t.as_object().ok_or_else(|| bad("must be a JSON array of objects".into()))?;
        let mut term = Vec::new();
        for (field, val) in obj {
            if !valid_field(field) {
                return Err(bad(format!(
                    "has '{field}', which is not a journal field name (A-Z, 0-9 and _, not starting with a digit)"
                )));
            }
            let values: Vec<&serde_json::Value> = match val {
                serde_json::Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for v in values {
                let text = match v {
                    serde_json::Value::String(x) => x.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    _ => return Err(bad(format!("value of '{field}' must be a string, a number or an array of them"))),
                };
                term.push(format!("{field}={text}").into_bytes());
            }
        }
        if !term.is_empty() {
            out.push(term);
        }
    }
    Ok(out)
}

/// What `sd_journal_add_match` accepts as a field name.
fn valid_field(f: &str) -> bool {
    !f.is_empty()
        && f.len() <= 64
        && !f.as_bytes()[0].is_ascii_digit()
        && f.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::config::parse_str;
    use sluice_core::plugin::Registry;
    use std::sync::Arc;

    fn build(body: &str) -> Result<SystemdConfig, ConfigError> {
        let text = format!("<source>\n  @type systemd\n{body}\n</source>\n");
        let root = parse_str(&text, std::path::Path::new("t.conf")).unwrap();
        SystemdConfig::from_conf(root.section("source").unwrap(), &BuildCtx::new(Arc::new(Registry::new())))
    }

    #[test]
    fn matches_become_terms() {
        let c = build(
            "  tag k\n  matches [{\"_SYSTEMD_UNIT\": \"kubelet.service\", \"_PID\": 28097}, {\"_SYSTEMD_UNIT\": [\"a.service\", \"b.service\"]}]",
        )
        .unwrap();
        let t: Vec<Vec<String>> =
            c.matches.iter().map(|t| t.iter().map(|m| String::from_utf8_lossy(m).into_owned()).collect()).collect();
        assert_eq!(
            t,
            vec![
                vec!["_SYSTEMD_UNIT=kubelet.service".to_string(), "_PID=28097".into()],
                vec!["_SYSTEMD_UNIT=a.service".to_string(), "_SYSTEMD_UNIT=b.service".into()]
            ]
        );
        assert_eq!(c.path, PathBuf::from("/var/log/journal"));
        assert!(!c.read_from_head);
        assert!(build("  tag k\n  matches []").unwrap().matches.is_empty());
    }

    #[test]
    fn errors_name_the_line() {
        let e = build("  tag k\n  matches [{\"_systemd_unit\": \"x\"}]").unwrap_err().to_string();
        assert!(e.contains("t.conf:4") && e.contains("_systemd_unit"), "{e}");
        let e = build("  tag k\n  matches {\"A\": \"x\"}").unwrap_err().to_string();
        assert!(e.contains("array"), "{e}");
        assert!(build("  path /x").unwrap_err().to_string().contains("'tag'"));
        let e = build("  tag k\n  <storage>\n    @type redis\n  </storage>").unwrap_err().to_string();
        assert!(e.contains("redis"), "{e}");
        let e = build("  tag k\n  <storage>\n    persistent true\n  </storage>").unwrap_err().to_string();
        assert!(e.contains("path"), "{e}");
    }
}
