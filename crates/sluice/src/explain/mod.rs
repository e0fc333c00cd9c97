//! `sluice explain`: what a configuration does with events, worked out from the configuration alone.
//! `graph` follows every route; `text` and `dot` print it; `pii` finds unmasked routes off the node.
pub mod dot;
pub mod graph;
pub mod pii;
pub mod tags;
pub mod text;

use sluice_core::config::Element;
use std::process::ExitCode;

/// What `sluice explain` prints, and its exit code (`--strict`: 1 when an unmasked route leaves the node).
pub fn run(root: &Element, dot_format: bool, pii_only: bool, strict: bool) -> ExitCode {
    let g = graph::build(root);
    let out = if dot_format {
        dot::render(&g)
    } else if pii_only {
        pii::report(&g)
    } else {
        format!("{}\n{}", text::render(&g), pii::report(&g))
    };
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
    if strict && (!pii::findings(&g).is_empty() || g.truncated) {
        eprintln!("sluice: unmasked personal data can leave the node (--strict)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The `--dry-run` warning: one line per unmasked route off the node.
pub fn pii_warnings(root: &Element) -> Vec<String> {
    let g = graph::build(root);
    pii::findings(&g).iter().map(|f| pii::describe(&g, f)).collect()
}
