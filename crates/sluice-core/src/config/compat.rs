//! Fluentd v0.12 parameter names that Fluentd v1 still accepts on a plugin and moves into a section
//! (`Fluent::PluginHelper::CompatParameters`): `buffer_type file` becomes `<buffer> @type file`,
//! `format /re/` becomes `<parse> @type regexp`, `include_time_key true` becomes `<inject> time_key time`.
//!
//! Each conversion happens only when the plugin has no such section and names at least one of the old
//! parameters, exactly as in Fluentd. The old parameters count as read (no "not used" warning): Fluentd
//! reads them while converting.
use super::{ConfigError, Element, Location, Special};

/// Old buffer parameter -> its name in `<buffer>`.
const BUFFER_PARAMS: &[(&str, &str)] = &[
    ("buffer_type", "@type"),
    ("buffer_path", "path"),
    ("num_threads", "flush_thread_count"),
    ("flush_interval", "flush_interval"),
    ("try_flush_interval", "flush_thread_interval"),
    ("queued_chunk_flush_interval", "flush_thread_burst_interval"),
    ("disable_retry_limit", "retry_forever"),
    ("retry_limit", "retry_max_times"),
    ("max_retry_wait", "retry_max_interval"),
    ("buffer_chunk_limit", "chunk_limit_size"),
    ("buffer_queue_limit", "queue_limit_length"),
    ("buffer_queue_full_action", "overflow_action"),
    ("flush_at_shutdown", "flush_at_shutdown"),
    ("time_slice_wait", "timekey_wait"),
    ("timezone", "timekey_zone"),
];
/// Buffer parameters that trigger the conversion without being copied under their own name.
const BUFFER_TRIGGERS: &[&str] = &["time_slice_format"];

/// Old parser parameters copied into `<parse>` under the same name.
const PARSER_COPIED: &[&str] = &[
    "keys",
    "time_key",
    "time_format",
    "delimiter",
    "keep_time_key",
    "null_empty_string",
    "null_value_pattern",
    "json_parser",
    "label_delimiter",
    "format_firstline",
    "message_key",
    "with_priority",
];
/// Parser parameters that trigger the conversion and are translated (or only read).
const PARSER_TRANSLATED: &[&str] = &["format", "types", "types_delimiter", "types_label_delimiter", "localtime", "utc"];
/// `format1` .. `format20` of the multiline parser, which in_tail copies into `<parse>` as well.
const MULTILINE_FORMAT_MAX: usize = 20;

const INJECT_COPIED: &[&str] = &["time_key", "time_format", "timezone", "tag_key"];
const INJECT_TRANSLATED: &[&str] = &["include_time_key", "include_tag_key", "localtime", "utc"];

/// Old formatter parameters copied into `<format>` (`format` becomes `@type`).
const FORMATTER_COPIED: &[&str] = &[
    "delimiter",
    "force_quotes",
    "keys",
    "fields",
    "json_parser",
    "label_delimiter",
    "output_time",
    "output_tag",
    "localtime",
    "utc",
    "timezone",
    "message_key",
    "add_newline",
    "output_type",
];

/// Copy a parameter into the new section; one set to nil (`"#{use_nil}"`) stays nil there, as Fluentd
/// copies the value whatever it is, so the new section's parameter refuses or takes it.
fn copy(conf: &Element, from: &str, to: &str, into: &mut Element) {
    if let Some(a) = conf.attr(from) {
        into.set(to, a.value.clone(), a.loc.clone());
    } else if conf.is_nil(from) {
        into.set_special(to, Special::Nil, conf.loc_of(from).clone());
    }
}

/// Whether the parameter is written, with a value or nil (Fluentd's `has_key?`). A nil one is marked
/// read: when it is found, the conversion it triggers copies it.
fn written(conf: &Element, key: &str) -> bool {
    conf.has(key) || conf.is_nil(key)
}

fn bool_of(conf: &Element, key: &str) -> Result<Option<bool>, ConfigError> {
    conf.opt_bool(key)
}

/// `localtime`/`utc` on the plugin as the `localtime` of the new section; both at once is an error.
fn localtime_of(conf: &Element) -> Result<Option<(bool, Location)>, ConfigError> {
    match (conf.has("localtime"), conf.has("utc")) {
        (true, true) => Err(conf.error_at("utc", "both of utc and localtime are specified, use only one of them")),
        (true, false) => Ok(bool_of(conf, "localtime")?.map(|b| (b, conf.loc_of("localtime").clone()))),
        (false, true) => Ok(bool_of(conf, "utc")?.map(|b| (!b, conf.loc_of("utc").clone()))),
        (false, false) => Ok(None),
    }
}

/// The `<buffer>` Fluentd builds from v0.12 buffer parameters on an output without a `<buffer>`
/// section. Its argument is empty (the plugin's default chunk keys) unless `time_slice_format` is set,
/// which makes `time` the chunk key with the slice the format names.
pub fn buffer(conf: &Element) -> Result<Option<Element>, ConfigError> {
    if conf.section("buffer").is_some()
        || !BUFFER_PARAMS.iter().map(|(k, _)| *k).chain(BUFFER_TRIGGERS.iter().copied()).any(|k| written(conf, k))
    {
        return Ok(None);
    }
    let mut b = Element::new("buffer", "", conf.loc.clone());
    for (old, new) in BUFFER_PARAMS {
        if let Some(a) = conf.attr(old) {
            let v = if *old == "buffer_queue_full_action" && a.value.trim() == "exception" {
                "throw_exception".to_string()
            } else {
                a.value.clone()
            };
            b.set(*new, v, a.loc.clone());
        } else {
            copy(conf, old, new, &mut b);
        }
    }
    if let Some(a) = conf.attr("time_slice_format") {
        let f = a.value.as_str();
        let timekey = if f.contains("%S") {
            1
        } else if f.contains("%M") {
            60
        } else if f.contains("%H") {
            3600
        } else if f.contains("%d") {
            86400
        } else {
            return Err(ConfigError::at(&a.loc, "time_slice_format only with %Y or %m is too long")
                .with_hint("include %d, %H, %M or %S in time_slice_format"));
        };
        b.arg = "time".into();
        b.set("timekey", timekey.to_string(), a.loc.clone());
        if let Some((local, loc)) = localtime_of(conf)? {
            b.set("timekey_use_utc", (!local).to_string(), loc);
        }
    }
    Ok(Some(b))
}

/// The `<parse>` Fluentd builds from v0.12 parser parameters on a plugin without a `<parse>` section.
/// `format /RE/` is the regexp parser with that expression.
pub fn parse(conf: &Element) -> Result<Option<Element>, ConfigError> {
    if conf.section("parse").is_some() || !PARSER_COPIED.iter().chain(PARSER_TRANSLATED).any(|k| written(conf, k)) {
        return Ok(None);
    }
    let mut p = Element::new("parse", "", conf.loc.clone());
    for k in PARSER_COPIED {
        copy(conf, k, k, &mut p);
    }
    if let Some(a) = conf.attr("format") {
        let f = a.value.trim();
        if f.len() >= 2 && f.starts_with('/') && f.ends_with('/') {
            p.set("@type", "regexp", a.loc.clone());
            p.set("expression", &f[1..f.len() - 1], a.loc.clone());
        } else {
            p.set("@type", f, a.loc.clone());
        }
    }
    if let Some(a) = conf.attr("types") {
        let delimiter = conf.get("types_delimiter").unwrap_or(",").to_string();
        let label_delimiter = conf.get("types_label_delimiter").unwrap_or(":").to_string();
        let mut types = serde_json::Map::new();
        for pair in split_ruby(&a.value, &delimiter) {
            let mut kv = pair.splitn(2, label_delimiter.as_str());
            let key = kv.next().unwrap_or_default().to_string();
            let value = kv.next().map(|v| serde_json::Value::String(v.to_string())).unwrap_or(serde_json::Value::Null);
            types.insert(key, value);
        }
        p.set("types", serde_json::Value::Object(types).to_string(), a.loc.clone());
    }
    let _ = conf.get("types_delimiter");
    let _ = conf.get("types_label_delimiter");
    if let Some((local, loc)) = localtime_of(conf)? {
        p.set("localtime", local.to_string(), loc);
    }
    Ok(Some(p))
}

/// A parser type written as `/RE/` is the regexp parser with that expression, as Fluentd's
/// `Plugin.new_parser` makes it: AWS Container Insights writes
/// `@type "#{ENV['FLUENT_CONTAINER_TAIL_PARSER_TYPE'] || 'json'}"` with a regexp in that variable, and
/// GKE's ConfigMap `format /RE/` in a multi_format `<pattern>`. The rewritten section, or `None`.
pub fn regexp_type(parse: &Element) -> Option<Element> {
    let i = parse.attrs.iter().position(|a| a.key == "@type" || a.key == "type")?;
    let t = parse.attrs[i].value.trim();
    if !(t.len() >= 2 && t.starts_with('/') && t.ends_with('/')) {
        return None;
    }
    let expression = t[1..t.len() - 1].to_string();
    // In place, so the parameters keep their positions (`Element::mark_used_from` pairs them by position).
    let mut fixed = parse.clone();
    fixed.attrs[i].value = "regexp".into();
    let loc = fixed.attrs[i].loc.clone();
    fixed.set("expression", expression, loc);
    Some(fixed)
}

/// Ruby's `String#split(sep)`: trailing empty fields are dropped.
fn split_ruby<'a>(s: &'a str, sep: &str) -> Vec<&'a str> {
    let mut v: Vec<&str> = if sep.is_empty() { vec![s] } else { s.split(sep).collect() };
    while v.last().is_some_and(|x| x.is_empty()) {
        v.pop();
    }
    v
}

/// in_tail copies `format1`..`format20` from the plugin into its `<parse>` (whether written or converted).
pub fn copy_multiline_formats(conf: &Element, parse: &mut Element) {
    for n in 1..=MULTILINE_FORMAT_MAX {
        let k = format!("format{n}");
        copy(conf, &k, &k, parse);
    }
}

/// The `<inject>` Fluentd builds from v0.12 parameters (`include_time_key`, `include_tag_key`, ...) on an
/// output without an `<inject>` section.
pub fn inject(conf: &Element) -> Result<Option<Element>, ConfigError> {
    if conf.section("inject").is_some()
        || !INJECT_COPIED.iter().chain(INJECT_TRANSLATED).chain(["time_as_epoch"].iter()).any(|k| written(conf, k))
    {
        return Ok(None);
    }
    let mut i = Element::new("inject", "", conf.loc.clone());
    for k in INJECT_COPIED {
        copy(conf, k, k, &mut i);
    }
    if bool_of(conf, "include_time_key")? == Some(true) {
        let loc = conf.loc_of("include_time_key").clone();
        if !i.has("time_key") {
            i.set("time_key", "time", loc.clone());
        }
        i.set("time_type", "string", loc);
    }
    if bool_of(conf, "time_as_epoch")? == Some(true) {
        let loc = conf.loc_of("time_as_epoch").clone();
        if !i.has("time_key") {
            i.set("time_key", "time", loc.clone());
        }
        i.set("time_type", "unixtime", loc);
    }
    if let Some((local, loc)) = localtime_of(conf)? {
        i.set("localtime", local.to_string(), loc);
    }
    if bool_of(conf, "include_tag_key")? == Some(true) && !i.has("tag_key") {
        i.set("tag_key", "tag", conf.loc_of("include_tag_key").clone());
    }
    Ok(Some(i))
}

/// The `<format>` Fluentd builds from v0.12 formatter parameters on an output without a `<format>`
/// section (`format json` becomes `@type json`).
pub fn format(conf: &Element) -> Result<Option<Element>, ConfigError> {
    if conf.section("format").is_some() || !FORMATTER_COPIED.iter().chain(["format"].iter()).any(|k| written(conf, k)) {
        return Ok(None);
    }
    let mut f = Element::new("format", "", conf.loc.clone());
    copy(conf, "format", "@type", &mut f);
    for k in FORMATTER_COPIED {
        copy(conf, k, k, &mut f);
    }
    if bool_of(conf, "time_as_epoch")? == Some(true) {
        f.set("time_type", "unixtime", conf.loc_of("time_as_epoch").clone());
    }
    Ok(Some(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use std::path::Path;

    fn match_of(body: &str) -> Element {
        let root = parse_str(&format!("<match **>\n  @type file\n{body}\n</match>\n"), Path::new("t.conf")).unwrap();
        root.children.into_iter().next().unwrap()
    }

    #[test]
    fn a_nil_old_parameter_stays_nil_in_the_new_section() {
        // Fluentd copies the value whatever it is, so the new section's parameter refuses nil.
        let m = match_of("  buffer_chunk_limit \"#{use_nil}\"\n  timezone \"#{use_nil}\"");
        let b = buffer(&m).unwrap().unwrap();
        let e = b.size_or("chunk_limit_size", 8 << 20).unwrap_err().to_string();
        assert!(e.starts_with("t.conf:3: 'chunk_limit_size' parameter is required but nil is specified"), "{e}");
        let i = inject(&m).unwrap().unwrap();
        assert!(i.is_nil("timezone") && i.get("timezone").is_none());
        assert!(m.unused_attrs().iter().all(|(_, a)| a.key == "@type"), "{:?}", m.unused_attrs());
    }

    #[test]
    fn buffer_params_map_as_fluentd_does() {
        let m = match_of(
            "  buffer_type file\n  buffer_path /var/log/b\n  buffer_chunk_limit 8m\n  buffer_queue_limit 64\n  \
             buffer_queue_full_action exception\n  num_threads 4\n  retry_limit 17\n  disable_retry_limit false\n  \
             max_retry_wait 30s\n  try_flush_interval 1\n  time_slice_wait 10m\n  timezone +09:00",
        );
        let b = buffer(&m).unwrap().unwrap();
        let get = |k| b.get(k).map(str::to_string);
        assert_eq!(b.arg, "");
        assert_eq!(get("@type").as_deref(), Some("file"));
        assert_eq!(get("path").as_deref(), Some("/var/log/b"));
        assert_eq!(get("chunk_limit_size").as_deref(), Some("8m"));
        assert_eq!(get("queue_limit_length").as_deref(), Some("64"));
        assert_eq!(get("overflow_action").as_deref(), Some("throw_exception"));
        assert_eq!(get("flush_thread_count").as_deref(), Some("4"));
        assert_eq!(get("retry_max_times").as_deref(), Some("17"));
        assert_eq!(get("retry_forever").as_deref(), Some("false"));
        assert_eq!(get("retry_max_interval").as_deref(), Some("30s"));
        assert_eq!(get("flush_thread_interval").as_deref(), Some("1"));
        assert_eq!(get("timekey_wait").as_deref(), Some("10m"));
        assert_eq!(get("timekey_zone").as_deref(), Some("+09:00"));
        assert!(m.unused_attrs().is_empty(), "{:?}", m.unused_attrs());
    }

    #[test]
    fn time_slice_format_sets_the_time_key() {
        for (f, tk) in [("%Y%m%d", "86400"), ("%Y%m%d%H", "3600"), ("%Y%m%d%H%M", "60"), ("%Y%m%d%H%M%S", "1")] {
            let b = buffer(&match_of(&format!("  time_slice_format {f}\n  utc"))).unwrap().unwrap();
            assert_eq!((b.arg.as_str(), b.get("timekey")), ("time", Some(tk)));
            assert_eq!(b.get("timekey_use_utc"), Some("true"));
        }
        let e = buffer(&match_of("  time_slice_format %Y%m")).unwrap_err();
        assert!(e.to_string().contains("too long"), "{e}");
        let e = buffer(&match_of("  time_slice_format %Y%m%d\n  utc\n  localtime")).unwrap_err();
        assert!(e.to_string().contains("both of utc and localtime"), "{e}");
        // An explicit <buffer> wins: nothing is converted.
        assert!(buffer(&match_of("  buffer_type file\n  <buffer>\n  </buffer>")).unwrap().is_none());
        assert!(buffer(&match_of("  path /x")).unwrap().is_none());
    }

    #[test]
    fn a_regexp_as_parse_type_is_the_regexp_parser() {
        std::env::set_var("SLUICE_COMPAT_T_PARSER", "/^(?<time>.+) (?<log>.*)$/");
        let m = match_of(
            "  <parse>\n    @type \"#{ENV['SLUICE_COMPAT_T_PARSER'] || 'json'}\"\n    time_format %d\n  </parse>",
        );
        let p = regexp_type(&m.children[0]).unwrap();
        assert_eq!(p.get("@type"), Some("regexp"));
        assert_eq!(p.get("expression"), Some("^(?<time>.+) (?<log>.*)$"));
        assert_eq!(p.attrs[1].key, "time_format");
        assert!(regexp_type(&match_of("  <parse>\n    @type json\n  </parse>").children[0]).is_none());
    }

    #[test]
    fn parser_params() {
        let m = match_of("  format /^(?<a>x)$/\n  time_format %d\n  types a:integer,b:time:%d/%b\n  utc true");
        let p = parse(&m).unwrap().unwrap();
        assert_eq!(p.get("@type"), Some("regexp"));
        assert_eq!(p.get("expression"), Some("^(?<a>x)$"));
        assert_eq!(p.get("time_format"), Some("%d"));
        assert_eq!(p.get("types"), Some(r#"{"a":"integer","b":"time:%d/%b"}"#));
        assert_eq!(p.get("localtime"), Some("false"));
        let p = parse(&match_of("  format json\n  keep_time_key true")).unwrap().unwrap();
        assert_eq!((p.get("@type"), p.get("keep_time_key")), (Some("json"), Some("true")));
    }

    #[test]
    fn inject_params() {
        let i =
            inject(&match_of("  include_time_key true\n  include_tag_key true\n  localtime false")).unwrap().unwrap();
        assert_eq!(i.get("time_key"), Some("time"));
        assert_eq!(i.get("time_type"), Some("string"));
        assert_eq!(i.get("tag_key"), Some("tag"));
        assert_eq!(i.get("localtime"), Some("false"));
        let i = inject(&match_of("  include_tag_key true\n  tag_key t\n  time_key ts")).unwrap().unwrap();
        assert_eq!((i.get("tag_key"), i.get("time_key"), i.get("time_type")), (Some("t"), Some("ts"), None));
        let i = inject(&match_of("  time_as_epoch true")).unwrap().unwrap();
        assert_eq!((i.get("time_key"), i.get("time_type")), (Some("time"), Some("unixtime")));
    }

    #[test]
    fn formatter_params() {
        let f = format(&match_of("  format ltsv\n  delimiter ,\n  time_format %s")).unwrap().unwrap();
        assert_eq!((f.get("@type"), f.get("delimiter"), f.get("time_format")), (Some("ltsv"), Some(","), None));
        let f = format(&match_of("  output_data_type json")).unwrap();
        assert!(f.is_none());
    }
}
