//! Fluentd's parameter types, parsed the way `Fluent::Config` does.

pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "yes" | "" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    }
}

pub fn parse_int(s: &str) -> Option<i64> {
    s.replace('_', "").parse().ok()
}

pub fn parse_float(s: &str) -> Option<f64> {
    s.replace('_', "").parse().ok()
}

/// `1024`, `10k`, `8m`, `1g`, `1t` (binary multiples, any case).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        (i, 't' | 'T') => (&s[..i], 1 << 40),
        _ => (s, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    if n < 0.0 || !n.is_finite() {
        return None;
    }
    Some((n * mult as f64) as u64)
}

/// `30s`, `5m`, `1h`, `1d`, `0.5` in seconds.
pub fn parse_time(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 's') => (&s[..i], 1.0),
        (i, 'm') => (&s[..i], 60.0),
        (i, 'h') => (&s[..i], 3600.0),
        (i, 'd') => (&s[..i], 86400.0),
        _ => (s, 1.0),
    };
    let n: f64 = num.trim().parse().ok()?;
    if !n.is_finite() {
        return None;
    }
    Some(n * mult)
}

/// `a,b,c` or a JSON array.
pub fn parse_array(s: &str) -> Option<Vec<String>> {
    let t = s.trim();
    if t.starts_with('[') {
        let v: serde_json::Value = serde_json::from_str(t).ok()?;
        return v
            .as_array()?
            .iter()
            .map(|e| match e {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            })
            .collect();
    }
    if t.is_empty() {
        return Some(Vec::new());
    }
    Some(t.split(',').map(|p| p.trim().to_string()).collect())
}

/// `k:v,k2:v2` or a JSON object.
pub fn parse_hash(s: &str) -> Option<Vec<(String, String)>> {
    let t = s.trim();
    if t.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(t).ok()?;
        return Some(
            v.as_object()?
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        );
    }
    if t.is_empty() {
        return Some(Vec::new());
    }
    t.split(',')
        .map(|kv| {
            let (k, v) = kv.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

pub fn hint_for(kind: &str) -> &'static str {
    match kind {
        "bool" => "write true or false",
        "integer" => "write a whole number such as 10",
        "float" => "write a number such as 0.5",
        "size" => "write a size such as 1024, 10k, 8m or 1g",
        "time" => "write a duration such as 30s, 5m, 1h, 1d or 0.5",
        "array" => "write a,b,c or a JSON array such as [\"a\",\"b\"]",
        "hash" => "write k1:v1,k2:v2 or a JSON object",
        _ => "check the plugin's documentation",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("10k"), Some(10 * 1024));
        assert_eq!(parse_size("8m"), Some(8 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("1.5K"), Some(1536));
        assert_eq!(parse_size("abc"), None);
        assert_eq!(parse_size("-1"), None);
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("30s"), Some(30.0));
        assert_eq!(parse_time("5m"), Some(300.0));
        assert_eq!(parse_time("1h"), Some(3600.0));
        assert_eq!(parse_time("1d"), Some(86400.0));
        assert_eq!(parse_time("0.5"), Some(0.5));
        assert_eq!(parse_time("x"), None);
    }

    #[test]
    fn arrays_and_hashes() {
        assert_eq!(parse_array("a, b,c"), Some(vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(parse_array(r#"["a","b"]"#), Some(vec!["a".into(), "b".into()]));
        assert_eq!(parse_hash("k:v, k2:v2"), Some(vec![("k".into(), "v".into()), ("k2".into(), "v2".into())]));
        assert_eq!(parse_hash(r#"{"k":"v","n":1}"#), Some(vec![("k".into(), "v".into()), ("n".into(), "1".into())]));
        assert_eq!(parse_hash("novalue"), None);
    }

    #[test]
    fn bools() {
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool("no"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}
