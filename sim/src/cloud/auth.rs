//! Who a Bitbucket Cloud credential is: API tokens in Basic, access tokens and OAuth access
//! tokens as Bearer, and the refusals of everything else (account and app passwords, unknown,
//! revoked and expired tokens); and whether its scopes allow an endpoint, in the legacy and the
//! granular vocabulary.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use crate::fixture::{CloudToken, CloudTokenKind, CloudUser};
use crate::http::{self as h, Credential, Req, Resp, parse_authorization};
use crate::state::{Shared, lock};

use super::answers::{
    ACCESS_TOKEN_EXPIRED, ACCESS_TOKEN_EXPIRED_HINT, ACCOUNT_PASSWORD, LOGIN_FAILED,
    SCOPES_LACKING, ScopeError, basic_rejected, error_json, token_invalid,
};

/// What `x-credential-type` says (docs/design/bitbucket-api.md, "Learning a credential's scopes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CredType {
    ApiToken,
    RepoAccessToken,
    ProjectAccessToken,
    WorkspaceAccessToken,
    OAuth2,
}

impl CredType {
    pub(super) fn header(self) -> &'static str {
        match self {
            CredType::ApiToken => "api_token",
            CredType::RepoAccessToken => "repo_access_token",
            CredType::ProjectAccessToken => "project_access_token",
            CredType::WorkspaceAccessToken => "workspace_access_token",
            CredType::OAuth2 => "oauth2",
        }
    }
}

pub(super) struct Identity<'a> {
    pub(super) cred: CredType,
    /// API tokens and OAuth tokens act as a user; access tokens do not.
    pub(super) user: Option<&'a CloudUser>,
    /// Access tokens: the token (for its workspace/project/repository).
    pub(super) token: Option<&'a CloudToken>,
    pub(super) granted: &'a [String],
    /// Legacy scopes with their implications added (not used for API tokens).
    pub(super) legacy: BTreeSet<String>,
    pub(super) rate_key: String,
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

fn expand_legacy(granted: &[String]) -> BTreeSet<String> {
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
pub(super) struct Need {
    legacy: Option<&'static str>,
    granular: &'static str,
}

pub(super) const NEED_USER: Need = Need {
    legacy: Some("account"),
    granular: "read:user:bitbucket",
};
/// `/workspaces/{workspace}`: `security: [{oauth2: []}]`, so no legacy scope.
pub(super) const NEED_WORKSPACE: Need = Need {
    legacy: None,
    granular: "read:workspace:bitbucket",
};
pub(super) const NEED_REPOSITORY: Need = Need {
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

    pub(super) fn accepted(&self, need: Need) -> Option<&'static str> {
        if self.cred == CredType::ApiToken {
            Some(need.granular)
        } else {
            need.legacy
        }
    }

    pub(super) fn require(&self, need: Need) -> Result<(), Resp> {
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
}

pub(super) enum Auth<'a> {
    Anonymous,
    Ok(Identity<'a>),
    Rejected(Resp),
}

pub(super) fn authenticate<'a>(shared: &'a Shared, req: &Req) -> Auth<'a> {
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
}
