//! Bitbucket Cloud's workspaces and repositories: `GET /2.0/workspaces/{ws}`,
//! `GET /2.0/repositories` (public ones), `GET /2.0/repositories/{ws}` with its `role`, `q` and
//! paging parameters, and `GET /2.0/repositories/{ws}/{slug}`.

use serde_json::{Value, json};

use crate::fixture::{Cloud, CloudAccess, CloudRepository};
use crate::http::{self as h, Req, Resp};

use super::access::visible;
use super::answers::{REPO_NOT_FOUND, error_json};
use super::auth::{Identity, NEED_REPOSITORY, NEED_WORKSPACE};
use super::shapes::{API, repo_name, repository_json, workspace_json};

/// `GET /2.0/repositories`: every public repository (cloud.swagger.v3.json, deprecated but
/// served), one page.
pub(super) fn list_public_repositories(
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

pub(super) fn get_workspace(
    cloud: &Cloud,
    _req: &Req,
    id: Option<&Identity>,
    segs: &[&str],
) -> Resp {
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

pub(super) fn get_repository(
    cloud: &Cloud,
    _req: &Req,
    id: Option<&Identity>,
    segs: &[&str],
) -> Resp {
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

pub(super) fn list_repositories(
    cloud: &Cloud,
    req: &Req,
    id: Option<&Identity>,
    segs: &[&str],
) -> Resp {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bbql_subset() {
        assert_eq!(parse_query("slug=\"app\""), Some(("slug", "app")));
        assert_eq!(parse_query("name = \"My App\""), Some(("name", "My App")));
        assert_eq!(parse_query("slug~\"app\""), None);
        assert_eq!(parse_query("owner=\"x\""), None);
    }
}
