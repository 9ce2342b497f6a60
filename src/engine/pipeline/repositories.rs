//! Step 7, RepositoryAccess: each listed repository's visibility and, only as high as required,
//! the credential's access; the clone URLs Bitbucket advertises, for GitAccess. Decided by
//! `checks/repositories.rs`.
//!
//! Note: this step goes on with the scope step's API client, so the scope probes' requests are
//! counted a second time in the request metrics, as they were before the pipeline was split into
//! steps (kept so that the metrics do not change with a refactor).

use super::{Run, Step, settle};
use crate::api::{Access, DcPermission, Flavor};
use crate::bitbucket::{Api, Identity, cloud, datacenter};
use crate::catalogue::Check;
use crate::checks::repositories::{self, Observed};
use crate::checks::{CheckResult, Finding};
use std::collections::BTreeMap;

/// Clone URLs by listed repository, as Bitbucket advertised them for the consumer's transport.
pub(super) type Clones = BTreeMap<String, Option<String>>;

pub(super) async fn check(
    run: &mut Run<'_>,
    identity: &Identity,
    mut api: Api<'_>,
) -> Step<Clones> {
    let mut clones = BTreeMap::new();
    let result = observe(run, identity, &mut api, &mut clones).await;
    run.found.collect(&api);
    let ((), decided) = settle(result)?;
    Ok((clones, decided))
}

async fn observe(
    run: &Run<'_>,
    identity: &Identity,
    api: &mut Api<'_>,
    clones: &mut Clones,
) -> CheckResult {
    let (spec, req) = (&run.input.spec, &run.input.req);
    if !req.repositories.is_empty() && identity.authorization.is_none() {
        return repositories::unverifiable();
    }
    let mut results = Vec::new();
    // The clone URLs kept are those of the transport the consumer uses.
    let ssh = spec.git_transport() == crate::api::GitTransport::Ssh;
    for (name, required) in &req.repositories {
        let (owner, slug) = match repositories::owner_and_slug(name) {
            Ok(v) => v,
            Err(f) => return CheckResult::failed(Check::RepositoryAccess, f),
        };
        let observed = match spec.flavor {
            Flavor::Cloud => cloud_access(api, owner, slug, *required, clones, name, ssh).await,
            Flavor::DataCenter => dc_access(api, owner, slug, *required, clones, name, ssh).await,
        };
        match observed {
            Ok(o) => results.push((name.clone(), *required, o)),
            Err(f) => return CheckResult::failed(Check::RepositoryAccess, f),
        }
    }
    repositories::check(&results)
}

async fn cloud_access(
    api: &mut Api<'_>,
    ws: &str,
    slug: &str,
    required: Access,
    clones: &mut Clones,
    name: &str,
    ssh: bool,
) -> Result<Observed, Finding> {
    match cloud::repository(api, ws, slug).await? {
        cloud::RepoAnswer::NotFound(m) => return Ok(Observed::NotFound(m)),
        cloud::RepoAnswer::ScopeMissing(m) => return Ok(Observed::ScopeMissing(m)),
        cloud::RepoAnswer::Visible { clone, ssh_clone } => {
            clones.insert(name.to_string(), if ssh { ssh_clone } else { clone });
        }
    }
    // Ask only as high as needed, then one rung lower to say what the credential has instead.
    if required >= Access::Write {
        if cloud::has_role(api, ws, slug, "admin").await? {
            return Ok(Observed::Access(Access::Admin));
        }
        if cloud::has_role(api, ws, slug, "contributor").await? {
            return Ok(Observed::Access(Access::Write));
        }
    }
    Ok(Observed::Access(Access::Read))
}

async fn dc_access(
    api: &mut Api<'_>,
    project: &str,
    slug: &str,
    required: Access,
    clones: &mut Clones,
    listed: &str,
    ssh: bool,
) -> Result<Observed, Finding> {
    let name = match datacenter::repository(api, project, slug).await? {
        datacenter::RepoAnswer::NotFound(m) => return Ok(Observed::NotFound(m)),
        datacenter::RepoAnswer::Visible {
            name,
            clone,
            ssh_clone,
        } => {
            clones.insert(listed.to_string(), if ssh { ssh_clone } else { clone });
            name
        }
    };
    if required == Access::Admin
        && datacenter::repo_permission(api, project, &name, slug, DcPermission::RepoAdmin).await?
    {
        return Ok(Observed::Access(Access::Admin));
    }
    if required >= Access::Write
        && datacenter::repo_permission(api, project, &name, slug, DcPermission::RepoWrite).await?
    {
        return Ok(Observed::Access(Access::Write));
    }
    Ok(Observed::Access(Access::Read))
}
