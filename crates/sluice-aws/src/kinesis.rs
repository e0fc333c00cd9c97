//! What `kinesis_streams` and `kinesis_firehose` (aws-fluent-plugin-kinesis) share: the parameters and
//! limit checks, turning a chunk into records, and the batch loop. Each service is a [`KinesisApi`].
use crate::batch::{self, BatchPolicy, Prepared, SendResult};
use crate::client::{AwsParams, ErrorClass};
use crate::common::RecordData;
use crate::stats::WriterStats;
use async_trait::async_trait;
use aws_config::SdkConfig;
use sluice_core::buffer::{BufferDefaults, BufferedPlugin, Chunk, ChunkWriter, FlushMode, WriteError};
use sluice_core::config::{ConfigError, Element};
use sluice_core::event::Map;
use sluice_core::plugin::BuildCtx;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

pub(crate) const MIB: u64 = 1024 * 1024;

/// A service's request and record limits, with how its configuration errors name them.
pub struct Limits {
    /// The batch request (`PutRecords`).
    pub operation: &'static str,
    /// `batch_request_max_size`: default and maximum, the maximum as written in errors.
    pub max_size_default: u64,
    pub max_size: u64,
    pub max_size_text: &'static str,
    /// `max_record_size`: default and maximum, the maximum (and why) as written in errors.
    pub max_record_default: u64,
    pub max_record: u64,
    pub max_record_text: &'static str,
}

/// What differs between Kinesis Data Streams and Firehose.
#[async_trait]
pub trait KinesisApi: Sized + Send + Sync + 'static {
    /// The `@type`.
    const PLUGIN: &'static str;
    /// The parameter that names the stream.
    const STREAM_PARAM: &'static str;
    /// `append_new_line`'s default, where the plugin has that parameter.
    const APPEND_NEW_LINE: Option<bool>;
    const LIMITS: Limits;
    type Client: Send + Sync + 'static;
    /// What a record carries besides its data (Kinesis's partition key).
    type Key: Clone + Send + Sync + 'static;
    /// One record as the SDK takes it.
    type Entry: Send;

    /// The service's own parameters.
    fn from_conf(conf: &Element) -> Result<Self, ConfigError>;
    fn client(sdk: &SdkConfig) -> Self::Client;
    /// Whether [`KinesisApi::key_of`] needs the decoded record (else records come straight from the
    /// chunk's JSON and it gets None).
    fn key_needs_record(&self) -> bool;
    fn key_of(&self, record: Option<&Map>) -> Self::Key;
    /// The bytes the key adds to a record's size as the service counts it.
    fn key_len(key: &Self::Key) -> usize;
    fn entry(data: Vec<u8>, key: Self::Key) -> Result<Self::Entry, String>;
    /// Send one request.
    async fn put(client: &Self::Client, stream: &str, entries: Vec<Self::Entry>) -> Answer;
}

/// The answer to one request: per record None when stored, else its error code; or why the request failed.
pub type Answer = Result<Vec<Option<String>>, (String, ErrorClass)>;

/// A Kinesis output's writer.
pub struct KinesisWriter<A: KinesisApi> {
    api: A,
    params: AwsParams,
    client: OnceCell<A::Client>,
    stream: String,
    data: RecordData,
    max_record_size: usize,
    policy: BatchPolicy,
    pub stats: Arc<WriterStats>,
}

impl<A: KinesisApi> BufferedPlugin for KinesisWriter<A> {
    /// aws-fluent-plugin-kinesis: chunk_limit_size 1m, flush_interval 1s.
    fn buffer_defaults() -> BufferDefaults {
        BufferDefaults {
            chunk_limit_size: MIB,
            file_chunk_limit_size: MIB,
            flush_interval: Duration::from_secs(1),
            flush_mode: FlushMode::Interval,
            ..BufferDefaults::default()
        }
    }

    fn from_conf(conf: &Element, ctx: &BuildCtx) -> Result<Self, ConfigError> {
        let params = AwsParams::from_conf(conf, "region", "endpoint")?;
        let stream = conf.required_str(A::STREAM_PARAM)?;
        let api = A::from_conf(conf)?;
        let data = RecordData::from_conf(conf, ctx, A::APPEND_NEW_LINE)?;
        let l = &A::LIMITS;
        let max_count = conf.int_or("batch_request_max_count", 500)?;
        if !(1..=500).contains(&max_count) {
            return Err(conf.error_at(
                "batch_request_max_count",
                format!("'batch_request_max_count' must be between 1 and 500 (the {} limit)", l.operation),
            ));
        }
        let max_size = conf.size_or("batch_request_max_size", l.max_size_default)?;
        if max_size == 0 || max_size > l.max_size {
            return Err(conf.error_at(
                "batch_request_max_size",
                format!(
                    "'batch_request_max_size' must be between 1 and {} (the {} limit)",
                    l.max_size_text, l.operation
                ),
            ));
        }
        let max_record_size = conf.size_or("max_record_size", l.max_record_default)?;
        if max_record_size == 0 || max_record_size > l.max_record {
            return Err(conf.error_at(
                "max_record_size",
                format!("'max_record_size' must be between 1 and {}", l.max_record_text),
            ));
        }
        let policy = BatchPolicy::from_conf(conf, max_count as usize, max_size as usize)?;
        Ok(KinesisWriter {
            api,
            params,
            client: OnceCell::new(),
            stream,
            data,
            max_record_size: max_record_size as usize,
            policy,
            stats: Arc::new(WriterStats::default()),
        })
    }
}

/// A record ready to send: its data and key.
type Record<A> = Prepared<(Vec<u8>, <A as KinesisApi>::Key)>;

impl<A: KinesisApi> KinesisWriter<A> {
    /// Records are sent as their plain JSON and need no decoding for a key: read each record's JSON
    /// straight from the chunk.
    fn direct(&self) -> bool {
        self.data.plain_json() && !self.api.key_needs_record()
    }

    async fn client(&self) -> &A::Client {
        self.client.get_or_init(|| async { A::client(&self.params.sdk_config().await) }).await
    }

    /// The chunk's records ready to send, and the entries rejected (too large, not encodable, corrupt).
    /// With `only` (sorted entries), just those records again, for a retry: nothing is counted or
    /// rejected twice, and a random partition key is drawn again.
    fn prepare(&self, chunk: &Chunk, only: Option<&[usize]>) -> (Vec<Record<A>>, Vec<(usize, String)>) {
        let plugin = A::PLUGIN;
        let mut records = Vec::with_capacity(only.map_or(chunk.records, <[usize]>::len));
        let mut rejected = Vec::new();
        let accept = |i: usize, ev_tag: &str, data: Result<Vec<u8>, String>, key: A::Key| {
            if only.is_some_and(|o| o.binary_search(&i).is_err()) {
                return;
            }
            match data {
                Ok(data) => {
                    let size = data.len() + A::key_len(&key);
                    if size > self.max_record_size {
                        self.stats.record_oversize(ev_tag, plugin, size, self.max_record_size);
                        rejected.push((
                            i,
                            format!(
                                "{plugin}: record of tag {ev_tag} is {size} bytes, over max_record_size {}",
                                self.max_record_size
                            ),
                        ));
                    } else {
                        records.push(Prepared { entry: i, rec: (data, key), size });
                    }
                }
                Err(why) => {
                    self.stats.record_invalid();
                    tracing::warn!(tag = %ev_tag, "{plugin}: record rejected: {why}");
                    rejected.push((i, format!("{plugin}: record of tag {ev_tag} rejected: {why}")));
                }
            }
        };
        let direct = self.direct();
        if let Some(bad) = self.data.each_payload(chunk, direct, plugin, |r| self.api.key_of(r), accept) {
            rejected.push(bad);
        }
        (records, rejected)
    }
}

#[async_trait]
impl<A: KinesisApi> ChunkWriter for KinesisWriter<A> {
    fn report(&self, sink: &mut dyn sluice_core::metrics::MetricSink) {
        self.stats.report(sink);
    }

    /// The common case sends each record's plain JSON: it is formatted once, when buffered.
    fn records_as_json(&self) -> bool {
        self.direct()
    }

    async fn write(&self, chunk: &Chunk) -> Result<(), WriteError> {
        let plugin = A::PLUGIN;
        let tag = chunk.metadata.tag.clone().unwrap_or_default();
        let (records, rejected) = self.prepare(chunk, None);
        if records.is_empty() {
            return batch::into_result(plugin, &tag, batch::DeliveryReport::default(), rejected);
        }
        let client = self.client().await;
        let operation = A::LIMITS.operation;
        let send = |payload: Vec<(Vec<u8>, A::Key)>| {
            let n = payload.len();
            let entries: Result<Vec<_>, _> = payload.into_iter().map(|(d, k)| A::entry(d, k)).collect();
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
                self.stats.request();
                match A::put(client, &self.stream, entries).await {
                    Ok(codes) => {
                        self.stats.refused(&codes);
                        if codes.len() != n {
                            tracing::warn!(sent = n, answered = codes.len(), "{operation} answered a different count");
                        }
                        SendResult::Ok(codes)
                    }
                    Err((message, class)) => SendResult::Err { message, class },
                }
            }
        };
        let again = |entries: &[usize]| self.prepare(chunk, Some(entries)).0;
        let report = batch::deliver(records, &self.policy, send, again).await;
        self.stats.delivered(report.delivered);
        if let Some((m, _)) = &report.request_error {
            tracing::warn!(tag = %tag, stream = %self.stream, "{plugin}: {operation} failed: {m}");
        }
        batch::into_result(plugin, &tag, report, rejected)
    }
}
