//! Outputs (`<match>`).
mod copy;
pub mod detect_exceptions;
mod file;
mod null;
mod relabel;
pub mod rewrite_tag_filter;
mod secondary_file;
pub(crate) mod stdout;

use sluice_core::plugin::Registry;

pub fn register(reg: &mut Registry) {
    reg.register_output("stdout", stdout::build);
    reg.register_output("null", null::build);
    reg.register_output("copy", copy::build);
    reg.register_output("relabel", relabel::build);
    reg.register_output("file", file::build);
    reg.register_output("secondary_file", secondary_file::build);
    reg.register_output("rewrite_tag_filter", rewrite_tag_filter::build);
    reg.register_output("detect_exceptions", detect_exceptions::build);
}
