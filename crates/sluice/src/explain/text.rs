//! `sluice explain`: the route graph in words.
use super::graph::{End, Graph, Kind};
use std::fmt::Write;

pub fn render(g: &Graph) -> String {
    let mut s = String::new();
    for src in g.sources() {
        let d = &g.directives[src];
        if g.silent_sources.contains(&src) {
            let _ = writeln!(s, "source {} ({}): emits no events", d.name(), d.loc);
            continue;
        }
        let paths: Vec<_> = g.paths.iter().filter(|p| p.source == src).collect();
        let tags = paths.first().and_then(|p| p.hops.first()).map(|h| h.tags.as_str()).unwrap_or("");
        let _ = writeln!(s, "source {} ({}) emits {tags}", d.name(), d.loc);
        for (i, p) in paths.iter().enumerate() {
            let end = match &p.end {
                End::Output(o) => {
                    let o = &g.directives[*o];
                    let place = if o.leaves { "leaves the node" } else { "stays on the node" };
                    let masked = if p.masked { "masked" } else { "NOT masked" };
                    let allowed = if o.pii_allowed { ", pii_allowed" } else { "" };
                    format!("→ output {} ({}) [{place}; {masked}{allowed}]", o.name(), o.loc)
                }
                End::Unmatched { label } => format!("→ DROPPED: no <match> in label {label} takes {}", p.tags),
                End::Loop => "→ LOOP: the tag is re-emitted into a route it already took; stopped here".to_string(),
            };
            let _ = writeln!(s, "  {}. {}{}", i + 1, p.tags, if p.via_error { " (rejected records)" } else { "" });
            for h in p.hops.iter().skip(1) {
                let _ = writeln!(s, "       {}", h.text);
            }
            let _ = writeln!(s, "       {end}");
        }
    }
    let mut outputs = Vec::new();
    for (i, d) in g.directives.iter().enumerate() {
        if !d.is_terminal_output() {
            continue;
        }
        let mut from: Vec<String> =
            g.paths.iter().filter(|p| p.end == End::Output(i)).map(|p| g.directives[p.source].name()).collect();
        unique(&mut from);
        if !from.is_empty() {
            outputs.push(format!("  {} ({}) ← {}", d.name(), d.loc, from.join(", ")));
        }
    }
    let _ = writeln!(s, "\nOutputs and what reaches them:");
    for o in &outputs {
        let _ = writeln!(s, "{o}");
    }
    let unreached: Vec<String> = g
        .unreached()
        .into_iter()
        .map(|i| {
            let d = &g.directives[i];
            let what = match d.kind {
                Kind::Filter => "filter",
                Kind::Secondary => "secondary",
                Kind::Store => "store",
                _ => "match",
            };
            let pat = if d.pattern.is_empty() { String::new() } else { format!(" {}", d.pattern) };
            format!("  {what}{pat} {} ({})", d.name(), d.loc)
        })
        .collect();
    let _ = writeln!(s, "\nDirectives no tag reaches:");
    if unreached.is_empty() {
        let _ = writeln!(s, "  (none)");
    }
    for u in &unreached {
        let _ = writeln!(s, "{u}");
    }
    let mut dropped: Vec<String> = g
        .paths
        .iter()
        .filter_map(|p| match &p.end {
            End::Unmatched { label } => {
                Some(format!("  {} from source {} in label {label}", p.tags, g.directives[p.source].name()))
            }
            _ => None,
        })
        .collect();
    unique(&mut dropped);
    let _ = writeln!(s, "\nTags that reach no output (dropped):");
    if dropped.is_empty() {
        let _ = writeln!(s, "  (none)");
    }
    for d in &dropped {
        let _ = writeln!(s, "{d}");
    }
    if g.truncated {
        let _ = writeln!(s, "\nwarning: the configuration has too many routes; only the first ones are listed");
    }
    s
}

/// Drop repeated lines, keeping the first of each.
fn unique(v: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
}
