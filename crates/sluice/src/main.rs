//! The `sluice` command: Fluentd's command line where it matters (`-c`, `--dry-run`, `-v`, `-q`).
mod cli;
mod logging;
mod registry;

use anyhow::Context;
use clap::Parser;
use sluice_core::config::{self, Diagnostics};
use sluice_core::engine;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let log = match logging::init(&args) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(args, &log) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_diagnostics(d: &Diagnostics) {
    for w in &d.warnings {
        tracing::warn!("{w}");
    }
    for e in &d.errors {
        eprintln!("error: {e}");
    }
}

/// `SLUICE_CONFIG_DIR`: the absolute directory of the configuration file, so a configuration can name
/// files beside it (`"#{ENV['SLUICE_CONFIG_DIR']}/logs/*.log"`) whatever the current directory is.
/// Set before any thread starts.
fn set_config_dir(config: &std::path::Path) {
    let abs = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
    if let Some(dir) = abs.parent() {
        std::env::set_var("SLUICE_CONFIG_DIR", dir);
    }
}

fn run(args: cli::Args, log: &logging::LogControl) -> anyhow::Result<ExitCode> {
    set_config_dir(&args.config);
    if !args.config.exists() {
        eprintln!(
            "sluice: no configuration file at {}; pass one with -c FILE (Fluentd syntax, or YAML as fluent.yaml)",
            args.config.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    // Every syntax and embedded-Ruby error at once; the plugins are checked too when the sections'
    // structure could be read.
    let loaded = config::load_file(&args.config);
    if !loaded.structure_ok {
        print_diagnostics(&loaded.diagnostics);
        eprintln!("sluice: the configuration has {} error(s); nothing was started", loaded.diagnostics.errors.len());
        return Ok(ExitCode::FAILURE);
    }
    let root = loaded.root;
    let registry = Arc::new(registry::build());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.max(1))
        .thread_name("sluice")
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    // Builders may spawn tasks (e.g. token refreshers), so assemble inside the runtime.
    let assembled =
        runtime.block_on(async { engine::assemble_checked(&root, loaded.diagnostics, registry, args.dry_run) });
    // Before the warnings, so `<system> log_level error` quiets them too (as in Fluentd).
    log.apply(&assembled.log_levels);
    print_diagnostics(&assembled.diagnostics);
    let Some(engine) = assembled.engine else {
        eprintln!("sluice: the configuration has {} error(s); nothing was started", assembled.diagnostics.errors.len());
        return Ok(ExitCode::FAILURE);
    };
    if args.dry_run {
        println!("sluice: configuration {} is valid (dry run)", args.config.display());
        return Ok(ExitCode::SUCCESS);
    }
    let result = runtime.block_on(async move {
        let shutdown = engine.ctx.shutdown.clone();
        let flusher = engine.flusher();
        tokio::spawn(handle_signals(shutdown, flusher));
        tracing::info!(config = %args.config.display(), "sluice started");
        engine.run().await
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result.context("sluice stopped with an error")?;
    tracing::info!("sluice stopped");
    Ok(ExitCode::SUCCESS)
}

#[cfg(unix)]
async fn handle_signals(shutdown: sluice_core::plugin::Shutdown, flusher: engine::Flusher) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut usr1), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); shutdown.trigger(); }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); shutdown.trigger(); }
            _ = usr1.recv() => { tracing::info!("SIGUSR1: flushing every buffer"); flusher.flush_all(); }
            _ = hup.recv() => { tracing::warn!("SIGHUP: configuration reload is not supported; restart sluice instead"); }
        }
    }
}
