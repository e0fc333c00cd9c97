use crate::cli::Args;
use anyhow::Context;
use tracing_subscriber::EnvFilter;

/// sluice's own log. `SLUICE_LOG` (an EnvFilter) overrides -v/-q.
pub fn init(args: &Args) -> anyhow::Result<()> {
    let level = match args.verbose as i32 - args.quiet as i32 {
        i32::MIN..=-2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    match &args.log {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?;
            builder.with_ansi(false).with_writer(std::sync::Mutex::new(file)).init();
        }
        // Colour only on a terminal: in a pod stderr goes to a log file, where escape codes are noise.
        None => {
            builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).with_writer(std::io::stderr).init()
        }
    }
    Ok(())
}
