//! Parsers (`<parse>`), with Fluentd's names, parameters and records.
//!
//! Shared pieces other plugins may reuse: [`common::ParserCommon`] (time key, time parsing, `types`,
//! null handling), [`time::TimeValueParser`], [`ruby_regex::RubyRegex`] (Ruby regexps on Rust engines)
//! and [`ruby_text`] (Ruby's lenient `to_i`/`to_f`/`split`).
pub mod apache2;
pub mod common;
pub mod cri;
pub mod csv;
pub mod docker;
pub mod json;
pub mod kubernetes;
pub mod ltsv;
pub mod multi_format;
pub mod multiline;
pub mod none;
pub mod regexp;
/// Ruby regexps live in the core (`sluice_core::ruby::regexp`) so its embedded Ruby can use them; these
/// paths keep existing users compiling.
pub mod ruby_regex {
    pub use sluice_core::ruby::regexp::*;
}
/// Ruby's lenient string conversions, also in the core (`sluice_core::ruby::text`).
pub mod ruby_text {
    pub use sluice_core::ruby::text::*;
}
pub mod syslog;
pub mod time;
pub mod types;

use sluice_core::plugin::Registry;

pub fn register(reg: &mut Registry) {
    reg.register_parser("json", json::build);
    reg.register_parser("regexp", regexp::build);
    reg.register_parser("apache", regexp::build_apache);
    reg.register_parser("apache_error", regexp::build_apache_error);
    reg.register_parser("nginx", regexp::build_nginx);
    reg.register_parser("apache2", apache2::build);
    reg.register_parser("none", none::build);
    reg.register_parser("syslog", syslog::build);
    reg.register_parser("ltsv", ltsv::build);
    reg.register_parser("csv", csv::build);
    reg.register_parser("tsv", csv::build_tsv);
    reg.register_parser("multi_format", multi_format::build);
    reg.register_parser("multiline", multiline::build);
    reg.register_parser("cri", cri::build);
    reg.register_parser("docker", docker::build);
    reg.register_parser("kubernetes", kubernetes::build);
    reg.register_parser("multiline_kubernetes", kubernetes::build_multiline);
}
