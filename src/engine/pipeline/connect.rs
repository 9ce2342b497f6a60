//! Step 3, Reachable: the URL's scheme and port, then a TCP connection, or a tunnel through the
//! route's proxy (whose opening decides NetworkPathValid for a proxied path). Decided by
//! `checks/reachable.rs` and, for the tunnel, `checks/network_path.rs`.

use super::network::Path;
use super::{Leg, Run, Step};
use crate::catalogue::Check;
use crate::checks::network_path::{self, Route};
use crate::checks::{CheckResult, Finding, reachable};
use crate::credential::SecretString;
use crate::transport::{connect_via_proxy, connect_via_proxy_as};
use tokio::net::TcpStream;

/// An open connection to the origin (or a tunnel to it), and its port.
pub(super) struct Connected {
    pub stream: TcpStream,
    pub port: u16,
    /// The way it went, for another connection to the same origin (SSH makes several).
    pub route: Route,
}

pub(super) async fn open(run: &Run<'_>, leg: &Leg<'_>, path: Path) -> Step<Connected> {
    let o = leg.origin;
    let reachable = |f| CheckResult::failed(Check::Reachable, f);
    let route = match path {
        Path::Routed(route) => route,
        Path::Unresolved(e) => return Err(reachable(reachable::unresolved(&o.host, e.as_ref()))),
    };
    let port = reachable::check_url(&o.url, &leg.allowed).map_err(reachable)?;
    let mut decided = Vec::new();
    let stream = dial(run, leg, &route, port).await?;
    if !matches!(route, Route::Direct(_)) {
        decided.push(network_path::passed(&o.host, &route));
    }
    decided.push(reachable::passed(&o.host, port));
    Ok((
        Connected {
            stream,
            port,
            route,
        },
        decided,
    ))
}

/// A connection to the origin along `route`: the first, or another one like it.
pub(super) async fn dial(
    run: &Run<'_>,
    leg: &Leg<'_>,
    route: &Route,
    port: u16,
) -> Result<TcpStream, CheckResult> {
    let (env, o) = (run.env, leg.origin);
    let reachable = |f| CheckResult::failed(Check::Reachable, f);
    let npv = |f| CheckResult::failed(Check::NetworkPathValid, f);
    Ok(match route {
        Route::Direct(addrs) => env
            .net
            .connect(addrs)
            .await
            .map_err(|e| reachable(reachable::connect_failure(&e)))?,
        Route::Proxy(proxy) => connect_via_proxy(&env.net, proxy, &o.host, port)
            .await
            .map_err(|e| npv(network_path::private_endpoint_failure(&e)))?,
        Route::Egress(proxy) => {
            let authorization = egress_authorization(run, proxy).map_err(npv)?;
            connect_via_proxy_as(
                &env.net,
                proxy,
                "the egress proxy",
                authorization.as_ref().map(|a| a.expose()),
                &o.host,
                port,
            )
            .await
            .map_err(|e| {
                npv(network_path::egress_proxy_failure(
                    &e,
                    authorization.is_some(),
                ))
            })?
        }
    })
}

/// The `Proxy-Authorization` value for the egress proxy: Basic from the spec's Secret, else
/// from credentials in the proxy URL (as curl takes them from HTTPS_PROXY).
fn egress_authorization(run: &Run<'_>, proxy: &url::Url) -> Result<Option<SecretString>, Finding> {
    use base64::Engine as _;
    let t = run.input;
    let basic = |u: &str, p: &str| {
        SecretString::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        ))
    };
    if t.spec.egress_proxy().is_some() {
        return match &t.egress_auth {
            Ok(Some((u, p))) => Ok(Some(basic(u.expose(), p.expose()))),
            Ok(None) => Ok(None),
            Err(f) => Err(f.clone()),
        };
    }
    if proxy.username().is_empty() {
        return Ok(None);
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Ok(Some(basic(
        &decode(proxy.username()),
        &decode(proxy.password().unwrap_or_default()),
    )))
}
