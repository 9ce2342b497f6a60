//! What a Bitbucket Data Center caller may do on a project or repository: the permission level
//! a user holds there, capped by a token's permissions, raised to read by public access.

use std::collections::BTreeMap;

use crate::fixture::{DcPermission, DcProject, DcRepository, DcToken, DcTokenKind, DcUser};

use super::auth::Principal;

/// A permission level on a project or repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Level {
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

// `Principal` is auth.rs's (who is calling); what it may do is decided here.
impl Principal<'_> {
    pub(super) fn repo_level(&self, p: &DcProject, r: &DcRepository) -> Level {
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

    pub(super) fn project_level(&self, p: &DcProject) -> Level {
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
