//! `@type s3` (fluent-plugin-s3): one object per chunk, keyed by `s3_object_key_format`.
use crate::client::{describe_sdk_error, AwsParams, ErrorClass};
use crate::stats::WriterStats;
use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ObjectCannedAcl, ServerSideEncryption, StorageClass};
use flate2::write::GzEncoder;
use flate2::Compression;
use sluice_core::buffer::placeholders;
use sluice_core::buffer::{BufferDefaults, BufferedPlugin, Chunk, ChunkMetadata, ChunkWriter, WriteError, Zone};
use sluice_core::config::{ConfigError, Element};
use sluice_core::inject::{Inject, InjectDefaults};
use sluice_core::plugin::{BuildCtx, Formatter};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

const MIB: u64 = 1024 * 1024;

/// `store_as`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreAs {
    Gzip,
    Json,
    Text,
}

impl StoreAs {
    fn ext(self) -> &'static str {
        match self {
            StoreAs::Gzip => "gz",
            StoreAs::Json => "json",
            StoreAs::Text => "txt",
        }
    }
    fn content_type(self) -> &'static str {
        match self {
            StoreAs::Gzip => "application/x-gzip",
            StoreAs::Json => "application/json",
            StoreAs::Text => "text/plain",
        }
    }
}

pub struct S3Writer {
    params: AwsParams,
    client: OnceCell<aws_sdk_s3::Client>,
    bucket: String,
    force_path_style: bool,
    path: String,
    key_format: String,
    time_slice_format: String,
    utc: bool,
    store_as: StoreAs,
    check_object: bool,
    overwrite: bool,
    check_bucket: bool,
    auto_create_bucket: bool,
    bucket_ready: AtomicBool,
    /// Object options of every upload, built once: `storage_class`, `use_server_side_encryption`,
    /// `ssekms_key_id`, `acl`.
    storage_class: StorageClass,
    sse: Option<ServerSideEncryption>,
    ssekms_key_id: Option<String>,
    acl: Option<ObjectCannedAcl>,
    hex_random_length: usize,
    index_width: (bool, usize),
    hostname: String,
    formatter: Arc<dyn Formatter>,
    inject: Option<Inject>,
    multipart_threshold: usize,
    multipart_chunk_size: usize,
    pub stats: Arc<WriterStats>,
}

/// Read the plugin's parameters (everything but `<buffer>`).
pub fn writer(conf: &Element, ctx: &BuildCtx) -> Result<Arc<S3Writer>, ConfigError> {
    S3Writer::from_conf(conf, ctx).map(Arc::new)
}

impl BufferedPlugin for S3Writer {
    /// fluent-plugin-s3: chunk keys `time`, timekey 3600, chunk_limit_size 256m.
    fn buffer_defaults() -> BufferDefaults {
        BufferDefaults {
            chunk_limit_size: 256 * MIB,
            file_chunk_limit_size: 256 * MIB,
            chunk_keys: "time",
            timekey: Some(Duration::from_secs(3600)),
            ..BufferDefaults::default()
        }
    }

    fn from_conf(conf: &Element, ctx: &BuildCtx) -> Result<Self, ConfigError> {
        let params = AwsParams::from_conf(conf, "s3_region", "s3_endpoint")?;
        let bucket = conf.required_str("s3_bucket")?;
        let force_path_style = conf.bool_or("force_path_style", params.endpoint.is_some())?;
        let key_format = conf.str_or("s3_object_key_format", "%{path}%{time_slice}_%{index}.%{file_extension}");
        let store_as = match conf.enum_or("store_as", &["gzip", "json", "text", "txt"], "gzip")?.as_str() {
            "json" => StoreAs::Json,
            "text" | "txt" => StoreAs::Text,
            _ => StoreAs::Gzip,
        };
        let index_format = conf.str_or("index_format", "%d");
        let index_width = parse_index_format(&index_format)
            .ok_or_else(|| conf.error_at("index_format", "'index_format' must be %d or %0Nd"))?;
        let hex_random_length = conf.int_or("hex_random_length", 4)?;
        if !(1..=16).contains(&hex_random_length) {
            return Err(conf.error_at("hex_random_length", "'hex_random_length' must be between 1 and 16"));
        }
        let check_object = conf.bool_or("check_object", true)?;
        if !check_object && !["%{uuid_flush}", "%{hex_random}", "%{chunk_id}"].iter().any(|p| key_format.contains(p)) {
            tracing::warn!(
                "s3: check_object false without %{{uuid_flush}}, %{{hex_random}} or %{{chunk_id}} in s3_object_key_format may overwrite objects"
            );
        }
        let multipart_chunk_size = conf.size_or("multipart_chunk_size", 8 * MIB)?;
        if multipart_chunk_size < 5 * MIB {
            return Err(conf.error_at(
                "multipart_chunk_size",
                "'multipart_chunk_size' must be at least 5m (the S3 minimum part size)",
            ));
        }
        let multipart_threshold = conf.size_or("multipart_threshold", 16 * MIB)?;
        let hostname = if ctx.system.hostname.is_empty() {
            gethostname::gethostname().to_string_lossy().into_owned()
        } else {
            ctx.system.hostname.clone()
        };
        let sse = conf.opt_str("use_server_side_encryption").filter(|s| !s.is_empty());
        let ssekms_key_id = conf.opt_str("ssekms_key_id").filter(|s| !s.is_empty());
        if ssekms_key_id.is_some() && sse.as_deref().is_some_and(|s| s != "aws:kms") {
            return Err(conf.error_at("ssekms_key_id", "'ssekms_key_id' needs use_server_side_encryption aws:kms"));
        }
        Ok(S3Writer {
            params,
            client: OnceCell::new(),
            bucket,
            force_path_style,
            path: conf.str_or("path", ""),
            key_format,
            time_slice_format: conf.str_or("time_slice_format", "%Y%m%d%H"),
            utc: conf.bool_or("utc", false)?,
            store_as,
            check_object,
            overwrite: conf.bool_or("overwrite", false)?,
            check_bucket: conf.bool_or("check_bucket", true)?,
            auto_create_bucket: conf.bool_or("auto_create_bucket", true)?,
            bucket_ready: AtomicBool::new(false),
            sse: sse.as_deref().map(ServerSideEncryption::from),
            ssekms_key_id,
            storage_class: StorageClass::from(conf.str_or("storage_class", "STANDARD").as_str()),
            acl: conf.opt_str("acl").filter(|s| !s.is_empty()).as_deref().map(ObjectCannedAcl::from),
            hex_random_length: hex_random_length as usize,
            index_width,
            hostname,
            formatter: ctx.registry.formatter_of(conf, "out_file", ctx)?,
            inject: Inject::from_conf(
                conf,
                ctx,
                InjectDefaults { time_type: "float", time_format: Some("%Y-%m-%dT%H:%M:%S%z") },
            )?,
            multipart_threshold: multipart_threshold.max(5 * MIB) as usize,
            multipart_chunk_size: multipart_chunk_size as usize,
            stats: Arc::new(WriterStats::default()),
        })
    }
}

/// `%d` -> (false, 0), `%05d` -> (true, 5).
fn parse_index_format(f: &str) -> Option<(bool, usize)> {
    let inner = f.strip_prefix('%')?.strip_suffix('d')?;
    if inner.is_empty() {
        return Some((false, 0));
    }
    let zero = inner.starts_with('0');
    inner.trim_start_matches('0').parse().ok().map(|w| (zero, w)).or(if inner.chars().all(|c| c == '0') {
        Some((false, 0))
    } else {
        None
    })
}

fn format_index(i: u64, w: (bool, usize)) -> String {
    match w {
        (true, n) => format!("{i:0n$}"),
        (false, n) => format!("{i:n$}"),
    }
}

/// Expand `${tag}`, `${tag[N]}`, `${chunk_id}` and chunk-key variables, and strftime from the timekey when
/// there is one, as every buffered output does (in UTC with `utc`, else local time).
pub fn expand_placeholders(template: &str, meta: &ChunkMetadata, utc: bool) -> String {
    let zone = if utc { Zone::Utc } else { Zone::Local };
    placeholders::expand_in(template, meta, &zone, None)
}

/// The bucket, key and object options every upload sets, on a PutObject or CreateMultipartUpload request
/// (their builders share these setters but no trait).
macro_rules! with_object_options {
    ($w:expr, $req:expr, $key:expr) => {
        $req.bucket(&$w.bucket)
            .key($key)
            .content_type($w.store_as.content_type())
            .storage_class($w.storage_class.clone())
            .set_server_side_encryption($w.sse.clone())
            .set_ssekms_key_id($w.ssekms_key_id.clone())
            .set_acl($w.acl.clone())
    };
}

impl S3Writer {
    async fn client(&self) -> &aws_sdk_s3::Client {
        self.client
            .get_or_init(|| async {
                let sdk = self.params.sdk_config().await;
                let conf = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(self.force_path_style).build();
                aws_sdk_s3::Client::from_conf(conf)
            })
            .await
    }

    fn time_slice(&self, meta: &ChunkMetadata) -> String {
        let t = meta.timekey.unwrap_or_else(|| chrono::Utc::now().timestamp());
        let zone = if self.utc { Zone::Utc } else { Zone::Local };
        zone.strftime(t, &self.time_slice_format)
    }

    /// The object key for `index`.
    pub fn object_key(&self, chunk: &Chunk, time_slice: &str, index: u64, uuid: &str) -> String {
        let hex = chunk.id_hex();
        let hex_random = &hex[..self.hex_random_length.min(hex.len())];
        let mut out = String::with_capacity(self.key_format.len() + 32);
        let mut rest = self.key_format.as_str();
        while let Some(start) = rest.find("%{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            match &after[..end] {
                "path" => out.push_str(&self.path),
                "time_slice" => out.push_str(time_slice),
                "index" => out.push_str(&format_index(index, self.index_width)),
                "file_extension" => out.push_str(self.store_as.ext()),
                "uuid_flush" => out.push_str(uuid),
                "hex_random" => out.push_str(hex_random),
                "hostname" => out.push_str(&self.hostname),
                "chunk_id" => out.push_str(&hex),
                _ => out.push_str(&rest[start..start + 3 + end]),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        expand_placeholders(&out, &chunk.metadata, self.utc)
    }

    /// The object: the chunk's records formatted, gzip-compressed as they are formatted (the whole text is
    /// never held beside the chunk and the compressed object).
    fn body(&self, chunk: &Chunk) -> Result<Vec<u8>, WriteError> {
        /// Formatted text handed to the compressor at a time.
        const STEP: usize = 64 * 1024;
        let failed = |e: std::io::Error| WriteError::unrecoverable(format!("s3: compression failed: {e}"));
        let mut gz = (self.store_as == StoreAs::Gzip)
            .then(|| GzEncoder::new(Vec::with_capacity(chunk.data.len() / 4 + 64), Compression::default()));
        let mut out = Vec::with_capacity(if gz.is_some() { STEP + 4096 } else { chunk.data.len() });
        for ev in chunk.events() {
            let ev = ev.map_err(|e| WriteError::unrecoverable(format!("s3: corrupt chunk: {e}")))?;
            let mut record = ev.record;
            if let Some(inj) = &self.inject {
                inj.apply(&ev.tag, ev.time, &mut record);
            }
            self.formatter.format(&ev.tag, ev.time, &record, &mut out);
            if let Some(gz) = gz.as_mut().filter(|_| out.len() >= STEP) {
                gz.write_all(&out).map_err(failed)?;
                out.clear();
            }
        }
        match gz {
            Some(mut gz) => {
                gz.write_all(&out).map_err(failed)?;
                gz.finish().map_err(failed)
            }
            None => Ok(out),
        }
    }

    async fn ensure_bucket(&self, client: &aws_sdk_s3::Client) -> Result<(), WriteError> {
        if !self.check_bucket || self.bucket_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        match client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {
                if !self.auto_create_bucket {
                    return Err(WriteError::retryable(format!(
                        "s3: bucket {} does not exist and auto_create_bucket is false",
                        self.bucket
                    )));
                }
                tracing::info!(bucket = %self.bucket, "s3: creating bucket");
                let mut req = client.create_bucket().bucket(&self.bucket);
                if let Some(r) = self.params.region.as_deref().filter(|r| *r != "us-east-1") {
                    req = req.create_bucket_configuration(
                        aws_sdk_s3::types::CreateBucketConfiguration::builder()
                            .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(r))
                            .build(),
                    );
                }
                if let Err(e) = req.send().await {
                    return Err(sdk_write_error("CreateBucket", &e));
                }
            }
            Err(e) => return Err(sdk_write_error("HeadBucket", &e)),
        }
        self.bucket_ready.store(true, Ordering::Release);
        Ok(())
    }

    async fn exists(&self, client: &aws_sdk_s3::Client, key: &str) -> Result<bool, WriteError> {
        match client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(sdk_write_error("HeadObject", &e)),
        }
    }

    async fn choose_key(&self, client: &aws_sdk_s3::Client, chunk: &Chunk) -> Result<String, WriteError> {
        let time_slice = self.time_slice(&chunk.metadata);
        let uuid = uuid::Uuid::new_v4().to_string();
        if !self.check_object {
            return Ok(self.object_key(chunk, &time_slice, 0, &uuid));
        }
        let mut previous: Option<String> = None;
        for i in 0u64.. {
            let key = self.object_key(chunk, &time_slice, i, &uuid);
            if previous.as_deref() == Some(key.as_str()) {
                if self.overwrite {
                    tracing::warn!(key = %key, "s3: object exists and overwrite is true: overwriting");
                    return Ok(key);
                }
                return Err(WriteError::unrecoverable(format!(
                    "s3: object {key} exists and s3_object_key_format has no %{{index}}: refusing to overwrite"
                )));
            }
            if !self.exists(client, &key).await? {
                return Ok(key);
            }
            previous = Some(key);
        }
        Err(WriteError::unrecoverable("s3: no free object key"))
    }

    async fn put(&self, client: &aws_sdk_s3::Client, key: &str, body: Vec<u8>) -> Result<(), WriteError> {
        if body.len() > self.multipart_threshold {
            return self.put_multipart(client, key, body).await;
        }
        let req = with_object_options!(self, client.put_object(), key).body(ByteStream::from(body));
        self.stats.request();
        req.send().await.map(|_| ()).map_err(|e| sdk_write_error("PutObject", &e))
    }

    async fn put_multipart(&self, client: &aws_sdk_s3::Client, key: &str, body: Vec<u8>) -> Result<(), WriteError> {
        let req = with_object_options!(self, client.create_multipart_upload(), key);
        self.stats.request();
        let created = req.send().await.map_err(|e| sdk_write_error("CreateMultipartUpload", &e))?;
        let Some(upload_id) = created.upload_id().map(str::to_string) else {
            return Err(WriteError::retryable("s3: CreateMultipartUpload returned no upload id"));
        };
        let result = async {
            let mut parts = Vec::new();
            for (n, piece) in body.chunks(self.multipart_chunk_size).enumerate() {
                let number = n as i32 + 1;
                self.stats.request();
                let out = client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(ByteStream::from(piece.to_vec()))
                    .send()
                    .await
                    .map_err(|e| sdk_write_error("UploadPart", &e))?;
                parts.push(
                    CompletedPart::builder().set_e_tag(out.e_tag().map(str::to_string)).part_number(number).build(),
                );
            }
            self.stats.request();
            client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                .send()
                .await
                .map_err(|e| sdk_write_error("CompleteMultipartUpload", &e))?;
            Ok::<(), WriteError>(())
        }
        .await;
        if result.is_err() {
            let _ = client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(&upload_id).send().await;
        }
        result
    }
}

fn sdk_write_error<E, R>(op: &str, e: &aws_sdk_s3::error::SdkError<E, R>) -> WriteError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let (msg, class) = describe_sdk_error(e);
    let message = format!("s3: {op} failed: {msg}");
    match class {
        ErrorClass::Retryable => WriteError::retryable(message),
        ErrorClass::Unrecoverable => WriteError::unrecoverable(message),
    }
}

#[async_trait]
impl ChunkWriter for S3Writer {
    fn report(&self, sink: &mut dyn sluice_core::metrics::MetricSink) {
        self.stats.report(sink);
    }

    async fn write(&self, chunk: &Chunk) -> Result<(), WriteError> {
        let body = self.body(chunk)?;
        let client = self.client().await;
        self.ensure_bucket(client).await?;
        let key = self.choose_key(client, chunk).await?;
        let size = body.len();
        self.put(client, &key, body).await?;
        self.stats.objects_written.fetch_add(1, Ordering::Relaxed);
        self.stats.delivered(chunk.records);
        tracing::debug!(bucket = %self.bucket, key = %key, bytes = size, records = chunk.records, "s3: object written");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_format() {
        assert_eq!(parse_index_format("%d"), Some((false, 0)));
        assert_eq!(parse_index_format("%03d"), Some((true, 3)));
        assert_eq!(parse_index_format("%s"), None);
        assert_eq!(format_index(7, (true, 3)), "007");
    }

    #[test]
    fn placeholders() {
        let meta = ChunkMetadata {
            tag: Some("app.web.access".into()),
            timekey: Some(3600),
            variables: vec![("k".into(), "v".into())],
        };
        assert_eq!(
            expand_placeholders("logs/${tag}/${tag[1]}/${k}/%Y/%H/", &meta, true),
            "logs/app.web.access/web/v/1970/01/"
        );
        assert_eq!(expand_placeholders("${tag[-1]}-${nope}", &meta, true), "access-${nope}");
    }

    #[test]
    fn record_values_cannot_move_an_object_to_another_prefix() {
        let meta = ChunkMetadata {
            tag: Some("app.../../restricted".into()),
            timekey: None,
            variables: vec![("team".into(), "b/secret".into())],
        };
        assert_eq!(
            expand_placeholders("logs/${team}/${tag}/", &meta, true),
            "logs/b%2Fsecret/app%2E%2E%2E%2F%2E%2E%2Frestricted/"
        );
    }
}
