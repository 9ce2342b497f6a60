//! Who may read or push a Bitbucket Data Center repository over HTTPS
//! (docs/design/bitbucket-api.md, "Git over HTTPS"): the REST API's credentials and
//! permissions, with the Basic challenge git needs first. The protocol is the crate's `git/`
//! module.

use crate::http::{self as h, Req, Resp};
use crate::state::Shared;

use super::access::Level;
use super::answers::{
    AUTH_FAILED, AUTH_FAILED_EXCEPTION, NOT_PERMITTED_EXCEPTION, errors, no_such_repository,
};
use super::auth::{Principal, authenticate};
use super::repos::find_project;

/// Whether git may read (and, with `push`, write) project/slug: Ok, or the answer refusing it.
/// Credentials are the REST API's: personal tokens as the password with their owner's name or as
/// Bearer; project and repository tokens as Bearer only (Argo CD #9667, Flux pkg #442).
pub(crate) fn git_authorize(
    shared: &Shared,
    req: &Req,
    key: &str,
    slug: &str,
    push: bool,
) -> Result<(), Resp> {
    let dc = &shared.fixture.datacenter;
    let base = format!(
        "{}{}",
        req.origin(),
        shared.listeners[req.listener].base_path
    );
    let principal = authenticate(shared, req, &base)?;
    let found = find_project(dc, key).and_then(|(_, p)| {
        p.repositories
            .iter()
            .find(|r| r.slug == slug)
            .map(|r| (p, r))
    });
    let level = found.map_or(Level::None, |(p, r)| principal.repo_level(p, r));
    if matches!(principal, Principal::Anonymous) && (level < Level::Read || push) {
        // git sends credentials only after a challenge.
        let mut r = errors(401, AUTH_FAILED, Some(AUTH_FAILED_EXCEPTION));
        h::set_header(
            &mut r,
            "www-authenticate",
            "Basic realm=\"Atlassian Bitbucket\"",
        );
        return Err(r);
    }
    let Some((p, r)) = found.filter(|_| level >= Level::Read) else {
        return Err(no_such_repository(&key.to_uppercase(), slug));
    };
    // Atlassian KB "Git push returns error code 403": a push without write permission.
    if push && (level < Level::Write || r.archived) {
        return Err(errors(
            403,
            &format!("You are not permitted to push to {}/{}.", p.key, r.slug),
            Some(NOT_PERMITTED_EXCEPTION),
        ));
    }
    Ok(())
}
