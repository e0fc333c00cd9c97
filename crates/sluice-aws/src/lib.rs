//! sluice outputs for AWS, on the official AWS SDK for Rust: `kinesis_streams`, `kinesis_firehose`, `s3`
//! and `cloudwatch_logs`. Each is a [`sluice_core::buffer::BufferedPlugin`] driven by the buffered output
//! engine.
pub mod batch;
pub mod client;
pub mod cloudwatch_logs;
pub mod common;
pub mod firehose;
pub mod kinesis;
pub mod kinesis_streams;
pub mod s3;
pub mod stats;

use sluice_core::buffer::buffered;
use sluice_core::plugin::Registry;

/// Register the four outputs.
pub fn register(reg: &mut Registry) {
    reg.register_output("kinesis_streams", buffered::<kinesis_streams::KinesisStreamsWriter>);
    reg.register_output("kinesis_firehose", buffered::<firehose::FirehoseWriter>);
    reg.register_output("s3", buffered::<s3::S3Writer>);
    reg.register_output("cloudwatch_logs", buffered::<cloudwatch_logs::CloudwatchLogsWriter>);
}
