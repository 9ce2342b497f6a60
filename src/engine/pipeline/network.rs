//! Step 2, NetworkPathValid: which route reaches the origin (directly, the private endpoint, the
//! egress proxy) and whether its addresses may be used. Decided by `checks/network_path.rs`; a
//! proxied path is proven by its tunnel, in the next step.

use super::{Leg, Run, Step};
use crate::api::{EgressProxy, Exposure, SecretFormat};
use crate::catalogue::{Cause, Check};
use crate::checks::network_path::{self, Resolution, Route};
use crate::checks::{CheckResult, Finding};
use crate::transport::ResolveError;

/// Where the next step connects.
pub(super) enum Path {
    Routed(Route),
    /// The name does not resolve and no proxy resolves it instead: Reachable's verdict.
    Unresolved(Option<ResolveError>),
}

pub(super) async fn path(run: &Run<'_>, leg: &mut Leg<'_>) -> Step<Path> {
    let (env, spec, o) = (run.env, &run.input.spec, leg.origin);
    let npv = |f| CheckResult::failed(Check::NetworkPathValid, f);
    let port = o.url.port_or_known_default().unwrap_or(443);
    let proxy = network_path::private_endpoint(spec).map_err(npv)?;
    // The egress proxy serves Public servers only: a Private one keeps its private endpoint.
    let egress = match (spec.exposure(), spec.egress_proxy()) {
        (Exposure::Private, _) => None,
        (_, Some(e)) => Some(egress_url(run, e, o.url.scheme() == "ssh").map_err(npv)?),
        (_, None) => env
            .net
            .egress_proxy
            .clone()
            .filter(|_| !env.net.no_proxy.matches(&o.host)),
    };
    let resolved = env.net.resolve(&o.host, port).await;
    if let Ok(a) = &resolved {
        leg.addresses = a.iter().map(|a| a.ip().to_string()).collect();
    }
    let resolution = match &resolved {
        Ok(a) => Resolution::Addresses(a),
        Err(_) => Resolution::Failed,
    };
    match network_path::check(
        &o.host,
        spec.exposure(),
        proxy.as_ref(),
        egress.as_ref(),
        resolution,
        &env.net.policy,
    ) {
        Ok(route @ Route::Direct(_)) => {
            let passed = network_path::passed(&o.host, &route);
            Ok((Path::Routed(route), vec![passed]))
        }
        Ok(route) => Ok((Path::Routed(route), Vec::new())),
        Err(Some(f)) => Err(npv(f)),
        Err(None) => Ok((Path::Unresolved(resolved.err()), Vec::new())),
    }
}

/// spec.network.egressProxy's proxy: proxyUrl, else the one the consumer's Secret names.
/// `ssh`: the leg is git over SSH.
fn egress_url(run: &Run<'_>, e: &EgressProxy, ssh: bool) -> Result<url::Url, Finding> {
    let input = run.input;
    let argocd = e.secret_ref.as_ref().and_then(|r| r.format) == Some(SecretFormat::ArgoCd);
    if ssh && argocd && e.proxy_url.is_none() {
        // util/git/creds.go: ssh -o ProxyCommand='connect-proxy -S host:port -5 %h %p'.
        return Err(Finding::new(
            Cause::EgressProxyInvalid,
            "Argo CD reaches git over SSH through its repository proxy as a SOCKS5 proxy, which bbconn cannot tunnel through",
        ));
    }
    match (&e.proxy_url, &input.egress_url, &input.egress_auth) {
        (Some(u), _, _) | (None, Some(u), _) => network_path::egress_proxy_url(u),
        (None, None, Err(f)) => Err(f.clone()),
        (None, None, Ok(_)) => Err(Finding::new(
            Cause::EgressProxyInvalid,
            "spec.network.egressProxy has no proxyUrl, and no secretRef with a format (Flux, ArgoCD) that names the proxy",
        )),
    }
}
