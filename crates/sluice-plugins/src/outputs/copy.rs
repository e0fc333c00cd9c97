//! `copy`: sends every event to each `<store>`. A store that fails stops the following ones unless it is
//! `<store ignore_error>`; `<store ignore_if_prev_success>` is only used when the store before it failed.
use async_trait::async_trait;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::Events;
use sluice_core::plugin::{BuildCtx, EmitError, Output, PluginError};
use std::sync::Arc;

struct Store {
    output: Arc<dyn Output>,
    ignore_error: bool,
    /// `<store ignore_if_prev_success>`: skip this store when the one before it took the events.
    ignore_if_prev_success: bool,
}

pub struct Copy {
    stores: Vec<Store>,
    /// `copy_mode`: Fluentd's no_copy/shallow/deep/marshal all give each store its own events here,
    /// because stores run in parallel and must not see each other's changes.
    _copy_mode: String,
}

pub fn build(s: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    let copy_mode = s.enum_or("copy_mode", &["no_copy", "shallow", "deep", "marshal"], "no_copy")?;
    let mut stores = Vec::new();
    for st in s.sections("store") {
        // `<store ignore_error>` is how Fluentd spells it: the flag is the section argument.
        let ignore_error = st.arg.split_whitespace().any(|a| a == "ignore_error");
        let ignore_if_prev_success = st.arg.split_whitespace().any(|a| a == "ignore_if_prev_success");
        if let Some(bad) = st.arg.split_whitespace().find(|a| !matches!(*a, "ignore_error" | "ignore_if_prev_success"))
        {
            // Fluentd ignores other words here; say so instead of failing.
            tracing::warn!(argument = bad, line = st.loc.line, "copy: unknown <store> argument ignored");
        }
        if ignore_if_prev_success && stores.is_empty() {
            return Err(st
                .error("ignore_if_prev_success must specify 2nd or later <store> directives")
                .with_hint("move it to a later <store>"));
        }
        let output = ctx.registry.build_output(st, ctx)?;
        stores.push(Store { output, ignore_error, ignore_if_prev_success });
    }
    if stores.is_empty() {
        return Err(s.error("copy needs at least one <store>").with_hint("add <store> @type ... </store>"));
    }
    Ok(Arc::new(Copy { stores, _copy_mode: copy_mode }))
}

#[async_trait]
impl Output for Copy {
    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        let last = self.stores.len() - 1;
        let mut events = Some(events);
        // As Fluentd: a store marked ignore_if_prev_success is skipped when the previous store succeeded
        // (a skipped store does not count as a success).
        let mut prev_success = false;
        for (i, st) in self.stores.iter().enumerate() {
            if i > 0 && prev_success && st.ignore_if_prev_success {
                prev_success = false;
                continue;
            }
            prev_success = false;
            // The last store takes the batch itself, the others a copy.
            let batch = if i == last { events.take().unwrap_or_default() } else { events.clone().unwrap_or_default() };
            if let Err(e) = st.output.emit(tag, batch) {
                if st.ignore_error {
                    tracing::warn!(tag, error = %e, store = i, "copy: store refused events (ignore_error)");
                } else {
                    return Err(e);
                }
            } else {
                prev_success = true;
            }
        }
        Ok(())
    }

    async fn start(&self) -> Result<(), PluginError> {
        for st in &self.stores {
            st.output.start().await?;
        }
        Ok(())
    }

    fn before_shutdown(&self) {
        for st in &self.stores {
            st.output.before_shutdown();
        }
    }

    async fn shutdown(&self) {
        for st in &self.stores {
            st.output.shutdown().await;
        }
    }

    fn flush_now(&self) {
        for st in &self.stores {
            st.output.flush_now();
        }
    }
}
