//! Filters (`<filter>`).
pub mod concat;
pub mod grep;
pub mod kubernetes_metadata;
pub mod parser;
pub mod record_transformer;
mod record_transformer_ruby;
pub mod stdout;

use sluice_core::plugin::Registry;

pub fn register(reg: &mut Registry) {
    reg.register_filter("grep", grep::build);
    reg.register_filter("parser", parser::build);
    reg.register_filter("kubernetes_metadata", kubernetes_metadata::build);
    reg.register_filter("record_transformer", record_transformer::build);
    reg.register_filter("concat", concat::build);
    reg.register_filter("stdout", stdout::build);
}
