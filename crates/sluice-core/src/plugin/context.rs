use super::{RouterHandle, ROOT_LABEL};
use crate::metrics::Hub;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// Settings from `<system>` that plugins may need.
#[derive(Debug, Clone, Default)]
pub struct SystemConfig {
    pub root_dir: Option<PathBuf>,
    /// `SLUICE_STATE_DIR` from the environment: sluice's state directory where `<system> root_dir` is not set
    /// (the examples and the Helm chart set it to the state hostPath).
    pub state_dir: Option<PathBuf>,
    pub log_level: Option<String>,
    pub hostname: String,
}

impl SystemConfig {
    /// Where sluice keeps state it creates itself (memory buffers' spill at a stop): `root_dir`, else the
    /// state directory.
    pub fn state_root(&self) -> Option<&std::path::Path> {
        self.root_dir.as_deref().or(self.state_dir.as_deref())
    }
}

/// What a plugin builder gets besides its own `<section>`.
#[derive(Clone)]
pub struct BuildCtx {
    pub registry: Arc<super::Registry>,
    /// For outputs that emit events again (relabel, rewrite_tag_filter, copy's stores).
    pub router: RouterHandle,
    /// The label this directive lives in (`@ROOT` at top level).
    pub label: Arc<str>,
    pub system: Arc<SystemConfig>,
    pub shutdown: Shutdown,
    pub eof: EofTracker,
    /// Only checking the configuration (`--dry-run`): builders must not open sockets or files.
    pub dry_run: bool,
    /// `--dry-run` (and a reload's check): also verify that the directories the configuration writes are
    /// writable. Off for tools that only read the configuration (`sluice explain`, `iam-policy`).
    pub check_dirs: bool,
    /// Every component of the configuration and its metrics (filled by `engine::assemble`).
    pub metrics: Arc<Hub>,
}

impl BuildCtx {
    /// A context for building plugins outside a running engine (tests, tools): the root label, a router
    /// handle that is not connected yet, default `<system>`, not a dry run.
    pub fn new(registry: Arc<super::Registry>) -> Self {
        BuildCtx {
            registry,
            router: RouterHandle::new(),
            label: Arc::from(ROOT_LABEL),
            system: Arc::new(SystemConfig::default()),
            shutdown: Shutdown::new(),
            eof: EofTracker::default(),
            dry_run: false,
            check_dirs: false,
            metrics: Hub::new(),
        }
    }

    /// With [`Self::check_dirs`], whether sluice could create and write `dir` (see [`crate::fs_check`]).
    pub fn check_writable(&self, dir: &std::path::Path) -> Result<(), String> {
        if self.check_dirs {
            crate::fs_check::writable_dir(dir)
        } else {
            Ok(())
        }
    }
}

/// A cheap, cloneable shutdown signal.
#[derive(Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        let (tx, rx) = watch::channel(false);
        Shutdown { tx: Arc::new(tx), rx }
    }

    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once shutdown has been triggered.
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Counts inputs running with `exit_on_eof`: when the last one reaches the end of its files the process
/// flushes and exits.
#[derive(Clone, Default)]
pub struct EofTracker {
    inner: Arc<(AtomicUsize, AtomicUsize)>,
    done: Arc<tokio::sync::Notify>,
}

impl EofTracker {
    /// Called by an input at build time when it will finish by itself.
    pub fn register(&self) {
        self.inner.0.fetch_add(1, Ordering::SeqCst);
    }

    /// Called by that input when it has read everything; true when it was the last one.
    pub fn finished(&self) -> bool {
        let done = self.inner.1.fetch_add(1, Ordering::SeqCst) + 1;
        let last = done >= self.inner.0.load(Ordering::SeqCst);
        if last {
            self.done.notify_one();
        }
        last
    }

    /// Resolves when every registered input has finished; never when none registered.
    pub async fn wait_all(&self) {
        if self.registered() == 0 {
            std::future::pending::<()>().await;
        }
        while self.inner.1.load(Ordering::SeqCst) < self.registered() {
            self.done.notified().await;
        }
    }

    pub fn registered(&self) -> usize {
        self.inner.0.load(Ordering::SeqCst)
    }
}
