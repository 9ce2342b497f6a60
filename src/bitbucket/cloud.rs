//! Bitbucket Cloud (api.bitbucket.org/2.0). Sources: BITBUCKET-API.md; developer.atlassian.com/cloud/bitbucket.

use super::{Api, error_message};
use crate::catalogue::Cause;
use crate::checks::Finding;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use std::collections::BTreeSet;

/// The answer to `GET /2.0/user`, the identity probe.
#[derive(Clone, Debug)]
pub enum UserAnswer {
    /// 200 for users (API tokens, OAuth); 403 for access tokens, which are not users but are
    /// authenticated: the scope headers come either way.
    Accepted {
        user: Option<String>,
        kind: Option<String>,
        scopes: Option<BTreeSet<String>>,
    },
    /// 401. `basic_realm`: the plain-text answer to Basic credentials Bitbucket does not know.
    Rejected { message: String, basic_realm: bool },
}

/// `x-oauth-scopes: repository, pullrequest:write` (comma-separated; tolerate spaces too).
pub fn parse_scopes(v: &str) -> BTreeSet<String> {
    v.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub async fn whoami(api: &mut Api<'_>) -> Result<UserAnswer, Finding> {
    let r = api.get("/user").await?;
    let scopes = r.header("x-oauth-scopes").map(parse_scopes);
    let kind = r.header("x-credential-type").map(str::to_string);
    match r.status.as_u16() {
        200 => {
            let body = r.json().unwrap_or_default();
            let user = ["nickname", "display_name", "account_id"]
                .iter()
                .find_map(|k| body.get(*k).and_then(|v| v.as_str()))
                .map(str::to_string);
            Ok(UserAnswer::Accepted { user, kind, scopes })
        }
        403 if kind.is_some() || scopes.is_some() => Ok(UserAnswer::Accepted {
            user: None,
            kind,
            scopes,
        }),
        401 => Ok(UserAnswer::Rejected {
            message: error_message(&r),
            basic_realm: r
                .header("www-authenticate")
                .is_some_and(|h| h.starts_with("Basic")),
        }),
        s => Err(Finding::new(
            Cause::UnexpectedResponse,
            format!(
                "GET {}/user answered {s}: {}",
                api.base_path,
                error_message(&r)
            ),
        )),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepoAnswer {
    /// `clone`: the https clone URL Bitbucket advertises (links.clone).
    Visible {
        clone: Option<String>,
    },
    NotFound(String),
    /// 403: the credential lacks a scope the endpoint needs; the message lists them.
    ScopeMissing(String),
}

pub async fn repository(
    api: &mut Api<'_>,
    workspace: &str,
    slug: &str,
) -> Result<RepoAnswer, Finding> {
    let path = format!("/repositories/{}/{}", enc(workspace), enc(slug));
    let r = api.get(&path).await?;
    match r.status.as_u16() {
        200 => Ok(RepoAnswer::Visible {
            clone: r.json().as_ref().and_then(super::git::clone_url),
        }),
        404 | 401 => Ok(RepoAnswer::NotFound(error_message(&r))),
        403 => {
            let required = r
                .json()
                .and_then(|v| v.pointer("/error/detail/required").cloned())
                .and_then(|v| v.as_array().cloned())
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect::<Vec<_>>()
                        .join(", ")
                });
            Ok(RepoAnswer::ScopeMissing(match required {
                Some(req) if !req.is_empty() => format!("{} (required: {req})", error_message(&r)),
                _ => error_message(&r),
            }))
        }
        s => Err(Finding::new(
            Cause::UnexpectedResponse,
            format!(
                "GET {}{path} answered {s}: {}",
                api.base_path,
                error_message(&r)
            ),
        )),
    }
}

/// Whether the credential holds `role` (admin, contributor or member) on workspace/slug, from
/// `GET /2.0/repositories/{ws}?role=…&q=slug="…"`: the read-only way for non-admins
/// (BITBUCKET-API.md: repository admin).
pub async fn has_role(
    api: &mut Api<'_>,
    workspace: &str,
    slug: &str,
    role: &str,
) -> Result<bool, Finding> {
    let q = utf8_percent_encode(&format!("slug=\"{slug}\""), NON_ALPHANUMERIC).to_string();
    let path = format!("/repositories/{}?role={role}&q={q}", enc(workspace));
    let r = api.get(&path).await?;
    if r.status.as_u16() != 200 {
        return Err(Finding::new(
            Cause::UnexpectedResponse,
            format!(
                "GET {}{path} answered {}: {}",
                api.base_path,
                r.status,
                error_message(&r)
            ),
        ));
    }
    let body = r.json().unwrap_or_default();
    Ok(body
        .get("values")
        .and_then(|v| v.as_array())
        .is_some_and(|values| {
            values
                .iter()
                .any(|v| v.get("slug").and_then(|s| s.as_str()) == Some(slug))
        }))
}

pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}
