//! Formatters (`<format>`), with Fluentd's names, parameters and bytes.
//!
//! Shared piece other plugins may reuse: [`time::TimeOutput`] (Fluentd's formatter time parameters).
//! Ruby's `to_s`/`inspect`/`Float#to_s` are the core's (`sluice_core::ruby::print`).
pub mod csv;
pub mod hash;
pub mod json;
pub mod ltsv;
pub mod msgpack;
pub mod out_file;
pub mod single_value;
pub mod stdout;
pub mod time;

use sluice_core::plugin::Registry;

pub fn register(reg: &mut Registry) {
    reg.register_formatter("out_file", out_file::build);
    reg.register_formatter("json", json::build);
    reg.register_formatter("ltsv", ltsv::build);
    reg.register_formatter("msgpack", msgpack::build);
    reg.register_formatter("single_value", single_value::build);
    reg.register_formatter("csv", csv::build);
    reg.register_formatter("tsv", csv::build_tsv);
    reg.register_formatter("hash", hash::build);
    reg.register_formatter("stdout", stdout::build);
}
