//! sluice's network plugins: Fluentd's forward protocol in both directions.
//!
//! - [`in_forward`]: `<source> @type forward`
//! - [`out_forward`]: `<match> @type forward`
//! - [`in_tcp`], [`in_udp`], [`in_syslog`]: `<source> @type tcp|udp|syslog`, over [`text_server`] (listening,
//!   backpressure) and [`framing`] (delimited and octet-counted messages)
//! - [`in_http`]: `<source> @type http`; [`out_http`]: `<match> @type http`
//! - [`protocol`]: the Forward Protocol v1 frames; [`scan`]: where a msgpack object ends in a stream;
//!   [`security`]: the `<security>` handshake; [`tls`]: rustls for both ends.
pub mod framing;
pub mod in_forward;
pub mod in_http;
pub mod in_syslog;
pub mod in_tcp;
pub mod in_udp;
mod net_util;
pub mod out_forward;
pub mod out_http;
pub mod protocol;
pub mod scan;
pub mod security;
pub mod text_server;
pub mod tls;

use sluice_core::plugin::Registry;

pub fn register(reg: &mut Registry) {
    reg.register_input("forward", in_forward::build);
    reg.register_output("forward", out_forward::build);
    reg.register_input("tcp", in_tcp::build);
    reg.register_input("udp", in_udp::build);
    reg.register_input("syslog", in_syslog::build);
    reg.register_input("http", in_http::build);
    reg.register_output("http", sluice_core::buffer::buffered::<out_http::HttpWriter>);
}
