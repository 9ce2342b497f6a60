//! Bitbucket Server and Data Center (REST under /rest). Sources: docs/design/bitbucket-api.md;
//! confluence.atlassian.com/bitbucketserver HTTP access tokens; Atlassian's DC 9.2 OpenAPI.

use super::Error;
use super::cloud::enc;
use super::{Api, error_message};
use crate::api::DcPermission;
use std::collections::BTreeSet;

#[derive(Clone, Debug)]
pub enum WhoAmI {
    /// 200 naming the user (X-AUSERNAME).
    Accepted {
        user: String,
        version: Option<String>,
    },
    /// 200 without X-AUSERNAME: the request was served as anonymous. Data Center 10 does this
    /// for a bearer token it does not recognise (tests/real-answers: dc-appprops-200-anonymous-10.4).
    Anonymous { version: Option<String> },
    /// 401: the exception name and message say why (an expired token may say so); a CAPTCHA
    /// shows in the exception or in X-Authentication-Denied-Reason.
    Rejected {
        exception: String,
        message: String,
        denied_reason: Option<String>,
    },
    /// 403: refused by policy, e.g. "Basic Authentication has been disabled on this instance."
    Forbidden { exception: String, message: String },
    /// 200 that is not Bitbucket's application properties, or 404: not the REST API.
    NotBitbucket { status: u16, message: String },
}

pub const APPLICATION_PROPERTIES: &str = "/rest/api/latest/application-properties";

/// `GET /rest/api/latest/application-properties`, authenticated: the version, and who Bitbucket
/// took the credential for (X-AUSERNAME). A 401 here is about the credential itself, since the
/// resource needs no permission; elsewhere a 401 can also mean a missing permission.
pub async fn whoami(api: &mut Api<'_>) -> Result<WhoAmI, Error> {
    let r = api.get(APPLICATION_PROPERTIES).await?;
    let denied_reason = r
        .header("x-authentication-denied-reason")
        .map(|h| super::excerpt(h, 120));
    Ok(match r.status.as_u16() {
        200 => {
            let version = r.json().and_then(|v| {
                v.get("version")
                    .and_then(|s| s.as_str())
                    .map(|s| crate::scrub::excerpt(s, 64).into_owned())
            });
            match (version, r.header("x-ausername")) {
                (None, _) => WhoAmI::NotBitbucket {
                    status: 200,
                    message: "the answer is not Bitbucket's application properties".into(),
                },
                (version, Some(user)) if !user.is_empty() => WhoAmI::Accepted {
                    user: super::excerpt(user, 120),
                    version,
                },
                (version, _) => WhoAmI::Anonymous { version },
            }
        }
        401 => WhoAmI::Rejected {
            exception: super::exception_name(&r),
            message: error_message(&r),
            denied_reason,
        },
        403 => WhoAmI::Forbidden {
            exception: super::exception_name(&r),
            message: error_message(&r),
        },
        404 => WhoAmI::NotBitbucket {
            status: 404,
            message: error_message(&r),
        },
        s => {
            return Err(Error::Unexpected(format!(
                "GET {}{APPLICATION_PROPERTIES} answered {s}: {}",
                api.base_path,
                error_message(&r)
            )));
        }
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenMeta {
    pub id: String,
    pub permissions: BTreeSet<DcPermission>,
    pub expires_at: Option<jiff::Timestamp>,
}

fn token_meta(v: &serde_json::Value) -> Option<TokenMeta> {
    let id = v.get("id")?.as_str()?.to_string();
    let permissions = v
        .get("permissions")?
        .as_array()?
        .iter()
        .filter_map(|p| p.as_str().and_then(DcPermission::parse))
        .collect();
    let created = v.get("createdDate").and_then(|d| d.as_i64());
    let days = v.get("expiryDays").and_then(|d| d.as_i64());
    let expires_at = match (created, days) {
        // Checked: both numbers are the server's, and may be anything.
        (Some(c), Some(d)) => d
            .checked_mul(86_400_000)
            .and_then(|ms| c.checked_add(ms))
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()),
        _ => None,
    };
    Some(TokenMeta {
        id,
        permissions,
        expires_at,
    })
}

/// The token's own data: `GET /rest/access-tokens/latest/users/{user}[/{tokenId}]`. Without a
/// token id, the token is known only if the user has exactly one. Bitbucket may refuse tokens
/// here; then None, and permissions are probed instead.
pub async fn token_metadata(
    api: &mut Api<'_>,
    user: &str,
    token_id: Option<&str>,
) -> Result<Option<TokenMeta>, Error> {
    let path = match token_id {
        Some(id) => format!("/rest/access-tokens/latest/users/{}/{}", enc(user), enc(id)),
        None => format!("/rest/access-tokens/latest/users/{}?limit=2", enc(user)),
    };
    let r = api.get(&path).await?;
    if r.status.as_u16() != 200 {
        return Ok(None);
    }
    let body = r.json().unwrap_or_default();
    Ok(match token_id {
        Some(_) => token_meta(&body),
        None => match body.get("values").and_then(|v| v.as_array()) {
            Some(values) if values.len() == 1 => values.first().and_then(token_meta),
            _ => None,
        },
    })
}

/// Whether the credential holds `perm` anywhere: `GET /rest/api/latest/repos?permission=REPO_X`
/// (Renovate's probe) or `/projects?permission=PROJECT_X`, read-only and needing no admin.
pub async fn holds_anywhere(api: &mut Api<'_>, perm: DcPermission) -> Result<bool, Error> {
    let collection = match perm {
        DcPermission::ProjectRead | DcPermission::ProjectWrite | DcPermission::ProjectAdmin => {
            "projects"
        }
        _ => "repos",
    };
    let path = format!(
        "/rest/api/latest/{collection}?permission={}&limit=1",
        perm.as_str()
    );
    let r = api.get(&path).await?;
    paged_nonempty(api, &path, &r, |_| true)
}

fn paged_nonempty(
    api: &Api<'_>,
    path: &str,
    r: &crate::transport::http::Response,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Result<bool, Error> {
    match r.status.as_u16() {
        200 => {
            let found = r
                .json()
                .and_then(|v| {
                    v.get("values")
                        .and_then(|v| v.as_array())
                        .map(|a| a.iter().any(&pred))
                })
                .unwrap_or(false);
            if !found && r.header("x-ausername").is_none_or(str::is_empty) {
                // Served as anonymous: an empty list then proves nothing about the permission
                // (tests/real-answers: dc-200-anonymous-repos-empty).
                return Err(Error::Unexpected(format!(
                    "GET {}{path} answered an empty list as anonymous (no X-AUSERNAME), which is no proof of a missing permission; the token was not applied to this request",
                    api.base_path
                )));
            }
            Ok(found)
        }
        // A missing permission is a 401 in Data Center (AuthorisationException).
        401 | 403 => Ok(false),
        s => Err(Error::Unexpected(format!(
            "GET {}{path} answered {s}: {}",
            api.base_path,
            error_message(r)
        ))),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepoAnswer {
    /// `clone`: the http(s) clone URL Bitbucket advertises (links.clone, name "http").
    Visible {
        name: String,
        clone: Option<String>,
        /// The ssh clone URL it advertises (links.clone, name "ssh").
        ssh_clone: Option<String>,
    },
    NotFound(String),
}

pub async fn repository(api: &mut Api<'_>, project: &str, slug: &str) -> Result<RepoAnswer, Error> {
    let path = format!(
        "/rest/api/latest/projects/{}/repos/{}",
        enc(project),
        enc(slug)
    );
    let r = api.get(&path).await?;
    match r.status.as_u16() {
        200 => {
            let body = r.json();
            Ok(RepoAnswer::Visible {
                name: body
                    .as_ref()
                    .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_string))
                    .unwrap_or_else(|| slug.to_string()),
                clone: body.as_ref().and_then(super::git::clone_url),
                ssh_clone: body.as_ref().and_then(super::git::ssh_clone_url),
            })
        }
        // Bitbucket hides repositories the user cannot see behind 404 (or 401 for no permission).
        404 | 401 => Ok(RepoAnswer::NotFound(error_message(&r))),
        s => Err(Error::Unexpected(format!(
            "GET {}{path} answered {s}: {}",
            api.base_path,
            error_message(&r)
        ))),
    }
}

/// Whether the credential holds `perm` on project/slug: `GET /rest/api/latest/repos?projectkey=&name=&permission=`.
pub async fn repo_permission(
    api: &mut Api<'_>,
    project: &str,
    name: &str,
    slug: &str,
    perm: DcPermission,
) -> Result<bool, Error> {
    let path = format!(
        "/rest/api/latest/repos?projectkey={}&name={}&permission={}&limit=100",
        enc(project),
        enc(name),
        perm.as_str()
    );
    let r = api.get(&path).await?;
    paged_nonempty(api, &path, &r, |v| {
        v.get("slug").and_then(|s| s.as_str()) == Some(slug)
            && v.pointer("/project/key")
                .and_then(|k| k.as_str())
                .is_none_or(|k| k.eq_ignore_ascii_case(project))
    })
}
