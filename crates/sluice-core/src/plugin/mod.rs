//! The plugin interfaces and the registry that maps `@type` names to builders.
//!
//! Adding a plugin is one file implementing one of these traits plus one `register_*` line.
mod context;
mod filter;
mod formatter;
mod input;
pub mod known;
mod output;
mod parser;
mod registry;
mod sink;

pub use context::{BuildCtx, EofTracker, Shutdown, SystemConfig};
pub use filter::{ErrorEvents, Filter};
pub use formatter::Formatter;
pub use input::{EmitError, Emitter, Input};
pub use output::{Output, OutputMetrics, PluginError};
pub use parser::{ParseError, Parsed, Parser, DEFAULT_MAX_JOINED_SIZE};
pub use registry::{
    FilterBuilder, FormatterBuilder, InputBuilder, OutputBuilder, ParserBuilder, Registry, PII_ALLOWED,
};
pub use sink::{EventSink, RouterHandle, ERROR_LABEL, ROOT_LABEL};
