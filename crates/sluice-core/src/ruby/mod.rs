//! Ruby as Fluentd configurations write it.
//!
//! * [`regexp`]: Ruby (Onigmo) regular expressions translated for Rust's regex engines.
//! * [`text`]: Ruby's lenient `String#to_i`, `#to_f` and `#split`.
pub mod regexp;
pub mod text;
