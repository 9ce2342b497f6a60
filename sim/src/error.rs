//! What can go wrong starting the simulator.

use crate::pki;
use std::net::SocketAddr;

/// Errors starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid fixture: {0}")]
    Fixture(String),
    #[error("listener {listener}: cannot bind {bind}: {source}")]
    Bind {
        listener: String,
        bind: SocketAddr,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    #[error("TLS configuration for listener {listener}: {source}")]
    Tls {
        listener: String,
        source: rustls::Error,
    },
}
