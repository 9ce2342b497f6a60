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
    /// spec.tls.insecureSkipVerify: a rejection is a Warning, not a failure.
    pub skip_verify: bool,
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

/// The finding for a chain the verifier rejected.
fn rejection(r: &Rejection, host: &str, named: &dyn Fn(&str) -> String) -> Finding {
    match r {
        Rejection::Untrusted(d) => Finding::new(
            Cause::CertificateUntrusted,
            named(&format!(
                "the certificate of {host} does not chain to a trusted root: {d}"
            )),
        ),
        Rejection::HostnameMismatch(d) => Finding::new(
            Cause::CertificateHostnameMismatch,
            named(&format!("the certificate does not name {host}: {d}")),
        ),
        // The verifier's own text quotes the time of the check ("... seconds ago"), which
        // would change the message, and so the status, at every check: say it from the
        // certificate's validity window instead.
        Rejection::Expired(_) => Finding::new(
            Cause::CertificateExpired,
            named(&format!("the certificate of {host} has expired")),
        ),
        Rejection::NotYetValid(_) => Finding::new(
            Cause::CertificateNotYetValid,
            named(&format!(
                "the certificate of {host} is not valid yet (its notBefore is in the future)"
            )),
        ),
        Rejection::Other(d) => Finding::new(
            Cause::CertificateUntrusted,
            named(&format!("the certificate of {host} was rejected: {d}")),
        ),
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
    let rejected = i.rejection.map(|r| rejection(r, i.host, &named));
    let mut warnings = Vec::new();
    match rejected {
        Some(finding) if !i.skip_verify => {
            return (CheckResult::failed(Check::TlsVerified, finding), leaf);
        }
        Some(finding) => warnings.push(Finding::new(
            Cause::TlsVerificationSkipped,
            format!(
                "the consumer does not verify certificates (spec.tls.insecureSkipVerify), and \
                 would not notice an impostor; this one would fail: {}",
                finding.message
            ),
        )),
        None if i.skip_verify => warnings.push(Finding::new(
            Cause::TlsVerificationSkipped,
            format!(
                "the certificate of {} verifies, but the consumer does not check it \
                 (spec.tls.insecureSkipVerify) and would not notice an impostor",
                i.host
            ),
        )),
        None => {}
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
    if let Some(l) = &leaf {
        let left = l.not_after.duration_since(i.now);
        if left.as_secs() >= 0 && left.unsigned_abs() < i.warn_within {
            warnings.push(Finding::new(
                Cause::CertificateExpiringSoon,
                format!("the certificate of {} expires at {}", i.host, l.not_after),
            ));
        }
    }
    let trusted = match i.rejection {
        Some(_) => "a certificate the consumer accepts unverified",
        None => "a trusted certificate",
    };
    let message = match &leaf {
        Some(l) => format!("{} presents {trusted}, valid until {}", i.host, l.not_after),
        None => format!("{} presents {trusted}", i.host),
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
            skip_verify: false,
            now: jiff::Timestamp::UNIX_EPOCH,
            warn_within: Duration::ZERO,
        });
        format!("{:?}", result.verdict)
    }

    #[test]
    fn a_consumer_that_does_not_verify_is_warned_not_failed() {
        let untrusted = Rejection::Untrusted("UnknownIssuer".into());
        let run = |rejection: Option<&Rejection>, pin: Option<&str>| {
            check(Inputs {
                host: "bitbucket.example.com",
                chain: &[],
                rejection,
                pin,
                skip_verify: true,
                now: jiff::Timestamp::UNIX_EPOCH,
                warn_within: Duration::ZERO,
            })
            .0
        };
        let r = run(Some(&untrusted), None);
        assert!(r.is_passed(), "{r:?}");
        assert_eq!(r.warnings[0].cause, Cause::TlsVerificationSkipped);
        assert!(r.warnings[0].message.contains("would fail"), "{r:?}");
        assert!(
            r.warnings[0]
                .message
                .contains("does not chain to a trusted root")
        );
        // A certificate that verifies: still a warning, the setting itself is the risk.
        let r = run(None, None);
        assert!(r.is_passed());
        assert_eq!(r.warnings[0].cause, Cause::TlsVerificationSkipped);
        assert!(r.warnings[0].message.contains("verifies"), "{r:?}");
        // The same rejection fails a consumer that verifies.
        let strict = check(Inputs {
            host: "bitbucket.example.com",
            chain: &[],
            rejection: Some(&untrusted),
            pin: None,
            skip_verify: false,
            now: jiff::Timestamp::UNIX_EPOCH,
            warn_within: Duration::ZERO,
        })
        .0;
        assert_eq!(strict.failure().unwrap().cause, Cause::CertificateUntrusted);
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
