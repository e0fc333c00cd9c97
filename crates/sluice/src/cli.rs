use clap::{ArgAction, Parser, Subcommand};
use std::path::PathBuf;

/// A Fluentd-compatible log collector and router.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
pub struct Args {
    /// Without a command, run the configuration (or check it with --dry-run).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Configuration file (Fluentd syntax), as `fluentd -c`.
    #[arg(short = 'c', long = "config", default_value = "/etc/sluice/fluent.conf", global = true)]
    pub config: PathBuf,

    /// Check the configuration and exit: 0 when valid, else every error with file and line.
    #[arg(long = "dry-run")]
    pub dry_run: bool,

    /// More of sluice's own log (-v debug, -vv trace).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Less of sluice's own log (-q warnings, -qq errors only).
    #[arg(short = 'q', long = "quiet", action = ArgAction::Count, global = true)]
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

/// Questions about a configuration, answered without running it.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show every route: the tags each source produces, the filters they pass, the outputs they reach.
    Explain {
        /// Print the route graph in Graphviz's DOT language instead of text.
        #[arg(long = "dot")]
        dot: bool,
        /// Only list routes that leave the node without passing a mask filter.
        #[arg(long = "pii")]
        pii: bool,
        /// Exit 1 when an unmasked route leaves the node.
        #[arg(long = "strict")]
        strict: bool,
    },
    /// Print the least-privilege AWS IAM policy (JSON) for the AWS outputs; --gcp: the GCP roles.
    IamPolicy {
        /// Region for outputs whose configuration names none (else ${AWS::Region}).
        #[arg(long = "region")]
        region: Option<String>,
        /// Account id for the ARNs (else ${AWS::AccountId}).
        #[arg(long = "account-id")]
        account_id: Option<String>,
        /// Print the GCP IAM roles the google_cloud outputs need instead.
        #[arg(long = "gcp")]
        gcp: bool,
    },
    /// Run configuration unit tests (a Fluentd-syntax test file) without network; exit 1 on a failure.
    Test {
        /// The test file (see docs/explain.md).
        tests: PathBuf,
    },
}
