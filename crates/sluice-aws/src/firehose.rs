//! `@type kinesis_firehose` (aws-fluent-plugin-kinesis): PutRecordBatch to a Firehose delivery stream.
use crate::batch::{self, BatchPolicy, Prepared, SendResult};
use crate::client::{describe_sdk_error, AwsParams, ErrorClass};
use crate::common::RecordData;
use crate::stats::WriterStats;
use async_trait::async_trait;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use sluice_core::buffer::{Chunk, ChunkWriter, WriteError};
use sluice_core::config::{ConfigError, Element};
use sluice_core::plugin::BuildCtx;
use std::sync::Arc;
use tokio::sync::OnceCell;

const MIB: u64 = 1024 * 1024;

pub struct FirehoseWriter {
    params: AwsParams,
    client: OnceCell<aws_sdk_firehose::Client>,
    delivery_stream_name: String,
    data: RecordData,
    max_record_size: usize,
    policy: BatchPolicy,
    pub stats: Arc<WriterStats>,
}

/// Read the plugin's parameters (everything but `<buffer>`).
pub fn writer(conf: &Element, ctx: &BuildCtx) -> Result<Arc<FirehoseWriter>, ConfigError> {
    let params = AwsParams::from_conf(conf, "region", "endpoint")?;
    let delivery_stream_name = conf.required_str("delivery_stream_name")?;
    let data = RecordData::from_conf(conf, ctx, Some(true))?;
    let max_count = conf.int_or("batch_request_max_count", 500)?;
    if !(1..=500).contains(&max_count) {
        return Err(conf.error_at(
            "batch_request_max_count",
            "'batch_request_max_count' must be between 1 and 500 (the PutRecordBatch limit)",
        ));
    }
    let max_size = conf.size_or("batch_request_max_size", 4 * MIB)?;
    if max_size == 0 || max_size > 4 * MIB {
        return Err(conf.error_at(
            "batch_request_max_size",
            "'batch_request_max_size' must be between 1 and 4m (the PutRecordBatch limit)",
        ));
    }
    let max_record_size = conf.size_or("max_record_size", 1000 * 1024)?;
    if max_record_size == 0 || max_record_size > 1000 * 1024 {
        return Err(conf
            .error_at("max_record_size", "'max_record_size' must be between 1 and 1000k (the Firehose record limit)"));
    }
    let policy = BatchPolicy::from_conf(conf, max_count as usize, max_size as usize)?;
    Ok(Arc::new(FirehoseWriter {
        params,
        client: OnceCell::new(),
        delivery_stream_name,
        data,
        max_record_size: max_record_size as usize,
        policy,
        stats: Arc::new(WriterStats::default()),
    }))
}

impl FirehoseWriter {
    async fn client(&self) -> &aws_sdk_firehose::Client {
        self.client.get_or_init(|| async { aws_sdk_firehose::Client::new(&self.params.sdk_config().await) }).await
    }
}

#[async_trait]
impl ChunkWriter for FirehoseWriter {
    fn report(&self, sink: &mut dyn sluice_core::metrics::MetricSink) {
        self.stats.report(sink);
    }

    async fn write(&self, chunk: &Chunk) -> Result<(), WriteError> {
        let tag = chunk.metadata.tag.clone().unwrap_or_default();
        let mut records = Vec::with_capacity(chunk.records);
        let mut rejected = Vec::new();
        let mut accept = |i: usize, ev_tag: &str, data: Result<Vec<u8>, String>| match data {
            Ok(data) => {
                let size = data.len();
                if size > self.max_record_size {
                    self.stats.record_oversize(ev_tag, "kinesis_firehose", size, self.max_record_size);
                    rejected.push((
                        i,
                        format!(
                            "kinesis_firehose: record of tag {ev_tag} is {size} bytes, over max_record_size {}",
                            self.max_record_size
                        ),
                    ));
                } else {
                    records.push(Prepared { entry: i, rec: data, size });
                }
            }
            Err(why) => {
                self.stats.record_invalid();
                tracing::warn!(tag = %ev_tag, "kinesis_firehose: record rejected: {why}");
                rejected.push((i, format!("kinesis_firehose: record of tag {ev_tag} rejected: {why}")));
            }
        };
        // The record's JSON straight from the chunk where the format allows (see kinesis_streams).
        let direct = self.data.plain_json();
        if let Some(bad) =
            self.data.each_payload(chunk, direct, "kinesis_firehose", |_| (), |i, tag, data, ()| accept(i, tag, data))
        {
            rejected.push(bad);
        }
        if records.is_empty() {
            return batch::into_result("kinesis_firehose", &tag, batch::DeliveryReport::default(), rejected);
        }
        let client = self.client().await;
        let report = batch::deliver(records, &self.policy, |payload: Vec<Vec<u8>>| {
            let n = payload.len();
            let entries: Result<Vec<Record>, _> =
                payload.into_iter().map(|d| Record::builder().data(Blob::new(d)).build()).collect();
            let req = client.put_record_batch().delivery_stream_name(&self.delivery_stream_name);
            let stats = self.stats.clone();
            async move {
                let entries = match entries {
                    Ok(e) => e,
                    Err(e) => {
                        return SendResult::Err {
                            message: format!("building request: {e}"),
                            class: ErrorClass::Unrecoverable,
                        }
                    }
                };
                stats.request();
                match req.set_records(Some(entries)).send().await {
                    Ok(out) => {
                        let codes: Vec<Option<String>> =
                            out.request_responses().iter().map(|r| r.error_code().map(str::to_string)).collect();
                        stats.refused(&codes);
                        if codes.len() != n {
                            tracing::warn!(
                                sent = n,
                                answered = codes.len(),
                                "PutRecordBatch answered a different count"
                            );
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
            tracing::warn!(tag = %tag, stream = %self.delivery_stream_name, "kinesis_firehose: PutRecordBatch failed: {m}");
        }
        batch::into_result("kinesis_firehose", &tag, report, rejected)
    }
}
