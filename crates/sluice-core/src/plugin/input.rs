use super::{BuildCtx, PluginError, RouterHandle};
use crate::event::Events;
use crate::metrics::Report;
use async_trait::async_trait;
use std::sync::Arc;

/// Why an emit was refused. The caller keeps its position and tries again later: nothing is lost.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EmitError {
    #[error("buffer of output {output} is full ({reason})")]
    BufferOverflow { output: String, reason: String },
    #[error("sluice is shutting down")]
    ShuttingDown,
}

/// An input's way into the router: emits land in the label the `<source>` names with `@label`, or at the top.
#[derive(Clone)]
pub struct Emitter {
    router: RouterHandle,
    label: Arc<str>,
}

impl Emitter {
    pub fn new(router: RouterHandle, label: Arc<str>) -> Self {
        Emitter { router, label }
    }

    /// Route a batch of events that share `tag`. Synchronous: the events are in a buffer (or dropped by a
    /// filter) when it returns. With `overflow_action block` it may wait, so call it from a blocking thread
    /// or through [`Emitter::emit_async`].
    pub fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        if events.is_empty() {
            return Ok(());
        }
        self.router.emit_to_label(&self.label, tag, events)
    }

    /// [`Emitter::emit`] from async code without stalling the runtime when a buffer blocks.
    pub async fn emit_async(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        let this = self.clone();
        let tag = tag.to_string();
        let span = tracing::Span::current();
        match tokio::task::spawn_blocking(move || span.in_scope(|| this.emit(&tag, events))).await {
            Ok(r) => r,
            Err(_) => Err(EmitError::ShuttingDown),
        }
    }

    pub fn label(&self) -> &str {
        &self.label
    }
}

/// A `<source>`.
#[async_trait]
pub trait Input: Send {
    /// Run until `ctx.shutdown` fires (or, with `exit_on_eof`, until the input has read everything).
    async fn run(self: Box<Self>, emitter: Emitter, ctx: BuildCtx) -> Result<(), PluginError>;

    /// The input's metrics, taken once before `run` (which consumes the input).
    fn reporter(&self) -> Option<Arc<dyn Report>> {
        None
    }
}
