//! Turns a parsed configuration into a running pipeline: builds every plugin, wires labels into the
//! router, starts outputs and inputs, and stops them in order.
mod assemble;
mod log_level;

pub use assemble::{assemble, assemble_as, assemble_checked, Assembled, Mode};
pub use log_level::{parse_level, LogLevels, LEVEL_FIELD, PLUGIN_SPAN_NAME, PLUGIN_SPAN_TARGET};

use crate::plugin::{BuildCtx, Emitter, Input, Output};
use crate::router::Router;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// A configuration that has been checked and built, ready to run.
pub struct Engine {
    pub router: Arc<Router>,
    /// Each input with its emitter, its name for messages, and the span its task runs in (for `@log_level`).
    pub(crate) inputs: Vec<(Box<dyn Input>, Emitter, String, tracing::Span)>,
    pub(crate) outputs: Vec<Arc<dyn Output>>,
    pub ctx: BuildCtx,
}

/// How long inputs get to stop before outputs are flushed anyway.
const INPUT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

impl Engine {
    /// Run until the shutdown signal fires (or every `exit_on_eof` input is done), then stop inputs first,
    /// outputs last, so everything read is flushed (per each buffer's `flush_at_shutdown`).
    pub async fn run(self) -> Result<(), crate::plugin::PluginError> {
        let Engine { router, inputs, outputs, ctx } = self;
        let filters = router.filters();
        for o in &outputs {
            o.start().await?;
        }
        for f in &filters {
            f.start();
        }
        let mut tasks = Vec::new();
        for (input, emitter, name, span) in inputs {
            let ctx = ctx.clone();
            tasks.push(tokio::spawn(
                async move {
                    if let Err(e) = input.run(emitter, ctx).await {
                        tracing::error!(input = %name, error = %e, "input stopped with an error");
                    }
                }
                .instrument(span),
            ));
        }
        // Every input and output has started: ready for the health endpoint. The heartbeat shows the
        // runtime still schedules tasks (liveness).
        ctx.metrics.set_ready(true);
        let heartbeat = {
            let hub = ctx.metrics.clone();
            tokio::spawn(async move {
                loop {
                    hub.beat();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        };
        let eof = ctx.eof.clone();
        tokio::select! {
            _ = ctx.shutdown.wait() => {}
            _ = eof.wait_all() => {
                tracing::info!("every exit_on_eof input reached the end of its files; stopping");
            }
        }
        ctx.shutdown.trigger();
        ctx.metrics.set_ready(false);
        let stop_inputs = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        if tokio::time::timeout(INPUT_STOP_TIMEOUT, stop_inputs).await.is_err() {
            tracing::warn!("inputs did not stop within {:?}; flushing outputs anyway", INPUT_STOP_TIMEOUT);
        }
        // Events held back by filters (concat) and re-emitting outputs (detect_exceptions) go out first,
        // while every output still takes events, as Fluentd's shutdown order does.
        // They emit synchronously and may wait on a full buffer: off the async workers.
        let held = (filters, outputs.clone());
        let drained = tokio::task::spawn_blocking(move || {
            for f in &held.0 {
                f.shutdown();
            }
            for o in &held.1 {
                o.before_shutdown();
            }
        });
        if drained.await.is_err() {
            tracing::error!("a filter or output failed while emitting what it held at shutdown");
        }
        for o in &outputs {
            o.shutdown().await;
        }
        heartbeat.abort();
        drop(router);
        Ok(())
    }

    /// Flush every buffer now (SIGUSR1).
    pub fn flush_all(&self) {
        for o in &self.outputs {
            o.flush_now();
        }
    }

    /// A handle to flush outputs from a signal handler while `run` owns the engine.
    pub fn flusher(&self) -> Flusher {
        Flusher { outputs: self.outputs.clone() }
    }
}

#[derive(Clone)]
pub struct Flusher {
    outputs: Vec<Arc<dyn Output>>,
}

impl Flusher {
    pub fn flush_all(&self) {
        for o in &self.outputs {
            o.flush_now();
        }
    }
}
