//! Shared AWS SDK configuration: region, endpoint, timeouts, TLS and credentials.
//!
//! Credentials come from the SDK's standard chain (environment, shared config/profile, web identity token
//! (IRSA), ECS/EC2 metadata) unless the configuration names them: `aws_key_id`/`aws_sec_key`,
//! `<shared_credentials>`, `<web_identity_credentials>` or `<assume_role_credentials>` (which wraps whichever
//! of the others applies). Secrets are never printed: [`AwsParams`]'s `Debug` redacts them.
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{self, error::CredentialsError, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_sts::config::SharedHttpClient;
use sluice_core::config::{ConfigError, Element};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// `<assume_role_credentials>`.
#[derive(Clone)]
pub struct AssumeRole {
    pub role_arn: String,
    pub role_session_name: String,
    pub external_id: Option<String>,
    pub duration_seconds: Option<u64>,
    /// STS endpoint for AssumeRole (Fluentd's `sts_endpoint_url`); the SDK's default STS endpoint otherwise.
    pub sts_endpoint_url: Option<String>,
}

/// `<web_identity_credentials>`.
#[derive(Clone)]
pub struct WebIdentity {
    pub role_arn: String,
    pub web_identity_token_file: String,
    pub role_session_name: String,
    /// STS endpoint for AssumeRoleWithWebIdentity (Fluentd's `sts_endpoint_url`).
    pub sts_endpoint_url: Option<String>,
}

/// `<shared_credentials>`.
#[derive(Clone)]
pub struct SharedFile {
    pub path: Option<String>,
    pub profile_name: Option<String>,
}

/// The AWS connection parameters every output shares.
#[derive(Clone)]
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

/// The defaults of an empty configuration (certificates verified).
impl Default for AwsParams {
    fn default() -> Self {
        AwsParams {
            region: None,
            endpoint: None,
            key_id: None,
            secret: None,
            shared: None,
            web_identity: None,
            assume_role: None,
            ssl_verify_peer: true,
            connect_timeout: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(60),
            max_attempts: 3,
        }
    }
}

impl fmt::Debug for AwsParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsParams")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("key_id", &self.key_id.as_ref().map(|_| "<set>"))
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("assume_role", &self.assume_role.as_ref().map(|a| a.role_arn.clone()))
            .field("web_identity", &self.web_identity.as_ref().map(|w| w.role_arn.clone()))
            .field("ssl_verify_peer", &self.ssl_verify_peer)
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
                sts_endpoint_url: sts_endpoint(s)?,
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
                    sts_endpoint_url: sts_endpoint(s)?,
                })
            }
            None => None,
        };
        let ssl_verify_peer = conf.bool_or("ssl_verify_peer", true)?;
        if !ssl_verify_peer {
            tracing::warn!(
                "ssl_verify_peer false: TLS certificates of the AWS endpoints (and STS) are NOT verified; \
                 anyone on the network path can read and change the requests"
            );
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

    /// The loader every SDK configuration here starts from: region, timeouts, retries and the HTTP client.
    fn loader(&self, http: &Option<SharedHttpClient>, endpoint: Option<&String>) -> aws_config::ConfigLoader {
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
        } else if endpoint.is_some() {
            // A custom endpoint still needs a region for signing.
            loader =
                loader.region(aws_config::meta::region::RegionProviderChain::default_provider().or_else("us-east-1"));
        }
        if let Some(ep) = endpoint {
            loader = loader.endpoint_url(ep.clone());
        }
        if let Some(h) = http {
            loader = loader.http_client(h.clone());
        }
        loader
    }

    /// Build the SDK configuration. Called lazily at the first write (never during `--dry-run`).
    // ProfileFiles' replacement lives in aws-runtime, which sluice does not depend on directly.
    #[allow(deprecated)]
    pub async fn sdk_config(&self) -> SdkConfig {
        let http = (!self.ssl_verify_peer).then(insecure_http_client);
        let mut loader = self.loader(&http, self.endpoint.as_ref());
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
            if let Some(h) = &http {
                // A profile that assumes a role calls STS with this client too.
                b = b.configure(&aws_config::provider_config::ProviderConfig::default().with_http_client(h.clone()));
            }
            loader = loader.credentials_provider(b.build());
        } else if let Some(w) = &self.web_identity {
            // The SDK's own web identity provider cannot be pointed at another STS endpoint than the
            // environment's, so sluice calls AssumeRoleWithWebIdentity itself; the SDK's identity cache
            // keeps the credentials until shortly before they expire.
            let sts = self.loader(&http, w.sts_endpoint_url.as_ref()).no_credentials().load().await;
            loader = loader.credentials_provider(WebIdentityProvider {
                sts: aws_sdk_sts::Client::new(&sts),
                role_arn: w.role_arn.clone(),
                token_file: w.web_identity_token_file.clone(),
                session_name: w.role_session_name.clone(),
            });
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
        // STS is not the output's endpoint: `endpoint` names the Kinesis/Firehose/S3 endpoint only.
        let mut sts = base.to_builder();
        sts.set_endpoint_url(ar.sts_endpoint_url.clone());
        let provider = b.configure(&sts.build()).build().await;
        base.into_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build()
    }
}

fn sts_endpoint(s: &Element) -> Result<Option<String>, ConfigError> {
    let url = s.opt_str("sts_endpoint_url").filter(|u| !u.is_empty());
    if let Some(u) = &url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(s
                .error_at("sts_endpoint_url", "'sts_endpoint_url' must be an http:// or https:// URL")
                .with_hint("for example https://sts.eu-west-1.amazonaws.com"));
        }
    }
    Ok(url)
}

/// `<web_identity_credentials>`: AssumeRoleWithWebIdentity with the token file read at each refresh
/// (Kubernetes rotates it).
#[derive(Debug)]
struct WebIdentityProvider {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    token_file: String,
    session_name: String,
}

impl WebIdentityProvider {
    async fn load(&self) -> provider::Result {
        let token = tokio::fs::read_to_string(&self.token_file).await.map_err(|e| {
            CredentialsError::provider_error(format!("reading web_identity_token_file {}: {e}", self.token_file))
        })?;
        let out = self
            .sts
            .assume_role_with_web_identity()
            .role_arn(&self.role_arn)
            .role_session_name(&self.session_name)
            .web_identity_token(token.trim())
            .send()
            .await
            .map_err(|e| {
                let (why, _) = describe_sdk_error(&e);
                tracing::error!(role_arn = %self.role_arn, "AssumeRoleWithWebIdentity failed: {why}");
                CredentialsError::provider_error(format!("AssumeRoleWithWebIdentity failed: {why}"))
            })?;
        let c = out
            .credentials()
            .ok_or_else(|| CredentialsError::unhandled("AssumeRoleWithWebIdentity returned no credentials"))?;
        let expiry = SystemTime::try_from(*c.expiration()).ok();
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "WebIdentityToken",
        ))
    }
}

impl ProvideCredentials for WebIdentityProvider {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(self.load())
    }
}

/// The SDK's HTTP client with certificate verification off (`ssl_verify_peer false`). Connect and read
/// timeouts still come from the SDK configuration.
fn insecure_http_client() -> SharedHttpClient {
    let tls = rustls::ClientConfig::builder()
        .with_safe_defaults()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert))
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    aws_smithy_http_client::hyper_014::HyperClientBuilder::new().build(https)
}

/// Accepts any server certificate (the handshake signatures are still checked against it).
struct AcceptAnyCert;

impl rustls::client::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::Certificate,
        _intermediates: &[rustls::Certificate],
        _server_name: &rustls::ServerName,
        _scts: &mut dyn Iterator<Item = &[u8]>,
        _ocsp_response: &[u8],
        _now: SystemTime,
    ) -> Result<rustls::client::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::ServerCertVerified::assertion())
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
            if is_auth_error(&code) {
                return auth_failure(&code, &msg);
            }
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
        SdkError::ResponseError(r) => {
            // An error body the SDK cannot parse, e.g. XML from moto or an HTML page from a proxy, for a JSON
            // API. A 401/403 is still an authentication failure.
            let raw = (r.raw() as &dyn std::any::Any).downcast_ref::<aws_sdk_kinesis::config::http::HttpResponse>();
            let status = raw.map(|h| h.status().as_u16());
            if let (Some(h), Some(st @ (401 | 403))) = (raw, status) {
                let code = h.body().bytes().and_then(xml_error_code).unwrap_or_else(|| format!("HTTP {st}"));
                return auth_failure(&code, &format!("HTTP {st}"));
            }
            let status = status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
            (format!("invalid response{status}: {}", sluice_err_chain(e)), ErrorClass::Retryable)
        }
        SdkError::ConstructionFailure(_) => {
            (format!("request construction failed: {}", sluice_err_chain(e)), ErrorClass::Unrecoverable)
        }
        _ => (sluice_err_chain(e), ErrorClass::Retryable),
    }
}

/// Log a rejected-credentials error and describe it. Retried, since credentials can be rotated under a
/// running collector, but loud: nothing gets through until someone fixes them.
fn auth_failure(code: &str, msg: &str) -> (String, ErrorClass) {
    tracing::error!(
        code = %code,
        "AWS rejected the request's credentials: check aws_key_id/aws_sec_key or the credentials section; the \
         chunk stays buffered and is retried"
    );
    (format!("{code}: {msg} (credentials rejected; the chunk is retried)"), ErrorClass::Retryable)
}

/// The `<Code>` of an XML error document, when it looks like an error code (nothing else of the body is used).
fn xml_error_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    let code = &text[start..start + len];
    (!code.is_empty() && code.len() <= 64 && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'))
        .then(|| code.to_string())
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

/// Error codes AWS answers when the credentials are wrong, expired or not allowed.
pub fn is_auth_error(code: &str) -> bool {
    matches!(
        code,
        "SignatureDoesNotMatch"
            | "InvalidSignatureException"
            | "IncompleteSignature"
            | "IncompleteSignatureException"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "InvalidAccessKeyId"
            | "MissingAuthenticationToken"
            | "MissingAuthenticationTokenException"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "RequestExpired"
            | "AccessDenied"
            | "AccessDeniedException"
    )
}

/// Service error codes that no retry will fix. Everything else (throttling, 5xx, a stream still being
/// created, and credential errors ([`is_auth_error`]), which a key rotation or a policy change can fix while
/// the chunk waits) is retried.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_codes_are_retryable() {
        for code in
            ["SignatureDoesNotMatch", "InvalidSignatureException", "UnrecognizedClientException", "ExpiredToken"]
        {
            assert!(is_auth_error(code), "{code}");
            assert_eq!(classify_code(code), ErrorClass::Retryable, "{code}");
        }
        assert!(!is_auth_error("ValidationException"));
    }

    #[test]
    fn xml_error_code_takes_only_the_code() {
        let body = b"<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><StringToSign>x</StringToSign></Error>";
        assert_eq!(xml_error_code(body).as_deref(), Some("SignatureDoesNotMatch"));
        assert_eq!(xml_error_code(b"<html>403 Forbidden</html>"), None);
        assert_eq!(xml_error_code(b"<Code>not a code: secret</Code>"), None);
    }
}
