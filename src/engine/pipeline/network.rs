//! Step 2, NetworkPathValid: which route reaches the origin (directly, the private endpoint, the
//! egress proxy) and whether its addresses may be used. Decided by `checks/network_path.rs`; a
//! proxied path is proven by its tunnel, in the next step.

use super::{Leg, Run, Step};
use crate::api::Exposure;
use crate::catalogue::Check;
use crate::checks::CheckResult;
use crate::checks::network_path::{self, Resolution, Route};
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
        (_, Some(e)) => {
            let (url, error) = (
                run.input.egress_url.as_deref(),
                run.input.egress_auth.as_ref(),
            );
            let ssh = o.url.scheme() == "ssh";
            Some(network_path::egress_proxy(e, url, error.err(), ssh).map_err(npv)?)
        }
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
