//! Where unmasked records can leave the node.
//!
//! A path is a finding when it ends at an output that sends records off the node (any output but
//! `null`, `file`, `stdout` and `secondary_file`), without `pii_allowed true` on that output, and passes
//! no `mask` filter that scans the whole record (see `graph::mask_covers_record`). Each path is judged on
//! its own, so an output is clean only when every route to it is masked.
use super::graph::{End, Graph, Path};

/// One unmasked route off the node.
pub struct Finding<'a> {
    pub path: &'a Path,
    pub output: usize,
}

pub fn findings(g: &Graph) -> Vec<Finding<'_>> {
    g.paths
        .iter()
        .filter_map(|p| match p.end {
            End::Output(o) => {
                let d = &g.directives[o];
                (d.leaves && !d.pii_allowed && !p.masked).then_some(Finding { path: p, output: o })
            }
            _ => None,
        })
        .collect()
}

/// One line per finding: `source in_x → … → output (file:line): tags T are not masked`.
pub fn describe(g: &Graph, f: &Finding) -> String {
    let src = &g.directives[f.path.source];
    let out = &g.directives[f.output];
    let via: Vec<&str> = f.path.hops.iter().skip(1).map(|h| h.text.as_str()).collect();
    format!(
        "unmasked records can leave the node: source {} ({}) → {} ({}) with tags {}{}; route: {}",
        src.name(),
        src.loc,
        out.name(),
        out.loc,
        f.path.tags,
        if f.path.via_error { " (records rejected on the way)" } else { "" },
        via.join(" | ")
    )
}

/// The text of `sluice explain --pii`.
pub fn report(g: &Graph) -> String {
    let found = findings(g);
    let mut s = String::new();
    if found.is_empty() {
        s.push_str("PII: every route that leaves the node passes a mask filter (or ends at an output with pii_allowed true).\n");
    } else {
        s.push_str(&format!("PII: {} unmasked route(s) leave the node:\n", found.len()));
        for f in &found {
            s.push_str(&format!("  - {}\n", describe(g, f)));
        }
    }
    let allowed: Vec<String> =
        g.directives.iter().filter(|d| d.pii_allowed).map(|d| format!("{} ({})", d.name(), d.loc)).collect();
    if !allowed.is_empty() {
        s.push_str(&format!("Outputs that accept unmasked records (pii_allowed true): {}\n", allowed.join(", ")));
    }
    if g.truncated {
        s.push_str("warning: the configuration has too many routes; the analysis stopped early and is incomplete\n");
    }
    s
}
