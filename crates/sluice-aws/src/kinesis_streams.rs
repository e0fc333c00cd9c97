//! `@type kinesis_streams` (aws-fluent-plugin-kinesis): PutRecords to a Kinesis Data Stream.
use crate::batch::{self, BatchPolicy, Prepared, SendResult};
use crate::client::{describe_sdk_error, AwsParams};
use crate::common::RecordData;
use crate::stats::WriterStats;
use async_trait::async_trait;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use sluice_core::buffer::{Chunk, ChunkWriter, WriteError};
use sluice_core::config::{ConfigError, Element};
use sluice_core::plugin::BuildCtx;
use std::sync::Arc;
use tokio::sync::OnceCell;

const MIB: u64 = 1024 * 1024;

pub struct KinesisStreamsWriter {
    params: AwsParams,
    client: OnceCell<aws_sdk_kinesis::Client>,
    stream_name: String,
    partition_key: Option<String>,
    data: RecordData,
    max_record_size: usize,
    policy: BatchPolicy,
    pub stats: Arc<WriterStats>,
}

/// Read the plugin's parameters (everything but `<buffer>`).
pub fn writer(conf: &Element, ctx: &BuildCtx) -> Result<Arc<KinesisStreamsWriter>, ConfigError> {
    let params = AwsParams::from_conf(conf, "region", "endpoint")?;
    let stream_name = conf.required_str("stream_name")?;
    let partition_key = conf.opt_str("partition_key").filter(|s| !s.is_empty());
    let data = RecordData::from_conf(conf, ctx, None)?;
    let max_count = conf.int_or("batch_request_max_count", 500)?;
    if !(1..=500).contains(&max_count) {
        return Err(conf.error_at(
            "batch_request_max_count",
            "'batch_request_max_count' must be between 1 and 500 (the PutRecords limit)",
        ));
    }
    let max_size = conf.size_or("batch_request_max_size", 5 * MIB)?;
    if max_size == 0 || max_size > 10 * MIB {
        return Err(conf.error_at(
            "batch_request_max_size",
            "'batch_request_max_size' must be between 1 and 10m (the PutRecords limit)",
        ));
    }
    let max_record_size = conf.size_or("max_record_size", MIB)?;
    if max_record_size == 0 || max_record_size > 10 * MIB {
        return Err(
            conf.error_at("max_record_size", "'max_record_size' must be between 1 and 10m (a stream's MaxRecordSize)")
        );
    }
    let policy = BatchPolicy::from_conf(conf, max_count as usize, max_size as usize)?;
    Ok(Arc::new(KinesisStreamsWriter {
        params,
        client: OnceCell::new(),
        stream_name,
        partition_key,
        data,
        max_record_size: max_record_size as usize,
        policy,
        stats: Arc::new(WriterStats::default()),
    }))
}

impl KinesisStreamsWriter {
    async fn client(&self) -> &aws_sdk_kinesis::Client {
        self.client.get_or_init(|| async { aws_sdk_kinesis::Client::new(&self.params.sdk_config().await) }).await
    }

    fn partition_key_of(&self, record: &sluice_core::event::Map) -> String {
        let from_record = self.partition_key.as_ref().and_then(|k| record.get(k)).and_then(|v| {
            let s = v.to_display_string();
            (!s.is_empty() && !v.is_null()).then_some(s)
        });
        match from_record {
            // Kinesis allows 256 Unicode characters.
            Some(s) => s.chars().take(256).collect(),
            None => random_partition_key(),
        }
    }
}

/// 32 random hex digits, as the plugin's `SecureRandom.hex(16)`, from the thread's generator (a v4 UUID asks
/// the OS for its random bytes, once per record).
fn random_partition_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[async_trait]
impl ChunkWriter for KinesisStreamsWriter {
    fn report(&self, sink: &mut dyn sluice_core::metrics::MetricSink) {
        self.stats.report(sink);
    }

    async fn write(&self, chunk: &Chunk) -> Result<(), WriteError> {
        let tag = chunk.metadata.tag.clone().unwrap_or_default();
        let mut records = Vec::with_capacity(chunk.records);
        let mut rejected = Vec::new();
        let accept = |i: usize, ev_tag: &str, data: Result<Vec<u8>, String>, key: String| match data {
            Ok(data) => {
                let size = data.len() + key.len();
                if size > self.max_record_size {
                    self.stats.record_oversize(ev_tag, "kinesis_streams", size, self.max_record_size);
                    rejected.push((
                        i,
                        format!(
                            "kinesis_streams: record of tag {ev_tag} is {size} bytes, over max_record_size {}",
                            self.max_record_size
                        ),
                    ));
                } else {
                    records.push(Prepared { entry: i, rec: (data, key), size });
                }
            }
            Err(why) => {
                self.stats.record_invalid();
                tracing::warn!(tag = %ev_tag, "kinesis_streams: record rejected: {why}");
                rejected.push((i, format!("kinesis_streams: record of tag {ev_tag} rejected: {why}")));
            }
        };
        // The common case reads each record's JSON straight from the chunk, with a random partition key.
        let direct = self.data.plain_json() && self.partition_key.is_none();
        let key_of =
            |r: Option<&sluice_core::event::Map>| r.map_or_else(random_partition_key, |r| self.partition_key_of(r));
        if let Some(bad) = self.data.each_payload(chunk, direct, "kinesis_streams", key_of, accept) {
            rejected.push(bad);
        }
        if records.is_empty() {
            return batch::into_result("kinesis_streams", &tag, batch::DeliveryReport::default(), rejected);
        }
        let client = self.client().await;
        let report = batch::deliver(records, &self.policy, |payload: Vec<(Vec<u8>, String)>| {
            let n = payload.len();
            let entries: Result<Vec<PutRecordsRequestEntry>, _> = payload
                .into_iter()
                .map(|(d, k)| PutRecordsRequestEntry::builder().data(Blob::new(d)).partition_key(k).build())
                .collect();
            let req = client.put_records().stream_name(&self.stream_name);
            let stats = self.stats.clone();
            async move {
                let entries = match entries {
                    Ok(e) => e,
                    Err(e) => {
                        return SendResult::Err {
                            message: format!("building request: {e}"),
                            class: crate::client::ErrorClass::Unrecoverable,
                        }
                    }
                };
                stats.request();
                match req.set_records(Some(entries)).send().await {
                    Ok(out) => {
                        let codes: Vec<Option<String>> =
                            out.records().iter().map(|r| r.error_code().map(str::to_string)).collect();
                        stats.refused(&codes);
                        if codes.len() != n {
                            tracing::warn!(sent = n, answered = codes.len(), "PutRecords answered a different count");
                        }
                        SendResult::Ok(codes)
                    }
                    Err(e) => {
                        let (message, class) = describe_sdk_error(&e);
                        SendResult::Err { message, class }
                    }
                }
            }
        })
        .await;
        self.stats.delivered(report.delivered);
        if let Some((m, _)) = &report.request_error {
            tracing::warn!(tag = %tag, stream = %self.stream_name, "kinesis_streams: PutRecords failed: {m}");
        }
        batch::into_result("kinesis_streams", &tag, report, rejected)
    }
}
