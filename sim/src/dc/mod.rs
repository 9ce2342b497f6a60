//! Bitbucket Data Center: `{basePath}/rest/...`. This file routes a request: it authenticates
//! it, applies the per-user rate limit, hands it to the endpoint (it answers
//! `application-properties` itself) and says who the caller is in `X-AUSERNAME`/`X-AUSERID`.
//! Behaviour comes from docs/design/bitbucket-api.md (sources cited there and in each file);
//! JSON shapes from `datacenter-9.2.swagger.v3.json` (`RestApplicationProperties`,
//! `RestRepository`, `RestProject`, `RestAccessToken`, `RestPermittedUser`, the paged wrappers
//! and `RestErrorMessage`).

mod access;
mod answers;
mod auth;
mod context;
mod git;
mod oauth;
mod repos;
mod tokens;
mod users;

use http::Method;
use serde_json::json;

use crate::fixture::DataCenter;
use crate::http::{self as h, Req, Resp};
use crate::state::Shared;

use answers::{errors, json};
use auth::{Principal, authenticate, bot_id, bot_name, principal_key, user_id};
use context::Ctx;
use oauth::oauth_token;
use repos::{
    get_project, get_repository, list_projects, list_repos, repository_missing, repository_users,
};
use tokens::{resource_tokens, user_tokens};
use users::{admin_users, list_users};

// For server.rs (unrouted paths, web pages) and the crate's git/ (who may read or push).
pub(crate) use answers::not_found;
pub(crate) use auth::web;
pub(crate) use git::git_authorize;

fn is_version(v: &str) -> bool {
    v == "latest" || v == "1.0"
}

pub(crate) fn handle(shared: &Shared, req: &Req) -> Resp {
    let segs = h::segments(&req.path);
    if let ["rest", "oauth2", v, "token"] = segs.as_slice()
        && is_version(v)
    {
        return oauth_token(&shared.fixture.datacenter, req);
    }
    let base = format!(
        "{}{}",
        req.origin(),
        shared.listeners[req.listener].base_path
    );
    let principal = match authenticate(shared, req, &base) {
        Ok(p) => p,
        Err(r) => return r,
    };
    // Rate limiting applies to requests with Basic or Bearer credentials, per user; a 429 says
    // Retry-After in seconds (tests/real-answers/answers.json `dc-429-retry-after`; its body was
    // not recorded, so none is sent).
    if let (Some(limit), Some(key)) = (
        shared.fixture.datacenter.rate_limit.as_ref(),
        principal_key(&principal),
    ) && let Err(wait) = shared.dc.take_token(&key, limit)
    {
        let mut r = h::empty(429);
        h::set_header(&mut r, "retry-after", &wait.to_string());
        return r;
    }
    let ctx = Ctx {
        dc: &shared.fixture.datacenter,
        req,
        principal,
        base: shared.listeners[req.listener]
            .advertised_base_url
            .as_ref()
            .map(|b| b.trim_end_matches('/').to_owned())
            .unwrap_or(base),
        started: shared.dc.started_ms,
        last_auth: &shared.dc.last_auth,
        ssh_port: crate::ssh::dc_ssh_port(shared),
    };
    let mut resp = route(&ctx, &segs);
    // docs/design/bitbucket-api.md: who am I = X-AUSERNAME / X-AUSERID on an authenticated answer.
    let who = match principal {
        Principal::Anonymous => None,
        Principal::Password(u) | Principal::Personal(u, _) => {
            Some((u.name.clone(), user_id(ctx.dc, u)))
        }
        Principal::Token(i, t) => Some((bot_name(t), bot_id(i))),
    };
    if let Some((name, id)) = who {
        h::set_header(&mut resp, "x-ausername", &name);
        h::set_header(&mut resp, "x-auserid", &id.to_string());
    }
    resp
}

fn route(ctx: &Ctx, segs: &[&str]) -> Resp {
    let get = ctx.req.method == Method::GET || ctx.req.method == Method::HEAD;
    let resp = match segs {
        ["rest", "api", v, rest @ ..] if is_version(v) => match rest {
            ["application-properties"] => get.then(|| application_properties(ctx.dc)),
            ["projects"] => get.then(|| list_projects(ctx)),
            ["projects", key] => get.then(|| get_project(ctx, key)),
            ["projects", key, "repos"] => get.then(|| list_repos(ctx, Some(key))),
            ["projects", key, "repos", slug] => get.then(|| get_repository(ctx, key, slug)),
            ["projects", key, "repos", slug, "permissions", "users"] => {
                get.then(|| repository_users(ctx, key, slug))
            }
            ["repos"] => get.then(|| list_repos(ctx, None)),
            // Sub-resources the simulator does not serve still say which part is missing.
            ["projects", key, "repos", slug, _, ..] => {
                get.then(|| repository_missing(ctx, key, slug))
            }
            ["users"] => get.then(|| list_users(ctx)),
            ["admin", "permissions", "users"] => get.then(|| admin_users(ctx)),
            _ => return not_found(),
        },
        ["rest", "access-tokens", v, rest @ ..] if is_version(v) => match rest {
            ["users", user] => get.then(|| user_tokens(ctx, user, None)),
            ["users", user, id] => get.then(|| user_tokens(ctx, user, Some(id))),
            ["projects", key] => get.then(|| resource_tokens(ctx, key, None, None)),
            ["projects", key, "repos", slug] => {
                get.then(|| resource_tokens(ctx, key, Some(slug), None))
            }
            ["projects", key, "repos", slug, id] => {
                get.then(|| resource_tokens(ctx, key, Some(slug), Some(id)))
            }
            ["projects", key, id] => get.then(|| resource_tokens(ctx, key, None, Some(id))),
            _ => return not_found(),
        },
        _ => return not_found(),
    };
    resp.unwrap_or_else(|| errors(405, "Method not allowed", None))
}

fn application_properties(dc: &DataCenter) -> Resp {
    let build_number = dc.build_number.clone().unwrap_or_else(|| {
        let mut parts = dc.version.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
        let (a, b, c) = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        (a * 1_000_000 + b * 1_000 + c).to_string()
    });
    json(
        200,
        &json!({
            "version": dc.version,
            "buildNumber": build_number,
            "buildDate": dc.build_date.clone().unwrap_or_else(|| "1719792000000".to_owned()),
            "displayName": dc.display_name,
        }),
    )
}
