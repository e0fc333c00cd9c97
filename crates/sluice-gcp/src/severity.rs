//! Severity words and numbers to the Cloud Logging `LogSeverity` enum, as fluent-plugin-google-cloud does.
use sluice_core::event::Value;

/// The API's enum, in order of their numbers (0, 100, ... 800).
pub const SEVERITIES: [&str; 9] =
    ["DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"];

/// The record keys a severity is read from, first found wins. The key is removed from the payload.
pub const SEVERITY_KEYS: [&str; 3] = ["severity", "level", "log_level"];

fn from_number(n: i64) -> &'static str {
    if n <= 0 {
        return "DEFAULT";
    }
    // 0..800 in steps of 100; values in between round down, values above are EMERGENCY.
    let idx = (n / 100).clamp(0, 8) as usize;
    SEVERITIES[idx]
}

/// Map a severity text (any case, surrounding spaces ignored) to the enum. Unknown words give DEFAULT.
pub fn parse_severity_str(s: &str) -> &'static str {
    let t = s.trim();
    if t.is_empty() {
        return "DEFAULT";
    }
    if let Ok(n) = t.parse::<i64>() {
        return from_number(n);
    }
    let up = t.to_ascii_uppercase();
    match up.as_str() {
        "DEFAULT" => "DEFAULT",
        "DEBUG" | "D" | "TRACE" | "TRACE_INT" | "FINE" | "FINER" | "FINEST" | "CONFIG" | "VERBOSE" => "DEBUG",
        "INFO" | "I" | "INFORMATION" | "INFORMATIONAL" => "INFO",
        "NOTICE" | "N" => "NOTICE",
        "WARNING" | "WARN" | "W" => "WARNING",
        "ERROR" | "ERR" | "E" | "SEVERE" => "ERROR",
        "CRITICAL" | "CRIT" | "C" | "FATAL" | "F" => "CRITICAL",
        "ALERT" | "A" => "ALERT",
        "EMERGENCY" | "EMERG" | "PANIC" => "EMERGENCY",
        _ => "DEFAULT",
    }
}

/// Map a record value (string or number) to the enum.
pub fn parse_severity(v: &Value) -> &'static str {
    match v {
        Value::Str(s) => parse_severity_str(s),
        Value::Bytes(b) => parse_severity_str(&String::from_utf8_lossy(b)),
        Value::Int(_) | Value::UInt(_) | Value::Float(_) => match v.as_f64() {
            Some(f) if f.is_finite() => from_number(f as i64),
            _ => "DEFAULT",
        },
        _ => "DEFAULT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_any_case() {
        for (w, want) in [
            ("info", "INFO"),
            ("INFO", "INFO"),
            ("Warn", "WARNING"),
            ("warning", "WARNING"),
            ("error", "ERROR"),
            ("err", "ERROR"),
            ("fatal", "CRITICAL"),
            ("critical", "CRITICAL"),
            ("emergency", "EMERGENCY"),
            ("alert", "ALERT"),
            ("debug", "DEBUG"),
            ("trace", "DEBUG"),
            ("notice", "NOTICE"),
            (" info ", "INFO"),
            ("bogus", "DEFAULT"),
            ("", "DEFAULT"),
            ("500", "ERROR"),
            ("250", "INFO"),
            ("900", "EMERGENCY"),
            ("-3", "DEFAULT"),
        ] {
            assert_eq!(parse_severity_str(w), want, "{w:?}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_severity(&Value::Int(400)), "WARNING");
        assert_eq!(parse_severity(&Value::UInt(600)), "CRITICAL");
        assert_eq!(parse_severity(&Value::Float(100.0)), "DEBUG");
        assert_eq!(parse_severity(&Value::Float(f64::NAN)), "DEFAULT");
        assert_eq!(parse_severity(&Value::Bool(true)), "DEFAULT");
    }
}
