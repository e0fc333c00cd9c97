//! (being written)
use sluice_core::config::{ConfigError, Element};
use sluice_core::plugin::{BuildCtx, Output};
use std::sync::Arc;

pub fn build(section: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    Err(section.error("not built yet"))
}
