//! rustls server and client configurations, and the PEM loading and key-file
//! permission checks that configuration validation shares with them.
//!
//! Always the `ring` provider, passed explicitly: the process default is never
//! consulted, so a second provider in the dependency tree cannot change (or
//! panic) what we negotiate. PEM goes through rustls-pki-types' `PemObject`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme, SupportedProtocolVersion};

use crate::config::{Profile, ServerTlsConfig, TlsVersion, UpstreamConfig};

/// Permission bits a private key or secret file must not have: any access by
/// group or others.
const SECRET_FILE_FORBIDDEN_BITS: u32 = 0o077;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{} does not exist", path.display())]
    NotFound { path: PathBuf },

    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },

    #[error("{} contains no PEM certificate (expected a -----BEGIN CERTIFICATE----- block)", path.display())]
    NoCertificates { path: PathBuf },

    #[error("{} contains no PEM private key (expected a PEM block labelled PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)", path.display())]
    NoPrivateKey { path: PathBuf },

    #[error("{} is not valid PEM ({detail})", path.display())]
    MalformedPem { path: PathBuf, detail: String },

    #[error("{} holds a certificate that cannot be parsed ({source})", path.display())]
    BadCertificate {
        path: PathBuf,
        source: rustls::Error,
    },

    #[error("{} holds a private key that cannot be used ({source})", path.display())]
    BadPrivateKey {
        path: PathBuf,
        source: rustls::Error,
    },

    #[error(
        "{} is {} by group or others (mode {mode:04o}). Fix: chmod 600 {}",
        path.display(),
        if mode & 0o044 != 0 { "readable" } else { "accessible" },
        path.display()
    )]
    KeyPermissions { path: PathBuf, mode: u32 },

    #[error("the certificate in {} does not match the private key in {}. Fix: use the key that belongs to the certificate", cert.display(), key.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },

    #[error("{} cannot be used as a certificate authority ({reason})", path.display())]
    BadCa { path: PathBuf, reason: String },

    #[error(
        "no system root certificates could be loaded{detail}. Fix: set upstream.ca_file to the CA that signed the upstream's certificate"
    )]
    NoSystemRoots { detail: String },

    #[error("upstream.client_cert_file and upstream.client_key_file must be set together")]
    IncompleteClientCert,

    #[error("upstream certificate verification cannot be disabled in the production profile")]
    VerificationRequired,

    #[error("rustls refused the configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Every certificate in a PEM file, each checked to parse as X.509.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let text = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates { path: path.into() });
    }
    for cert in &certs {
        ParsedCertificate::try_from(cert).map_err(|source| TlsError::BadCertificate {
            path: path.into(),
            source,
        })?;
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file, checked to be
/// usable by the crypto provider. Does not check permissions: see
/// [`check_private_key_permissions`].
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let text = zeroize::Zeroizing::new(read(path)?);
    let key = PrivateKeyDer::from_pem_slice(&text).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey { path: path.into() },
        other => pem_error(path, other),
    })?;
    provider()
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|source| TlsError::BadPrivateKey {
            path: path.into(),
            source,
        })?;
    Ok(key)
}

/// Refuses a private key (or any secret file) that group or others may access:
/// anyone else on the host could read it.
pub fn check_private_key_permissions(path: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & SECRET_FILE_FORBIDDEN_BITS != 0 {
        return Err(TlsError::KeyPermissions {
            path: path.into(),
            mode,
        });
    }
    Ok(())
}

/// The listener's TLS configuration: TLS 1.2+ (1.3 only when `min_version` is
/// 1.3 or the profile is production), mutual TLS when `client_ca_file` is set.
pub fn server_config(
    tls: &ServerTlsConfig,
    profile: Profile,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(provider());
    let certs = load_certs(&tls.cert_file)?;
    let key = load_private_key(&tls.key_file)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions(tls.min_version, profile))?;
    let builder = match &tls.client_ca_file {
        Some(ca) => {
            let roots = root_store(ca)?;
            // `build()` requires a certificate from every client unless told otherwise.
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| TlsError::BadCa {
                        path: ca.clone(),
                        reason: e.to_string(),
                    })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(certs, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
            cert: tls.cert_file.clone(),
            key: tls.key_file.clone(),
        },
        other => TlsError::Rustls(other),
    })?;
    Ok(Arc::new(config))
}

/// The TLS configuration for connecting to the upstream: roots from `ca_file`
/// or the system, an optional client certificate, and — in development only —
/// no certificate verification at all when `verify_certificates` is false.
pub fn upstream_client_config(
    upstream: &UpstreamConfig,
    profile: Profile,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = Arc::new(provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions(upstream.min_tls_version, profile))?;
    let builder = if upstream.verify_certificates {
        let roots = match &upstream.ca_file {
            Some(ca) => root_store(ca)?,
            None => system_roots()?,
        };
        builder.with_root_certificates(roots)
    } else {
        if profile == Profile::Production {
            return Err(TlsError::VerificationRequired);
        }
        tracing::warn!(
            "upstream certificate verification is DISABLED (upstream.verify_certificates: false): \
             anyone able to intercept the upstream connection can impersonate Redis; development only"
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert {
                algorithms: provider.signature_verification_algorithms,
            }))
    };
    let config = match (&upstream.client_cert_file, &upstream.client_key_file) {
        (Some(cert), Some(key)) => {
            let certs = load_certs(cert)?;
            let key_der = load_private_key(key)?;
            builder
                .with_client_auth_cert(certs, key_der)
                .map_err(|e| match e {
                    rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                        cert: cert.clone(),
                        key: key.clone(),
                    },
                    other => TlsError::Rustls(other),
                })?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(TlsError::IncompleteClientCert),
    };
    Ok(Arc::new(config))
}

/// The TLS name to check the upstream's certificate against.
pub fn upstream_server_name(name: &str) -> Option<ServerName<'static>> {
    ServerName::try_from(name.to_string()).ok()
}

fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn versions(min: TlsVersion, profile: Profile) -> &'static [&'static SupportedProtocolVersion] {
    static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
    static TLS12_AND_13: &[&SupportedProtocolVersion] =
        &[&rustls::version::TLS13, &rustls::version::TLS12];
    match (min, profile) {
        (TlsVersion::Tls13, _) | (_, Profile::Production) => TLS13_ONLY,
        (TlsVersion::Tls12, Profile::Development) => TLS12_AND_13,
    }
}

fn root_store(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| TlsError::BadCa {
            path: path.into(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let detail = match found.errors.first() {
            Some(e) => format!(" ({e})"),
            None => String::new(),
        };
        return Err(TlsError::NoSystemRoots { detail });
    }
    Ok(roots)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| io_error(path, e))
}

fn io_error(path: &Path, e: io::Error) -> TlsError {
    match e.kind() {
        io::ErrorKind::NotFound => TlsError::NotFound { path: path.into() },
        _ => TlsError::Read {
            path: path.into(),
            source: e,
        },
    }
}

fn pem_error(path: &Path, e: pem::Error) -> TlsError {
    match e {
        pem::Error::NoItemsFound => TlsError::NoCertificates { path: path.into() },
        pem::Error::Io(e) => io_error(path, e),
        // Other variants quote the offending bytes, which for a key file are key material.
        pem::Error::MissingSectionEnd { .. } => TlsError::MalformedPem {
            path: path.into(),
            detail: "a section has no END line".into(),
        },
        pem::Error::IllegalSectionStart { .. } => TlsError::MalformedPem {
            path: path.into(),
            detail: "a BEGIN line is malformed".into(),
        },
        pem::Error::Base64Decode(_) => TlsError::MalformedPem {
            path: path.into(),
            detail: "the base64 body does not decode".into(),
        },
        other => TlsError::MalformedPem {
            path: path.into(),
            detail: other.to_string(),
        },
    }
}

/// `verify_certificates: false` (development only): any certificate is
/// accepted, but handshake signatures are still checked so the peer at least
/// holds the key of the certificate it sent.
#[derive(Debug)]
struct AcceptAnyServerCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
