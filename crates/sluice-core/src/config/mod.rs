//! Fluentd's configuration language.
//!
//! Two front ends turn text into a tree of [`Element`]s: [`parser`] for Fluentd's own syntax and
//! [`yaml`] for Fluentd's YAML format. Everything after them (typed parameters, plugin set-up,
//! `--dry-run`) works on that tree only, so both formats behave the same.
pub mod compat;
mod element;
mod error;
pub mod parser;
pub mod types;
pub mod yaml;

pub use element::{take_nil_refusals, Attr, Element, Location, Special};
pub use error::{ConfigError, Diagnostics};
pub use parser::{parse_str, Parsed};

/// Read a configuration file, choosing the front end by extension as Fluentd does: `.yaml`/`.yml`
/// are YAML, anything else is Fluentd syntax.
pub fn parse_file(path: &std::path::Path) -> Result<Element, ConfigError> {
    if yaml::is_yaml_path(path) {
        yaml::parse_file(path)
    } else {
        parser::parse_file(path)
    }
}

/// Read a configuration file with every problem the front end finds (see [`Parsed`]), so `--dry-run`
/// can report them all. Fluentd syntax recovers after each error; YAML after each directive or parameter
/// in error (a YAML syntax error stops it).
pub fn load_file(path: &std::path::Path) -> Parsed {
    if !yaml::is_yaml_path(path) {
        return parser::parse_file_all(path);
    }
    let (root, errors) = yaml::parse_file_all(path);
    // An empty tree with errors is a file that could not be read as a whole: nothing to build from.
    let structure_ok = errors.is_empty() || !root.children.is_empty();
    let mut diagnostics = Diagnostics::default();
    for e in errors {
        diagnostics.error(e);
    }
    Parsed { root, diagnostics, structure_ok }
}

/// The largest configuration file sluice reads (real ones are a few KiB).
pub const MAX_CONFIG_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Read a configuration file (the main one or an include): regular files only, so `/dev/zero` or a
/// FIFO is an error instead of a hang or unbounded memory, and at most [`MAX_CONFIG_FILE_BYTES`].
pub(crate) fn read_file(path: &std::path::Path, from: Option<&Location>) -> Result<String, ConfigError> {
    use std::io::Read;
    let fail = |m: String| ConfigError::new(from, format!("cannot read config file {}: {m}", path.display()));
    // metadata() follows symlinks and never opens the file, so a FIFO cannot block here.
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()).with_hint("configuration files must be regular files"));
    }
    let f = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut buf = Vec::new();
    f.take(MAX_CONFIG_FILE_BYTES + 1).read_to_end(&mut buf).map_err(|e| fail(e.to_string()))?;
    if buf.len() as u64 > MAX_CONFIG_FILE_BYTES {
        return Err(fail(format!("larger than {} MiB", MAX_CONFIG_FILE_BYTES >> 20)));
    }
    String::from_utf8(buf).map_err(|_| fail("not UTF-8 text".into()))
}
