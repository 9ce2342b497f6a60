//! TLSVerified: the chain ends at a trusted root, names the host, is within its validity window,
//! and matches the pin. Reports the leaf even when it is rejected.

use super::{CheckResult, Finding, Lookup};
use crate::api::{CaBundleKind, CertificateInfo};
use crate::catalogue::{Cause, Check};
use crate::transport::tls::{
    HandshakeError, LeafInfo, Rejection, Trust, leaf_info, parse_pem_certs, pin_matches,
};
use rustls::pki_types::CertificateDer;
use std::time::Duration;

pub struct Inputs<'a> {
    pub host: &'a str,
    /// Leaf first.
    pub chain: &'a [CertificateDer<'static>],
    /// None: the chain verified.
    pub rejection: Option<&'a Rejection>,
    pub pin: Option<&'a str>,
    pub now: jiff::Timestamp,
    pub warn_within: Duration,
}

/// The CA bundle's bytes from the lookup of spec.tls.caBundleRef (empty: none is named).
pub fn ca_bundle(
    spec: &crate::api::BitbucketConnectionSpec,
    namespace: &str,
    lookup: Option<&Lookup>,
) -> Result<Vec<u8>, Finding> {
    let Some(r) = spec.tls.as_ref().and_then(|tls| tls.ca_bundle_ref.as_ref()) else {
        return Ok(Vec::new());
    };
    let key = r.key.clone().unwrap_or_else(|| "ca.crt".into());
    let what = format!(
        "{} {}/{}",
        match r.kind {
            CaBundleKind::ConfigMap => "ConfigMap",
            CaBundleKind::Secret => "Secret",
        },
        namespace,
        r.name
    );
    match lookup {
        Some(Lookup::Found(data, _)) => data.get(&key).cloned().ok_or_else(|| {
            Finding::new(
                Cause::CaBundleNotFound,
                format!("{what} has no key {key:?}"),
            )
        }),
        Some(Lookup::Forbidden(d)) => Err(Finding::new(
            Cause::CaBundleNotFound,
            format!("bbconn may not read {what}: {d}"),
        )),
        Some(Lookup::Failed(d)) => Err(Finding::new(
            Cause::ServerError,
            format!("reading {what} failed: {d}"),
        )),
        Some(Lookup::NotFound) | None => Err(Finding::new(
            Cause::CaBundleNotFound,
            format!("{what} does not exist"),
        )),
    }
}

/// The roots a server's chain must end at: the bundle's certificates, and the public roots
/// where allowed (alone when the bundle is empty).
pub fn trust_store(bundle: &[u8], public_roots: bool) -> Result<Trust, Finding> {
    let certs = if bundle.is_empty() {
        Vec::new()
    } else {
        parse_pem_certs(bundle).map_err(|e| Finding::new(Cause::CaBundleInvalid, e.to_string()))?
    };
    if certs.is_empty() && public_roots {
        Trust::public()
    } else {
        Trust::new(&certs, public_roots)
    }
    .map_err(|e| Finding::new(Cause::CaBundleInvalid, e.to_string()))
}

/// A handshake that ended without a verdict on the certificate: no answer in time, or a TLS
/// error (the server speaks something else).
pub fn handshake_failure(host: &str, e: &HandshakeError) -> Option<Finding> {
    match e {
        HandshakeError::TimedOut => Some(Finding::new(
            Cause::ConnectionTimedOut,
            format!("the TLS handshake with {host} timed out"),
        )),
        HandshakeError::Failed(d) => Some(Finding::new(
            Cause::UnexpectedResponse,
            format!("the TLS handshake with {host} failed: {d}"),
        )),
        HandshakeError::Rejected(_) => None,
    }
}

pub fn certificate_info(leaf: &LeafInfo) -> CertificateInfo {
    CertificateInfo {
        subject: leaf.subject.clone(),
        issuer: leaf.issuer.clone(),
        not_after: leaf.not_after.to_string(),
        sha256: leaf.sha256.clone(),
    }
}

pub fn check(i: Inputs<'_>) -> (CheckResult, Option<LeafInfo>) {
    let leaf = i.chain.first().and_then(leaf_info);
    let named = |what: &str| match &leaf {
        Some(l) => format!(
            "{what} (subject {}, issuer {}, not after {})",
            l.subject, l.issuer, l.not_after
        ),
        None => what.to_string(),
    };
    if let Some(r) = i.rejection {
        let finding = match r {
            Rejection::Untrusted(d) => Finding::new(
                Cause::CertificateUntrusted,
                named(&format!(
                    "the certificate of {} does not chain to a trusted root: {d}",
                    i.host
                )),
            ),
            Rejection::HostnameMismatch(d) => Finding::new(
                Cause::CertificateHostnameMismatch,
                named(&format!("the certificate does not name {}: {d}", i.host)),
            ),
            // The verifier's own text quotes the time of the check ("... seconds ago"), which
            // would change the message, and so the status, at every check: say it from the
            // certificate's validity window instead.
            Rejection::Expired(_) => Finding::new(
                Cause::CertificateExpired,
                named(&format!("the certificate of {} has expired", i.host)),
            ),
            Rejection::NotYetValid(_) => Finding::new(
                Cause::CertificateNotYetValid,
                named(&format!(
                    "the certificate of {} is not valid yet (its notBefore is in the future)",
                    i.host
                )),
            ),
            Rejection::Other(d) => Finding::new(
                Cause::CertificateUntrusted,
                named(&format!("the certificate of {} was rejected: {d}", i.host)),
            ),
        };
        return (CheckResult::failed(Check::TlsVerified, finding), leaf);
    }
    if let (Some(pin), Some(l)) = (i.pin, &leaf)
        && !pin_matches(pin, &l.sha256)
    {
        return (
            CheckResult::failed(
                Check::TlsVerified,
                Finding::new(
                    Cause::CertificatePinMismatch,
                    format!(
                        "{} presented a certificate with SHA-256 {}, not the pinned one",
                        i.host, l.sha256
                    ),
                ),
            ),
            leaf,
        );
    }
    let mut warnings = Vec::new();
    if let Some(l) = &leaf {
        let left = l.not_after.duration_since(i.now);
        if left.as_secs() >= 0 && left.unsigned_abs() < i.warn_within {
            warnings.push(Finding::new(
                Cause::CertificateExpiringSoon,
                format!("the certificate of {} expires at {}", i.host, l.not_after),
            ));
        }
    }
    let message = match &leaf {
        Some(l) => format!(
            "{} presents a trusted certificate, valid until {}",
            i.host, l.not_after
        ),
        None => format!("{} presents a trusted certificate", i.host),
    };
    (
        CheckResult::passed(Check::TlsVerified, message).with_warnings(warnings),
        leaf,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: &Rejection) -> String {
        let (result, _) = check(Inputs {
            host: "bitbucket.example.com",
            chain: &[],
            rejection: Some(r),
            pin: None,
            now: jiff::Timestamp::UNIX_EPOCH,
            warn_within: Duration::ZERO,
        });
        format!("{:?}", result.verdict)
    }

    #[test]
    fn a_validity_message_does_not_change_from_one_check_to_the_next() {
        // What rustls says, one check and a second later.
        let a = Rejection::Expired("certificate expired: verification time 1800000000 (UNIX), but certificate is not valid after 1799827200 (172800 seconds ago)".into());
        let b = Rejection::Expired("certificate expired: verification time 1800000001 (UNIX), but certificate is not valid after 1799827200 (172801 seconds ago)".into());
        assert_eq!(message(&a), message(&b));
        assert!(!message(&a).contains("seconds ago"), "{}", message(&a));
        let a = Rejection::NotYetValid("not valid before 1800000100 (100 seconds from now)".into());
        let b = Rejection::NotYetValid("not valid before 1800000100 (99 seconds from now)".into());
        assert_eq!(message(&a), message(&b));
    }
}
