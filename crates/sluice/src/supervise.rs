//! Runs the engine, answers signals, and reloads the configuration (SIGHUP, and Fluentd's SIGUSR2).
//!
//! A reload checks the new configuration completely first (as `--dry-run` does); a broken one is refused
//! with its errors and the running engine keeps going. A good one stops the running engine the normal way
//! (inputs first: tail positions are committed to their pos files, then filters and outputs: file buffers
//! stay on disk, memory buffers flush or spill) and starts the new one, which resumes those positions and
//! chunks. If the new engine cannot be built after all (a port still taken, say), the old configuration is
//! started again.
use crate::logging::LogControl;
use sluice_core::config::{self, Element};
use sluice_core::engine::{self, Engine};
use sluice_core::plugin::{PluginError, Registry};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What a reload needs: where the configuration is and how to build it.
pub struct Reload {
    pub config: PathBuf,
    pub registry: Arc<Registry>,
    pub log: LogControl,
}

#[derive(Debug, Clone, Copy)]
enum Signal {
    Stop(&'static str),
    Flush,
    Reload(&'static str),
}

/// Run `engine` until a stop signal (or every `exit_on_eof` input finished), replacing it on each good reload.
pub async fn run(mut engine: Engine, root: Element, reload: Reload) -> Result<(), PluginError> {
    let (tx, mut signals) = mpsc::unbounded_channel();
    let listener = tokio::spawn(listen(tx));
    let mut current = Some(root);
    let result = loop {
        let shutdown = engine.ctx.shutdown.clone();
        let flusher = engine.flusher();
        let running = engine.run();
        tokio::pin!(running);
        crate::heap::trim_after_start();
        let mut next: Option<Element> = None;
        let result = loop {
            tokio::select! {
                r = &mut running => break r,
                Some(sig) = signals.recv() => match sig {
                    Signal::Stop(name) => {
                        tracing::info!("{name}: stopping");
                        next = None;
                        shutdown.trigger();
                    }
                    Signal::Flush => {
                        tracing::info!("SIGUSR1: flushing every buffer");
                        flusher.flush_all();
                    }
                    Signal::Reload(name) => match check(&reload) {
                        Ok(root) => {
                            tracing::info!(config = %reload.config.display(), "{name}: configuration is valid; restarting the pipeline with it");
                            next = Some(root);
                            shutdown.trigger();
                        }
                        Err(errors) => {
                            for e in &errors {
                                tracing::error!("{name}: {e}");
                            }
                            tracing::error!(config = %reload.config.display(),
                                "{name}: the new configuration has {} error(s); reload refused, the running configuration goes on",
                                errors.len());
                        }
                    },
                },
            }
        };
        let Some(root) = next else { break result };
        if let Err(e) = result {
            tracing::error!("the pipeline stopped with an error before the reload: {e}");
        }
        engine = match start(&root, &reload) {
            Some(e) => {
                current = Some(root);
                e
            }
            None => {
                tracing::error!("the new configuration could not start; starting the previous one again");
                match current.as_ref().and_then(|old| start(old, &reload)) {
                    Some(e) => e,
                    None => {
                        break Err(PluginError::Other(
                            "neither the new nor the previous configuration could start".into(),
                        ))
                    }
                }
            }
        };
        tracing::info!(config = %reload.config.display(), "configuration reloaded");
    };
    listener.abort();
    result
}

/// Parse and build the configuration without starting anything: every error, as `--dry-run` reports them.
fn check(reload: &Reload) -> Result<Element, Vec<String>> {
    let loaded = config::load_file(&reload.config);
    let errors = |d: &sluice_core::config::Diagnostics| d.errors.iter().map(ToString::to_string).collect();
    if !loaded.structure_ok {
        return Err(errors(&loaded.diagnostics));
    }
    let checked =
        engine::assemble_checked(&loaded.root, loaded.diagnostics, reload.registry.clone(), engine::Mode::Check);
    if checked.engine.is_some() && checked.diagnostics.errors.is_empty() {
        Ok(loaded.root)
    } else {
        Err(errors(&checked.diagnostics))
    }
}

fn start(root: &Element, reload: &Reload) -> Option<Engine> {
    let assembled = engine::assemble(root, reload.registry.clone(), false);
    reload.log.apply(&assembled.log_levels);
    crate::print_diagnostics(&assembled.diagnostics);
    assembled.engine
}

#[cfg(unix)]
async fn listen(tx: mpsc::UnboundedSender<Signal>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut usr1), Ok(mut hup), Ok(mut usr2)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined2()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        let sig = tokio::select! {
            _ = term.recv() => Signal::Stop("SIGTERM"),
            _ = int.recv() => Signal::Stop("SIGINT"),
            _ = usr1.recv() => Signal::Flush,
            _ = hup.recv() => Signal::Reload("SIGHUP"),
            _ = usr2.recv() => Signal::Reload("SIGUSR2"),
        };
        if tx.send(sig).is_err() {
            return;
        }
    }
}
