use super::{types, ConfigError};
use std::cell::Cell;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Where a directive or parameter was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<str>,
    pub line: u32,
}

impl Location {
    pub fn new(file: impl AsRef<Path>, line: u32) -> Self {
        Location { file: Arc::from(file.as_ref().to_string_lossy().as_ref()), line }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One parameter: `key value`.
#[derive(Debug, Clone)]
pub struct Attr {
    pub key: String,
    pub value: String,
    pub loc: Location,
    /// Set when a plugin reads it, so parameters nobody read can be warned about as Fluentd does.
    pub used: Cell<bool>,
}

impl PartialEq for Attr {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key && self.value == o.value
    }
}

/// A directive or section: `<name arg> attrs... children... </name>`. The top level is an element named
/// `ROOT` whose children are the directives.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub name: String,
    pub arg: String,
    pub attrs: Vec<Attr>,
    pub children: Vec<Element>,
    pub loc: Location,
    /// The front end reported an error inside this section (a value it could not evaluate, a line it
    /// could not read). The error says what is wrong; the directive holding it is not built, so its
    /// half-read parameters add no second, misleading error.
    pub parse_failed: bool,
}

impl Element {
    pub fn new(name: impl Into<String>, arg: impl Into<String>, loc: Location) -> Self {
        Element {
            name: name.into(),
            arg: arg.into(),
            attrs: Vec::new(),
            children: Vec::new(),
            loc,
            parse_failed: false,
        }
    }

    /// Add or replace a parameter (the last one written wins, as in Fluentd).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>, loc: Location) {
        let key = key.into();
        let value = value.into();
        if let Some(a) = self.attrs.iter_mut().find(|a| a.key == key) {
            a.value = value;
            a.loc = loc;
        } else {
            self.attrs.push(Attr { key, value, loc, used: Cell::new(false) });
        }
    }

    pub fn attr(&self, key: &str) -> Option<&Attr> {
        let a = self.attrs.iter().find(|a| a.key == key)?;
        a.used.set(true);
        Some(a)
    }

    pub fn has(&self, key: &str) -> bool {
        self.attrs.iter().any(|a| a.key == key)
    }

    /// The raw string of a parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attr(key).map(|a| a.value.as_str())
    }

    /// `@type`, falling back to the old `type` spelling.
    pub fn plugin_type(&self) -> Option<&str> {
        self.get("@type").or_else(|| self.get("type"))
    }

    pub fn plugin_id(&self) -> Option<&str> {
        self.get("@id")
    }

    /// Where to point an error about `key`: the parameter's line if it is set, else the section's.
    pub fn loc_of(&self, key: &str) -> &Location {
        self.attrs.iter().find(|a| a.key == key).map(|a| &a.loc).unwrap_or(&self.loc)
    }

    pub fn error(&self, msg: impl Into<String>) -> ConfigError {
        ConfigError::at(&self.loc, msg)
    }

    pub fn error_at(&self, key: &str, msg: impl Into<String>) -> ConfigError {
        ConfigError::at(self.loc_of(key), msg)
    }

    fn typed<T>(&self, key: &str, kind: &str, f: impl Fn(&str) -> Option<T>) -> Result<Option<T>, ConfigError> {
        match self.attr(key) {
            None => Ok(None),
            Some(a) => f(a.value.trim()).map(Some).ok_or_else(|| {
                ConfigError::at(&a.loc, format!("'{key}' parameter: {:?} is not a valid {kind}", a.value))
                    .with_hint(types::hint_for(kind))
            }),
        }
    }

    pub fn str_or(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_string()
    }

    pub fn opt_str(&self, key: &str) -> Option<String> {
        self.get(key).map(str::to_string)
    }

    pub fn required_str(&self, key: &str) -> Result<String, ConfigError> {
        self.opt_str(key).ok_or_else(|| {
            self.error(format!("'{key}' parameter is required"))
                .with_hint(format!("add '{key} VALUE' inside <{} {}>", self.name, self.arg).replace(" >", ">"))
        })
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        Ok(self.typed(key, "bool", types::parse_bool)?.unwrap_or(default))
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        self.typed(key, "bool", types::parse_bool)
    }

    pub fn int_or(&self, key: &str, default: i64) -> Result<i64, ConfigError> {
        Ok(self.typed(key, "integer", types::parse_int)?.unwrap_or(default))
    }

    pub fn opt_int(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        self.typed(key, "integer", types::parse_int)
    }

    pub fn float_or(&self, key: &str, default: f64) -> Result<f64, ConfigError> {
        Ok(self.typed(key, "float", types::parse_float)?.unwrap_or(default))
    }

    /// A size such as `10k`, `8m`, `1g` in bytes.
    pub fn size_or(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        Ok(self.typed(key, "size", types::parse_size)?.unwrap_or(default))
    }

    pub fn opt_size(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        self.typed(key, "size", types::parse_size)
    }

    /// A time such as `30s`, `5m`, `1h`, `1d` or `0.5`, in seconds.
    pub fn time_or(&self, key: &str, default: f64) -> Result<f64, ConfigError> {
        Ok(self.typed(key, "time", types::parse_time)?.unwrap_or(default))
    }

    pub fn opt_time(&self, key: &str) -> Result<Option<f64>, ConfigError> {
        self.typed(key, "time", types::parse_time)
    }

    /// An array written `a,b` or as JSON.
    pub fn array(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        self.typed(key, "array", types::parse_array)
    }

    pub fn array_or_empty(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        Ok(self.array(key)?.unwrap_or_default())
    }

    /// A hash written `k:v,k2:v2` or as JSON.
    pub fn hash(&self, key: &str) -> Result<Option<Vec<(String, String)>>, ConfigError> {
        self.typed(key, "hash", types::parse_hash)
    }

    /// One of a fixed set of words.
    pub fn enum_or(&self, key: &str, allowed: &[&str], default: &str) -> Result<String, ConfigError> {
        match self.attr(key) {
            None => Ok(default.to_string()),
            Some(a) => {
                let v = a.value.trim();
                if allowed.contains(&v) {
                    Ok(v.to_string())
                } else {
                    Err(ConfigError::at(&a.loc, format!("'{key}' parameter: {v:?} is not one of the valid values"))
                        .with_hint(format!("use one of: {}", allowed.join(", "))))
                }
            }
        }
    }

    /// Child sections with this name, marking none as special.
    pub fn sections<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub fn section(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Parameters no plugin read: Fluentd warns about each of them and keeps going.
    pub fn unused_attrs(&self) -> Vec<(&Element, &Attr)> {
        let mut out = Vec::new();
        self.collect_unused(&mut out);
        out
    }

    /// Whether the front end reported an error in this section or any section inside it.
    pub fn has_parse_error(&self) -> bool {
        self.parse_failed || self.children.iter().any(Element::has_parse_error)
    }

    /// `<match **>` as Fluentd prints a section in messages.
    pub fn display_name(&self) -> String {
        if self.arg.is_empty() {
            format!("<{}>", self.name)
        } else {
            format!("<{} {}>", self.name, self.arg)
        }
    }

    fn collect_unused<'a>(&'a self, out: &mut Vec<(&'a Element, &'a Attr)>) {
        for a in &self.attrs {
            if !a.used.get() && !a.key.starts_with('@') && a.key != "type" {
                out.push((self, a));
            }
        }
        for c in &self.children {
            c.collect_unused(out);
        }
    }

    /// Copy "parameter was read" marks from a clone (possibly with parameters added at the end) back here.
    pub fn mark_used_from(&self, clone: &Element) {
        for (a, b) in self.attrs.iter().zip(clone.attrs.iter()) {
            if b.used.get() && a.key == b.key {
                a.used.set(true);
            }
        }
        for (a, b) in self.children.iter().zip(clone.children.iter()) {
            a.mark_used_from(b);
        }
    }

    /// Mark everything below as read: for sections handed over whole (e.g. to another plugin that checks them).
    pub fn mark_all_used(&self) {
        for a in &self.attrs {
            a.used.set(true);
        }
        for c in &self.children {
            c.mark_all_used();
        }
    }
}
