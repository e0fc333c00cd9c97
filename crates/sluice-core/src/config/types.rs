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
    let t = s.trim().replace('_', "");
    // Ruby's Float() takes decimal notation only: no `inf`/`nan` words.
    if t.bytes().any(|c| c.is_ascii_alphabetic() && c != b'e' && c != b'E') {
        return None;
    }
    t.parse().ok()
}

/// The largest duration a time parameter may have (about 31 years): Fluentd takes any float, but a
/// duration this long is a typo, and larger ones cannot be waited for.
pub const MAX_TIME_SECS: f64 = 1e9;

/// The digits right before the first `unit` letter that follows a digit, as Ruby's unanchored
/// `/([0-9]+)k/` finds them (so `8MB` is 8 with unit `m`, and `1.5g` is 5 with unit `g`).
fn digits_before<'a>(s: &'a str, units: &[u8]) -> Option<&'a str> {
    let b = s.as_bytes();
    let j = (1..b.len()).find(|&j| units.contains(&b[j]) && b[j - 1].is_ascii_digit())?;
    let i = b[..j].iter().rposition(|c| !c.is_ascii_digit()).map_or(0, |p| p + 1);
    Some(&s[i..j])
}

/// Ruby's `Integer(s)` for what Fluentd's strict mode accepts: optional sign, digits with single `_`
/// between them, surrounding whitespace.
fn ruby_integer(s: &str) -> Option<i128> {
    let t = s.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if body.is_empty() || body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return None;
    }
    if !body.bytes().all(|c| c.is_ascii_digit() || c == b'_') {
        return None;
    }
    let v: i128 = body.replace('_', "").parse().ok()?;
    Some(if neg { -v } else { v })
}

/// A size as Fluentd's `size` type reads it: the first `<digits>k|m|g|t` anywhere in the value (any
/// case; binary multiples), else a whole number of bytes. Fluentd (without `strict_config_value`) reads
/// anything else as 0; sluice rejects it, as Fluentd's strict mode does.
pub fn parse_size(s: &str) -> Option<u64> {
    const UNITS: [(&[u8], u32); 4] = [(b"kK", 10), (b"mM", 20), (b"gG", 30), (b"tT", 40)];
    for (letters, shift) in UNITS {
        if let Some(d) = digits_before(s, letters) {
            let n: u64 = d.parse().ok()?;
            return n.checked_mul(1u64 << shift);
        }
    }
    u64::try_from(ruby_integer(s)?).ok()
}

/// A duration as Fluentd's `time` type reads it: the first `<digits>s`, else `<digits>m`, `<digits>h`,
/// `<digits>d` anywhere in the value (whole units only, so `1.5h` is 5 hours as in Fluentd), else a
/// float number of seconds. Values Fluentd would read as 0 (not a number) and durations longer than
/// [`MAX_TIME_SECS`] are rejected.
pub fn parse_time(s: &str) -> Option<f64> {
    const UNITS: [(u8, f64); 4] = [(b's', 1.0), (b'm', 60.0), (b'h', 3600.0), (b'd', 86400.0)];
    let v = UNITS
        .iter()
        .find_map(|(u, mult)| digits_before(s, &[*u]).map(|d| d.parse::<f64>().ok().map(|n| n * mult)))
        .unwrap_or_else(|| parse_float(s.trim()))?;
    (v.is_finite() && v.abs() <= MAX_TIME_SECS).then_some(v)
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
        "time" => "write a duration such as 30s, 5m, 1h, 1d or 0.5 (at most 1e9 seconds)",
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
        // Fluentd's unanchored /([0-9]+)k/i: the digits right before the unit, whatever surrounds them.
        assert_eq!(parse_size("1.5K"), Some(5 * 1024));
        assert_eq!(parse_size("1.5g"), Some(5 << 30));
        assert_eq!(parse_size("8MB"), Some(8 << 20));
        assert_eq!(parse_size("256mb"), Some(256 << 20));
        assert_eq!(parse_size("2T"), Some(2 << 40));
        assert_eq!(parse_size("1_000"), Some(1000));
        assert_eq!(parse_size("abc"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("1.5"), None);
        assert_eq!(parse_size("99999999999999999999t"), None);
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("30s"), Some(30.0));
        assert_eq!(parse_time("5m"), Some(300.0));
        assert_eq!(parse_time("1h"), Some(3600.0));
        assert_eq!(parse_time("1d"), Some(86400.0));
        assert_eq!(parse_time("0.5"), Some(0.5));
        assert_eq!(parse_time("x"), None);
        // Whole units only, found anywhere, `s` before `m` before `h` before `d` (Fluentd's time type).
        assert_eq!(parse_time("1.5h"), Some(5.0 * 3600.0));
        assert_eq!(parse_time("10sec"), Some(10.0));
        assert_eq!(parse_time("2min"), Some(120.0));
        assert_eq!(parse_time("1h30m"), Some(30.0 * 60.0));
        assert_eq!(parse_time("5M"), None);
        assert_eq!(parse_time("1e3"), Some(1000.0));
        assert_eq!(parse_time("-1"), Some(-1.0));
        assert_eq!(parse_time("1e30"), None);
        assert_eq!(parse_time("99999999999999999999"), None);
        assert_eq!(parse_time("99999999999999999999s"), None);
        assert_eq!(parse_time("inf"), None);
        assert_eq!(parse_time("NaN"), None);
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
