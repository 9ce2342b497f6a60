//! Bitbucket Cloud: `/2.0/...` (also under `/api/2.0`) and `/site/oauth2/access_token`. This
//! file routes a request: it authenticates it, applies the hourly rate limit, hands it to the
//! endpoint and sets the scope headers on the answer. Behaviour comes from
//! docs/design/bitbucket-api.md (sources cited there and in each file); JSON shapes from
//! `cloud.swagger.v3.json` (`account`/`user`, `workspace`, `repository`,
//! `paginated_repositories`, `error`).

mod access;
mod answers;
mod auth;
mod git;
mod oauth;
mod repos;
mod shapes;
mod user;

use http::Method;

use crate::fixture::Cloud;
use crate::http::{self as h, Req, Resp};
use crate::state::{RATE_LIMITED_BODY, Shared};

use answers::{ScopeError, error_json, not_found};
use auth::{Auth, Identity, NEED_REPOSITORY, NEED_USER, NEED_WORKSPACE, Need, authenticate};
use oauth::oauth_token;
use repos::{get_repository, get_workspace, list_public_repositories, list_repositories};
use user::get_user;

// For the crate's git/: who may read or push.
pub(crate) use git::git_authorize;

pub(crate) fn handle(shared: &Shared, req: &Req) -> Resp {
    if req.path == "/site/oauth2/access_token" {
        return oauth_token(shared, req);
    }
    // bitbucket.org/api/2.0/... serves the same API (tests/real-answers/answers.json
    // `cloud-401-access-token-expired` was answered there).
    let path = req.path.strip_prefix("/api").unwrap_or(&req.path);
    if !(path == "/2.0" || path.starts_with("/2.0/")) {
        // `cloud-403-forbidden-v1-user`: the user resource without /2.0 is 403 "Forbidden".
        if path == "/user" || path.starts_with("/user/") {
            return h::json(403, &error_json("Forbidden"));
        }
        return not_found();
    }
    let cloud = &shared.fixture.cloud;
    let id = match authenticate(shared, req) {
        Auth::Anonymous => None,
        Auth::Ok(id) => Some(id),
        Auth::Rejected(r) => return r,
    };
    let segs = h::segments(path);
    let need = need_for(&segs);
    // support.atlassian.com/bitbucket-cloud/docs/api-request-limits: a rolling hour; 1,000
    // authenticated requests (per credential here), 60 anonymous. The 429 body is plain text and
    // carries no Retry-After (tests/real-answers/answers.json `cloud-429-sharpbucket`,
    // `cloud-429-jenkins`); `rateLimitRetryAfter` adds one.
    let (key, limit) = match &id {
        Some(i) => (i.rate_key.as_str(), cloud.rate_limit_per_hour),
        None => ("\u{0}anonymous", cloud.anonymous_rate_limit_per_hour),
    };
    let over = if limit > 0 {
        shared.cloud.admit(key, limit).err()
    } else {
        None
    };
    let mut resp = match over {
        Some(retry) => {
            let mut r = h::bytes(429, "text/plain", RATE_LIMITED_BODY);
            if cloud.rate_limit_retry_after {
                h::set_header(&mut r, "retry-after", &retry.to_string());
            }
            r
        }
        None => route(cloud, req, &segs, need, id.as_ref()),
    };
    let scope_error = resp.extensions().get::<ScopeError>().is_some();
    if let Some(id) = &id
        && (!scope_error || cloud.scope_headers_on_scope_error)
    {
        h::set_header(&mut resp, "x-credential-type", id.cred.header());
        h::set_header(&mut resp, "x-oauth-scopes", &id.granted.join(", "));
        if let Some(accepted) = need.and_then(|n| id.accepted(n)) {
            h::set_header(&mut resp, "x-accepted-oauth-scopes", accepted);
        }
    }
    resp
}

type Handler = fn(&Cloud, &Req, Option<&Identity>, &[&str]) -> Resp;

fn need_for(segs: &[&str]) -> Option<Need> {
    match segs {
        ["2.0", "user", ..] => Some(NEED_USER),
        ["2.0", "workspaces", ..] => Some(NEED_WORKSPACE),
        ["2.0", "repositories", ..] => Some(NEED_REPOSITORY),
        _ => None,
    }
}

fn route(
    cloud: &Cloud,
    req: &Req,
    segs: &[&str],
    need: Option<Need>,
    id: Option<&Identity>,
) -> Resp {
    let get: Handler = match segs {
        ["2.0", "user"] => get_user,
        ["2.0", "workspaces", _] => get_workspace,
        ["2.0", "repositories"] => list_public_repositories,
        ["2.0", "repositories", _] => list_repositories,
        ["2.0", "repositories", _, _] => get_repository,
        _ => {
            // Scope first: an endpoint the simulator does not serve still needs its scope.
            if let (Some(id), Some(need)) = (id, need)
                && let Err(r) = id.require(need)
            {
                return r;
            }
            return not_found();
        }
    };
    if req.method != Method::GET && req.method != Method::HEAD {
        return h::json(405, &error_json("Method not allowed"));
    }
    get(cloud, req, id, segs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rolling_window() {
        let s = crate::state::CloudState::default();
        assert!(s.admit("k", 2).is_ok());
        assert!(s.admit("k", 2).is_ok());
        let retry = s.admit("k", 2);
        assert!(matches!(retry, Err(n) if n > 3500 && n <= 3600));
        assert!(s.admit("other", 2).is_ok());
    }
}
