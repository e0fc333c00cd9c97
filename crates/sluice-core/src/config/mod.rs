//! Fluentd's configuration language.
//!
//! The front end ([`parser`]) turns text into a tree of [`Element`]s; everything after it (typed
//! parameters, plugin set-up, `--dry-run`) works on that tree only, so a second front end (YAML) can
//! produce the same tree later.
mod element;
mod error;
pub mod parser;
pub mod types;

pub use element::{Attr, Element, Location};
pub use error::{ConfigError, Diagnostics};
pub use parser::{parse_file, parse_str};
