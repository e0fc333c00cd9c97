//! `<transport tls>` for in_forward (rustls with the ring provider): the server certificate and key
//! from PEM files and, with `client_cert_auth`, client certificates verified against `ca_path`.
use sluice_core::config::{ConfigError, Element};
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// What `<transport tls>` asks for; the files are read by [`ServerTls::acceptor`].
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub cert_path: String,
    pub private_key_path: String,
    pub client_cert_auth: bool,
    pub ca_path: Option<String>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl ServerTls {
    pub fn from_section(t: &Element) -> Result<Self, ConfigError> {
        for unsupported in ["private_key_passphrase", "ca_cert_path", "ca_private_key_path", "cert_verifier"] {
            if t.has(unsupported) {
                return Err(t
                    .error_at(unsupported, format!("'{unsupported}' is not supported by sluice's <transport tls>"))
                    .with_hint("use an unencrypted PEM key and certificate files (cert_path, private_key_path)"));
            }
        }
        if t.bool_or("insecure", false)? {
            return Err(t.error_at("insecure", "'insecure true' is not supported: sluice always verifies TLS"));
        }
        // Accepted: rustls negotiates TLS 1.2 or 1.3 with its own safe cipher suites.
        for k in ["version", "min_version", "max_version", "ciphers", "cert_type", "generate_cert_country"] {
            let _ = t.get(k);
        }
        let client_cert_auth = t.bool_or("client_cert_auth", false)?;
        let ca_path = t.opt_str("ca_path");
        if client_cert_auth && ca_path.is_none() {
            return Err(t.error_at(
                "client_cert_auth",
                "client_cert_auth needs 'ca_path' (the CA that signs client certificates)",
            ));
        }
        Ok(ServerTls {
            cert_path: t.required_str("cert_path").map_err(|e| e.with_hint("sluice does not generate certificates"))?,
            private_key_path: t.required_str("private_key_path")?,
            client_cert_auth,
            ca_path,
        })
    }

    /// Read the files and build the acceptor.
    pub fn acceptor(&self) -> Result<TlsAcceptor, String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read cert_path {}: {e}", self.cert_path))?;
        if certs.is_empty() {
            return Err(format!("cert_path {} holds no certificate", self.cert_path));
        }
        let key = PrivateKeyDer::from_pem_file(&self.private_key_path)
            .map_err(|e| format!("cannot read private_key_path {}: {e}", self.private_key_path))?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = if self.client_cert_auth {
            let ca = self.ca_path.as_deref().unwrap_or_default();
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).map_err(|e| format!("cannot read ca_path {ca}: {e}"))? {
                roots.add(c.map_err(|e| format!("ca_path {ca}: {e}"))?).map_err(|e| format!("ca_path {ca}: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| format!("ca_path {ca}: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder.with_single_cert(certs, key).map_err(|e| format!("cert_path/private_key_path: {e}"))?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// The acceptor of a listening input's `<transport tls>`, built at configure time (not in a dry run) so a
/// bad certificate path is an error at the section's line. None without TLS.
pub fn configured_acceptor(
    tls: Option<&ServerTls>,
    s: &Element,
    dry_run: bool,
) -> Result<Option<TlsAcceptor>, ConfigError> {
    match (tls, dry_run) {
        (Some(t), false) => {
            let at = s.section("transport").unwrap_or(s);
            t.acceptor().map(Some).map_err(|e| at.error(format!("<transport tls>: {e}")))
        }
        _ => Ok(None),
    }
}

/// out_forward's `transport tls`: CA certificates to trust (else the system's), an optional client
/// certificate, and the name checked against the server's certificate.
#[derive(Clone)]
pub struct ClientTls {
    pub connector: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls")
    }
}

fn read_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read {path}: {e}"))
}

impl ClientTls {
    /// From out_forward's `tls_*` parameters; reads the files (call it only outside a dry run).
    pub fn from_plugin(s: &Element, read_files: bool) -> Result<Option<Self>, ConfigError> {
        if s.enum_or("transport", &["tcp", "tls"], "tcp")? != "tls" {
            return Ok(None);
        }
        if s.bool_or("tls_insecure_mode", false)? {
            return Err(
                s.error_at("tls_insecure_mode", "tls_insecure_mode is not supported: sluice always verifies TLS")
            );
        }
        if !s.bool_or("tls_verify_hostname", true)? {
            return Err(s.error_at("tls_verify_hostname", "tls_verify_hostname false is not supported"));
        }
        if s.bool_or("tls_allow_self_signed_cert", false)? {
            return Err(s
                .error_at("tls_allow_self_signed_cert", "tls_allow_self_signed_cert is not supported")
                .with_hint("put the CA that signed the server certificate in tls_cert_path"));
        }
        if s.has("tls_client_private_key_passphrase") {
            return Err(s.error_at("tls_client_private_key_passphrase", "encrypted client keys are not supported"));
        }
        // Accepted: rustls negotiates TLS 1.2 or 1.3 with its own safe cipher suites.
        let _ = s.get("tls_version");
        let _ = s.get("tls_ciphers");
        let mut ca_paths = s.array_or_empty("tls_cert_path")?;
        ca_paths.extend(s.array_or_empty("tls_ca_cert_path")?);
        let client_cert = s.opt_str("tls_client_cert_path");
        let client_key = s.opt_str("tls_client_private_key_path");
        if client_cert.is_some() != client_key.is_some() {
            return Err(s.error("tls_client_cert_path and tls_client_private_key_path go together"));
        }
        if !read_files {
            // A dry run: a placeholder connector that is never used.
            let cfg = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| s.error(e.to_string()))?
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth();
            return Ok(Some(ClientTls { connector: tokio_rustls::TlsConnector::from(Arc::new(cfg)) }));
        }
        let mut roots = RootCertStore::empty();
        if ca_paths.is_empty() {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
        for p in &ca_paths {
            for c in read_certs(p).map_err(|e| s.error_at("tls_cert_path", e))? {
                roots.add(c).map_err(|e| s.error_at("tls_cert_path", format!("{p}: {e}")))?;
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| s.error(e.to_string()))?
            .with_root_certificates(roots);
        let cfg = match (client_cert, client_key) {
            (Some(c), Some(k)) => {
                let certs = read_certs(&c).map_err(|e| s.error_at("tls_client_cert_path", e))?;
                let key = PrivateKeyDer::from_pem_file(&k)
                    .map_err(|e| s.error_at("tls_client_private_key_path", format!("cannot read {k}: {e}")))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| s.error_at("tls_client_cert_path", e.to_string()))?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Some(ClientTls { connector: tokio_rustls::TlsConnector::from(Arc::new(cfg)) }))
    }
}
