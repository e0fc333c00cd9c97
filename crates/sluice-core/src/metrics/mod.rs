//! One metrics interface for every component. Components keep their own relaxed-atomic counters on the
//! hot path and report them, with names and labels, into a [`MetricSink`] when a monitoring plugin asks
//! (at scrape time): outputs through [`crate::plugin::Output::report`] (plus their [`OutputMetrics`] and
//! [`BufferStatus`]), filters through [`crate::plugin::Filter::report`], inputs through
//! [`crate::plugin::Input::reporter`]. The engine lists every component in a [`Hub`].
//!
//! [`OutputMetrics`]: crate::plugin::OutputMetrics
mod counter;
mod hub;
mod sink;

pub use counter::{Counter, Gauge, RouterMetrics};
pub use hub::{BufferStatus, Category, Component, Hub, RetryStatus, HEARTBEAT_STALE_SECS};
pub use sink::{Kind, MetricSink, Report, WatchedFile, WatchedFiles, WithLabels};
