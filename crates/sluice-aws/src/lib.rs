//! sluice outputs for AWS, on the official AWS SDK for Rust: `kinesis_streams`, `kinesis_firehose`, `s3`
//! and `cloudwatch_logs`. Each is a [`sluice_core::buffer::ChunkWriter`] driven by the buffered output engine.
pub mod batch;
pub mod client;
pub mod cloudwatch_logs;
pub mod common;
pub mod firehose;
pub mod kinesis_streams;
pub mod s3;
pub mod stats;

use sluice_core::config::{ConfigError, Element};
use sluice_core::plugin::{BuildCtx, Output, Registry};
use std::sync::Arc;

/// Register the four outputs.
pub fn register(reg: &mut Registry) {
    reg.register_output("kinesis_streams", build_kinesis_streams);
    reg.register_output("kinesis_firehose", build_kinesis_firehose);
    reg.register_output("s3", build_s3);
    reg.register_output("cloudwatch_logs", build_cloudwatch_logs);
}

/// Buffer defaults of the plugins these outputs mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defaults {
    /// aws-fluent-plugin-kinesis: chunk_limit_size 1m, flush_interval 1s.
    Kinesis,
    /// fluent-plugin-cloudwatch-logs: Fluentd's buffer defaults (memory, chunk_limit_size 8m, flush 60s).
    CloudwatchLogs,
    /// fluent-plugin-s3: chunk keys `time`, timekey 3600, chunk_limit_size 256m.
    S3,
}

fn build_kinesis_streams(conf: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    let w = kinesis_streams::writer(conf, ctx)?;
    wire(conf, ctx, Defaults::Kinesis, w)
}

fn build_kinesis_firehose(conf: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    let w = firehose::writer(conf, ctx)?;
    wire(conf, ctx, Defaults::Kinesis, w)
}

fn build_s3(conf: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    let w = s3::writer(conf, ctx)?;
    wire(conf, ctx, Defaults::S3, w)
}

fn build_cloudwatch_logs(conf: &Element, ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    let w = cloudwatch_logs::writer(conf, ctx)?;
    wire(conf, ctx, Defaults::CloudwatchLogs, w)
}

mod wiring;
use wiring::wire;
