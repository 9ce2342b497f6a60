//! Bitbucket Data Center's projects and repositories: listing and getting them with the
//! caller's permission as filter, and a repository's user permissions; with the `RestProject`
//! and `RestRepository` shapes.

use serde_json::{Value, json};

use crate::fixture::{DataCenter, DcProject, DcRepository};
use crate::http::{self as h, Resp};

use super::access::Level;
use super::answers::{errors, json, no_such_project, no_such_repository, not_found, not_permitted};
use super::context::{Ctx, paged};
use super::users::user_json;

pub(super) fn find_project<'a>(dc: &'a DataCenter, key: &str) -> Option<(usize, &'a DcProject)> {
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

pub(super) fn list_projects(ctx: &Ctx) -> Resp {
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

pub(super) fn get_project(ctx: &Ctx, key: &str) -> Resp {
    match find_project(ctx.dc, key) {
        Some((i, p)) if ctx.principal.project_level(p) >= Level::Read => {
            json(200, &project_json(ctx, i, p))
        }
        _ => no_such_project(key),
    }
}

pub(super) fn get_repository(ctx: &Ctx, key: &str, slug: &str) -> Resp {
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
pub(super) fn list_repos(ctx: &Ctx, project: Option<&str>) -> Resp {
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

pub(super) fn repository_missing(ctx: &Ctx, key: &str, slug: &str) -> Resp {
    let Some((_, p)) = find_project(ctx.dc, key) else {
        return no_such_project(key);
    };
    match p.repositories.iter().find(|r| r.slug == slug) {
        Some(r) if ctx.principal.repo_level(p, r) >= Level::Read => not_found(),
        _ => no_such_repository(&p.key, slug),
    }
}

/// Needs REPO_ADMIN (datacenter-9.2.swagger.v3.json); a lower permission is 401.
pub(super) fn repository_users(ctx: &Ctx, key: &str, slug: &str) -> Resp {
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
