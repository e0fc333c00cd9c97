//! (being written) The `tail` input.
use sluice_core::config::{ConfigError, Element};
use sluice_core::plugin::{BuildCtx, Input};

pub fn build(section: &Element, _ctx: &BuildCtx) -> Result<Box<dyn Input>, ConfigError> {
    Err(section.error("tail is not built yet"))
}
