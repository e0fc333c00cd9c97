//! sluice's built-in plugins. Each plugin is one module; each folder's `register` adds its plugins to the
//! registry under their Fluentd `@type` names.
pub mod filters;
pub mod formatters;
pub mod inputs;
pub mod outputs;
pub mod parsers;

use sluice_core::plugin::Registry;

/// Register every built-in plugin.
pub fn register_all(reg: &mut Registry) {
    inputs::register(reg);
    parsers::register(reg);
    formatters::register(reg);
    filters::register(reg);
    outputs::register(reg);
}
