use clap::{ArgAction, Parser};
use std::path::PathBuf;

/// A Fluentd-compatible log collector and router.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
pub struct Args {
    /// Configuration file (Fluentd syntax), as `fluentd -c`.
    #[arg(short = 'c', long = "config", default_value = "/etc/sluice/fluent.conf")]
    pub config: PathBuf,

    /// Check the configuration and exit: 0 when valid, else every error with file and line.
    #[arg(long = "dry-run")]
    pub dry_run: bool,

    /// More of sluice's own log (-v debug, -vv trace).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,

    /// Less of sluice's own log (-q warnings, -qq errors only).
    #[arg(short = 'q', long = "quiet", action = ArgAction::Count)]
    pub quiet: u8,

    /// Write sluice's own log to this file instead of stderr (as `fluentd -o`).
    #[arg(short = 'o', long = "log")]
    pub log: Option<PathBuf>,

    /// Worker threads for network outputs.
    #[arg(long = "workers", default_value_t = 2)]
    pub workers: usize,

    /// Accepted for compatibility with fluentd's command line; sluice has no supervisor process.
    #[arg(long = "no-supervisor", hide = true)]
    pub no_supervisor: bool,
}
