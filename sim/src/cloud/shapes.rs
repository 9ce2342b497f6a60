//! Bitbucket Cloud's JSON shapes: the `user`, `workspace` and `repository` schemas of
//! cloud.swagger.v3.json (components/schemas), with the links bitbucket.org puts in them.

use serde_json::{Value, json};

use crate::fixture::{CloudRepository, CloudUser, Workspace};
use crate::http as h;

pub(super) const API: &str = "https://api.bitbucket.org/2.0";
const WEB: &str = "https://bitbucket.org";
const CREATED_ON: &str = "2020-01-01T00:00:00+00:00";

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
pub(super) fn user_json(u: &CloudUser) -> Value {
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
pub(super) fn workspace_json(ws: &Workspace) -> Value {
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

pub(super) fn repo_name(r: &CloudRepository) -> String {
    r.name.clone().unwrap_or_else(|| r.slug.clone())
}

/// Schema `repository`.
pub(super) fn repository_json(ws: &Workspace, r: &CloudRepository) -> Value {
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
