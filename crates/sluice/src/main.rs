//! The `sluice` command: Fluentd's command line where it matters (`-c`, `--dry-run`, `-v`, `-q`).
mod cli;
mod config_test;
mod explain;
mod heap;
mod iam_policy;
mod logging;
mod registry;
mod supervise;

use anyhow::Context;
use clap::Parser;
use sluice_core::config::{self, Diagnostics};
use sluice_core::engine;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    heap::tune_allocator();
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
    let mode = match (&args.command, args.dry_run) {
        // Reading a configuration (explain, iam-policy, test) does not depend on this machine's directories.
        (Some(_), _) => engine::Mode::ReadOnly,
        (None, true) => engine::Mode::Check,
        (None, false) => engine::Mode::Run,
    };
    let assembled =
        runtime.block_on(async { engine::assemble_checked(&root, loaded.diagnostics, registry.clone(), mode) });
    // Before the warnings, so `<system> log_level error` quiets them too (as in Fluentd).
    log.apply(&assembled.log_levels);
    print_diagnostics(&assembled.diagnostics);
    let Some(engine) = assembled.engine else {
        eprintln!("sluice: the configuration has {} error(s); nothing was started", assembled.diagnostics.errors.len());
        return Ok(ExitCode::FAILURE);
    };
    match &args.command {
        Some(cli::Command::Explain { dot, pii, strict }) => return Ok(explain::run(&root, *dot, *pii, *strict)),
        Some(cli::Command::IamPolicy { region, account_id, gcp }) => {
            let fill = iam_policy::Fill { region: region.clone(), account: account_id.clone() };
            return Ok(print_policy(&root, &fill, *gcp));
        }
        Some(cli::Command::Test { tests }) => {
            drop(engine);
            return Ok(run_tests(&root, tests, &runtime));
        }
        None => {}
    }
    if args.dry_run {
        for w in explain::pii_warnings(&root) {
            tracing::warn!("{w}");
        }
        println!("sluice: configuration {} is valid (dry run)", args.config.display());
        return Ok(ExitCode::SUCCESS);
    }
    tracing::info!(config = %args.config.display(), "sluice started");
    let reload = supervise::Reload { config: args.config.clone(), registry, log: log.clone() };
    let result = runtime.block_on(supervise::run(engine, root, reload));
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result.context("sluice stopped with an error")?;
    tracing::info!("sluice stopped");
    Ok(ExitCode::SUCCESS)
}

/// `sluice iam-policy`: the AWS policy JSON on stdout (or the GCP roles with `--gcp`).
fn print_policy(root: &config::Element, fill: &iam_policy::Fill, gcp: bool) -> ExitCode {
    let roles = iam_policy::gcp_roles(root);
    if gcp {
        if roles.is_empty() {
            eprintln!("sluice: no google_cloud output: no GCP role is needed");
        }
        for r in roles {
            println!("{r}");
        }
        return ExitCode::SUCCESS;
    }
    match iam_policy::aws_policy(root, fill) {
        Some(p) => println!("{}", serde_json::to_string_pretty(&p).unwrap_or_default()),
        None => eprintln!("sluice: no AWS output: no AWS policy is needed"),
    }
    if !roles.is_empty() {
        eprintln!("sluice: the google_cloud outputs also need a GCP role (sluice iam-policy --gcp):");
        for r in roles {
            eprintln!("  {r}");
        }
    }
    ExitCode::SUCCESS
}

/// `sluice test`: run the test file's `<test>`s; exit 1 when one fails or the file is wrong.
fn run_tests(root: &config::Element, tests: &std::path::Path, runtime: &tokio::runtime::Runtime) -> ExitCode {
    let parsed = match config::parse_file(tests) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut reg = registry::build();
    config_test::register(&mut reg);
    match config_test::run(root, &parsed, Arc::new(reg), runtime) {
        Ok(r) => {
            print!("{}", r.text);
            println!("{} passed, {} failed", r.passed, r.failed);
            if r.failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
