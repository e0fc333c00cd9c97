//! Hands a writer to the buffered output engine with the plugin's buffer defaults.
use crate::Defaults;
use sluice_core::buffer::{BufferDefaults, BufferedOutput, ChunkWriter, FlushMode};
use sluice_core::config::{ConfigError, Element};
use sluice_core::plugin::{BuildCtx, Output};
use std::sync::Arc;
use std::time::Duration;

const MIB: u64 = 1024 * 1024;

/// The `<buffer>` defaults of the Fluentd plugin each output mirrors.
pub fn buffer_defaults(d: Defaults) -> BufferDefaults {
    match d {
        Defaults::Kinesis => BufferDefaults {
            chunk_limit_size: MIB,
            file_chunk_limit_size: MIB,
            flush_interval: Duration::from_secs(1),
            flush_mode: FlushMode::Interval,
            ..BufferDefaults::default()
        },
        Defaults::CloudwatchLogs => BufferDefaults::default(),
        Defaults::S3 => BufferDefaults {
            chunk_limit_size: 256 * MIB,
            file_chunk_limit_size: 256 * MIB,
            chunk_keys: "time",
            timekey: Some(Duration::from_secs(3600)),
            ..BufferDefaults::default()
        },
    }
}

pub fn wire(
    conf: &Element,
    ctx: &BuildCtx,
    defaults: Defaults,
    writer: Arc<dyn ChunkWriter>,
) -> Result<Arc<dyn Output>, ConfigError> {
    BufferedOutput::build(conf, ctx, buffer_defaults(defaults), writer)
}
