//! `@type kinesis_streams` (aws-fluent-plugin-kinesis): PutRecords to a Kinesis Data Stream.
use crate::client::describe_sdk_error;
use crate::kinesis::{Answer, KinesisApi, KinesisWriter, Limits, MIB};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use sluice_core::buffer::BufferedPlugin;
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::Map;
use sluice_core::plugin::BuildCtx;
use std::sync::Arc;

pub type KinesisStreamsWriter = KinesisWriter<Streams>;

/// Read the plugin's parameters (everything but `<buffer>`).
pub fn writer(conf: &Element, ctx: &BuildCtx) -> Result<Arc<KinesisStreamsWriter>, ConfigError> {
    KinesisStreamsWriter::from_conf(conf, ctx).map(Arc::new)
}

/// PutRecords, and where a record's partition key comes from.
pub struct Streams {
    partition_key: Option<String>,
}

/// 32 random hex digits, as the plugin's `SecureRandom.hex(16)`, from the thread's generator (a v4 UUID asks
/// the OS for its random bytes, once per record).
fn random_partition_key() -> String {
    sluice_core::util::hex16(&rand::random::<[u8; 16]>())
}

#[async_trait]
impl KinesisApi for Streams {
    const PLUGIN: &'static str = "kinesis_streams";
    const STREAM_PARAM: &'static str = "stream_name";
    const APPEND_NEW_LINE: Option<bool> = None;
    const LIMITS: Limits = Limits {
        operation: "PutRecords",
        max_size_default: 5 * MIB,
        max_size: 10 * MIB,
        max_size_text: "10m",
        max_record_default: MIB,
        max_record: 10 * MIB,
        max_record_text: "10m (a stream's MaxRecordSize)",
    };
    type Client = aws_sdk_kinesis::Client;
    type Key = String;
    type Entry = PutRecordsRequestEntry;

    fn from_conf(conf: &Element) -> Result<Self, ConfigError> {
        Ok(Streams { partition_key: conf.opt_str("partition_key").filter(|s| !s.is_empty()) })
    }

    fn client(sdk: &SdkConfig) -> Self::Client {
        aws_sdk_kinesis::Client::new(sdk)
    }

    fn key_needs_record(&self) -> bool {
        self.partition_key.is_some()
    }

    fn key_of(&self, record: Option<&Map>) -> String {
        let from_record = self.partition_key.as_ref().zip(record).and_then(|(k, r)| r.get(k)).and_then(|v| {
            let s = v.to_display_string();
            (!s.is_empty() && !v.is_null()).then_some(s)
        });
        match from_record {
            // Kinesis allows 256 Unicode characters.
            Some(s) => s.chars().take(256).collect(),
            None => random_partition_key(),
        }
    }

    fn key_len(key: &String) -> usize {
        key.len()
    }

    fn entry(data: Vec<u8>, key: String) -> Result<PutRecordsRequestEntry, String> {
        PutRecordsRequestEntry::builder().data(Blob::new(data)).partition_key(key).build().map_err(|e| e.to_string())
    }

    async fn put(client: &Self::Client, stream: &str, entries: Vec<PutRecordsRequestEntry>) -> Answer {
        let out = client.put_records().stream_name(stream).set_records(Some(entries)).send().await;
        let out = out.map_err(|e| describe_sdk_error(&e))?;
        Ok(out.records().iter().map(|r| r.error_code().map(str::to_string)).collect())
    }
}
