//! `relabel`: sends events to another label (`@label`) without changing them.
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::Events;
use sluice_core::plugin::{BuildCtx, EmitError, Output};
use sluice_core::router::RouterHandle;
use std::sync::Arc;

pub struct Relabel {
    router: RouterHandle,
    label: String,
}

pub fn build(s: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    let label = s
        .get("@label")
        .ok_or_else(|| s.error("relabel needs '@label'").with_hint("add '@label @NAME' naming a <label>"))?
        .to_string();
    Ok(Arc::new(Relabel { router: ctx.router.clone(), label }))
}

impl Output for Relabel {
    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        self.router.emit_to_label(&self.label, tag, events)
    }
}
