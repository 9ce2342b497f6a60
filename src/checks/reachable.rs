//! Reachable: https, an allowed port, a name that resolves, a TCP connection that opens.

use super::{CheckResult, Finding};
use crate::catalogue::{Cause, Check};
use crate::transport::{ConnectError, ResolveError};

/// The URL alone: scheme and port. Checked before any packet is sent, so a credential is never
/// offered over plain HTTP or to a port the consumers will not use.
pub fn check_url(url: &url::Url, allowed_ports: &[u16]) -> Result<u16, Finding> {
    // git over SSH: the port is where the consumer connects (the caller allows it).
    if url.scheme() == "ssh" {
        return Ok(url.port().unwrap_or(22));
    }
    if url.scheme() != "https" {
        return Err(Finding::new(
            Cause::PlainHttpNotAllowed,
            format!(
                "{url} uses {}://; Bitbucket must be reached over HTTPS",
                url.scheme()
            ),
        ));
    }
    let port = url.port_or_known_default().unwrap_or(443);
    if !allowed_ports.contains(&port) {
        let allowed: Vec<String> = allowed_ports.iter().map(u16::to_string).collect();
        return Err(Finding::new(
            Cause::PortNotAllowed,
            format!(
                "{url} uses port {port}; allowed: {} (Bitbucket Server listens on 7990 for HTTP and 8443 for HTTPS by default)",
                allowed.join(", ")
            ),
        ));
    }
    Ok(port)
}

/// The name did not resolve and no proxy resolves it instead (`None`: the resolver gave no
/// reason).
pub fn unresolved(host: &str, e: Option<&ResolveError>) -> Finding {
    match e {
        Some(e) => dns_failure(e),
        None => Finding::new(
            Cause::DnsResolutionFailed,
            format!("{host} does not resolve"),
        ),
    }
}

pub fn passed(host: &str, port: u16) -> CheckResult {
    CheckResult::passed(
        Check::Reachable,
        format!("{host}:{port} accepts connections"),
    )
}

pub fn dns_failure(e: &ResolveError) -> Finding {
    match e {
        ResolveError::NotFound { .. } => Finding::new(Cause::DnsResolutionFailed, e.to_string()),
        ResolveError::Timeout { .. } => Finding::new(Cause::ConnectionTimedOut, e.to_string()),
    }
}

/// A refusal is an answer (RST: nothing listens there); an unreachable network is the lack of
/// one, like a timeout (a route that is down, a firewall that rejects), and as transient: it is
/// reported as ConnectionTimedOut, with a message that says what happened.
pub fn connect_failure(e: &ConnectError) -> Finding {
    let cause = match e {
        ConnectError::Refused { .. } | ConnectError::Other { .. } => Cause::ConnectionRefused,
        ConnectError::TimedOut { .. } | ConnectError::Unreachable { .. } => {
            Cause::ConnectionTimedOut
        }
        // NetConfig::connect judged the addresses the network path check had already passed.
        ConnectError::Denied { .. } => Cause::DestinationNotAllowed,
    };
    let message = match e {
        ConnectError::Unreachable { addr, .. } => {
            format!("{addr} is unreachable: no route to it from here (network unreachable)")
        }
        e => e.to_string(),
    };
    Finding::new(cause, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_and_port_are_judged_before_connecting() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        assert_eq!(
            check_url(&u("http://bb.example.com:7990"), &[443])
                .unwrap_err()
                .cause,
            Cause::PlainHttpNotAllowed
        );
        assert_eq!(
            check_url(&u("https://bb.example.com:8443"), &[443])
                .unwrap_err()
                .cause,
            Cause::PortNotAllowed
        );
        assert_eq!(check_url(&u("https://bb.example.com"), &[443]), Ok(443));
        // No route is not a refusal: it is transient, like a timeout, and says so.
        let f = connect_failure(&ConnectError::Unreachable {
            addr: "[2001:db8::1]:443".into(),
            detail: "Network is unreachable (os error 101)".into(),
        });
        assert_eq!(f.cause, Cause::ConnectionTimedOut);
        assert!(f.message.contains("network unreachable"), "{}", f.message);
        let f = connect_failure(&ConnectError::Refused {
            addr: "127.0.0.1:1".into(),
        });
        assert_eq!(f.cause, Cause::ConnectionRefused);
        assert_eq!(
            check_url(&u("https://bb.example.com:8443"), &[443, 8443]),
            Ok(8443)
        );
    }
}
