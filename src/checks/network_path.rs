//! NetworkPathValid: the server's address class matches `spec.network.exposure`, a private server
//! has a private endpoint, and no address is one the destination policy denies. A Public server
//! with an egress proxy is reached through it; its addresses, where they resolve here, are still
//! judged (the proxy's own address is judged when it is connected to). An Internal server is
//! reached as a consumer on its network reaches it: directly (or through the egress proxy),
//! whatever its address class.

use super::{CheckResult, Finding};
use crate::api::Exposure;
use crate::catalogue::{Cause, Check};
use crate::credential::SecretString;
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

/// spec.network.egressProxy's proxy: proxyUrl, else the one the consumer's Secret names
/// (`secret_url`, or `secret_error`: why that Secret could not be read). `ssh`: the leg is git
/// over SSH.
pub fn egress_proxy(
    e: &crate::api::EgressProxy,
    secret_url: Option<&str>,
    secret_error: Option<&Finding>,
    ssh: bool,
) -> Result<url::Url, Finding> {
    let format = e.secret_ref.as_ref().and_then(|r| r.format);
    if ssh && format == Some(crate::api::SecretFormat::ArgoCd) && e.proxy_url.is_none() {
        // Argo CD's util/git/creds.go: ssh -o ProxyCommand='connect-proxy -S host:port -5 %h %p'.
        return Err(Finding::new(
            Cause::EgressProxyInvalid,
            "Argo CD reaches git over SSH through its repository proxy as a SOCKS5 proxy, which bbconn cannot tunnel through",
        ));
    }
    match (e.proxy_url.as_deref().or(secret_url), secret_error) {
        (Some(u), _) => egress_proxy_url(u),
        (None, Some(f)) => Err(f.clone()),
        (None, None) => Err(Finding::new(
            Cause::EgressProxyInvalid,
            "spec.network.egressProxy has no proxyUrl, and no secretRef with a format (Flux, ArgoCD) that names the proxy",
        )),
    }
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

/// The egress proxy a Secret gives: its URL (without user information) where the Secret names
/// the proxy itself, and Basic credentials.
/// Debug prints no secret: the credentials are secret types.
#[derive(Debug, Default, PartialEq)]
pub struct ProxySecret {
    pub url: Option<String>,
    pub auth: Option<(SecretString, SecretString)>,
}

/// The egress proxy from the Secret spec.network.egressProxy.secretRef names, read as its
/// format says: bbconn's (username, password: [`proxy_credentials`]); Flux's proxy Secret
/// (address, optional username and password, as source-controller reads them); or an Argo CD
/// repository Secret (proxy: a URL whose user information is the credential).
pub fn proxy_secret(
    secret: &str,
    lookup: Option<&super::Lookup>,
    format: Option<crate::api::SecretFormat>,
) -> Result<ProxySecret, Finding> {
    use crate::api::SecretFormat;
    let key = match format {
        None => {
            let (u, p) = proxy_credentials(secret, lookup)?;
            return Ok(ProxySecret {
                url: None,
                auth: Some((SecretString::new(u), SecretString::new(p))),
            });
        }
        Some(SecretFormat::Flux) => "address",
        Some(SecretFormat::ArgoCd) => "proxy",
    };
    let data = secret_data(secret, lookup)?;
    // As stored: neither consumer trims (Go's url.Parse refuses a control character, and a
    // password with a newline is sent with it).
    let raw = |k: &str| data.get(k).map(|v| String::from_utf8_lossy(v).into_owned());
    let invalid = |why: &str| {
        Finding::new(
            Cause::EgressProxyInvalid,
            format!("the proxy in Secret {secret} (spec.network.egressProxy.secretRef) {why}"),
        )
    };
    let address = raw(key).filter(|v| !v.is_empty());
    let address = address.ok_or_else(|| invalid(&format!("is missing: it has no key {key:?}")))?;
    if address.chars().any(|c| c.is_control() || c == ' ') {
        return Err(invalid(&format!(
            "under {key:?} holds whitespace or a control character, which Go's URL parser refuses"
        )));
    }
    // Go's httpproxy: a value without a scheme (proxy.corp:3128) is taken as http://.
    let parsed = match address.contains("://") {
        true => url::Url::parse(&address),
        false => url::Url::parse(&format!("http://{address}")),
    };
    let mut url = parsed
        .ok()
        .filter(|u| u.has_host())
        .ok_or_else(|| invalid(&format!("under {key:?} is not a URL with a host")))?;
    if url.scheme() != "http" {
        // Named only when it is one the consumers know: anything else may be user information.
        let scheme = match url.scheme() {
            s @ ("https" | "socks5" | "socks5h") => format!("a {s}:// proxy"),
            _ => "not an http:// proxy".to_string(),
        };
        return Err(invalid(&format!(
            "is {scheme}; bbconn tunnels through http:// proxies (HTTP CONNECT) only"
        )));
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let in_url = (!url.username().is_empty())
        .then(|| (decode(url.username()), decode(url.password().unwrap_or(""))));
    // Flux: the username and password keys, where the username key is present, replace the
    // address's own (fluxcd/pkg runtime/secrets: ProxyURLFromSecret).
    let auth = match (format, raw("username")) {
        (Some(SecretFormat::Flux), Some(u)) if !u.is_empty() => {
            Some((u, raw("password").unwrap_or_default()))
        }
        _ => in_url,
    };
    // Without user information: the URL is shown in messages, the credential never is.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok(ProxySecret {
        url: Some(url.to_string()),
        auth: auth.map(|(u, p)| (SecretString::new(u), SecretString::new(p))),
    })
}

/// The data of the proxy Secret, or why it cannot be had: the consumer will be asked for
/// credentials it does not have, or not find its proxy (EgressProxyAuthRequired).
fn secret_data<'a>(
    secret: &str,
    lookup: Option<&'a super::Lookup>,
) -> Result<&'a std::collections::BTreeMap<String, Vec<u8>>, Finding> {
    use super::Lookup;
    let what = format!("spec.network.egressProxy.secretRef names Secret {secret}");
    match lookup {
        Some(Lookup::Found(data, _)) => Ok(data),
        Some(Lookup::Forbidden(d)) => Err(Finding::new(
            Cause::EgressProxyAuthRequired,
            format!("{what}, which bbconn may not read: {d}"),
        )),
        Some(Lookup::Failed(d)) => Err(Finding::new(
            Cause::ServerError,
            format!("reading Secret {secret} failed: {d}"),
        )),
        Some(Lookup::NotFound) | None => Err(Finding::new(
            Cause::EgressProxyAuthRequired,
            format!("{what}, which does not exist"),
        )),
    }
}

/// Basic proxy credentials (username, password) from the Secret spec.network.egressProxy.secretRef
/// names. A Secret that cannot be used means the proxy will ask for credentials the consumer
/// does not have: EgressProxyAuthRequired, naming the Secret's problem.
pub fn proxy_credentials(
    secret: &str,
    lookup: Option<&super::Lookup>,
) -> Result<(String, String), Finding> {
    let what = format!("spec.network.egressProxy.secretRef names Secret {secret}");
    let data = secret_data(secret, lookup)?;
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
    fn a_consumers_proxy_secret_is_read_as_the_consumer_reads_it() {
        use crate::api::SecretFormat::{ArgoCd, Flux};
        use crate::checks::Lookup;
        let found = |pairs: &[(&str, &str)]| {
            let data = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect();
            Lookup::Found(data, Default::default())
        };
        let read = |l: &Lookup, f| proxy_secret("ns/p", Some(l), Some(f));
        let url = Some("http://proxy.corp:3128/".to_string());
        let pair =
            |u: &str, p: &str| Some((SecretString::new(u.into()), SecretString::new(p.into())));
        // Flux: address, and the username and password keys over the address's own.
        let flux = found(&[
            ("address", "http://proxy.corp:3128"),
            ("username", "u"),
            ("password", "p"),
        ]);
        assert_eq!(
            read(&flux, Flux),
            Ok(ProxySecret {
                url: url.clone(),
                auth: pair("u", "p")
            })
        );
        let anonymous = found(&[("address", "http://proxy.corp:3128")]);
        assert_eq!(
            read(&anonymous, Flux),
            Ok(ProxySecret {
                url: url.clone(),
                auth: None
            })
        );
        // Argo CD: the URL's user information is the credential; the URL kept has none.
        let argo = found(&[
            ("proxy", "http://me:s%40cret@proxy.corp:3128"),
            ("url", "x"),
        ]);
        assert_eq!(
            read(&argo, ArgoCd),
            Ok(ProxySecret {
                url,
                auth: pair("me", "s@cret")
            })
        );
        // What bbconn cannot tunnel through, or no proxy at all: EgressProxyInvalid.
        for l in [
            found(&[("address", "socks5://proxy.corp:1080")]),
            found(&[("address", "https://proxy.corp:3128")]),
            found(&[("username", "u")]),
            found(&[("address", "http://[::1")]),
        ] {
            let f = read(&l, Flux).unwrap_err();
            assert_eq!(f.cause, Cause::EgressProxyInvalid, "{}", f.message);
        }
        let f = read(&found(&[("address", "socks5://u:hunter2@p:1080")]), Flux).unwrap_err();
        assert!(!f.message.contains("hunter2"), "{}", f.message);
        // Without a scheme, as Go's httpproxy reads it: http://.
        let bare = found(&[("proxy", "proxy.corp:3128")]);
        let url = Some("http://proxy.corp:3128/".to_string());
        assert_eq!(read(&bare, ArgoCd), Ok(ProxySecret { url, auth: None }));
        // User information in a value without a scheme never reaches a message.
        let odd = found(&[("proxy", "admin:pw@proxy:3128"), ("url", "x")]);
        if let Err(f) = read(&odd, ArgoCd) {
            assert!(!f.message.contains("admin"), "{}", f.message);
        }
        // Go refuses a trailing newline; so does bbconn.
        let newline = found(&[("address", "http://proxy.corp:3128\n")]);
        assert_eq!(
            read(&newline, Flux).unwrap_err().cause,
            Cause::EgressProxyInvalid
        );
        assert_eq!(
            read(&Lookup::NotFound, Flux).unwrap_err().cause,
            Cause::EgressProxyAuthRequired
        );
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
