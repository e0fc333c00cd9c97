//! Fluentd's configuration language.
//!
//! Two front ends turn text into a tree of [`Element`]s: [`parser`] for Fluentd's own syntax and
//! [`yaml`] for Fluentd's YAML format. Everything after them (typed parameters, plugin set-up,
//! `--dry-run`) works on that tree only, so both formats behave the same.
mod element;
mod error;
pub mod parser;
pub mod types;
pub mod yaml;

pub use element::{Attr, Element, Location};
pub use error::{ConfigError, Diagnostics};
pub use parser::parse_str;

/// Read a configuration file, choosing the front end by extension as Fluentd does: `.yaml`/`.yml`
/// are YAML, anything else is Fluentd syntax.
pub fn parse_file(path: &std::path::Path) -> Result<Element, ConfigError> {
    if yaml::is_yaml_path(path) {
        yaml::parse_file(path)
    } else {
        parser::parse_file(path)
    }
}
