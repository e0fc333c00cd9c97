//! Placeholders in output parameters, resolved per chunk as in Fluentd: `${tag}`, `${tag[N]}` (N may be
//! negative, counting from the end), `${KEY}` for record chunk keys (`${$.a.b}` for nested ones),
//! `${chunk_id}`, and strftime patterns (`%Y%m%d`) from the chunk's `timekey`.
//!
//! [`check`] is called at configuration time and fails, with Fluentd's messages, when a placeholder is not
//! covered by the chunk keys. [`expand`] is called by a writer for each chunk; inside
//! [`super::ChunkWriter::write`] it uses the buffer's `timekey_zone`/`timekey_use_utc` and chunk id.
//!
//! Every output expands these into a file path or an object key, and the values of `${tag}`, `${tag[N]}`
//! and `${KEY}` can come from records (a chunk key, or a tag that `rewrite_tag_filter` took from a field).
//! So a value never adds a path component: `%`, `/`, NUL and each `.` of a run of two or more dots are
//! percent-escaped (`%25`, `%2F`, `%00`, `%2E`), see [`push_path_safe`]. The template's own text is kept.
use super::chunk::ChunkMetadata;
use super::config::{BufferDefaults, ChunkKeys, Zone};
use crate::config::{ConfigError, Element};

/// What the engine knows while a chunk is being written: the zone its time slices use and its id.
#[derive(Debug, Clone)]
pub struct FlushContext {
    pub zone: Zone,
    pub chunk_id: [u8; 16],
    /// The chunk's metadata (a `<secondary>` output reads it from here, since it gets events).
    pub metadata: ChunkMetadata,
}

tokio::task_local! {
    static FLUSH_CTX: FlushContext;
}

/// Run `f` with `ctx` visible to [`expand`] (the engine wraps every write in it).
pub async fn scope<F: std::future::Future>(ctx: FlushContext, f: F) -> F::Output {
    FLUSH_CTX.scope(ctx, f).await
}

/// Synchronous variant of [`scope`] (used around a `<secondary>`'s emit).
pub fn sync_scope<R>(ctx: FlushContext, f: impl FnOnce() -> R) -> R {
    FLUSH_CTX.sync_scope(ctx, f)
}

/// The context of the chunk being written, if called from inside a write.
pub fn current() -> Option<FlushContext> {
    FLUSH_CTX.try_with(Clone::clone).ok()
}

enum Piece<'a> {
    Lit(&'a str),
    Ph(&'a str),
}

fn pieces(t: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(i) = rest.find("${") {
        match rest[i + 2..].find('}') {
            Some(j) => {
                if i > 0 {
                    out.push(Piece::Lit(&rest[..i]));
                }
                out.push(Piece::Ph(&rest[i + 2..i + 2 + j]));
                rest = &rest[i + 3 + j..];
            }
            None => break,
        }
    }
    if !rest.is_empty() {
        out.push(Piece::Lit(rest));
    }
    out
}

fn tag_index(ph: &str) -> Option<Option<i64>> {
    if ph == "tag" {
        return Some(None);
    }
    let n = ph.strip_prefix("tag[")?.strip_suffix(']')?;
    n.trim().parse::<i64>().ok().map(Some)
}

/// The smallest time unit (seconds) a strftime pattern in `t` distinguishes, with its name and example.
fn time_unit(t: &str) -> Option<(i64, &'static str, &'static str)> {
    let mut best: Option<(i64, &'static str, &'static str)> = None;
    let b = t.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'%' {
            let mut j = i + 1;
            // Flags and widths such as %-d, %02H, %3N.
            while j < b.len()
                && (b[j] == b'-'
                    || b[j] == b'_'
                    || b[j] == b'0'
                    || b[j] == b'^'
                    || b[j] == b'#'
                    || b[j].is_ascii_digit())
            {
                j += 1;
            }
            if j >= b.len() {
                break;
            }
            let unit = match b[j] {
                b'%' => None,
                b'S' | b's' | b'T' | b'c' | b'r' | b'X' | b'L' | b'N' | b'f' => Some((1, "second", "%S")),
                b'M' | b'R' => Some((60, "minute", "%M")),
                b'H' | b'I' | b'k' | b'l' => Some((3600, "hour", "%H")),
                b'd' | b'e' | b'j' | b'a' | b'A' | b'u' | b'w' | b'D' | b'F' | b'x' => Some((86400, "day", "%d")),
                b'U' | b'W' | b'V' => Some((604800, "week", "%U")),
                b'm' | b'b' | b'B' | b'h' => Some((2_419_200, "month", "%m")),
                b'Y' | b'y' | b'C' | b'G' | b'g' => Some((31_536_000, "year", "%Y")),
                _ => None,
            };
            if let Some(u) = unit {
                if best.is_none_or(|b| u.0 < b.0) {
                    best = Some(u);
                }
            }
            i = j + 1;
        } else {
            i += 1;
        }
    }
    best
}

/// Fail, as Fluentd does, when `template` (parameter `key` of `conf`) uses placeholders that the chunk keys
/// in `conf`'s `<buffer>` do not provide. Fluentd's checks that go the other way (a chunk key that the
/// template does not use) are not made: most outputs do not need every key in every parameter.
pub fn check(template: &str, conf: &Element, key: &str) -> Result<(), ConfigError> {
    let b = conf.section("buffer");
    let defaults = BufferDefaults { timekey: Some(std::time::Duration::from_secs(86400)), ..Default::default() };
    let keys = ChunkKeys::from_section(b, &defaults)?;
    check_keys(template, &keys, conf, key)
}

/// [`check`] against chunk keys already parsed (for outputs whose default chunk keys differ).
pub fn check_keys(template: &str, keys: &ChunkKeys, conf: &Element, key: &str) -> Result<(), ConfigError> {
    let err = |msg: String| conf.error_at(key, msg);
    let mut missing: Vec<String> = Vec::new();
    let mut literal = String::new();
    for p in pieces(template) {
        match p {
            Piece::Ph(ph) => {
                if tag_index(ph).is_some() {
                    if !keys.tag {
                        return Err(err(format!(
                            "Parameter '{key}: {template}' has tag placeholders, but chunk key 'tag' is not configured"
                        ))
                        .with_hint("add 'tag' to the chunk keys: <buffer tag>"));
                    }
                } else if ph == "chunk_id" {
                } else if !keys.records.iter().any(|k| k.name == ph) && !missing.iter().any(|m| m == ph) {
                    missing.push(ph.to_string());
                }
            }
            Piece::Lit(l) => {
                literal.push_str(l);
                literal.push('\u{0}');
            }
        }
    }
    if let Some((sec, _, _)) = time_unit(&literal) {
        match keys.timekey {
            None => {
                return Err(err(format!(
                    "Parameter '{key}: {template}' has timestamp placeholders, but chunk key 'time' is not configured"
                ))
                .with_hint("add 'time' to the chunk keys with a timekey: <buffer time> timekey 1d </buffer>"))
            }
            Some(tk) if tk < sec => {
                let (title, example) = match tk {
                    i64::MIN..=59 => ("second", "%S"),
                    60..=3599 => ("minute", "%M"),
                    3600..=86399 => ("hour", "%H"),
                    _ => ("day", "%d"),
                };
                return Err(err(format!(
                    "Parameter '{key}: {template}' doesn't have timestamp placeholder for {title}('{example}') for timekey {tk}"
                )));
            }
            _ => {}
        }
    }
    if !missing.is_empty() {
        missing.sort();
        return Err(err(format!(
            "Parameter '{key}: {template}' has placeholders, but chunk keys doesn't have keys {}",
            missing.join(",")
        ))
        .with_hint("add the record keys to the chunk keys: <buffer tag,KEY>"));
    }
    Ok(())
}

/// Append a placeholder value to a path so that it stays inside its path component: `/` (a separator),
/// NUL (cuts the path in C APIs), the dots of `..` (the parent directory) and `%` (so the escaping is
/// unambiguous) are percent-escaped; everything else is kept. Values without these are copied as they are.
pub fn push_path_safe(out: &mut String, v: &str) {
    if !v.contains(['/', '\0', '%']) && !v.contains("..") {
        out.push_str(v);
        return;
    }
    let b = v.as_bytes();
    for (i, c) in v.char_indices() {
        match c {
            '/' => out.push_str("%2F"),
            '\0' => out.push_str("%00"),
            '%' => out.push_str("%25"),
            '.' if (i > 0 && b[i - 1] == b'.') || b.get(i + 1) == Some(&b'.') => out.push_str("%2E"),
            c => out.push(c),
        }
    }
}

/// Whether `template` has anything to expand.
pub fn has_placeholders(template: &str) -> bool {
    template.contains("${") || time_unit(template).is_some()
}

/// Resolve the placeholders of `template` for a chunk. Inside a write, times use the buffer's zone and
/// `${chunk_id}` the chunk's id; elsewhere, local time and an empty id. Values are made path-safe
/// ([`push_path_safe`]).
pub fn expand(template: &str, meta: &ChunkMetadata) -> String {
    match current() {
        Some(c) => expand_in(template, meta, &c.zone, Some(&c.chunk_id)),
        None => expand_in(template, meta, &Zone::Local, None),
    }
}

/// [`expand`] with an explicit zone and chunk id.
pub fn expand_in(template: &str, meta: &ChunkMetadata, zone: &Zone, chunk_id: Option<&[u8; 16]>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    for p in pieces(template) {
        match p {
            Piece::Lit(l) => match meta.timekey {
                Some(tk) if l.contains('%') => zone.strftime_into(tk, l, &mut out),
                _ => out.push_str(l),
            },
            Piece::Ph(ph) => {
                if let Some(idx) = tag_index(ph) {
                    let tag = meta.tag.as_deref().unwrap_or("");
                    match idx {
                        None => push_path_safe(&mut out, tag),
                        Some(n) => {
                            let parts: Vec<&str> = tag.split('.').collect();
                            let i = if n < 0 { (parts.len() as i64).saturating_add(n) } else { n };
                            if let Some(p) = usize::try_from(i).ok().and_then(|i| parts.get(i)) {
                                push_path_safe(&mut out, p);
                            }
                        }
                    }
                } else if ph == "chunk_id" {
                    if let Some(id) = chunk_id {
                        for b in id {
                            out.push_str(&format!("{b:02x}"));
                        }
                    }
                } else if let Some((_, v)) = meta.variables.iter().find(|(k, _)| k == ph) {
                    push_path_safe(&mut out, v);
                } else {
                    // Not a chunk key: left as written (check() rejects this at start-up).
                    out.push_str("${");
                    out.push_str(ph);
                    out.push('}');
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Location;

    fn conf(arg: &str, timekey: Option<&str>) -> Element {
        let loc = Location::new("test.conf", 1);
        let mut m = Element::new("match", "**", loc.clone());
        let mut b = Element::new("buffer", arg, loc.clone());
        if let Some(t) = timekey {
            b.set("timekey", t, loc.clone());
        }
        m.children.push(b);
        m
    }

    #[test]
    fn expands_tag_keys_and_time() {
        let meta = ChunkMetadata {
            tag: Some("app.web.access".into()),
            timekey: Some(1_700_000_000 - 1_700_000_000 % 3600),
            variables: vec![("host".into(), "h1".into()), ("$.k8s.ns".into(), "prod".into())],
        };
        let s = expand_in("/l/${tag}/${tag[1]}/${tag[-1]}/${host}/${$.k8s.ns}/%Y%m%d%H.log", &meta, &Zone::Utc, None);
        assert_eq!(s, "/l/app.web.access/web/access/h1/prod/2023111422.log");
        assert_eq!(expand_in("${tag[9]}x", &meta, &Zone::Utc, None), "x");
    }

    #[test]
    fn record_values_cannot_leave_their_path_component() {
        let meta = |tag: &str, v: &str| ChunkMetadata {
            tag: Some(tag.into()),
            timekey: None,
            variables: vec![("svc".into(), v.into())],
        };
        let t = "/out/${svc}/${tag}/${tag[1]}/x";
        let s = expand_in(t, &meta("a.b", "../../../escaped"), &Zone::Utc, None);
        assert_eq!(s, "/out/%2E%2E%2F%2E%2E%2F%2E%2E%2Fescaped/a.b/b/x");
        let s = expand_in(t, &meta("x./../etc", ".."), &Zone::Utc, None);
        assert_eq!(s, "/out/%2E%2E/x.%2F%2E%2E%2Fetc/%2F/x");
        let s = expand_in(t, &meta("a.b", "nul\0here 100%"), &Zone::Utc, None);
        assert_eq!(s, "/out/nul%00here 100%25/a.b/b/x");
        // Ordinary values are untouched; one dot is not a parent directory.
        let s = expand_in(t, &meta("app.web", "v1.2-prod"), &Zone::Utc, None);
        assert_eq!(s, "/out/v1.2-prod/app.web/web/x");
        // No value can produce a path component that leaves /out.
        for v in ["..", ".", "../", "/..", "a/../../b", "....", "\0", "%2F", "..\\.."] {
            let s = expand_in("/out/${svc}/x", &meta("t", v), &Zone::Utc, None);
            let comps: Vec<&str> = s.split('/').collect();
            assert_eq!(comps.len(), 4, "{v:?} -> {s}");
            assert!(!comps.contains(&"..") && !s.contains('\0'), "{v:?} -> {s}");
        }
    }

    #[test]
    fn check_reports_uncovered_placeholders() {
        let c = conf("", None);
        let e = check("/l/${tag}", &c, "path").unwrap_err().to_string();
        assert!(e.contains("has tag placeholders, but chunk key 'tag' is not configured"), "{e}");
        let e = check("/l/%Y", &c, "path").unwrap_err().to_string();
        assert!(e.contains("has timestamp placeholders, but chunk key 'time' is not configured"), "{e}");
        let e = check("/l/${host}", &conf("tag", None), "path").unwrap_err().to_string();
        assert!(e.contains("chunk keys doesn't have keys host"), "{e}");
        let e = check("/l/%Y%m%d", &conf("time", Some("1h")), "path").unwrap_err().to_string();
        assert!(e.contains("doesn't have timestamp placeholder for hour"), "{e}");
        check("/l/${tag}/${host}/%Y%m%d", &conf("tag,time,host", Some("1d")), "path").unwrap();
        check("/l/%Y/${tag}/%m/%d", &conf("tag,time", Some("1d")), "path").unwrap();
        check("/l/plain", &conf("", None), "path").unwrap();
        check("/l/100%%", &conf("", None), "path").unwrap();
    }
}
