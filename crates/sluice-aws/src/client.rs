//! Shared AWS SDK configuration: region, endpoint, timeouts and credentials.
//!
//! Credentials come from the SDK's standard chain (environment, shared config/profile, web identity token
//! (IRSA), ECS/EC2 metadata) unless the configuration names them: `aws_key_id`/`aws_sec_key`,
//! `<shared_credentials>`, `<web_identity_credentials>` or `<assume_role_credentials>` (which wraps whichever
//! of the others applies). Secrets are never printed: [`AwsParams`]'s `Debug` redacts them.
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use sluice_core::config::{ConfigError, Element};
use std::fmt;
use std::time::Duration;

/// `<assume_role_credentials>`.
#[derive(Clone)]
pub struct AssumeRole {
    pub role_arn: String,
    pub role_session_name: String,
    pub external_id: Option<String>,
    pub duration_seconds: Option<u64>,
}

/// `<web_identity_credentials>`.
#[derive(Clone)]
pub struct WebIdentity {
    pub role_arn: String,
    pub web_identity_token_file: String,
    pub role_session_name: String,
}

/// `<shared_credentials>`.
#[derive(Clone)]
pub struct SharedFile {
    pub path: Option<String>,
    pub profile_name: Option<String>,
}

/// The AWS connection parameters every output shares.
#[derive(Clone, Default)]
pub struct AwsParams {
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub key_id: Option<String>,
    secret: Option<String>,
    pub shared: Option<SharedFile>,
    pub web_identity: Option<WebIdentity>,
    pub assume_role: Option<AssumeRole>,
    pub ssl_verify_peer: bool,
    pub connect_timeout: Duration,
    pub attempt_timeout: Duration,
    pub max_attempts: u32,
}

impl fmt::Debug for AwsParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsParams")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("key_id", &self.key_id.as_ref().map(|_| "<set>"))
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("assume_role", &self.assume_role.as_ref().map(|a| a.role_arn.clone()))
            .finish()
    }
}

impl AwsParams {
    /// Read the parameters. `region_key`/`endpoint_key` differ by plugin (`region` vs `s3_region`).
    pub fn from_conf(conf: &Element, region_key: &str, endpoint_key: &str) -> Result<Self, ConfigError> {
        let region = conf.opt_str(region_key).filter(|s| !s.is_empty());
        let endpoint = conf.opt_str(endpoint_key).filter(|s| !s.is_empty());
        if let Some(ep) = &endpoint {
            if !(ep.starts_with("http://") || ep.starts_with("https://")) {
                return Err(conf
                    .error_at(endpoint_key, format!("'{endpoint_key}' must be an http:// or https:// URL"))
                    .with_hint("for example https://kinesis.eu-west-1.amazonaws.com"));
            }
        }
        let key_id = conf.opt_str("aws_key_id").filter(|s| !s.is_empty());
        let secret = conf.opt_str("aws_sec_key").filter(|s| !s.is_empty());
        if key_id.is_some() != secret.is_some() {
            return Err(conf
                .error("'aws_key_id' and 'aws_sec_key' must be given together")
                .with_hint("or remove both to use the standard credential chain"));
        }
        let shared = conf
            .section("shared_credentials")
            .map(|s| SharedFile { path: s.opt_str("path"), profile_name: s.opt_str("profile_name") });
        let web_identity = match conf.section("web_identity_credentials") {
            Some(s) => Some(WebIdentity {
                role_arn: s.required_str("role_arn")?,
                web_identity_token_file: s.required_str("web_identity_token_file")?,
                role_session_name: s.str_or("role_session_name", "sluice"),
            }),
            None => None,
        };
        let assume_role = match conf.section("assume_role_credentials") {
            Some(s) => {
                let _ = s.get("policy");
                Some(AssumeRole {
                    role_arn: s.required_str("role_arn")?,
                    role_session_name: s.required_str("role_session_name")?,
                    external_id: s.opt_str("external_id"),
                    duration_seconds: s.opt_int("duration_seconds")?.map(|d| d.max(900) as u64),
                })
            }
            None => None,
        };
        let ssl_verify_peer = conf.bool_or("ssl_verify_peer", true)?;
        if !ssl_verify_peer {
            tracing::warn!("ssl_verify_peer false is not supported by sluice's AWS client: certificates are verified");
        }
        let connect_timeout = conf.time_or("http_connect_timeout", 10.0)?;
        let attempt_timeout = conf.time_or("http_read_timeout", 60.0)?;
        let max_attempts = conf.int_or("http_max_attempts", 3)?.clamp(1, 10) as u32;
        Ok(AwsParams {
            region,
            endpoint,
            key_id,
            secret,
            shared,
            web_identity,
            assume_role,
            ssl_verify_peer,
            connect_timeout: Duration::from_secs_f64(connect_timeout.max(0.1)),
            attempt_timeout: Duration::from_secs_f64(attempt_timeout.max(0.1)),
            max_attempts,
        })
    }

    /// Build the SDK configuration. Called lazily at the first write (never during `--dry-run`).
    #[allow(deprecated)]
    pub async fn sdk_config(&self) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(self.connect_timeout)
                    .operation_attempt_timeout(self.attempt_timeout)
                    .build(),
            )
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(self.max_attempts));
        if let Some(r) = &self.region {
            loader = loader.region(Region::new(r.clone()));
        } else if self.endpoint.is_some() {
            // A custom endpoint still needs a region for signing.
            loader =
                loader.region(aws_config::meta::region::RegionProviderChain::default_provider().or_else("us-east-1"));
        }
        if let Some(ep) = &self.endpoint {
            loader = loader.endpoint_url(ep.clone());
        }
        if let (Some(k), Some(s)) = (&self.key_id, &self.secret) {
            loader = loader.credentials_provider(Credentials::new(k.clone(), s.clone(), None, None, "sluice-config"));
        } else if let Some(sh) = &self.shared {
            let mut b = aws_config::profile::ProfileFileCredentialsProvider::builder();
            if let Some(p) = &sh.path {
                b = b.profile_files(
                    aws_config::profile::profile_file::ProfileFiles::builder()
                        .with_file(aws_config::profile::profile_file::ProfileFileKind::Credentials, p)
                        .build(),
                );
            }
            if let Some(n) = &sh.profile_name {
                b = b.profile_name(n);
            }
            loader = loader.credentials_provider(b.build());
        } else if let Some(w) = &self.web_identity {
            let provider = aws_config::web_identity_token::WebIdentityTokenCredentialsProvider::builder()
                .static_configuration(aws_config::web_identity_token::StaticConfiguration {
                    web_identity_token_file: w.web_identity_token_file.clone().into(),
                    role_arn: w.role_arn.clone(),
                    session_name: w.role_session_name.clone(),
                })
                .configure(
                    &aws_config::provider_config::ProviderConfig::without_region()
                        .with_region(self.region.clone().map(Region::new)),
                )
                .build();
            loader = loader.credentials_provider(provider);
        }
        let base = loader.load().await;
        let Some(ar) = &self.assume_role else {
            return base;
        };
        let mut b = AssumeRoleProvider::builder(ar.role_arn.clone()).session_name(ar.role_session_name.clone());
        if let Some(x) = &ar.external_id {
            b = b.external_id(x.clone());
        }
        if let Some(d) = ar.duration_seconds {
            b = b.session_length(Duration::from_secs(d));
        }
        let provider = b.configure(&base).build().await;
        base.into_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build()
    }
}

/// A short, content-free description of an SDK error for logs and chunk errors: the error code and
/// message from the service, or the kind of transport failure.
pub fn describe_sdk_error<E, R>(e: &aws_sdk_kinesis::error::SdkError<E, R>) -> (String, ErrorClass)
where
    E: aws_sdk_kinesis::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug + 'static,
{
    use aws_sdk_kinesis::error::SdkError;
    match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            let code = err.code().unwrap_or("Unknown").to_string();
            let msg = err.message().unwrap_or("").to_string();
            let class = classify_code(&code);
            (format!("{code}: {msg}"), class)
        }
        SdkError::TimeoutError(_) => ("request timed out".into(), ErrorClass::Retryable),
        SdkError::DispatchFailure(d) => {
            let what = if d.is_timeout() {
                "timeout"
            } else if d.is_io() {
                "connection failed"
            } else {
                "dispatch failure"
            };
            (format!("{what}: {}", sluice_err_chain(e)), ErrorClass::Retryable)
        }
        SdkError::ResponseError(_) => (format!("invalid response: {}", sluice_err_chain(e)), ErrorClass::Retryable),
        SdkError::ConstructionFailure(_) => {
            (format!("request construction failed: {}", sluice_err_chain(e)), ErrorClass::Unrecoverable)
        }
        _ => (sluice_err_chain(e), ErrorClass::Retryable),
    }
}

fn sluice_err_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    let mut depth = 0;
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
        depth += 1;
        if depth > 5 {
            break;
        }
    }
    s
}

/// Whether an error is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Retryable,
    Unrecoverable,
}

/// Service error codes that no retry will fix. Everything else (throttling, 5xx, a stream still being
/// created, expired credentials being refreshed) is retried.
pub fn classify_code(code: &str) -> ErrorClass {
    match code {
        "ValidationException"
        | "InvalidArgumentException"
        | "SerializationException"
        | "InvalidKMSResourceException"
        | "NoSuchBucket"
        | "InvalidBucketName"
        | "InvalidRequest"
        | "EntityTooLarge" => ErrorClass::Unrecoverable,
        _ => ErrorClass::Retryable,
    }
}
