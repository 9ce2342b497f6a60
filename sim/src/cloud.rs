//! Bitbucket Cloud: `/2.0/...` and `/site/oauth2/access_token`.
//!
//! Behaviour comes from docs/design/bitbucket-api.md (sources cited there and below);
//! JSON shapes from `cloud.swagger.v3.json` (`account`/`user`, `workspace`, `repository`,
//! `paginated_repositories`, `error`).

use std::collections::BTreeSet;
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use crate::fixture::{
    Cloud, CloudAccess, CloudRepository, CloudToken, CloudTokenKind, CloudUser, Workspace,
};
use crate::http::{self as h, Credential, Req, Resp, parse_authorization};
use crate::state::{RATE_LIMITED_BODY, Shared, lock};

const API: &str = "https://api.bitbucket.org/2.0";
const WEB: &str = "https://bitbucket.org";
const CREATED_ON: &str = "2020-01-01T00:00:00+00:00";

/// docs/design/bitbucket-api.md, "Errors": the same text for invalid, revoked and expired tokens.
const TOKEN_INVALID: &str = "Token is invalid, expired, or not supported for this endpoint.";
/// docs/design/bitbucket-api.md, "Learning a credential's scopes" (Renovate reads `detail.required`).
const SCOPES_LACKING: &str = "Your credentials lack one or more required privilege scopes.";
/// docs/design/bitbucket-api.md, "Errors": no access and no such repository look the same.
const REPO_NOT_FOUND: &str = "You may not have access to this repository or it no longer exists in this workspace. If you think this repository exists and you have access, make sure you are authenticated.";
/// tests/real-answers/answers.json `cloud-401-access-token-expired` (and, with the hint,
/// `cloud-401-access-token-expired-refresh`).
const ACCESS_TOKEN_EXPIRED: &str = "Access token expired.";
const ACCESS_TOKEN_EXPIRED_HINT: &str = " Use your refresh token to obtain a new access token.";
/// tests/real-answers/answers.json `cloud-401-login-failed-text`: the whole plain-text body.
const LOGIN_FAILED: &str = "Login failed due to incorrect login credentials or method.\nFor information on authentication methods for Bitbucket Cloud APIs, visit:\n    https://developer.atlassian.com/cloud/bitbucket/rest/intro/#authentication\nIf you are unsure of which login details or login method to use, visit:\n    https://support.atlassian.com/bitbucket-cloud/docs/log-into-or-connect-to-bitbucket-cloud/";
/// tests/real-answers/answers.json `cloud-401-account-password`.
const ACCOUNT_PASSWORD: &str = "Bitbucket Cloud recently stopped supporting account passwords for API authentication.\nSee our community post for more details: https://atlassian.community/t5/x/x/ba-p/1948231\nApp passwords are recommended for most use cases and can be created in your Personal settings:\nhttps://bitbucket.org/account/settings/app-passwords/\nFor more details on API authentication methods see our documentation:\nhttps://developer.atlassian.com/cloud/bitbucket/rest/intro/#authentication";
/// tests/real-answers/answers.json `cloud-404-no-api`.
const NO_API: &str = "There is no API hosted at this URL.\n\nFor information about our API's, please refer to the documentation at: https://developer.atlassian.com/bitbucket/api/2/reference/";

/// Marks a 403 for missing scopes, so `handle` can leave the scope headers off it.
#[derive(Clone, Copy)]
struct ScopeError;

/// Not documented: the message for an access token on a user-only endpoint (`GET /2.0/user`
/// answers 403 to access tokens, docs/design/bitbucket-api.md).
const USER_ONLY: &str = "This API is only accessible with the following authentication types: session, password, apppassword, api_token";

// ---------------------------------------------------------------------------------------------
// Credentials and scopes

/// What `x-credential-type` says (docs/design/bitbucket-api.md, "Learning a credential's scopes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CredType {
    ApiToken,
    RepoAccessToken,
    ProjectAccessToken,
    WorkspaceAccessToken,
    OAuth2,
}

impl CredType {
    fn header(self) -> &'static str {
        match self {
            CredType::ApiToken => "api_token",
            CredType::RepoAccessToken => "repo_access_token",
            CredType::ProjectAccessToken => "project_access_token",
            CredType::WorkspaceAccessToken => "workspace_access_token",
            CredType::OAuth2 => "oauth2",
        }
    }
}

struct Identity<'a> {
    cred: CredType,
    /// API tokens and OAuth tokens act as a user; access tokens do not.
    user: Option<&'a CloudUser>,
    /// Access tokens: the token (for its workspace/project/repository).
    token: Option<&'a CloudToken>,
    granted: &'a [String],
    /// Legacy scopes with their implications added (not used for API tokens).
    legacy: BTreeSet<String>,
    rate_key: String,
}

/// Which legacy scopes imply which. developer.atlassian.com/cloud/bitbucket/bitbucket-cloud-rest-api-scopes:
/// `repository:write` implies `repository`; `repository:admin` does NOT imply `repository` or
/// `repository:write` (it only gives the admin features); `pullrequest` implies `repository`;
/// `pullrequest:write` implies `pullrequest` and `repository:write`. support.atlassian.com
/// app-password-permissions: `project` also grants `repository` for the projects' repositories.
/// The remaining `X:write -> X` / `X:admin -> X` pairs follow the usual ladder (not spelled out
/// for each scope in the docs). `webhook` and `wiki` have no levels.
const IMPLIES: &[(&str, &[&str])] = &[
    ("repository:write", &["repository"]),
    ("pullrequest", &["repository"]),
    ("pullrequest:write", &["pullrequest", "repository:write"]),
    ("project", &["repository"]),
    ("project:admin", &["project"]),
    ("account:write", &["account"]),
    ("team:write", &["team"]),
    ("snippet:write", &["snippet"]),
    ("issue:write", &["issue"]),
    ("pipeline:write", &["pipeline"]),
    ("pipeline:variable", &["pipeline:write"]),
    ("runner:write", &["runner"]),
];

pub(crate) fn expand_legacy(granted: &[String]) -> BTreeSet<String> {
    let mut set: BTreeSet<String> = granted.iter().cloned().collect();
    loop {
        let before = set.len();
        for (scope, implied) in IMPLIES {
            if set.contains(*scope) {
                for i in *implied {
                    set.insert((*i).to_owned());
                }
            }
        }
        if set.len() == before {
            return set;
        }
    }
}

/// The scope an endpoint needs, in both vocabularies: legacy (OAuth consumers, access tokens)
/// and granular (API tokens). The pairs come from each path's `security` and
/// `x-atlassian-oauth2-scopes` in cloud.swagger.v3.json.
#[derive(Debug, Clone, Copy)]
struct Need {
    legacy: Option<&'static str>,
    granular: &'static str,
}

const NEED_USER: Need = Need {
    legacy: Some("account"),
    granular: "read:user:bitbucket",
};
/// `/workspaces/{workspace}`: `security: [{oauth2: []}]`, so no legacy scope.
const NEED_WORKSPACE: Need = Need {
    legacy: None,
    granular: "read:workspace:bitbucket",
};
const NEED_REPOSITORY: Need = Need {
    legacy: Some("repository"),
    granular: "read:repository:bitbucket",
};

impl Identity<'_> {
    /// API tokens: a write scope does not imply read (support.atlassian.com/bitbucket-cloud/docs/api-token-permissions),
    /// so the granular name must be granted as such.
    fn has(&self, need: Need) -> bool {
        if self.cred == CredType::ApiToken {
            self.granted.iter().any(|s| s == need.granular)
        } else {
            need.legacy.is_none_or(|l| self.legacy.contains(l))
        }
    }

    fn accepted(&self, need: Need) -> Option<&'static str> {
        if self.cred == CredType::ApiToken {
            Some(need.granular)
        } else {
            need.legacy
        }
    }

    fn require(&self, need: Need) -> Result<(), Resp> {
        if self.has(need) {
            return Ok(());
        }
        // docs/design/bitbucket-api.md: `detail` is an object {granted, required}. cloud.swagger.v3.json's
        // `error` schema types `error.detail` as a string; the documented behaviour wins.
        let required: Vec<&str> = self.accepted(need).into_iter().collect();
        let mut r = h::json(
            403,
            &json!({"type": "error", "error": {"message": SCOPES_LACKING, "detail": {"required": required, "granted": self.granted}}}),
        );
        r.extensions_mut().insert(ScopeError);
        Err(r)
    }

    /// The level an access token's scopes give on repositories of its own resource.
    fn token_level(&self) -> Option<CloudAccess> {
        if self.legacy.contains("repository:admin") {
            Some(CloudAccess::Admin)
        } else if self.legacy.contains("repository:write") {
            Some(CloudAccess::Write)
        } else if self.legacy.contains("repository") {
            Some(CloudAccess::Read)
        } else {
            None
        }
    }

    /// Explicit access (what `role=` filters on) to a repository.
    fn explicit_access(&self, ws: &Workspace, repo: &CloudRepository) -> Option<CloudAccess> {
        if let Some(user) = self.user {
            return repo.access.get(&user.username).copied();
        }
        let token = self.token?;
        if token.workspace.as_deref() != Some(ws.slug.as_str()) {
            return None;
        }
        let in_resource = match token.kind {
            CloudTokenKind::WorkspaceAccessToken => true,
            CloudTokenKind::ProjectAccessToken => token
                .project
                .as_deref()
                .or(token.repository.as_deref())
                .is_some_and(|p| p.eq_ignore_ascii_case(&repo.project)),
            CloudTokenKind::RepositoryAccessToken => {
                token.repository.as_deref() == Some(repo.slug.as_str())
            }
            CloudTokenKind::ApiToken => false,
        };
        if in_resource {
            self.token_level()
        } else {
            None
        }
    }

    fn member_of(&self, ws: &Workspace) -> bool {
        match (self.user, self.token) {
            (Some(u), _) => {
                ws.members.contains(&u.username)
                    || ws
                        .repositories
                        .iter()
                        .any(|r| r.access.contains_key(&u.username))
            }
            (None, Some(t)) => t.workspace.as_deref() == Some(ws.slug.as_str()),
            (None, None) => false,
        }
    }
}

fn error_json(message: &str) -> Value {
    json!({"type": "error", "error": {"message": message}})
}

fn token_invalid() -> Resp {
    h::json(401, &error_json(TOKEN_INVALID))
}

/// Wrong Basic credentials: a plain-text 401 (tests/real-answers/answers.json
/// `cloud-401-login-failed-text`) with a `BitbucketCustom` challenge
/// (`cloud-401-www-authenticate-bitbucketcustom`). App passwords are retired for good
/// (community.atlassian.com announcements 3040975, 3237429), so every app password lands here too.
fn basic_rejected(body: &str) -> Resp {
    let mut r = h::bytes(401, "text/plain", body.to_owned());
    h::set_header(
        &mut r,
        "www-authenticate",
        "BitbucketCustom realm=\"Bitbucket.org HTTP\"",
    );
    r
}

/// git over HTTPS asks without credentials first and sends them only after a 401 with a Basic
/// challenge, which is what bitbucket.org's git endpoint sends (the REST API's BitbucketCustom
/// challenge would leave git without a way to answer).
fn git_rejected() -> Resp {
    let mut r = h::bytes(401, "text/plain", LOGIN_FAILED.to_owned());
    h::set_header(
        &mut r,
        "www-authenticate",
        "Basic realm=\"Bitbucket.org HTTP\"",
    );
    r
}

enum Auth<'a> {
    Anonymous,
    Ok(Identity<'a>),
    Rejected(Resp),
}

fn authenticate<'a>(shared: &'a Shared, req: &Req) -> Auth<'a> {
    let cloud = &shared.fixture.cloud;
    let Some(value) = req.authorization() else {
        return Auth::Anonymous;
    };
    match parse_authorization(value) {
        // support.atlassian.com/bitbucket-cloud/docs/using-api-tokens: Basic <email>:<API token>.
        Credential::Basic { user, password } => {
            let owner = cloud
                .users
                .iter()
                .find(|u| u.email.eq_ignore_ascii_case(&user));
            let token = owner.and_then(|o| {
                cloud.tokens.iter().find(|t| {
                    t.kind == CloudTokenKind::ApiToken
                        && t.user.as_deref() == Some(o.username.as_str())
                        && t.value == password
                })
            });
            match (owner, token) {
                // A token created without scopes is refused with the generic token text
                // (tests/real-answers/answers.json `cloud-401-token-invalid`, its sources).
                (Some(_), Some(t)) if t.scopes.is_empty() => Auth::Rejected(token_invalid()),
                (Some(owner), Some(t)) if !t.revoked && !t.expired => Auth::Ok(Identity {
                    cred: CredType::ApiToken,
                    user: Some(owner),
                    token: None,
                    granted: &t.scopes,
                    legacy: BTreeSet::new(),
                    rate_key: t.value.clone(),
                }),
                (Some(_), Some(_)) => Auth::Rejected(token_invalid()),
                _ => {
                    // The account's own password, by username or email.
                    let account = cloud.users.iter().any(|u| {
                        (u.username == user || u.email.eq_ignore_ascii_case(&user))
                            && u.password.as_deref() == Some(password.as_str())
                    });
                    Auth::Rejected(basic_rejected(if account {
                        ACCOUNT_PASSWORD
                    } else {
                        LOGIN_FAILED
                    }))
                }
            }
        }
        Credential::Bearer(value) => {
            if let Some(t) = cloud.tokens.iter().find(|t| t.value == value) {
                let cred = match t.kind {
                    // docs/design/bitbucket-api.md: an API token sent as Bearer gets 401.
                    CloudTokenKind::ApiToken => return Auth::Rejected(token_invalid()),
                    CloudTokenKind::RepositoryAccessToken => CredType::RepoAccessToken,
                    CloudTokenKind::ProjectAccessToken => CredType::ProjectAccessToken,
                    CloudTokenKind::WorkspaceAccessToken => CredType::WorkspaceAccessToken,
                };
                if t.revoked || t.expired {
                    return Auth::Rejected(token_invalid());
                }
                return Auth::Ok(Identity {
                    cred,
                    user: None,
                    token: Some(t),
                    granted: &t.scopes,
                    legacy: expand_legacy(&t.scopes),
                    rate_key: t.value.clone(),
                });
            }
            let ttl = Duration::from_secs(cloud.oauth_token_ttl_seconds);
            let issued = lock(&shared.cloud.issued)
                .get(&value)
                .map(|i| (i.consumer, i.at.elapsed() < ttl));
            match issued.and_then(|(c, live)| cloud.oauth_consumers.get(c).map(|c| (c, live))) {
                Some((consumer, true)) => Auth::Ok(Identity {
                    cred: CredType::OAuth2,
                    user: consumer
                        .user
                        .as_ref()
                        .and_then(|u| cloud.users.iter().find(|x| x.username == *u)),
                    token: None,
                    granted: &consumer.scopes,
                    legacy: expand_legacy(&consumer.scopes),
                    rate_key: value,
                }),
                // An access token that outlived its lifetime says so; unknown ones do not.
                Some((_, false)) => {
                    let mut m = ACCESS_TOKEN_EXPIRED.to_owned();
                    if cloud.expired_access_token_hint {
                        m.push_str(ACCESS_TOKEN_EXPIRED_HINT);
                    }
                    Auth::Rejected(h::json(401, &error_json(&m)))
                }
                None => Auth::Rejected(token_invalid()),
            }
        }
        Credential::Malformed => Auth::Rejected(basic_rejected(LOGIN_FAILED)),
    }
}

// ---------------------------------------------------------------------------------------------
// Routing

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

/// `cloud-404-no-api`: "Resource not found" with the no-API detail.
pub(crate) fn not_found() -> Resp {
    h::json(
        404,
        &json!({"type": "error", "error": {"message": "Resource not found", "detail": NO_API}}),
    )
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

/// `GET /2.0/repositories`: every public repository (cloud.swagger.v3.json, deprecated but
/// served), one page.
fn list_public_repositories(
    cloud: &Cloud,
    _req: &Req,
    id: Option<&Identity>,
    _segs: &[&str],
) -> Resp {
    if let Some(id) = id
        && let Err(r) = id.require(NEED_REPOSITORY)
    {
        return r;
    }
    let values: Vec<Value> = cloud
        .workspaces
        .iter()
        .flat_map(|ws| {
            ws.repositories
                .iter()
                .filter(|r| !r.is_private)
                .map(move |r| repository_json(ws, r))
        })
        .collect();
    h::json(
        200,
        &json!({"pagelen": values.len().max(1), "values": values}),
    )
}

fn get_user(_cloud: &Cloud, _req: &Req, id: Option<&Identity>, _segs: &[&str]) -> Resp {
    let Some(id) = id else {
        // Not documented; the OpenAPI description lists 401 "When the request wasn't authenticated".
        return h::json(401, &error_json("Unauthorized"));
    };
    // docs/design/bitbucket-api.md: access tokens get 403 on GET /2.0/user (they are not users).
    let Some(user) = id.user else {
        return h::json(403, &error_json(USER_ONLY));
    };
    if let Err(r) = id.require(NEED_USER) {
        return r;
    }
    h::json(200, &user_json(user))
}

fn get_workspace(cloud: &Cloud, _req: &Req, id: Option<&Identity>, segs: &[&str]) -> Resp {
    let slug = segs[2];
    if let Some(id) = id
        && let Err(r) = id.require(NEED_WORKSPACE)
    {
        return r;
    }
    match cloud.workspaces.iter().find(|w| w.slug == slug) {
        Some(ws) if id.is_some_and(|i| i.member_of(ws)) => h::json(200, &workspace_json(ws)),
        // docs/design/bitbucket-api.md, "Errors": unknown workspace. A private workspace the caller does not
        // belong to answers the same (not confirmed).
        _ => h::json(
            404,
            &error_json(&format!("No workspace with identifier '{slug}'.")),
        ),
    }
}

fn get_repository(cloud: &Cloud, _req: &Req, id: Option<&Identity>, segs: &[&str]) -> Resp {
    if let Some(id) = id
        && let Err(r) = id.require(NEED_REPOSITORY)
    {
        return r;
    }
    let (ws_slug, slug) = (segs[2], segs[3]);
    let found = cloud
        .workspaces
        .iter()
        .find(|w| w.slug == ws_slug)
        .and_then(|ws| {
            ws.repositories
                .iter()
                .find(|r| r.slug == slug)
                .map(|r| (ws, r))
        });
    match found {
        Some((ws, repo)) if visible(id, ws, repo) => h::json(200, &repository_json(ws, repo)),
        _ => h::json(404, &error_json(REPO_NOT_FOUND)),
    }
}

fn visible(id: Option<&Identity>, ws: &Workspace, repo: &CloudRepository) -> bool {
    !repo.is_private || id.is_some_and(|i| i.explicit_access(ws, repo).is_some())
}

/// `role` as cloud.swagger.v3.json describes it: member = explicit read, contributor = write,
/// admin = admin, owner = repositories owned by the user (none: workspaces own repositories).
fn role_threshold(role: Option<&str>) -> Result<Option<Option<CloudAccess>>, ()> {
    match role {
        None => Ok(None),
        Some("member") => Ok(Some(Some(CloudAccess::Read))),
        Some("contributor") => Ok(Some(Some(CloudAccess::Write))),
        Some("admin") => Ok(Some(Some(CloudAccess::Admin))),
        Some("owner") => Ok(Some(None)),
        Some(_) => Err(()),
    }
}

/// The subset of BBQL (developer.atlassian.com/cloud/bitbucket/rest/intro/#filtering) the
/// simulator understands: `slug="x"` or `name="x"`.
fn parse_query(q: &str) -> Option<(&str, &str)> {
    let (field, value) = q.split_once('=')?;
    let field = field.trim();
    let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
    matches!(field, "slug" | "name").then_some((field, value))
}

fn list_repositories(cloud: &Cloud, req: &Req, id: Option<&Identity>, segs: &[&str]) -> Resp {
    if let Some(id) = id
        && let Err(r) = id.require(NEED_REPOSITORY)
    {
        return r;
    }
    let ws_slug = segs[2];
    let Some(ws) = cloud.workspaces.iter().find(|w| w.slug == ws_slug) else {
        return h::json(
            404,
            &error_json(&format!("No workspace with identifier '{ws_slug}'.")),
        );
    };
    let role = req.query_param("role");
    let Ok(threshold) = role_threshold(role.as_deref()) else {
        return h::json(
            400,
            &error_json(&format!(
                "Invalid role: '{}'. Valid values are member, contributor, admin and owner.",
                role.unwrap_or_default()
            )),
        );
    };
    let q = req.query_param("q");
    let filter = match q.as_deref().map(parse_query) {
        None => None,
        Some(Some(f)) => Some(f),
        Some(None) => {
            return h::json(
                400,
                &error_json(&format!(
                    "Invalid query: the simulator understands only slug=\"...\" or name=\"...\" (got {})",
                    q.unwrap_or_default()
                )),
            );
        }
    };
    let page: usize = req
        .query_param("page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let pagelen: usize = req
        .query_param("pagelen")
        .and_then(|p| p.parse().ok())
        .map(|p: usize| p.clamp(1, 100))
        .unwrap_or(10);

    let matching: Vec<&CloudRepository> = ws
        .repositories
        .iter()
        .filter(|r| match threshold {
            None => visible(id, ws, r),
            Some(None) => false,
            Some(Some(min)) => id
                .and_then(|i| i.explicit_access(ws, r))
                .is_some_and(|a| a >= min),
        })
        .filter(|r| match filter {
            None => true,
            Some(("slug", v)) => r.slug == v,
            Some((_, v)) => repo_name(r) == v,
        })
        .collect();
    let values: Vec<Value> = matching
        .iter()
        .skip((page - 1) * pagelen)
        .take(pagelen)
        .map(|r| repository_json(ws, r))
        .collect();
    let mut body =
        json!({"pagelen": pagelen, "page": page, "size": matching.len(), "values": values});
    if page * pagelen < matching.len() {
        let mut s = form_urlencoded::Serializer::new(String::new());
        if let Some(r) = &role {
            s.append_pair("role", r);
        }
        if let Some(q) = &q {
            s.append_pair("q", q);
        }
        s.append_pair("page", &(page + 1).to_string());
        s.append_pair("pagelen", &pagelen.to_string());
        body["next"] = json!(format!("{API}/repositories/{ws_slug}?{}", s.finish()));
    }
    h::json(200, &body)
}

// ---------------------------------------------------------------------------------------------
// JSON shapes (cloud.swagger.v3.json components/schemas)

fn link(href: String) -> Value {
    json!({ "href": href })
}

fn enc_uuid(uuid: &str) -> String {
    uuid.replace('{', "%7B").replace('}', "%7D")
}

fn user_uuid(u: &CloudUser) -> String {
    u.uuid
        .clone()
        .unwrap_or_else(|| h::uuid_for(&format!("user:{}", u.username)))
}

fn account_id(u: &CloudUser) -> String {
    u.account_id.clone().unwrap_or_else(|| {
        format!(
            "557058:{}",
            h::uuid_for(&u.username).trim_matches(['{', '}'])
        )
    })
}

/// Schema `user` (an `account`).
fn user_json(u: &CloudUser) -> Value {
    let uuid = user_uuid(u);
    let created = u
        .created_on
        .map(|t| t.to_string())
        .unwrap_or_else(|| CREATED_ON.to_owned());
    json!({
        "type": "user",
        "uuid": uuid,
        "account_id": account_id(u),
        // Recorded on the caller's own GET /2.0/user (tests/real-answers/answers.json
        // `cloud-user-200-goscm`); the description's `user` allows more properties.
        "username": u.username,
        "nickname": u.username,
        "display_name": u.display_name.clone().unwrap_or_else(|| u.username.clone()),
        "account_status": "active",
        "is_staff": false,
        "created_on": created,
        "links": {
            "self": link(format!("{API}/users/{}", enc_uuid(&uuid))),
            "html": link(format!("{WEB}/{}/", enc_uuid(&uuid))),
            "avatar": link(format!("https://secure.gravatar.com/avatar/{:032x}?d=identicon", u128::from(h::fnv(&u.email)))),
            "repositories": link(format!("{API}/repositories/{}", enc_uuid(&uuid))),
        },
    })
}

fn ws_uuid(ws: &Workspace) -> String {
    ws.uuid
        .clone()
        .unwrap_or_else(|| h::uuid_for(&format!("workspace:{}", ws.slug)))
}

fn ws_name(ws: &Workspace) -> String {
    ws.name.clone().unwrap_or_else(|| ws.slug.clone())
}

/// Schema `workspace`.
fn workspace_json(ws: &Workspace) -> Value {
    let s = &ws.slug;
    json!({
        "type": "workspace",
        "uuid": ws_uuid(ws),
        "name": ws_name(ws),
        "slug": s,
        "is_private": true,
        "is_privacy_enforced": false,
        "forking_mode": "allow_forks",
        "created_on": CREATED_ON,
        "links": {
            "avatar": link(format!("{WEB}/workspaces/{s}/avatar/?ts=0")),
            "html": link(format!("{WEB}/{s}/")),
            "members": link(format!("{API}/workspaces/{s}/members")),
            "owners": link(format!("{API}/workspaces/{s}/members?q=permission%3D%22owner%22")),
            "projects": link(format!("{API}/workspaces/{s}/projects")),
            "repositories": link(format!("{API}/repositories/{s}")),
            "snippets": link(format!("{API}/snippets/{s}")),
            "self": link(format!("{API}/workspaces/{s}")),
        },
    })
}

fn repo_name(r: &CloudRepository) -> String {
    r.name.clone().unwrap_or_else(|| r.slug.clone())
}

/// Schema `repository`.
fn repository_json(ws: &Workspace, r: &CloudRepository) -> Value {
    let full = format!("{}/{}", ws.slug, r.slug);
    let api = format!("{API}/repositories/{full}");
    let ws_uuid = ws_uuid(ws);
    let key = &r.project;
    json!({
        "type": "repository",
        "full_name": full,
        "name": repo_name(r),
        "slug": r.slug,
        "uuid": r.uuid.clone().unwrap_or_else(|| h::uuid_for(&format!("repository:{full}"))),
        "description": "",
        "is_private": r.is_private,
        "scm": "git",
        "fork_policy": if r.is_private { "no_public_forks" } else { "allow_forks" },
        "language": "",
        "size": 0,
        "has_issues": false,
        "has_wiki": false,
        "created_on": CREATED_ON,
        "updated_on": CREATED_ON,
        "links": {
            "self": link(api.clone()),
            "html": link(format!("{WEB}/{full}")),
            "avatar": link(format!("{WEB}/{full}/avatar/32/")),
            "pullrequests": link(format!("{api}/pullrequests")),
            "commits": link(format!("{api}/commits")),
            "forks": link(format!("{api}/forks")),
            "watchers": link(format!("{api}/watchers")),
            "downloads": link(format!("{api}/downloads")),
            "hooks": link(format!("{api}/hooks")),
            "clone": [
                {"name": "https", "href": format!("{WEB}/{full}.git")},
                // scp-style, as Bitbucket sends it (not an RFC 3986 URI, although the schema says
                // format: uri).
                {"name": "ssh", "href": format!("git@bitbucket.org:{full}.git")},
            ],
        },
        "owner": {
            "type": "team",
            "uuid": ws_uuid,
            "username": ws.slug,
            "display_name": ws_name(ws),
            "links": {
                "self": link(format!("{API}/workspaces/{}", enc_uuid(&ws_uuid))),
                "html": link(format!("{WEB}/{}/", enc_uuid(&ws_uuid))),
                "avatar": link(format!("{WEB}/account/{}/avatar/", ws.slug)),
            },
        },
        "workspace": {
            "type": "workspace",
            "uuid": ws_uuid,
            "slug": ws.slug,
            "name": ws_name(ws),
            "links": {
                "self": link(format!("{API}/workspaces/{}", ws.slug)),
                "html": link(format!("{WEB}/{}/", ws.slug)),
                "avatar": link(format!("{WEB}/workspaces/{}/avatar/?ts=0", ws.slug)),
            },
        },
        "project": {
            "type": "project",
            "key": key,
            "uuid": h::uuid_for(&format!("project:{}/{key}", ws.slug)),
            "name": key,
            "links": {
                "html": link(format!("{WEB}/{}/workspace/projects/{key}", ws.slug)),
                "avatar": link(format!("{WEB}/{}/workspace/projects/{key}/avatar/32", ws.slug)),
            },
        },
        "mainbranch": {"type": "branch", "name": r.mainbranch},
    })
}

// ---------------------------------------------------------------------------------------------
// OAuth 2.0 token endpoint (developer.atlassian.com/cloud/bitbucket/oauth-2)

fn oauth_error(code: u16, error: &str, description: &str) -> Resp {
    h::json(
        code,
        &json!({"error": error, "error_description": description}),
    )
}

fn oauth_token(shared: &Shared, req: &Req) -> Resp {
    if req.method != Method::POST {
        return oauth_error(
            405,
            "invalid_request",
            "The token endpoint accepts POST only",
        );
    }
    let cloud = &shared.fixture.cloud;
    let form = req.form();
    let field = |k: &str| form.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    // Client authentication: HTTP Basic client_id:secret, or client_id/client_secret in the form.
    let (client_id, client_secret) = match req.authorization().map(parse_authorization) {
        Some(Credential::Basic { user, password }) => (Some(user), Some(password)),
        _ => (field("client_id"), field("client_secret")),
    };
    // tests/real-answers/answers.json `cloud-token-unauthorized-client-no-auth` and
    // `cloud-token-400-unauthorized-client`: 400 unauthorized_client, not RFC 6749's 401.
    if client_id.is_none() {
        return oauth_error(
            400,
            "unauthorized_client",
            "Requests must be authenticated using OAuth client credentials",
        );
    }
    let consumer = cloud.oauth_consumers.iter().enumerate().find(|(_, c)| {
        Some(&c.key) == client_id.as_ref() && Some(&c.secret) == client_secret.as_ref()
    });
    let Some((index, consumer)) = consumer else {
        return oauth_error(
            400,
            "unauthorized_client",
            "Invalid OAuth client credentials",
        );
    };
    match field("grant_type").as_deref() {
        Some("client_credentials") => {
            // `cloud-token-400-public-consumer`: the consumer must be private.
            if !consumer.private {
                return oauth_error(
                    400,
                    "invalid_grant",
                    "Cannot use client_credentials with a consumer marked as \"public\". Calls for auto generated consumers should use urn:bitbucket:oauth2:jwt instead.",
                );
            }
            issue_response(shared, index, "client_credentials")
        }
        Some("authorization_code") => {
            // confluence.atlassian.com/bitbucket/oauth-on-bitbucket-238027431.html: a redirect URL
            // given in a request must extend the consumer's callback URL (it may append to it).
            if let (Some(given), Some(registered)) = (field("redirect_uri"), &consumer.callback_url)
                && !given.starts_with(registered.as_str())
            {
                return oauth_error(
                    400,
                    "invalid_request",
                    "redirect_uri does not match the redirect URI registered for this client",
                );
            }
            // No authorization step exists here, so no code is ever valid.
            oauth_error(
                400,
                "invalid_grant",
                "The authorization code is invalid or has expired",
            )
        }
        Some("refresh_token") => {
            let known = field("refresh_token")
                .and_then(|t| lock(&shared.cloud.refresh).get(&t).copied())
                .is_some_and(|c| c == index);
            if known {
                issue_response(shared, index, "refresh_token")
            } else {
                oauth_error(400, "invalid_grant", "Invalid refresh_token")
            }
        }
        None => oauth_error(400, "invalid_request", "Missing grant_type parameter"),
        Some(other) => oauth_error(
            400,
            "unsupported_grant_type",
            &format!("Unsupported grant type: {other}"),
        ),
    }
}

fn issue_response(shared: &Shared, consumer: usize, state: &str) -> Resp {
    let scopes = shared
        .fixture
        .cloud
        .oauth_consumers
        .get(consumer)
        .map(|c| c.scopes.join(" "))
        .unwrap_or_default();
    let (access, refresh) = shared.cloud.issue(consumer);
    h::json(
        200,
        &json!({
            "access_token": access,
            "scopes": scopes,
            "expires_in": shared.fixture.cloud.oauth_token_ttl_seconds,
            "token_type": "bearer",
            "state": state,
            "refresh_token": refresh,
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// git over HTTPS (docs/design/bitbucket-api.md, "Git over HTTPS"); the protocol is in `git.rs`.

/// Atlassian KB "Error 403 when performing Git operations" (the texts git prints after `remote:`).
const GIT_IP_NOT_ALLOWED: &str = "To access this repository, an admin must whitelist your IP.";
const GIT_TWO_STEP: &str = "To access this repository, enable two-step authentication.";
const GIT_NO_ACCESS: &str = "The requested repository either does not exist or you do not have access. If you believe this repository exists and you have access, make sure you're authenticated.";

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

/// The repository's main branch, for its advertised HEAD.
pub(crate) fn git_mainbranch(shared: &Shared, ws: &str, slug: &str) -> Option<String> {
    shared
        .fixture
        .cloud
        .workspaces
        .iter()
        .find(|w| w.slug == ws)?
        .repositories
        .iter()
        .find(|r| r.slug == slug)
        .map(|r| r.mainbranch.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_scope_implications() {
        let s = |v: &[&str]| expand_legacy(&v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>());
        assert!(s(&["repository:write"]).contains("repository"));
        assert!(!s(&["repository:admin"]).contains("repository"));
        let pr = s(&["pullrequest:write"]);
        assert!(
            pr.contains("repository:write")
                && pr.contains("repository")
                && pr.contains("pullrequest")
        );
        assert!(s(&["account:write"]).contains("account"));
        assert!(s(&["pipeline:variable"]).contains("pipeline"));
    }

    #[test]
    fn bbql_subset() {
        assert_eq!(parse_query("slug=\"app\""), Some(("slug", "app")));
        assert_eq!(parse_query("name = \"My App\""), Some(("name", "My App")));
        assert_eq!(parse_query("slug~\"app\""), None);
        assert_eq!(parse_query("owner=\"x\""), None);
    }

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
