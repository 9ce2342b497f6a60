//! Who may read or push a Bitbucket Cloud repository over HTTPS (docs/design/bitbucket-api.md,
//! "Git over HTTPS"): git's own user names for tokens, then the workspace's IP allowlist and
//! two-step rule, access and scopes. The protocol is the crate's `git/` module.

use std::collections::BTreeSet;

use crate::fixture::{CloudAccess, CloudToken, CloudTokenKind};
use crate::http::{self as h, Credential, Req, Resp, parse_authorization};
use crate::state::Shared;

use super::answers::{GIT_IP_NOT_ALLOWED, GIT_NO_ACCESS, GIT_TWO_STEP, git_rejected};
use super::auth::{Auth, CredType, Identity, authenticate};

/// Who git's credential is. git's user names differ from the REST API's: API tokens go with the
/// Bitbucket username or the static `x-bitbucket-api-token-auth` (never the email); access tokens
/// and OAuth access tokens with `x-token-auth` (support.atlassian.com using-api-tokens,
/// using-access-tokens). A bare `Authorization: Bearer` with an access token is also taken (not
/// confirmed for git; it is for the REST API).
fn git_identity<'a>(shared: &'a Shared, req: &Req) -> Option<Result<Identity<'a>, Resp>> {
    let cloud = &shared.fixture.cloud;
    let value = req.authorization()?;
    let (user, secret) = match parse_authorization(value) {
        Credential::Basic { user, password } => (Some(user), password),
        Credential::Bearer(t) => (None, t),
        Credential::Malformed => return Some(Err(git_rejected())),
    };
    let token_user = user.as_deref().is_none_or(|u| u == "x-token-auth");
    if token_user {
        // An access token, or an access token the OAuth endpoint issued.
        let mut as_bearer = req.headers.clone();
        if let Ok(v) = http::HeaderValue::from_str(&format!("Bearer {secret}")) {
            as_bearer.insert(http::header::AUTHORIZATION, v);
        }
        let bearer_req = Req {
            listener: req.listener,
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            headers: as_bearer,
            body: bytes::Bytes::new(),
            tls: req.tls,
        };
        return Some(match authenticate(shared, &bearer_req) {
            Auth::Ok(id) if id.cred != CredType::ApiToken => Ok(id),
            _ => Err(git_rejected()),
        });
    }
    let user = user.unwrap_or_default();
    let owner_ok = |t: &CloudToken| {
        user == "x-bitbucket-api-token-auth" || t.user.as_deref() == Some(user.as_str())
    };
    let token = cloud.tokens.iter().find(|t| {
        t.kind == CloudTokenKind::ApiToken
            && t.value == secret
            && owner_ok(t)
            && !t.revoked
            && !t.expired
    });
    let owner = token.and_then(|t| {
        cloud
            .users
            .iter()
            .find(|u| Some(u.username.as_str()) == t.user.as_deref())
    });
    Some(match (token, owner) {
        (Some(t), Some(owner)) => Ok(Identity {
            cred: CredType::ApiToken,
            user: Some(owner),
            token: None,
            granted: &t.scopes,
            legacy: BTreeSet::new(),
            rate_key: t.value.clone(),
        }),
        _ => Err(git_rejected()),
    })
}

/// Whether git may read (and, with `push`, write) workspace/slug: Ok, or the answer refusing it.
pub(crate) fn git_authorize(
    shared: &Shared,
    req: &Req,
    ws: &str,
    slug: &str,
    push: bool,
) -> Result<(), Resp> {
    let cloud = &shared.fixture.cloud;
    let found = cloud
        .workspaces
        .iter()
        .find(|w| w.slug == ws)
        .and_then(|w| {
            w.repositories
                .iter()
                .find(|r| r.slug == slug)
                .map(|r| (w, r))
        });
    let id = match git_identity(shared, req) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(r)) => return Err(r),
    };
    let Some((w, repo)) = found else {
        return Err(h::text(if id.is_some() { 403 } else { 401 }, GIT_NO_ACCESS));
    };
    // git asks without credentials first and sends them after a 401 with a Basic challenge.
    let Some(id) = id else {
        if repo.is_private || push {
            return Err(git_rejected());
        }
        return Ok(());
    };
    if w.ip_allowlist_blocks {
        return Err(h::text(403, GIT_IP_NOT_ALLOWED));
    }
    if w.require_two_step && id.user.is_some_and(|u| !u.two_step) {
        return Err(h::text(403, GIT_TWO_STEP));
    }
    let level = id.explicit_access(w, repo).or(if repo.is_private {
        None
    } else {
        Some(CloudAccess::Read)
    });
    let (scope_read, scope_write) = if id.cred == CredType::ApiToken {
        (
            id.granted.iter().any(|s| s == "read:repository:bitbucket"),
            id.granted.iter().any(|s| s == "write:repository:bitbucket"),
        )
    } else {
        (
            id.legacy.contains("repository"),
            id.legacy.contains("repository:write"),
        )
    };
    let may_read = scope_read && level.is_some();
    let may_write = scope_write && level.is_some_and(|l| l >= CloudAccess::Write);
    if !may_read || (push && !may_write) {
        return Err(h::text(403, GIT_NO_ACCESS));
    }
    Ok(())
}
