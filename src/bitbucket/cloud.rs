//! Bitbucket Cloud (api.bitbucket.org/2.0). Sources: docs/design/bitbucket-api.md; developer.atlassian.com/cloud/bitbucket.

use super::Error;
use super::{Api, error_message};
use crate::transport::http::Response;
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
    /// 403 "Your credentials lack one or more required privilege scopes." with the granted and
    /// required scopes in its body and no scope headers (tests/real-answers: cloud-403-scope-user):
    /// the credential is valid; this endpoint needs `required`.
    ScopeMissing {
        granted: BTreeSet<String>,
        required: BTreeSet<String>,
    },
    /// 401. `challenge`: the WWW-Authenticate scheme (Basic, or BitbucketCustom on recent answers).
    Rejected {
        message: String,
        challenge: Option<String>,
    },
    /// 403 without scope information (e.g. "Forbidden" for `/user` without `/2.0`).
    Forbidden { message: String },
    /// 404: there is no API at this path.
    NoApi { message: String },
}

/// The scope lists of a 403 "lack one or more required privilege scopes" body.
pub fn scope_detail(r: &Response) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    let v = r.json()?;
    let list = |p: &str| -> Option<BTreeSet<String>> {
        Some(
            v.pointer(p)?
                .as_array()?
                .iter()
                .filter_map(|s| s.as_str().map(|s| super::excerpt(s, 80)))
                .take(64)
                .collect(),
        )
    };
    let required = list("/error/detail/required")?;
    Some((list("/error/detail/granted").unwrap_or_default(), required))
}

/// `x-oauth-scopes: repository, pullrequest:write` (comma-separated; tolerate spaces too).
/// Bounded: Cloud grants a few dozen scopes; a header of any size gives at most 256 short ones.
pub fn parse_scopes(v: &str) -> BTreeSet<String> {
    v.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(256)
        .map(|s| crate::scrub::excerpt(s, 128).into_owned())
        .collect()
}

pub async fn whoami(api: &mut Api<'_>) -> Result<UserAnswer, Error> {
    let r = api.get("/user").await?;
    let scopes = r.header("x-oauth-scopes").map(parse_scopes);
    let kind = r
        .header("x-credential-type")
        .map(|k| crate::scrub::excerpt(k, 64).into_owned());
    match r.status.as_u16() {
        200 => {
            let body = r.json().unwrap_or_default();
            let user = ["nickname", "username", "display_name", "account_id"]
                .iter()
                .find_map(|k| body.get(*k).and_then(|v| v.as_str()))
                .map(|u| crate::scrub::excerpt(u, 128).into_owned());
            Ok(UserAnswer::Accepted { user, kind, scopes })
        }
        403 if kind.is_some() || scopes.is_some() => Ok(UserAnswer::Accepted {
            user: None,
            kind,
            scopes,
        }),
        403 => Ok(match scope_detail(&r) {
            Some((granted, required)) => UserAnswer::ScopeMissing { granted, required },
            None => UserAnswer::Forbidden {
                message: error_message(&r),
            },
        }),
        401 => Ok(UserAnswer::Rejected {
            message: error_message(&r),
            challenge: r
                .header("www-authenticate")
                .and_then(|h| h.split_whitespace().next())
                .map(|s| super::excerpt(s, 40)),
        }),
        404 => Ok(UserAnswer::NoApi {
            message: error_message(&r),
        }),
        s => Err(Error::Unexpected(format!(
            "GET {}/user answered {s}: {}",
            api.base_path,
            error_message(&r)
        ))),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepoAnswer {
    /// `clone`: the https clone URL Bitbucket advertises (links.clone).
    Visible {
        clone: Option<String>,
        /// The ssh clone URL it advertises (links.clone, name "ssh").
        ssh_clone: Option<String>,
    },
    NotFound(String),
    /// 403: the credential lacks a scope the endpoint needs; the message lists them.
    ScopeMissing(String),
}

pub async fn repository(
    api: &mut Api<'_>,
    workspace: &str,
    slug: &str,
) -> Result<RepoAnswer, Error> {
    let path = format!("/repositories/{}/{}", enc(workspace), enc(slug));
    let r = api.get(&path).await?;
    match r.status.as_u16() {
        200 => Ok(RepoAnswer::Visible {
            clone: r.json().as_ref().and_then(super::git::clone_url),
            ssh_clone: r.json().as_ref().and_then(super::git::ssh_clone_url),
        }),
        404 | 401 => Ok(RepoAnswer::NotFound(error_message(&r))),
        403 => {
            let required = scope_detail(&r)
                .map(|(_, req)| req.into_iter().collect::<Vec<_>>().join(", "))
                .filter(|req| !req.is_empty());
            Ok(RepoAnswer::ScopeMissing(match required {
                Some(req) => format!("{} (required: {req})", error_message(&r)),
                None => error_message(&r),
            }))
        }
        s => Err(Error::Unexpected(format!(
            "GET {}{path} answered {s}: {}",
            api.base_path,
            error_message(&r)
        ))),
    }
}

/// Whether the credential holds `role` (admin, contributor or member) on workspace/slug, from
/// `GET /2.0/repositories/{ws}?role=…&q=slug="…"`: the read-only way for non-admins
/// (docs/design/bitbucket-api.md: repository admin).
pub async fn has_role(
    api: &mut Api<'_>,
    workspace: &str,
    slug: &str,
    role: &str,
) -> Result<bool, Error> {
    let q = utf8_percent_encode(&format!("slug=\"{slug}\""), NON_ALPHANUMERIC).to_string();
    let path = format!("/repositories/{}?role={role}&q={q}", enc(workspace));
    let r = api.get(&path).await?;
    if r.status.as_u16() != 200 {
        return Err(Error::Unexpected(format!(
            "GET {}{path} answered {}: {}",
            api.base_path,
            r.status,
            error_message(&r)
        )));
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

/// Everything but RFC 3986's unreserved characters is encoded in a path segment; `-`, `.`, `_`
/// and `~` stay as they are, as in the paths Bitbucket itself links to.
const SEGMENT: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}
