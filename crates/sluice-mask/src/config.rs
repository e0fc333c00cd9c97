//! The mask filter's configuration: detectors, user rules, modes, the fields to scan or skip (record
//! accessors), sensitive field names, `on_error` and the HMAC key, read into a [`MaskFilter`].
use crate::detect::{Rule, RuleValidator, Scanner};
use crate::kind::{
    self, normalize_key, Detector, DetectorSet, KindId, BUILTIN, DEFAULT_SENSITIVE_KEYS, KEY_BUF, SENSITIVE_KEY,
};
use crate::mask::{Masker, Mode};
use crate::{MaskFilter, MaskMetrics};
use sluice_core::accessor::{Accessor as RecordAccessor, Segment};
use sluice_core::config::{ConfigError, Element};
use std::collections::HashMap;
use std::sync::Arc;

/// What an accessor of `keys`, `skip_keys` or `key_modes` does to the field it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Target,
    Skip,
    Mode(Mode),
}

/// A record accessor (the core's syntax: `$.a.b`, `$['a']['b']`, `$.items[0]`, or a bare top-level key) as
/// the path the walk follows, one segment per nesting level.
#[derive(Debug)]
pub(crate) struct Accessor {
    pub(crate) segs: Vec<Segment>,
    pub(crate) role: Role,
}

/// `on_error`: what becomes of a record that failed closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    Error,
    Drop,
}

fn read_key(conf: &Element) -> Result<Option<Vec<u8>>, ConfigError> {
    let key = if let Some(var) = conf.opt_str("hash_key_env") {
        match std::env::var(&var) {
            Ok(v) => Some(v.into_bytes()),
            Err(_) => {
                return Err(conf
                    .error_at("hash_key_env", format!("environment variable {var} is not set or not UTF-8"))
                    .with_hint("export the HMAC key in that variable before starting sluice"))
            }
        }
    } else if let Some(path) = conf.opt_str("hash_key_file") {
        match std::fs::read(&path) {
            Ok(mut v) => {
                while v.last().is_some_and(|c| c.is_ascii_whitespace()) {
                    v.pop();
                }
                Some(v)
            }
            Err(e) => return Err(conf.error_at("hash_key_file", format!("cannot read {path}: {e}"))),
        }
    } else {
        None
    };
    if let Some(k) = &key {
        if k.len() < 16 {
            return Err(conf
                .error("the hash key is shorter than 16 bytes")
                .with_hint("use a random key of at least 32 bytes, e.g. `openssl rand -hex 32`"));
        }
    }
    Ok(key)
}

impl MaskFilter {
    pub fn from_conf(conf: &Element) -> Result<Self, ConfigError> {
        // detectors
        let mut enabled = DetectorSet::empty();
        match conf.array("detectors")? {
            None => enabled = DetectorSet::defaults(),
            Some(list) => {
                for name in list {
                    let name = name.trim();
                    if name == "all" {
                        enabled = DetectorSet::all();
                    } else if name == "default" {
                        enabled = DetectorSet::defaults().iter().fold(enabled, |s, d| s.with(d));
                    } else if let Some(d) = Detector::from_name(name) {
                        enabled = enabled.with(d);
                    } else {
                        return Err(conf.error_at("detectors", format!("unknown detector '{name}'")).with_hint(
                            format!(
                                "known detectors: all, default, {}",
                                BUILTIN.iter().map(|d| d.name()).collect::<Vec<_>>().join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        let strict = conf.bool_or("strict_checksum", false)?;
        let max_size = conf.size_or("max_value_size", 1 << 20)? as usize;
        let default_mode = Mode::from_name(&conf.enum_or("mode", &Mode::NAMES, "redact")?).unwrap_or(Mode::Redact);
        let partial_keep = conf.int_or("partial_keep", 4)?;
        if !(0..=64).contains(&partial_keep) {
            return Err(conf.error_at("partial_keep", "must be between 0 and 64"));
        }

        let mut names: Vec<String> = BUILTIN.iter().map(|d| d.name().to_string()).collect();
        names.push(kind::SENSITIVE_KEY_NAME.to_string());
        let mut modes: Vec<Mode> = vec![default_mode; names.len()];

        // user rules
        let mut rules = Vec::new();
        for r in conf.sections("rule") {
            let name = r.required_str("name")?;
            if names.contains(&name) {
                return Err(r.error_at("name", format!("rule name '{name}' is already used")));
            }
            let pattern = r.required_str("pattern")?;
            let regex = regex::RegexBuilder::new(&pattern)
                .size_limit(1 << 22)
                .build()
                .map_err(|e| r.error_at("pattern", format!("invalid regular expression: {e}")))?;
            let validator = match r.enum_or("validator", &["none", "luhn"], "none")?.as_str() {
                "luhn" => RuleValidator::Luhn,
                _ => RuleValidator::None,
            };
            let mode = match r.opt_str("mode") {
                None => default_mode,
                Some(m) => Mode::from_name(&m).ok_or_else(|| {
                    r.error_at("mode", format!("unknown mode '{m}'")).with_hint("use redact, partial, hash or remove")
                })?,
            };
            names.push(name.clone());
            modes.push(mode);
            rules.push(Rule { name, regex, validator });
        }

        for (k, v) in conf.hash("detector_modes")?.unwrap_or_default() {
            let id = names
                .iter()
                .position(|n| *n == k)
                .ok_or_else(|| conf.error_at("detector_modes", format!("unknown detector or rule '{k}'")))?;
            modes[id] = Mode::from_name(&v)
                .ok_or_else(|| conf.error_at("detector_modes", format!("unknown mode '{v}' for '{k}'")))?;
        }

        // where
        let mut accessors = Vec::new();
        let mut add_acc = |key: &str, text: &str, role: Role| -> Result<(), ConfigError> {
            let text = text.trim();
            if text.is_empty() {
                return Err(conf.error_at(key, "invalid record accessor ''"));
            }
            let segs = RecordAccessor::parse_conf(conf, key, text)?.segments();
            accessors.push(Accessor { segs, role });
            Ok(())
        };
        let keys = conf.array_or_empty("keys")?;
        for k in &keys {
            add_acc("keys", k, Role::Target)?;
        }
        for k in conf.array_or_empty("skip_keys")? {
            add_acc("skip_keys", &k, Role::Skip)?;
        }
        for (k, v) in conf.hash("key_modes")?.unwrap_or_default() {
            let m = Mode::from_name(&v)
                .ok_or_else(|| conf.error_at("key_modes", format!("unknown mode '{v}' for '{k}'")))?;
            add_acc("key_modes", &k, Role::Mode(m))?;
        }
        let scan_all = conf.bool_or("scan_all", keys.is_empty())?;
        if !scan_all && keys.is_empty() {
            return Err(conf
                .error_at("scan_all", "scan_all is false and no `keys` are given: nothing would be scanned")
                .with_hint("name the fields with `keys $.message,$.user.phone` or set `scan_all true`"));
        }

        // sensitive field names
        let mut sensitive: HashMap<Vec<u8>, KindId> = HashMap::new();
        let mut buf = [0u8; KEY_BUF];
        let mut add_sensitive = |name: &str, kind: KindId| {
            if let Some(n) = normalize_key(name, &mut buf) {
                if !n.is_empty() {
                    sensitive.insert(n.to_vec(), kind);
                }
            }
        };
        match conf.array("sensitive_keys")? {
            None => {
                for (n, d) in DEFAULT_SENSITIVE_KEYS {
                    add_sensitive(n, d.map_or(SENSITIVE_KEY, |d| d.id()));
                }
            }
            Some(list) => {
                for n in list {
                    add_sensitive(&n, SENSITIVE_KEY);
                }
            }
        }
        for n in conf.array_or_empty("extra_sensitive_keys")? {
            add_sensitive(&n, SENSITIVE_KEY);
        }

        let on_error = match conf.enum_or("on_error", &["error", "drop"], "error")?.as_str() {
            "drop" => OnError::Drop,
            _ => OnError::Error,
        };

        let key = read_key(conf)?;
        let hashing = modes.contains(&Mode::Hash) || accessors.iter().any(|a| a.role == Role::Mode(Mode::Hash));
        if hashing && key.is_none() {
            return Err(conf
                .error("the hash mode needs an HMAC key")
                .with_hint("set `hash_key_env VAR` or `hash_key_file PATH` (at least 16 bytes)"));
        }

        let scanner = Scanner::new(enabled, strict, max_size, rules)
            .map_err(|e| conf.error(format!("cannot build the rule set: {e}")))?;
        let metrics = Arc::new(MaskMetrics::new(names.clone()));
        Ok(MaskFilter {
            scanner,
            masker: Masker::new(partial_keep as usize, key),
            names,
            modes,
            scan_all,
            all_accessors: (0..accessors.len() as u16).collect(),
            accessors,
            sensitive,
            on_error,
            metrics,
        })
    }
}
