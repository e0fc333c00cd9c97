//! Inputs (`<source>`).
mod sample;
pub mod tail;

use sluice_core::plugin::Registry;

pub fn register(reg: &mut Registry) {
    reg.register_input("sample", sample::build);
    reg.register_input("dummy", sample::build);
    reg.register_input("tail", tail::build);
}
