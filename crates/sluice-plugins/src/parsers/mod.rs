//! Parsers (`<parse>`), with Fluentd's names, parameters and records.
//!
//! Shared pieces other plugins may reuse: [`common::ParserCommon`] (time key, time parsing, `types`,
//! null handling) and [`time::TimeValueParser`]. Ruby's regexps, lenient `to_i`/`to_f`/`split` and
//! value printing are the core's (`sluice_core::ruby::{regexp, text, print}`).
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
