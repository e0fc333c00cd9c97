use super::{types, ConfigError};
use std::cell::{Cell, RefCell};
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
    /// The value as written; empty when `special` is set.
    pub value: String,
    /// Written with Fluentd's `"#{use_nil}"` or `"#{use_default}"` instead of a value.
    pub special: Option<Special>,
    pub loc: Location,
    /// Set when a plugin reads it, so parameters nobody read can be warned about as Fluentd does.
    pub used: Cell<bool>,
}

impl PartialEq for Attr {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key && self.value == o.value && self.special == o.special
    }
}

/// Fluentd's special values: wherever one appears in a double-quoted value, it replaces the whole value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// `use_nil`: the parameter is set, to nil. Fluentd takes nil only where the parameter's default is
    /// nil (an optional parameter: then as if not written); anywhere else it is the error
    /// [`Element::nil_error`]. The getters do the same.
    Nil,
    /// `use_default`: the parameter takes its default, as if not written.
    Default,
}

thread_local! {
    /// Nil parameters refused by [`Element::str_or`], for [`take_nil_refusals`]. Kept here rather than on
    /// the parameter because plugins read copies of sections (and sections the compatibility
    /// conversion builds) that are not in the tree.
    static NIL_REFUSALS: RefCell<Vec<ConfigError>> = const { RefCell::new(Vec::new()) };
}

/// Fluentd's error for each nil parameter that [`Element::str_or`] had to refuse on this thread since the
/// last call, each once. The engine reports them with the plugins' own configuration errors.
pub fn take_nil_refusals() -> Vec<ConfigError> {
    let mut all = NIL_REFUSALS.with(|r| std::mem::take(&mut *r.borrow_mut()));
    let mut seen = std::collections::HashSet::new();
    all.retain(|e| seen.insert(e.to_string()));
    all
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
        self.put(key.into(), value.into(), None, loc);
    }

    /// Set a parameter to one of Fluentd's special values, replacing any earlier value. It stays a
    /// parameter (so one nobody reads is still warned about), but getters see no value.
    pub fn set_special(&mut self, key: impl Into<String>, special: Special, loc: Location) {
        self.put(key.into(), String::new(), Some(special), loc);
    }

    fn put(&mut self, key: String, value: String, special: Option<Special>, loc: Location) {
        if let Some(a) = self.attrs.iter_mut().find(|a| a.key == key) {
            a.value = value;
            a.special = special;
            a.loc = loc;
        } else {
            self.attrs.push(Attr { key, value, special, loc, used: Cell::new(false) });
        }
    }

    /// A parameter with a value (marked read). One set to nil or to its default is marked read too but
    /// gives `None`: for an optional parameter Fluentd's nil and "not written" are the same.
    pub fn attr(&self, key: &str) -> Option<&Attr> {
        let a = self.attrs.iter().find(|a| a.key == key)?;
        a.used.set(true);
        a.special.is_none().then_some(a)
    }

    /// Whether the parameter is written with a value (nil or `use_default` count as not written). A
    /// special one is marked read: the plugin looked, and takes it as not written (there is nothing
    /// more to read), so it gets no "not used" warning.
    pub fn has(&self, key: &str) -> bool {
        let Some(a) = self.attrs.iter().find(|a| a.key == key) else { return false };
        if a.special.is_some() {
            a.used.set(true);
        }
        a.special.is_none()
    }

    /// Whether the parameter is set to nil (`"#{use_nil}"`); marks it read.
    pub fn is_nil(&self, key: &str) -> bool {
        self.nil_attr(key).is_some()
    }

    fn nil_attr(&self, key: &str) -> Option<&Attr> {
        let a = self.attrs.iter().find(|a| a.key == key && a.special == Some(Special::Nil))?;
        a.used.set(true);
        Some(a)
    }

    /// The raw string of a parameter (`None` when it is not written or is nil).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attr(key).map(|a| a.value.as_str())
    }

    /// Fluentd's error for nil given to a parameter whose default is not nil (or that has none).
    pub fn nil_error(&self, key: &str) -> ConfigError {
        ConfigError::at(self.loc_of(key), format!("'{key}' parameter is required but nil is specified")).with_hint(
            "give it a value, or remove the line to take its default (nil, written \"#{use_nil}\" or as an empty \
             YAML value, suits only parameters whose default is nil)",
        )
    }

    /// `Err` when the parameter is nil: for getters of parameters that are required or have a default.
    fn refuse_nil(&self, key: &str) -> Result<(), ConfigError> {
        match self.nil_attr(key) {
            Some(_) => Err(self.nil_error(key)),
            None => Ok(()),
        }
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

    /// The value, or `default` when not written. Nil cannot take the default (Fluentd refuses it), and
    /// this getter cannot fail: the refusal is kept for [`take_nil_refusals`].
    pub fn str_or(&self, key: &str, default: &str) -> String {
        if self.nil_attr(key).is_some() {
            let e = self.nil_error(key);
            NIL_REFUSALS.with(|r| r.borrow_mut().push(e));
        }
        self.get(key).unwrap_or(default).to_string()
    }

    pub fn opt_str(&self, key: &str) -> Option<String> {
        self.get(key).map(str::to_string)
    }

    pub fn required_str(&self, key: &str) -> Result<String, ConfigError> {
        self.refuse_nil(key)?;
        self.opt_str(key).ok_or_else(|| {
            self.error(format!("'{key}' parameter is required"))
                .with_hint(format!("add '{key} VALUE' inside <{} {}>", self.name, self.arg).replace(" >", ">"))
        })
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        self.refuse_nil(key)?;
        Ok(self.typed(key, "bool", types::parse_bool)?.unwrap_or(default))
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        self.typed(key, "bool", types::parse_bool)
    }

    pub fn int_or(&self, key: &str, default: i64) -> Result<i64, ConfigError> {
        self.refuse_nil(key)?;
        Ok(self.typed(key, "integer", types::parse_int)?.unwrap_or(default))
    }

    pub fn opt_int(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        self.typed(key, "integer", types::parse_int)
    }

    pub fn float_or(&self, key: &str, default: f64) -> Result<f64, ConfigError> {
        self.refuse_nil(key)?;
        Ok(self.typed(key, "float", types::parse_float)?.unwrap_or(default))
    }

    /// A size such as `10k`, `8m`, `1g` in bytes.
    pub fn size_or(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        self.refuse_nil(key)?;
        Ok(self.typed(key, "size", types::parse_size)?.unwrap_or(default))
    }

    pub fn opt_size(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        self.typed(key, "size", types::parse_size)
    }

    /// A time such as `30s`, `5m`, `1h`, `1d` or `0.5`, in seconds.
    pub fn time_or(&self, key: &str, default: f64) -> Result<f64, ConfigError> {
        self.refuse_nil(key)?;
        Ok(self.typed(key, "time", types::parse_time)?.unwrap_or(default))
    }

    pub fn opt_time(&self, key: &str) -> Result<Option<f64>, ConfigError> {
        self.typed(key, "time", types::parse_time)
    }

    /// An array written `a,b` or as JSON.
    pub fn array(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        self.typed(key, "array", types::parse_array)
    }

    /// An array, empty when not written. Nil reads as empty too: plugins' list parameters default to nil
    /// or to an empty list, and either way the plugin then has no items.
    pub fn array_or_empty(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        Ok(self.array(key)?.unwrap_or_default())
    }

    /// A hash written `k:v,k2:v2` or as JSON.
    pub fn hash(&self, key: &str) -> Result<Option<Vec<(String, String)>>, ConfigError> {
        self.typed(key, "hash", types::parse_hash)
    }

    /// One of a fixed set of words.
    pub fn enum_or(&self, key: &str, allowed: &[&str], default: &str) -> Result<String, ConfigError> {
        self.refuse_nil(key)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    fn section(body: &str) -> Element {
        let text = format!("<match a>\n{body}</match>\n");
        let mut root = parse_str(&text, Path::new("t.conf")).expect("parse");
        root.children.remove(0)
    }

    fn err(r: Result<impl fmt::Debug, ConfigError>) -> String {
        r.expect_err("nil must be refused").to_string()
    }

    #[test]
    fn use_nil_is_refused_where_the_parameter_is_required_or_has_a_default() {
        let m = section(
            "  s \"#{use_nil}\"\n  b \"#{use_nil}\"\n  i \"#{use_nil}\"\n  f \"#{use_nil}\"\n  z \"#{use_nil}\"\n  \
             t \"#{use_nil}\"\n  e \"#{use_nil}\"\n",
        );
        let want = |line: u32, key: &str| format!("t.conf:{line}: '{key}' parameter is required but nil is specified");
        assert!(err(m.required_str("s")).starts_with(&want(2, "s")));
        assert!(err(m.bool_or("b", true)).starts_with(&want(3, "b")));
        assert!(err(m.int_or("i", 1)).starts_with(&want(4, "i")));
        assert!(err(m.float_or("f", 0.5)).starts_with(&want(5, "f")));
        assert!(err(m.size_or("z", 1024)).starts_with(&want(6, "z")));
        assert!(err(m.time_or("t", 60.0)).starts_with(&want(7, "t")));
        assert!(err(m.enum_or("e", &["x", "y"], "x")).starts_with(&want(8, "e")));
        assert!(m.nil_error("s").hint.is_some());
        // Read, so no "not used" warning on top of the error.
        assert!(m.unused_attrs().is_empty(), "{:?}", m.unused_attrs());
    }

    #[test]
    fn use_nil_is_taken_where_the_default_is_nil() {
        let m = section(
            "  s \"#{use_nil}\"\n  b \"#{use_nil}\"\n  i \"#{use_nil}\"\n  z \"#{use_nil}\"\n  t \"#{use_nil}\"\n  \
             a \"#{use_nil}\"\n  h \"#{use_nil}\"\n  l \"#{use_nil}\"\n  r \"#{use_nil}\"\n",
        );
        assert_eq!(m.opt_str("s"), None);
        assert_eq!(m.opt_bool("b").unwrap(), None);
        assert_eq!(m.opt_int("i").unwrap(), None);
        assert_eq!(m.opt_size("z").unwrap(), None);
        assert_eq!(m.opt_time("t").unwrap(), None);
        assert_eq!(m.array("a").unwrap(), None);
        assert_eq!(m.hash("h").unwrap(), None);
        assert!(m.array_or_empty("l").unwrap().is_empty());
        assert!(m.get("r").is_none() && m.attr("r").is_none() && !m.has("r") && m.is_nil("r"));
        assert!(m.unused_attrs().is_empty() && take_nil_refusals().is_empty());
    }

    #[test]
    fn a_getter_that_cannot_fail_leaves_its_refusal_for_later() {
        let _ = take_nil_refusals();
        let m = section("  p \"#{use_nil}\"\n  q \"#{use_default}\"\n");
        // The default is returned (the caller cannot be told), and the refusal is kept, once, also when
        // it is a copy of the section that is read.
        assert_eq!(m.str_or("p", ".log"), ".log");
        assert_eq!(m.clone().str_or("p", ".log"), ".log");
        assert_eq!(m.str_or("q", ".log"), ".log");
        let errs: Vec<String> = take_nil_refusals().iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("t.conf:2: 'p' parameter is required but nil is specified"), "{errs:?}");
        assert!(take_nil_refusals().is_empty());
    }

    #[test]
    fn use_default_is_the_default_and_the_last_line_wins() {
        let m = section(
            "  a 5\n  a \"#{use_default}\"\n  b \"#{use_nil}\"\n  b 7\n  c 1\n  c \"#{use_nil}\"\n  d \"#{use_default}\"\n",
        );
        assert_eq!(m.int_or("a", 3).unwrap(), 3);
        assert_eq!(m.int_or("b", 3).unwrap(), 7);
        assert!(err(m.int_or("c", 3)).starts_with("t.conf:7: 'c' parameter"));
        assert_eq!(m.opt_str("d"), None);
        assert_eq!(m.attrs.iter().map(|a| a.key.as_str()).collect::<Vec<_>>(), ["a", "b", "c", "d"]);
    }

    #[test]
    fn unread_special_parameters_are_still_warned_about() {
        // Fluentd keeps them as parameters: a misspelt one is reported as not used.
        let m = section("  flush_intervl \"#{use_nil}\"\n  retry_wiat \"#{use_default}\"\n  known 1\n");
        let _ = m.get("known");
        let unused: Vec<&str> = m.unused_attrs().iter().map(|(_, a)| a.key.as_str()).collect();
        assert_eq!(unused, ["flush_intervl", "retry_wiat"]);
        // A plugin that only asks whether one is written has read it (`sample` vs `dummy`).
        let m = section("  sample \"#{use_default}\"\n");
        assert!(!m.has("sample") && m.unused_attrs().is_empty());
    }

    #[test]
    fn special_values_cannot_name_a_parameter() {
        let e = parse_str("<a>\n  \"#{use_nil}\" v\n</a>\n", Path::new("t.conf")).unwrap_err().to_string();
        assert!(e.starts_with("t.conf:2:") && e.contains("parameter name"), "{e}");
    }
}
