//! Bitbucket Data Center: `{basePath}/rest/...`.
//!
//! Behaviour comes from docs/design/bitbucket-api.md (sources cited there and below);
//! JSON shapes from `datacenter-9.2.swagger.v3.json` (`RestApplicationProperties`,
//! `RestRepository`, `RestProject`, `RestAccessToken`, `RestPermittedUser`, the paged wrappers
//! and `RestErrorMessage`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use http::Method;
use serde_json::{Value, json};

use crate::fixture::{
    DataCenter, DcGlobalPermission, DcPermission, DcProject, DcRepository, DcToken, DcTokenKind,
    DcUser,
};
use crate::http::{self as h, Credential, Req, Resp, parse_authorization};
use crate::state::{Shared, lock, now_ms};

const DAY_MS: i64 = 86_400_000;

/// docs/design/bitbucket-api.md, Data Center "Errors".
const AUTH_FAILED: &str = "Authentication failed. Please check your credentials and try again.";
const AUTH_FAILED_EXCEPTION: &str =
    "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException";
/// Not confirmed in Atlassian's documentation (fixture switch `expiredTokenMessage`).
const TOKEN_EXPIRED: &str = "The access token has expired.";
const NOT_PERMITTED: &str = "You are not permitted to access this resource";
const NOT_PERMITTED_EXCEPTION: &str = "com.atlassian.bitbucket.AuthorisationException";
/// tests/real-answers/answers.json `dc-401-anonymous-required` (Bitbucket 10.4.1).
const AUTH_REQUIRED_EXCEPTION: &str =
    "com.atlassian.plugins.rest.api.security.exception.AuthenticationRequiredException";
/// tests/real-answers/answers.json `dc-403-basic-disabled` (the body is exactly this object).
const BASIC_DISABLED: &str = "Basic Authentication has been disabled on this instance.";
/// The exception is Bitbucket's (its javadoc: thrown once a user failed too often); the text is
/// what public clients quote, not confirmed word for word.
const CAPTCHA_REQUIRED: &str = "CAPTCHA required. Your Bitbucket account has been locked. To unlock it and log in again you must solve a CAPTCHA. This is typically caused by too many attempts to login with an incorrect password.";
const CAPTCHA_EXCEPTION: &str =
    "com.atlassian.bitbucket.auth.CaptchaRequiredAuthenticationException";

/// A permission level on a project or repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    None,
    Read,
    Write,
    Admin,
}

fn level(p: DcPermission) -> Level {
    match p {
        DcPermission::ProjectRead | DcPermission::RepoRead => Level::Read,
        DcPermission::ProjectWrite | DcPermission::RepoWrite => Level::Write,
        DcPermission::ProjectAdmin | DcPermission::RepoAdmin => Level::Admin,
    }
}

fn is_project_permission(p: DcPermission) -> bool {
    matches!(
        p,
        DcPermission::ProjectRead | DcPermission::ProjectWrite | DcPermission::ProjectAdmin
    )
}

/// The permission a user holds in an access map (names compared as slugs, case-insensitively).
fn access_of(map: &BTreeMap<String, DcPermission>, user: &DcUser) -> Level {
    map.iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&user.name))
        .map(|(_, p)| level(*p))
        .unwrap_or(Level::None)
}

/// A token's cap on repositories: REPO_X, and PROJECT_X which implies REPO_X for the projects'
/// repositories (confluence.atlassian.com/bitbucketserver091/http-access-tokens-1443038354.html).
fn repo_cap(t: &DcToken) -> Level {
    t.permissions
        .iter()
        .map(|p| level(*p))
        .max()
        .unwrap_or(Level::None)
}

/// A token's cap on projects. Bitbucket's token form always sets a project permission (read at
/// least); a fixture token without one is read as PROJECT_READ.
fn project_cap(t: &DcToken) -> Level {
    t.permissions
        .iter()
        .filter(|p| is_project_permission(**p))
        .map(|p| level(*p))
        .max()
        .unwrap_or(if t.permissions.is_empty() {
            Level::None
        } else {
            Level::Read
        })
}

fn user_repo_level(u: &DcUser, p: &DcProject, r: &DcRepository) -> Level {
    access_of(&r.access, u).max(access_of(&p.access, u))
}

/// Any access inside a project lets a user see the project (PROJECT_VIEW).
fn user_project_level(u: &DcUser, p: &DcProject) -> Level {
    let own = access_of(&p.access, u);
    if own == Level::None
        && p.repositories
            .iter()
            .any(|r| access_of(&r.access, u) > Level::None)
    {
        Level::Read
    } else {
        own
    }
}

fn is_expired(t: &DcToken, now: i64, started: i64) -> bool {
    t.expired
        || t.expiry_days
            .is_some_and(|d| created_ms(t, started) + i64::from(d) * DAY_MS <= now)
}

fn created_ms(t: &DcToken, started: i64) -> i64 {
    t.created_date
        .map(|c| c.as_millisecond())
        .unwrap_or(started - DAY_MS)
}

/// Who is calling.
#[derive(Clone, Copy)]
enum Principal<'a> {
    Anonymous,
    Password(&'a DcUser),
    Personal(&'a DcUser, &'a DcToken),
    /// Project and repository tokens act as a bot user of their own.
    Token(usize, &'a DcToken),
}

impl<'a> Principal<'a> {
    fn user(&self) -> Option<&'a DcUser> {
        match self {
            Principal::Password(u) | Principal::Personal(u, _) => Some(u),
            _ => None,
        }
    }

    fn repo_level(&self, p: &DcProject, r: &DcRepository) -> Level {
        let public = if r.public || p.public {
            Level::Read
        } else {
            Level::None
        };
        let own = match self {
            Principal::Anonymous => Level::None,
            Principal::Password(u) => user_repo_level(u, p, r),
            Principal::Personal(u, t) => user_repo_level(u, p, r).min(repo_cap(t)),
            Principal::Token(_, t) => {
                let in_project = t
                    .project
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case(&p.key));
                let in_scope = match t.kind {
                    DcTokenKind::Repository => {
                        in_project && t.repository.as_deref() == Some(r.slug.as_str())
                    }
                    _ => in_project,
                };
                if in_scope { repo_cap(t) } else { Level::None }
            }
        };
        own.max(public)
    }

    fn project_level(&self, p: &DcProject) -> Level {
        let public = if p.public || p.repositories.iter().any(|r| r.public) {
            Level::Read
        } else {
            Level::None
        };
        let own = match self {
            Principal::Anonymous => Level::None,
            Principal::Password(u) => user_project_level(u, p),
            Principal::Personal(u, t) => user_project_level(u, p).min(project_cap(t)),
            Principal::Token(_, t) => {
                let in_project = t
                    .project
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case(&p.key));
                match (in_project, t.kind) {
                    (false, _) => Level::None,
                    (true, DcTokenKind::Repository) => Level::Read,
                    (true, _) => project_cap(t),
                }
            }
        };
        own.max(public)
    }
}

fn user_id(dc: &DataCenter, u: &DcUser) -> u32 {
    u.id.unwrap_or_else(|| {
        dc.users
            .iter()
            .position(|x| std::ptr::eq(x, u))
            .map(|i| i as u32 + 1)
            .unwrap_or(1)
    })
}

/// The bot user a project or repository token acts as. Bitbucket creates one per token; its
/// real naming is not documented, so the simulator names it after the token's resource.
fn bot_name(t: &DcToken) -> String {
    let key = t.project.as_deref().unwrap_or("");
    match t.kind {
        DcTokenKind::Repository => format!(
            "repository-token-{key}-{}",
            t.repository.as_deref().unwrap_or("")
        ),
        _ => format!("project-token-{key}"),
    }
}

fn bot_id(index: usize) -> u32 {
    100_000 + index as u32
}

// ---------------------------------------------------------------------------------------------
// Errors: {"errors":[{"context":null,"message":…,"exceptionName":…}]}

/// Data Center's own content type (tests/real-answers/answers.json records it on every answer).
fn json(code: u16, body: &Value) -> Resp {
    h::bytes(code, "application/json;charset=UTF-8", body.to_string())
}

fn errors(code: u16, message: &str, exception: Option<&str>) -> Resp {
    json(
        code,
        &json!({"errors": [{"context": null, "message": message, "exceptionName": exception}]}),
    )
}

fn auth_required() -> Resp {
    errors(401, NOT_PERMITTED, Some(AUTH_REQUIRED_EXCEPTION))
}

fn basic_disabled() -> Resp {
    json(403, &json!({"message": BASIC_DISABLED}))
}

/// Jira's and Bitbucket's denied-reason header: `CAPTCHA_CHALLENGE; login-url=<login page>`.
fn captcha_required(base: &str) -> Resp {
    let mut r = errors(401, CAPTCHA_REQUIRED, Some(CAPTCHA_EXCEPTION));
    h::set_header(
        &mut r,
        "x-authentication-denied-reason",
        &format!("CAPTCHA_CHALLENGE; login-url={base}/login"),
    );
    r
}

fn auth_failed() -> Resp {
    errors(401, AUTH_FAILED, Some(AUTH_FAILED_EXCEPTION))
}

/// docs/design/bitbucket-api.md: a missing permission is also 401.
fn not_permitted() -> Resp {
    errors(401, NOT_PERMITTED, Some(NOT_PERMITTED_EXCEPTION))
}

fn no_such_project(key: &str) -> Resp {
    errors(
        404,
        &format!("Project {key} does not exist."),
        Some("com.atlassian.bitbucket.project.NoSuchProjectException"),
    )
}

fn no_such_repository(key: &str, slug: &str) -> Resp {
    errors(
        404,
        &format!("Repository {key}/{slug} does not exist."),
        Some("com.atlassian.bitbucket.repository.NoSuchRepositoryException"),
    )
}

pub(crate) fn not_found() -> Resp {
    errors(404, "Not Found", None)
}

// ---------------------------------------------------------------------------------------------
// Authentication

fn authenticate<'a>(shared: &'a Shared, req: &Req, base: &str) -> Result<Principal<'a>, Resp> {
    let dc = &shared.fixture.datacenter;
    let Some(value) = req.authorization() else {
        return Ok(Principal::Anonymous);
    };
    let now = now_ms();
    let started = shared.dc.started_ms;
    let check = |i: usize, t: &DcToken| -> Result<(), Resp> {
        if t.revoked {
            return Err(auth_failed());
        }
        if is_expired(t, now, started) {
            return Err(if dc.expired_token_message {
                errors(401, TOKEN_EXPIRED, Some(AUTH_FAILED_EXCEPTION))
            } else {
                auth_failed()
            });
        }
        lock(&shared.dc.last_auth).insert(i, now);
        Ok(())
    };
    match parse_authorization(value) {
        // Any token kind works as Bearer (confluence.atlassian.com/bitbucketserver091/http-access-tokens-1443038354.html).
        Credential::Bearer(value) => {
            let bearer = || -> Result<Principal<'a>, Resp> {
                let Some((i, t)) = dc.tokens.iter().enumerate().find(|(_, t)| t.value == value)
                else {
                    return Err(auth_failed());
                };
                check(i, t)?;
                match t.kind {
                    DcTokenKind::Personal => {
                        let user = t
                            .user
                            .as_deref()
                            .and_then(|n| dc.users.iter().find(|u| u.name.eq_ignore_ascii_case(n)));
                        user.map(|u| Principal::Personal(u, t))
                            .ok_or_else(auth_failed)
                    }
                    _ => Ok(Principal::Token(i, t)),
                }
            };
            // tests/real-answers/answers.json `dc-appprops-200-anonymous-10.4`: Bitbucket 10
            // does not refuse a token it does not recognise; it serves the request as anonymous.
            match bearer() {
                Err(_) if dc.serves_unrecognised_tokens_anonymously() => Ok(Principal::Anonymous),
                other => other,
            }
        }
        // Basic: a personal token of that user (project and repository tokens are Bearer only),
        // else the user's password.
        Credential::Basic { user, password } => {
            let Some(u) = dc.users.iter().find(|u| u.name.eq_ignore_ascii_case(&user)) else {
                return Err(if dc.basic_disabled() {
                    basic_disabled()
                } else {
                    auth_failed()
                });
            };
            let slug = u.slug();
            // Once over the threshold, even the right password is refused until a CAPTCHA is
            // solved on the web page (support.atlassian.com/bitbucket-data-center/kb/how-to-identify-and-reset-all-the-users-blocked-by-captcha-in-bitbucket-server-and-datacenter).
            if shared.dc.captcha_on(dc, &slug) {
                return Err(captcha_required(base));
            }
            let personal = dc.tokens.iter().enumerate().find(|(_, t)| {
                t.kind == DcTokenKind::Personal
                    && t.user
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(&u.name))
                    && t.value == password
            });
            if let Some((i, t)) = personal {
                if let Err(r) = check(i, t) {
                    shared.dc.failed(&slug);
                    return Err(r);
                }
                shared.dc.succeeded(&slug);
                return Ok(Principal::Personal(u, t));
            }
            // Blocking Basic authentication refuses passwords; a personal token in Basic is not a
            // password (not confirmed: Atlassian documents only the password case).
            if dc.basic_disabled() {
                return Err(basic_disabled());
            }
            if u.password.as_deref() == Some(password.as_str()) {
                shared.dc.succeeded(&slug);
                Ok(Principal::Password(u))
            } else {
                shared.dc.failed(&slug);
                Err(auth_failed())
            }
        }
        Credential::Malformed => Err(auth_failed()),
    }
}

/// The name the rate limiter keys on.
fn principal_key(p: &Principal) -> Option<String> {
    match p {
        Principal::Anonymous => None,
        Principal::Password(u) | Principal::Personal(u, _) => Some(u.slug()),
        Principal::Token(_, t) => Some(bot_name(t)),
    }
}

/// A path below the context path that is neither `/rest` nor `/scm`: a web page.
/// support.atlassian.com/bitbucket-data-center/kb/access-tokens-no-longer-work-as-expected-after-upgrading-bitbucket-data-center:
/// an access token in the Authorization header is redirected (302) to the login page; Basic with
/// a token instead of the password is 401, and counts as a failed login.
pub(crate) fn web(shared: &Shared, req: &Req) -> Resp {
    let dc = &shared.fixture.datacenter;
    let base = format!(
        "{}{}",
        req.origin(),
        shared.listeners[req.listener].base_path
    );
    let to_login = || {
        let mut r = h::bytes(302, "text/html;charset=UTF-8", "");
        h::set_header(&mut r, "location", &format!("{base}/login"));
        r
    };
    match req.authorization().map(parse_authorization) {
        Some(Credential::Basic { user, password }) => {
            if dc.basic_disabled() {
                return basic_disabled();
            }
            let Some(u) = dc.users.iter().find(|u| u.name.eq_ignore_ascii_case(&user)) else {
                return auth_failed();
            };
            let slug = u.slug();
            if shared.dc.captcha_on(dc, &slug) {
                return captcha_required(&base);
            }
            if u.password.as_deref() == Some(password.as_str()) {
                shared.dc.succeeded(&slug);
                h::bytes(
                    404,
                    "text/html;charset=UTF-8",
                    "<html><body>Page not found</body></html>",
                )
            } else {
                shared.dc.failed(&slug);
                auth_failed()
            }
        }
        _ => to_login(),
    }
}

// ---------------------------------------------------------------------------------------------
// Routing

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

struct Ctx<'a> {
    dc: &'a DataCenter,
    req: &'a Req,
    principal: Principal<'a>,
    /// `scheme://host[:port]{basePath}` for links.
    base: String,
    started: i64,
    last_auth: &'a Mutex<HashMap<usize, i64>>,
    ssh_port: Option<u16>,
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

/// A page: `{size, limit, isLastPage, start, values, nextPageStart?}` with `start`/`limit` from
/// the query (default 0 and 25).
fn paged(req: &Req, all: Vec<Value>) -> Resp {
    let start: usize = req
        .query_param("start")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let limit: usize = req
        .query_param("limit")
        .and_then(|s| s.parse().ok())
        .map(|l: usize| l.clamp(1, 1000))
        .unwrap_or(25);
    let total = all.len();
    let values: Vec<Value> = all.into_iter().skip(start).take(limit).collect();
    let last = start + values.len() >= total;
    let mut body = json!({"size": values.len(), "limit": limit, "isLastPage": last, "start": start, "values": values});
    if !last {
        body["nextPageStart"] = json!(start + limit);
    }
    json(200, &body)
}

// ---------------------------------------------------------------------------------------------
// Endpoints

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

fn find_project<'a>(dc: &'a DataCenter, key: &str) -> Option<(usize, &'a DcProject)> {
    dc.projects
        .iter()
        .enumerate()
        .find(|(_, p)| p.key.eq_ignore_ascii_case(key))
}

fn project_id(i: usize, p: &DcProject) -> u32 {
    p.id.unwrap_or(i as u32 + 1)
}

fn repo_id(dc: &DataCenter, pi: usize, ri: usize, r: &DcRepository) -> u32 {
    r.id.unwrap_or_else(|| {
        let before: usize = dc
            .projects
            .iter()
            .take(pi)
            .map(|p| p.repositories.len())
            .sum();
        (before + ri + 1) as u32
    })
}

fn project_json(ctx: &Ctx, i: usize, p: &DcProject) -> Value {
    let mut v = json!({
        "key": p.key,
        "id": project_id(i, p),
        "name": p.name.clone().unwrap_or_else(|| p.key.clone()),
        "public": p.public,
        "type": "NORMAL",
        "links": {"self": [{"href": format!("{}/projects/{}", ctx.base, p.key)}]},
    });
    if let Some(d) = &p.description {
        v["description"] = json!(d);
    }
    v
}

/// Schema `RestRepository`.
fn repository_json(ctx: &Ctx, pi: usize, p: &DcProject, ri: usize, r: &DcRepository) -> Value {
    let id = repo_id(ctx.dc, pi, ri, r);
    let key_lower = p.key.to_lowercase();
    json!({
        "slug": r.slug,
        "id": id,
        "name": r.name.clone().unwrap_or_else(|| r.slug.clone()),
        "hierarchyId": format!("{:020x}", h::fnv(&format!("{}/{}", p.key, r.slug))),
        "scmId": "git",
        "state": "AVAILABLE",
        "statusMessage": "Available",
        "forkable": r.forkable,
        "project": project_json(ctx, pi, p),
        "public": r.public,
        "archived": r.archived,
        "links": {
            "clone": [
                {"href": format!("{}/scm/{key_lower}/{}.git", ctx.base, r.slug), "name": "http"},
                {"href": crate::ssh::dc_clone_href(ctx.ssh_port, ctx.req.header("host"), &key_lower, &r.slug), "name": "ssh"},
            ],
            "self": [{"href": format!("{}/projects/{}/repos/{}/browse", ctx.base, p.key, r.slug)}],
        },
    })
}

/// Schema `RestApplicationUser`.
fn user_json(ctx: &Ctx, u: &DcUser) -> Value {
    let mut v = json!({
        "name": u.name,
        "active": true,
        "displayName": u.display_name.clone().unwrap_or_else(|| u.name.clone()),
        "id": user_id(ctx.dc, u),
        "slug": u.slug(),
        "type": "NORMAL",
        "links": {"self": [{"href": format!("{}/users/{}", ctx.base, u.slug())}]},
    });
    if let Some(e) = &u.email {
        v["emailAddress"] = json!(e);
    }
    v
}

fn bot_json(ctx: &Ctx, index: usize, t: &DcToken) -> Value {
    let name = bot_name(t);
    json!({
        "name": name,
        "active": true,
        "displayName": t.name.clone().unwrap_or_else(|| name.clone()),
        "id": bot_id(index),
        "slug": name.to_lowercase(),
        "type": "SERVICE",
        "links": {"self": [{"href": format!("{}/bots/{}", ctx.base, name.to_lowercase())}]},
    })
}

/// Token data, never the secret. `createdDate` and `lastAuthenticated` are epoch milliseconds as
/// Bitbucket sends them (Eclipse Che's BitbucketPersonalAccessToken reads them as `long`); the
/// OpenAPI description types `createdDate` as a date-time string.
fn token_json(ctx: &Ctx, index: usize, t: &DcToken) -> Value {
    let user = match t.kind {
        DcTokenKind::Personal => t
            .user
            .as_deref()
            .and_then(|n| ctx.dc.users.iter().find(|u| u.name.eq_ignore_ascii_case(n)))
            .map(|u| user_json(ctx, u))
            .unwrap_or(Value::Null),
        _ => bot_json(ctx, index, t),
    };
    let mut v = json!({
        "id": t.id,
        "name": t.name.clone().unwrap_or_else(|| format!("token-{}", t.id)),
        "createdDate": created_ms(t, ctx.started),
        "permissions": t.permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        "user": user,
    });
    if let Some(ms) = lock(ctx.last_auth).get(&index) {
        v["lastAuthenticated"] = json!(ms);
    }
    if let Some(d) = t.expiry_days {
        v["expiryDays"] = json!(d);
    }
    v
}

fn list_projects(ctx: &Ctx) -> Resp {
    let min = match ctx.req.query_param("permission").as_deref() {
        None | Some("PROJECT_VIEW") | Some("PROJECT_READ") => Level::Read,
        Some("PROJECT_WRITE") => Level::Write,
        Some("PROJECT_ADMIN") => Level::Admin,
        Some(other) => {
            return errors(400, &format!("Invalid project permission: {other}"), None);
        }
    };
    let name = ctx.req.query_param("name").map(|n| n.trim().to_lowercase());
    let values = ctx
        .dc
        .projects
        .iter()
        .enumerate()
        .filter(|(_, p)| ctx.principal.project_level(p) >= min)
        .filter(|(_, p)| {
            name.as_ref().is_none_or(|n| {
                p.name
                    .as_deref()
                    .unwrap_or(&p.key)
                    .to_lowercase()
                    .contains(n.as_str())
            })
        })
        .map(|(i, p)| project_json(ctx, i, p))
        .collect();
    paged(ctx.req, values)
}

fn get_project(ctx: &Ctx, key: &str) -> Resp {
    match find_project(ctx.dc, key) {
        Some((i, p)) if ctx.principal.project_level(p) >= Level::Read => {
            json(200, &project_json(ctx, i, p))
        }
        _ => no_such_project(key),
    }
}

fn get_repository(ctx: &Ctx, key: &str, slug: &str) -> Resp {
    let Some((pi, p)) = find_project(ctx.dc, key) else {
        return no_such_project(key);
    };
    match p
        .repositories
        .iter()
        .enumerate()
        .find(|(_, r)| r.slug == slug)
    {
        Some((ri, r)) if ctx.principal.repo_level(p, r) >= Level::Read => {
            json(200, &repository_json(ctx, pi, p, ri, r))
        }
        // Invisible and missing repositories look the same.
        _ => no_such_repository(&p.key, slug),
    }
}

/// `GET /rest/api/latest/repos` and `GET /rest/api/latest/projects/{key}/repos`.
fn list_repos(ctx: &Ctx, project: Option<&str>) -> Resp {
    let q = |k: &str| ctx.req.query_param(k).map(|v| v.trim().to_lowercase());
    let min = match ctx.req.query_param("permission").as_deref() {
        None | Some("REPO_READ") => Level::Read,
        Some("REPO_WRITE") => Level::Write,
        Some("REPO_ADMIN") => Level::Admin,
        Some(other) => {
            return errors(
                400,
                &format!("Invalid repository permission: {other}"),
                None,
            );
        }
    };
    if let Some(key) = project
        && find_project(ctx.dc, key)
            .is_none_or(|(_, p)| ctx.principal.project_level(p) < Level::Read)
    {
        return no_such_project(key);
    }
    let project_key = project.map(str::to_lowercase).or_else(|| q("projectkey"));
    let project_name = q("projectname");
    let name = q("name");
    let visibility = q("visibility");
    // datacenter-9.2.swagger.v3.json: `archived` defaults to ACTIVE.
    let archived = q("archived").unwrap_or_else(|| "active".to_owned());
    let mut values = Vec::new();
    for (pi, p) in ctx.dc.projects.iter().enumerate() {
        if project_key
            .as_ref()
            .is_some_and(|k| *k != p.key.to_lowercase())
            || project_name
                .as_ref()
                .is_some_and(|n| *n != p.name.as_deref().unwrap_or(&p.key).to_lowercase())
        {
            continue;
        }
        for (ri, r) in p.repositories.iter().enumerate() {
            let repo_name = r.name.as_deref().unwrap_or(&r.slug).to_lowercase();
            let keep = ctx.principal.repo_level(p, r) >= min
                && name.as_ref().is_none_or(|n| *n == repo_name)
                && match visibility.as_deref() {
                    Some("public") => r.public,
                    Some("private") => !r.public,
                    _ => true,
                }
                && match archived.as_str() {
                    "archived" => r.archived,
                    "all" => true,
                    _ => !r.archived,
                };
            if keep {
                values.push(repository_json(ctx, pi, p, ri, r));
            }
        }
    }
    paged(ctx.req, values)
}

fn repository_missing(ctx: &Ctx, key: &str, slug: &str) -> Resp {
    let Some((_, p)) = find_project(ctx.dc, key) else {
        return no_such_project(key);
    };
    match p.repositories.iter().find(|r| r.slug == slug) {
        Some(r) if ctx.principal.repo_level(p, r) >= Level::Read => not_found(),
        _ => no_such_repository(&p.key, slug),
    }
}

/// `GET /rest/api/latest/users`: any authenticated caller; anonymous callers get 401
/// AuthenticationRequiredException (tests/real-answers/answers.json `dc-401-anonymous-required`).
fn list_users(ctx: &Ctx) -> Resp {
    if matches!(ctx.principal, Principal::Anonymous) {
        return auth_required();
    }
    let filter = ctx.req.query_param("filter").map(|f| f.to_lowercase());
    let values = ctx
        .dc
        .users
        .iter()
        .filter(|u| {
            filter
                .as_ref()
                .is_none_or(|f| u.slug().contains(f.as_str()))
        })
        .map(|u| user_json(ctx, u))
        .collect();
    paged(ctx.req, values)
}

/// `GET /rest/api/latest/admin/permissions/users`: needs the global ADMIN permission; anyone
/// else gets 401 (tests/real-answers/answers.json `dc-401-not-permitted-admin`: a project
/// administrator's token). Tokens carry no global permission.
fn admin_users(ctx: &Ctx) -> Resp {
    let admin = match ctx.principal {
        Principal::Anonymous => return auth_required(),
        Principal::Password(u) => u.global_permission >= Some(DcGlobalPermission::Admin),
        _ => false,
    };
    if !admin {
        return not_permitted();
    }
    let values = ctx
        .dc
        .users
        .iter()
        .filter_map(|u| {
            let p = u.global_permission?;
            Some(json!({"user": user_json(ctx, u), "permission": p.as_str()}))
        })
        .collect();
    paged(ctx.req, values)
}

/// Needs REPO_ADMIN (datacenter-9.2.swagger.v3.json); a lower permission is 401.
fn repository_users(ctx: &Ctx, key: &str, slug: &str) -> Resp {
    let Some((_, p)) = find_project(ctx.dc, key) else {
        return no_such_project(key);
    };
    let Some(r) = p.repositories.iter().find(|r| r.slug == slug) else {
        return no_such_repository(&p.key, slug);
    };
    match ctx.principal.repo_level(p, r) {
        Level::None => return no_such_repository(&p.key, slug),
        Level::Admin => {}
        _ => return not_permitted(),
    }
    let values = ctx
        .dc
        .users
        .iter()
        .filter_map(|u| {
            let perm = r
                .access
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&u.name))
                .map(|(_, p)| p.as_str())?;
            Some(json!({"user": user_json(ctx, u), "permission": perm}))
        })
        .collect();
    paged(ctx.req, values)
}

/// `GET /rest/access-tokens/latest/users/{userSlug}[/{tokenId}]`: only for the authenticated user
/// itself; anyone else gets 401 (a missing permission is 401 on Data Center).
fn user_tokens(ctx: &Ctx, user_slug: &str, id: Option<&str>) -> Resp {
    let Some(me) = ctx.principal.user() else {
        return not_permitted();
    };
    if !me.slug().eq_ignore_ascii_case(user_slug) {
        return not_permitted();
    }
    let mine = ctx.dc.tokens.iter().enumerate().filter(|(_, t)| {
        t.kind == DcTokenKind::Personal
            && !t.revoked
            && t.user
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(&me.name))
    });
    one_or_page(ctx, mine, id)
}

/// `GET /rest/access-tokens/latest/projects/{key}[/repos/{slug}][/{tokenId}]`: needs
/// PROJECT_ADMIN (project tokens) or REPO_ADMIN (repository tokens).
fn resource_tokens(ctx: &Ctx, key: &str, slug: Option<&str>, id: Option<&str>) -> Resp {
    let Some((_, p)) = find_project(ctx.dc, key) else {
        return no_such_project(key);
    };
    let level = match slug {
        None => ctx.principal.project_level(p),
        Some(s) => match p.repositories.iter().find(|r| r.slug == s) {
            Some(r) => ctx.principal.repo_level(p, r),
            None => return no_such_repository(&p.key, s),
        },
    };
    if level < Level::Admin {
        return not_permitted();
    }
    let wanted = if slug.is_some() {
        DcTokenKind::Repository
    } else {
        DcTokenKind::Project
    };
    let tokens = ctx.dc.tokens.iter().enumerate().filter(|(_, t)| {
        t.kind == wanted
            && !t.revoked
            && t.project
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case(&p.key))
            && (slug.is_none() || t.repository.as_deref() == slug)
    });
    one_or_page(ctx, tokens, id)
}

fn one_or_page<'a>(
    ctx: &Ctx,
    tokens: impl Iterator<Item = (usize, &'a DcToken)>,
    id: Option<&str>,
) -> Resp {
    match id {
        None => paged(
            ctx.req,
            tokens.map(|(i, t)| token_json(ctx, i, t)).collect(),
        ),
        Some(id) => {
            let found = tokens.into_iter().find(|(_, t)| t.id == id);
            match found {
                Some((i, t)) => json(200, &token_json(ctx, i, t)),
                // Not confirmed: the exact message and exception of a missing token.
                None => errors(
                    404,
                    &format!("No access token exists with ID {id}."),
                    Some("com.atlassian.bitbucket.auth.NoSuchAccessTokenException"),
                ),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// OAuth 2.0 token endpoint for incoming application links (seed 003; docs/design/bitbucket-api.md):
// authorization code (with or without PKCE) only.

fn oauth_error(code: u16, error: &str, description: &str) -> Resp {
    json(
        code,
        &json!({"error": error, "error_description": description}),
    )
}

fn oauth_token(dc: &DataCenter, req: &Req) -> Resp {
    if req.method != Method::POST {
        return oauth_error(
            405,
            "invalid_request",
            "The token endpoint accepts POST only",
        );
    }
    let form = req.form();
    let field = |k: &str| form.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let (client_id, client_secret) = match req.authorization().map(parse_authorization) {
        Some(Credential::Basic { user, password }) => (Some(user), Some(password)),
        _ => (field("client_id"), field("client_secret")),
    };
    let Some(client) = dc.oauth_clients.iter().find(|c| {
        Some(&c.client_id) == client_id.as_ref() && Some(&c.client_secret) == client_secret.as_ref()
    }) else {
        return oauth_error(401, "invalid_client", "Client authentication failed");
    };
    match field("grant_type").as_deref() {
        Some("authorization_code") => {
            if field("redirect_uri").is_some_and(|r| r != client.redirect_url) {
                return oauth_error(
                    400,
                    "invalid_request",
                    "redirect_uri does not match the redirect URI registered for this client",
                );
            }
            oauth_error(
                400,
                "invalid_grant",
                "The authorization code is invalid or has expired",
            )
        }
        Some("refresh_token") => oauth_error(
            400,
            "invalid_grant",
            "The refresh token is invalid or has expired",
        ),
        None => oauth_error(400, "invalid_request", "Missing grant_type parameter"),
        Some(other) => oauth_error(
            400,
            "unsupported_grant_type",
            &format!("Unsupported grant type: {other}"),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// git over HTTPS (docs/design/bitbucket-api.md, "Git over HTTPS"); the protocol is in `git.rs`.

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
