//! The buffered output engine: every Fluentd output is buffered, and this is where data is kept safe.
//!
//! An output implements [`ChunkWriter`] (how to write one chunk); [`BufferedOutput`] does the rest:
//! chunking by chunk keys, memory or file chunks, limits and overflow, flushing, retries with backoff,
//! `<secondary>`, `@ERROR`, crash recovery and counters.
mod chunk;
mod chunk_json;
pub mod config;
mod engine;
mod fallback;
mod file_store;
pub mod placeholders;
pub mod retry;

pub use chunk::{Chunk, ChunkEvent, ChunkMetadata};
pub use chunk_json::{EntryJson, JsonEntries};
pub use config::{BufferConfig, BufferDefaults, ChunkKeys, FlushMode, OverflowAction, RetryType, Zone};
pub use engine::{BufferedOutput, SHUTDOWN_FLUSH_LIMIT};

use crate::config::{ConfigError, Element};
use crate::plugin::{BuildCtx, Output};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// How writing a chunk failed. The engine decides what happens next from the variant.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// Temporary (5xx, 429, timeout, connection refused): the whole chunk is retried with backoff.
    /// `after` overrides the next wait (an HTTP `Retry-After`).
    #[error("{message}")]
    Retryable { message: String, after: Option<Duration> },
    /// Will never succeed (400, record too large, access denied): the chunk goes to `<secondary>` or
    /// `@ERROR` at once instead of looping.
    #[error("{message}")]
    Unrecoverable { message: String },
    /// Some entries failed. `retry` (entry indexes) are retried with backoff as a chunk of their own;
    /// `rejected` go to `<secondary>`/`@ERROR` now; every other entry was delivered and is not resent.
    #[error("{message}")]
    Partial { message: String, retry: Vec<usize>, rejected: Vec<(usize, String)> },
}

impl WriteError {
    pub fn retryable(message: impl Into<String>) -> Self {
        WriteError::Retryable { message: message.into(), after: None }
    }
    pub fn unrecoverable(message: impl Into<String>) -> Self {
        WriteError::Unrecoverable { message: message.into() }
    }
}

/// The part of an output that knows its destination.
#[async_trait]
pub trait ChunkWriter: Send + Sync + 'static {
    /// Write every entry of the chunk, or say which failed. Must not log record contents.
    async fn write(&self, chunk: &Chunk) -> Result<(), WriteError>;

    /// Called once when sluice stops, after the last write.
    async fn close(&self) {}

    /// The destination's own metrics (called at scrape time; the sink adds `plugin_id` and `type`).
    fn report(&self, _sink: &mut dyn crate::metrics::MetricSink) {}

    /// Buffer each record as its JSON text, formatted once when it is buffered (Fluentd's outputs store
    /// formatted data in chunks), for a writer that sends each record's plain JSON and reads chunks only
    /// through [`Chunk::json_entries`] and [`Chunk::events`] (which read such entries back as maps).
    fn records_as_json(&self) -> bool {
        false
    }
}

/// A buffered output plugin: its writer, built from the `<match>`'s own parameters, and the `<buffer>`
/// defaults of the Fluentd plugin it mirrors. Registering it is one line:
/// `reg.register_output("name", buffered::<MyWriter>)`.
pub trait BufferedPlugin: ChunkWriter + Sized {
    /// The `<buffer>` defaults where the original plugin changes Fluentd's.
    fn buffer_defaults() -> BufferDefaults {
        BufferDefaults::default()
    }

    /// Read the plugin's parameters (everything but `<buffer>` and `<secondary>`, which the engine reads).
    fn from_conf(conf: &Element, ctx: &BuildCtx) -> Result<Self, ConfigError>;
}

/// The output builder of a [`BufferedPlugin`]: its writer on the [`BufferedOutput`] engine.
pub fn buffered<W: BufferedPlugin>(conf: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    let writer = Arc::new(W::from_conf(conf, ctx)?);
    BufferedOutput::build(conf, ctx, W::buffer_defaults(), writer)
}
