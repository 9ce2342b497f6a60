//! TLS with the server's chain captured, so status can show the certificate even when it is
//! rejected, and the rejection can be named (untrusted, wrong host, expired, not yet valid).

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex, OnceLock};
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Why a chain was rejected, in the catalogue's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    Untrusted(String),
    HostnameMismatch(String),
    Expired(String),
    NotYetValid(String),
    Other(String),
}

#[derive(Debug, Error)]
pub enum TrustError {
    #[error("the CA bundle holds no PEM certificate")]
    Empty,
    #[error("the CA bundle is not valid PEM: {0}")]
    Pem(String),
    #[error("a CA certificate in the bundle is unusable: {0}")]
    Cert(String),
}

/// Roots to verify against: the CA bundle, plus Mozilla's roots unless the spec turns them off.
/// Building a verifier parses every root, so callers keep one per distinct bundle.
#[derive(Clone, Debug)]
pub struct Trust {
    verifier: Arc<WebPkiServerVerifier>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static P: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

pub fn parse_pem_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TrustError::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(TrustError::Empty);
    }
    Ok(certs)
}

impl Trust {
    pub fn new(
        ca_bundle: &[CertificateDer<'static>],
        public_roots: bool,
    ) -> Result<Trust, TrustError> {
        let mut roots = RootCertStore::empty();
        if public_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for cert in ca_bundle {
            roots
                .add(cert.clone())
                .map_err(|e| TrustError::Cert(e.to_string()))?;
        }
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| TrustError::Cert(e.to_string()))?;
        Ok(Trust { verifier })
    }

    /// Mozilla's roots alone, built once per process.
    pub fn public() -> Result<Trust, TrustError> {
        static PUBLIC: OnceLock<Result<Trust, String>> = OnceLock::new();
        PUBLIC
            .get_or_init(|| Trust::new(&[], true).map_err(|e| e.to_string()))
            .clone()
            .map_err(TrustError::Cert)
    }
}

#[derive(Debug, Default)]
struct Seen {
    chain: Vec<CertificateDer<'static>>,
    rejection: Option<Rejection>,
}

#[derive(Debug)]
struct CapturingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Arc<Mutex<Seen>>,
    /// The consumer does not verify (spec.tls.insecureSkipVerify): a rejection is recorded, and
    /// the handshake goes on. Handshake signatures are still verified against the leaf.
    accept_any: bool,
}

impl ServerCertVerifier for CapturingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if let Ok(mut seen) = self.seen.lock() {
            seen.chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
            seen.rejection = result.as_ref().err().map(classify);
        }
        match result {
            Err(_) if self.accept_any => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn classify(e: &rustls::Error) -> Rejection {
    let text = e.to_string();
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                Rejection::Expired(text)
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                Rejection::NotYetValid(text)
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Rejection::HostnameMismatch(text)
            }
            CertificateError::UnknownIssuer
            | CertificateError::BadSignature
            | CertificateError::UnhandledCriticalExtension
            | CertificateError::InvalidPurpose => Rejection::Untrusted(text),
            _ => Rejection::Untrusted(text),
        },
        _ => Rejection::Other(text),
    }
}

/// What the handshake showed.
#[derive(Debug)]
pub struct Handshake {
    /// Leaf first; empty if the server sent none.
    pub chain: Vec<CertificateDer<'static>>,
    pub outcome: Result<TlsStream<TcpStream>, HandshakeError>,
    /// Why the chain would have been rejected, where `accept_any` let the handshake go on.
    pub overlooked: Option<Rejection>,
}

#[derive(Debug, Error)]
pub enum HandshakeError {
    #[error("{0:?}")]
    Rejected(Rejection),
    #[error("the TLS handshake timed out")]
    TimedOut,
    #[error("the TLS handshake failed: {0}")]
    Failed(String),
}

/// A TLS handshake verified against `trust`; with `accept_any`, one whose chain does not
/// verify goes on, and says why in [`Handshake::overlooked`].
pub async fn handshake(
    tcp: TcpStream,
    host: &str,
    trust: &Trust,
    accept_any: bool,
    timeout: std::time::Duration,
) -> Handshake {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let verifier = Arc::new(CapturingVerifier {
        inner: trust.verifier.clone(),
        seen: seen.clone(),
        accept_any,
    });
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        });
    let config = match config {
        Ok(mut c) => {
            c.alpn_protocols = vec![b"http/1.1".to_vec()];
            c
        }
        Err(e) => {
            return Handshake {
                chain: Vec::new(),
                outcome: Err(HandshakeError::Failed(e.to_string())),
                overlooked: None,
            };
        }
    };
    let name = match ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    ) {
        Ok(n) => n,
        Err(e) => {
            return Handshake {
                chain: Vec::new(),
                outcome: Err(HandshakeError::Failed(format!(
                    "{host} is not a valid TLS server name: {e}"
                ))),
                overlooked: None,
            };
        }
    };
    let connector = TlsConnector::from(Arc::new(config));
    let result = tokio::time::timeout(timeout, connector.connect(name, tcp)).await;
    let (chain, rejection) = match seen.lock() {
        Ok(mut s) => (std::mem::take(&mut s.chain), s.rejection.take()),
        Err(_) => (Vec::new(), None),
    };
    let (outcome, overlooked) = match result {
        Err(_) => (Err(HandshakeError::TimedOut), None),
        Ok(Ok(stream)) => (Ok(stream), rejection),
        Ok(Err(e)) => (
            Err(match rejection {
                Some(r) if !accept_any => HandshakeError::Rejected(r),
                _ => HandshakeError::Failed(e.to_string()),
            }),
            None,
        ),
    };
    Handshake {
        chain,
        outcome,
        overlooked,
    }
}

/// Hex SHA-256 of a certificate, lower case with colons (as `openssl x509 -fingerprint` shows it).
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A pin in any case, with or without colons, compared with a fingerprint.
pub fn pin_matches(pin: &str, fingerprint: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != ':' && !c.is_whitespace())
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    norm(pin) == norm(fingerprint)
}

/// Subject, issuer and validity of the leaf, for status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafInfo {
    pub subject: String,
    pub issuer: String,
    pub not_after: jiff::Timestamp,
    pub sha256: String,
}

pub fn leaf_info(cert: &CertificateDer<'_>) -> Option<LeafInfo> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let not_after = jiff::Timestamp::from_second(parsed.validity().not_after.timestamp()).ok()?;
    Some(LeafInfo {
        subject: parsed.subject().to_string(),
        issuer: parsed.issuer().to_string(),
        not_after,
        sha256: fingerprint(cert),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_match_in_any_form() {
        let fp = "ab:cd:ef";
        assert!(pin_matches("ABCDEF", fp));
        assert!(pin_matches("ab:CD:ef", fp));
        assert!(!pin_matches("abcdee", fp));
    }

    #[test]
    fn bundle_errors_are_named() {
        assert!(matches!(parse_pem_certs(b"hello"), Err(TrustError::Empty)));
    }
}
