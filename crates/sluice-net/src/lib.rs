//! sluice's network plugins: Fluentd's forward protocol in both directions.
//!
//! - [`in_forward`]: `<source> @type forward`
//! - [`out_forward`]: `<match> @type forward`
//! - [`in_http`]: `<source> @type http`; [`out_http`]: `<match> @type http`
//! - [`protocol`]: the Forward Protocol v1 frames; [`scan`]: where a msgpack object ends in a stream;
//!   [`security`]: the `<security>` handshake; [`tls`]: rustls for both ends.
pub mod in_forward;
pub mod in_http;
mod net_util;
pub mod out_forward;
pub mod out_http;
pub mod protocol;
pub mod scan;
pub mod security;
pub mod tls;

use sluice_core::plugin::Registry;

pub fn register(reg: &mut Registry) {
    reg.register_input("forward", in_forward::build);
    reg.register_output("forward", out_forward::build);
    reg.register_input("http", in_http::build);
    reg.register_output("http", out_http::build);
}
