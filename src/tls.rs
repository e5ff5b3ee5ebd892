//! rustls server and client configurations; PEM parsing via rustls-pki-types.

use std::sync::Arc;

use crate::config::{Profile, ServerTlsConfig, UpstreamConfig};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}")]
    Invalid(String),
}

/// The listener's TLS configuration (mutual TLS when a client CA is set).
pub fn server_config(
    _tls: &ServerTlsConfig,
    _profile: Profile,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    Err(TlsError::Invalid("not implemented".into()))
}

/// The TLS configuration for connecting to the upstream.
pub fn upstream_client_config(
    _upstream: &UpstreamConfig,
    _profile: Profile,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    Err(TlsError::Invalid("not implemented".into()))
}
