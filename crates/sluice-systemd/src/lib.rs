//! sluice's `systemd` input (fluent-plugin-systemd): reads the systemd journal through libsystemd, which
//! is loaded at run time so that the binary still starts on nodes without it.
pub mod config;
pub mod entry;
pub mod ffi;
pub mod input;
pub mod storage;

use sluice_core::plugin::Registry;

/// Register `@type systemd`.
pub fn register(reg: &mut Registry) {
    reg.register_input("systemd", input::build);
}
