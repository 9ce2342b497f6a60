//! NetworkPathValid: the server's address class matches `spec.network.exposure`, a private server
//! has a private endpoint, and no address is one the destination policy denies. A Public server
//! with an egress proxy is reached through it; its addresses, where they resolve here, are still
//! judged (the proxy's own address is judged when it is connected to). An Internal server is
//! reached as a consumer on its network reaches it: directly (or through the egress proxy),
//! whatever its address class.

use super::{CheckResult, Finding};
use crate::api::Exposure;
use crate::catalogue::{Cause, Check};
use crate::transport::ProxyError;
use crate::transport::address::{AddressClass, AddressPolicy};
use std::net::SocketAddr;

/// How to reach the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Direct(Vec<SocketAddr>),
    /// Through the private endpoint (an HTTP CONNECT proxy), which resolves the host itself.
    Proxy(url::Url),
    /// Through the egress proxy (HTTP CONNECT) to a Public server.
    Egress(url::Url),
}

/// What the engine learned by resolving the host.
pub enum Resolution<'a> {
    Addresses(&'a [SocketAddr]),
    /// The name does not resolve here (a private name may still resolve at the proxy).
    Failed,
}

/// Ok(route), or Err(None) when the verdict belongs to Reachable (DNS failed and there is no proxy).
pub fn check(
    host: &str,
    exposure: Exposure,
    proxy: Option<&url::Url>,
    egress: Option<&url::Url>,
    resolution: Resolution<'_>,
    policy: &AddressPolicy,
) -> Result<Route, Option<Finding>> {
    let addrs = match resolution {
        Resolution::Failed => {
            return match (exposure, proxy, egress) {
                (Exposure::Private, Some(p), _) => Ok(Route::Proxy(p.clone())),
                // Clusters behind an egress proxy often cannot resolve public names; the proxy does.
                (Exposure::Public | Exposure::Internal, _, Some(e)) => Ok(Route::Egress(e.clone())),
                _ => Err(None),
            };
        }
        Resolution::Addresses(a) => a,
    };
    let list = |v: &[SocketAddr]| {
        v.iter()
            .map(|a| a.ip().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(denied) = addrs.iter().find(|a| policy.denied(a.ip())) {
        return Err(Some(Finding::new(
            Cause::DestinationNotAllowed,
            format!(
                "{host} resolves to {}, which the destination policy denies",
                denied.ip()
            ),
        )));
    }
    let public: Vec<SocketAddr> = addrs
        .iter()
        .copied()
        .filter(|a| policy.class(a.ip()) == AddressClass::Public)
        .collect();
    match exposure {
        Exposure::Public if public.is_empty() => Err(Some(Finding::new(
            Cause::PublicServerPrivateAddress,
            format!(
                "exposure is Public, but {host} resolves only to private addresses ({})",
                list(addrs)
            ),
        ))),
        Exposure::Public => Ok(match egress {
            Some(e) => Route::Egress(e.clone()),
            None => Route::Direct(public),
        }),
        Exposure::Private if !public.is_empty() => Err(Some(Finding::new(
            Cause::PrivateServerPublicAddress,
            format!(
                "exposure is Private, but {host} resolves to public addresses ({})",
                list(&public)
            ),
        ))),
        Exposure::Internal => Ok(match egress {
            Some(e) => Route::Egress(e.clone()),
            None => Route::Direct(addrs.to_vec()),
        }),
        Exposure::Private => match proxy {
            Some(p) => Ok(Route::Proxy(p.clone())),
            None => Err(Some(Finding::new(
                Cause::PrivateEndpointRequired,
                format!(
                    "{host} resolves to private addresses ({}) and spec.network.privateEndpoint is not set",
                    list(addrs)
                ),
            ))),
        },
    }
}

/// spec.network.privateEndpoint.proxyUrl, parsed: a private endpoint that is not a URL cannot
/// be reached.
pub fn private_endpoint(
    spec: &crate::api::BitbucketConnectionSpec,
) -> Result<Option<url::Url>, Finding> {
    match spec.proxy_url().map(url::Url::parse) {
        Some(Ok(u)) => Ok(Some(u)),
        Some(Err(e)) => Err(Finding::new(
            Cause::PrivateEndpointUnreachable,
            format!("spec.network.privateEndpoint.proxyUrl is not a URL: {e}"),
        )),
        None => Ok(None),
    }
}

/// spec.network.egressProxy.proxyUrl, parsed: an egress proxy that is not a URL cannot be reached.
pub fn egress_proxy_url(raw: &str) -> Result<url::Url, Finding> {
    url::Url::parse(raw).map_err(|err| {
        Finding::new(
            Cause::EgressProxyUnreachable,
            format!("spec.network.egressProxy.proxyUrl is not a URL: {err}"),
        )
    })
}

/// The path as it passed: where the host resolves, or which proxy reaches it.
pub fn passed(host: &str, route: &Route) -> CheckResult {
    let message = match route {
        Route::Direct(a) => format!(
            "{host} resolves to {}",
            a.iter()
                .map(|a| a.ip().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Route::Proxy(p) => format!(
            "{host} is reached through the private endpoint {}",
            crate::transport::shown(p)
        ),
        Route::Egress(p) => format!(
            "{host} is reached through the egress proxy {}",
            crate::transport::shown(p)
        ),
    };
    CheckResult::passed(Check::NetworkPathValid, message)
}

/// The private endpoint did not open the tunnel: it denied the destination, or did not answer.
pub fn private_endpoint_failure(e: &ProxyError) -> Finding {
    let cause = match e {
        ProxyError::Denied { .. } => Cause::DestinationNotAllowed,
        _ => Cause::PrivateEndpointUnreachable,
    };
    Finding::new(cause, e.to_string())
}

/// The egress proxy did not open the tunnel: it denied the destination, asked for (other)
/// credentials (407), or did not answer. `sent_credentials`: bbconn sent Proxy-Authorization.
pub fn egress_proxy_failure(e: &ProxyError, sent_credentials: bool) -> Finding {
    let cause = match (e, e.status()) {
        (ProxyError::Denied { .. }, _) => Cause::DestinationNotAllowed,
        (_, Some(407)) => Cause::EgressProxyAuthRequired,
        _ => Cause::EgressProxyUnreachable,
    };
    let mut message = e.to_string();
    if cause == Cause::EgressProxyAuthRequired {
        message.push_str(if sent_credentials {
            " (it refused the credentials from spec.network.egressProxy.secretRef)"
        } else {
            " (no proxy credentials are configured)"
        });
    }
    Finding::new(cause, message)
}

/// Basic proxy credentials (username, password) from the Secret spec.network.egressProxy.secretRef
/// names. A Secret that cannot be used means the proxy will ask for credentials the consumer
/// does not have: EgressProxyAuthRequired, naming the Secret's problem.
pub fn proxy_credentials(
    secret: &str,
    lookup: Option<&super::Lookup>,
) -> Result<(String, String), Finding> {
    use super::Lookup;
    let what = format!("spec.network.egressProxy.secretRef names Secret {secret}");
    let data = match lookup {
        Some(Lookup::Found(data, _)) => data,
        Some(Lookup::Forbidden(d)) => {
            return Err(Finding::new(
                Cause::EgressProxyAuthRequired,
                format!("{what}, which bbconn may not read: {d}"),
            ));
        }
        Some(Lookup::Failed(d)) => {
            return Err(Finding::new(
                Cause::ServerError,
                format!("reading Secret {secret} failed: {d}"),
            ));
        }
        Some(Lookup::NotFound) | None => {
            return Err(Finding::new(
                Cause::EgressProxyAuthRequired,
                format!("{what}, which does not exist"),
            ));
        }
    };
    let key = |k: &str| {
        data.get(k)
            .and_then(|v| std::str::from_utf8(v).ok())
            .filter(|v| !v.is_empty() && v.trim() == *v)
            .map(str::to_string)
            .ok_or_else(|| {
                Finding::new(
                    Cause::EgressProxyAuthRequired,
                    format!("{what}, which has no usable key {k:?} (present, UTF-8, no surrounding whitespace)"),
                )
            })
    };
    Ok((key("username")?, key("password")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(s: &[&str]) -> Vec<SocketAddr> {
        s.iter()
            .map(|a| format!("{a}:443").parse().unwrap())
            .collect()
    }

    #[test]
    fn an_internal_server_is_reached_directly_whatever_its_class() {
        let p = AddressPolicy::new(Vec::new(), vec!["10.9.0.0/16".parse().unwrap()]);
        let private = addrs(&["10.0.0.5"]);
        let run = |a: &[SocketAddr], egress: Option<&url::Url>| {
            check(
                "h",
                Exposure::Internal,
                None,
                egress,
                Resolution::Addresses(a),
                &p,
            )
        };
        assert_eq!(run(&private, None), Ok(Route::Direct(private.clone())));
        let public = addrs(&["104.192.141.1"]);
        assert_eq!(run(&public, None), Ok(Route::Direct(public.clone())));
        // The operator-wide egress proxy, as the consumer's HTTPS_PROXY, still applies.
        let egress: url::Url = "http://proxy.corp:3128".parse().unwrap();
        assert_eq!(
            run(&private, Some(&egress)),
            Ok(Route::Egress(egress.clone()))
        );
        // The destination policy still applies.
        let denied = addrs(&["10.9.1.1"]);
        let cause = run(&denied, None).err().flatten().map(|f| f.cause);
        assert_eq!(cause, Some(Cause::DestinationNotAllowed));
    }

    #[test]
    fn decides_each_cause() {
        let p = AddressPolicy::default();
        let proxy: url::Url = "http://proxy.infra:3128".parse().unwrap();
        let private = addrs(&["10.0.0.5"]);
        let public = addrs(&["104.192.141.1"]);
        let cause = |r: Result<Route, Option<Finding>>| r.err().flatten().map(|f| f.cause);
        assert_eq!(
            cause(check(
                "h",
                Exposure::Public,
                None,
                None,
                Resolution::Addresses(&private),
                &p
            )),
            Some(Cause::PublicServerPrivateAddress)
        );
        assert_eq!(
            cause(check(
                "h",
                Exposure::Private,
                None,
                None,
                Resolution::Addresses(&private),
                &p
            )),
            Some(Cause::PrivateEndpointRequired)
        );
        assert_eq!(
            cause(check(
                "h",
                Exposure::Private,
                None,
                None,
                Resolution::Addresses(&public),
                &p
            )),
            Some(Cause::PrivateServerPublicAddress)
        );
        assert_eq!(
            cause(check(
                "h",
                Exposure::Public,
                None,
                None,
                Resolution::Addresses(&addrs(&["169.254.169.254"])),
                &p
            )),
            Some(Cause::DestinationNotAllowed)
        );
        assert_eq!(
            check(
                "h",
                Exposure::Private,
                Some(&proxy),
                None,
                Resolution::Addresses(&private),
                &p
            ),
            Ok(Route::Proxy(proxy.clone()))
        );
        assert_eq!(
            check(
                "h",
                Exposure::Public,
                None,
                None,
                Resolution::Addresses(&public),
                &p
            ),
            Ok(Route::Direct(public.clone()))
        );
        assert!(matches!(
            check("h", Exposure::Public, None, None, Resolution::Failed, &p),
            Err(None)
        ));
        // The egress proxy: taken when the name does not resolve here, and when it resolves to
        // allowed public addresses; a denied address still stops it.
        let egress: url::Url = "http://proxy.corp:3128".parse().unwrap();
        assert_eq!(
            check(
                "h",
                Exposure::Public,
                None,
                Some(&egress),
                Resolution::Failed,
                &p
            ),
            Ok(Route::Egress(egress.clone()))
        );
        assert_eq!(
            check(
                "h",
                Exposure::Public,
                None,
                Some(&egress),
                Resolution::Addresses(&public),
                &p
            ),
            Ok(Route::Egress(egress.clone()))
        );
        assert_eq!(
            cause(check(
                "h",
                Exposure::Public,
                None,
                Some(&egress),
                Resolution::Addresses(&addrs(&["169.254.169.254"])),
                &p
            )),
            Some(Cause::DestinationNotAllowed)
        );
    }
}
