//! (being written)
use sluice_core::plugin::Registry;

pub fn register(_reg: &mut Registry) {}
