//! `@type kinesis_firehose` (aws-fluent-plugin-kinesis): PutRecordBatch to a Firehose delivery stream.
use crate::client::describe_sdk_error;
use crate::kinesis::{Answer, KinesisApi, KinesisWriter, Limits, MIB};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use sluice_core::buffer::BufferedPlugin;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::Map;
use sluice_core::plugin::BuildCtx;
use std::sync::Arc;

pub type FirehoseWriter = KinesisWriter<Firehose>;

/// Read the plugin's parameters (everything but `<buffer>`).
pub fn writer(conf: &Element, ctx: &BuildCtx) -> Result<Arc<FirehoseWriter>, ConfigError> {
    FirehoseWriter::from_conf(conf, ctx).map(Arc::new)
}

/// PutRecordBatch: records without keys, a newline appended by default.
pub struct Firehose;

#[async_trait]
impl KinesisApi for Firehose {
    const PLUGIN: &'static str = "kinesis_firehose";
    const STREAM_PARAM: &'static str = "delivery_stream_name";
    const APPEND_NEW_LINE: Option<bool> = Some(true);
    const LIMITS: Limits = Limits {
        operation: "PutRecordBatch",
        max_size_default: 4 * MIB,
        max_size: 4 * MIB,
        max_size_text: "4m",
        max_record_default: 1000 * 1024,
        max_record: 1000 * 1024,
        max_record_text: "1000k (the Firehose record limit)",
    };
    type Client = aws_sdk_firehose::Client;
    type Key = ();
    type Entry = Record;

    fn from_conf(_conf: &Element) -> Result<Self, ConfigError> {
        Ok(Firehose)
    }

    fn client(sdk: &SdkConfig) -> Self::Client {
        aws_sdk_firehose::Client::new(sdk)
    }

    fn key_needs_record(&self) -> bool {
        false
    }

    fn key_of(&self, _record: Option<&Map>) {}

    fn key_len(_key: &()) -> usize {
        0
    }

    fn entry(data: Vec<u8>, _key: ()) -> Result<Record, String> {
        Record::builder().data(Blob::new(data)).build().map_err(|e| e.to_string())
    }

    async fn put(client: &Self::Client, stream: &str, entries: Vec<Record>) -> Answer {
        let out = client.put_record_batch().delivery_stream_name(stream).set_records(Some(entries)).send().await;
        let out = out.map_err(|e| describe_sdk_error(&e))?;
        Ok(out.request_responses().iter().map(|r| r.error_code().map(str::to_string)).collect())
    }
}
