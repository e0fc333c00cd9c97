//! `sluice explain --dot`: the route graph in Graphviz's DOT language (`| dot -Tsvg > routes.svg`).
//! One node per directive, grouped by label; an edge per step a path takes, labelled with its tags.
use super::graph::{End, Graph, Kind};
use super::pii;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                q.push('\\');
                q.push(c);
            }
            '\n' | '\r' => q.push(' '),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

fn drop_node(label: &str) -> String {
    format!("drop_{}", label.bytes().map(|b| format!("{b:02x}")).collect::<String>())
}

pub fn render(g: &Graph) -> String {
    let mut s = String::from("digraph sluice {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n");
    let labels: BTreeSet<&str> = g.directives.iter().map(|d| d.label.as_str()).collect();
    for (li, label) in labels.iter().enumerate() {
        let _ = writeln!(s, "  subgraph cluster_{li} {{\n    label={};", quote(&format!("label {label}")));
        for (i, d) in g.directives.iter().enumerate().filter(|(_, d)| d.label == *label) {
            let (shape, style) = match d.kind {
                Kind::Source => ("ellipse", "filled,bold"),
                Kind::Filter if d.masks => ("box", "filled,rounded"),
                Kind::Filter => ("box", "rounded"),
                _ if d.leaves => ("doubleoctagon", "solid"),
                _ => ("box", "solid"),
            };
            let kind = match d.kind {
                Kind::Source => "source",
                Kind::Filter => "filter",
                Kind::Match => "match",
                Kind::Store => "store",
                Kind::Secondary => "secondary",
            };
            let mut text = format!("{kind} {}", d.name());
            if !d.pattern.is_empty() {
                text.push_str(&format!("\n{}", d.pattern));
            }
            text.push_str(&format!("\n{}", d.loc));
            if d.leaves {
                text.push_str(if d.pii_allowed { "\nleaves the node (pii_allowed)" } else { "\nleaves the node" });
            }
            // DOT's own escape for a line break in a label.
            let label_text = quote(&text.replace('\n', "\u{0}")).replace('\u{0}', "\\n");
            let _ = writeln!(s, "    n{i} [label={label_text}, shape={shape}, style={:?}];", style);
        }
        let _ = writeln!(s, "  }}");
    }
    // One edge per (from, to, label), drawn in the most telling style of the paths taking it.
    let mut edges: BTreeMap<(String, String, String), Style> = BTreeMap::new();
    let mut drops = BTreeSet::new();
    // Unmasked routes off the node: their edges are drawn bold red.
    let unmasked: Vec<*const super::graph::Path> = pii::findings(g).iter().map(|f| f.path as *const _).collect();
    for p in &g.paths {
        let style = if unmasked.contains(&(p as *const _)) {
            Style::Unmasked
        } else if p.via_error {
            Style::Rejected
        } else {
            Style::Normal
        };
        let mut prev: Option<usize> = None;
        let mut notes: Vec<&str> = Vec::new();
        for h in &p.hops {
            match h.node {
                Some(n) => {
                    if let Some(a) = prev {
                        let mut l = h.tags.clone();
                        if !notes.is_empty() {
                            l = format!("{}\n{l}", notes.join("\n"));
                        }
                        let e = edges.entry((format!("n{a}"), format!("n{n}"), l)).or_insert(style);
                        *e = (*e).max(style);
                    }
                    prev = Some(n);
                    notes.clear();
                }
                None => notes.push(h.text.as_str()),
            }
        }
        let target = match &p.end {
            End::Unmatched { label } => Some((drop_node(label), format!("dropped in {label}"))),
            End::Loop => Some(("loop".to_string(), "loop".to_string())),
            End::Output(_) => None,
        };
        if let (Some(a), Some((t, text))) = (prev, target) {
            drops.insert((t.clone(), text));
            let mut l = p.tags.clone();
            if !notes.is_empty() {
                l = format!("{}\n{l}", notes.join("\n"));
            }
            let e = edges.entry((format!("n{a}"), t, l)).or_insert(style);
            *e = (*e).max(style);
        }
    }
    for (id, text) in &drops {
        let _ = writeln!(s, "  {id} [label={}, shape=point, xlabel={}];", quote(""), quote(text));
    }
    for ((a, b, l), st) in &edges {
        let l = quote(&l.replace('\n', "\u{0}")).replace('\u{0}', "\\n");
        let style = match st {
            Style::Normal => "",
            Style::Rejected => ", style=dashed, color=gray40",
            Style::Unmasked => ", color=red, penwidth=2, fontcolor=red",
        };
        let _ = writeln!(s, "  {a} -> {b} [label={l}{style}];");
    }
    s.push_str("}\n");
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Style {
    Normal,
    /// Records rejected on the way (to `@ERROR` or a `<secondary>`).
    Rejected,
    /// Part of an unmasked route off the node (`explain --pii` finding).
    Unmasked,
}
