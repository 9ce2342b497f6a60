//! Step 6, ScopesSufficient: what the credential holds, from the identity probe, the token's
//! metadata, or (Data Center without either) one permission probe per required permission.
//! Decided by `checks/scopes.rs`.

use super::{Run, Step, settle};
use crate::api::Flavor;
use crate::bitbucket::{Api, Identity, datacenter};
use crate::catalogue::Check;
use crate::checks::CheckResult;
use crate::checks::scopes::{Held, check as judge};
use crate::transport::http::Session;
use std::collections::BTreeMap;

/// Returns the API client the repository step goes on with (its requests are counted again
/// there, as they always were: see the note in `engine/pipeline/repositories.rs`).
pub(super) async fn check<'s>(
    run: &mut Run<'_>,
    identity: &Identity,
    session: &'s mut Session,
) -> Step<Api<'s>> {
    let base_path = run
        .input
        .api_origin
        .url
        .path()
        .trim_end_matches('/')
        .to_string();
    let mut api = Api::new(session, &base_path, identity.authorization.clone());
    let result = held(run, identity, &mut api).await;
    run.found.collect(&api);
    let ((), decided) = settle(result)?;
    Ok((api, decided))
}

async fn held(run: &Run<'_>, identity: &Identity, api: &mut Api<'_>) -> CheckResult {
    let (spec, req) = (&run.input.spec, &run.input.req);
    let none_required = req.scopes.is_empty() && req.permissions.is_empty();
    if identity.authorization.is_none() {
        return judge(
            &req.scopes,
            &req.permissions,
            Held::Unknown(
                "Bitbucket shows an application link's permissions only to the person who grants access",
            ),
        );
    }
    match spec.flavor {
        Flavor::Cloud => match &identity.scopes {
            Some(s) => {
                // What bbconn's own identity probe needs counts too: Bitbucket refused it.
                let mut required = req.scopes.clone();
                required.extend(identity.probe_needs.iter().cloned());
                judge(&required, &req.permissions, Held::Scopes(s))
            }
            None => judge(
                &req.scopes,
                &req.permissions,
                Held::Unknown("Bitbucket did not reveal this credential's scopes"),
            ),
        },
        Flavor::DataCenter => match &identity.permissions {
            Some(p) => judge(&req.scopes, &req.permissions, Held::Permissions(p)),
            None if none_required => judge(
                &req.scopes,
                &req.permissions,
                Held::Probed(&BTreeMap::new()),
            ),
            None => {
                let mut probed = BTreeMap::new();
                for perm in &req.permissions {
                    match datacenter::holds_anywhere(api, *perm).await {
                        Ok(b) => {
                            probed.insert(*perm, b);
                        }
                        Err(e) => return CheckResult::failed(Check::ScopesSufficient, e.into()),
                    }
                }
                judge(&req.scopes, &req.permissions, Held::Probed(&probed))
            }
        },
    }
}
