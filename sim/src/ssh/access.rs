//! Who may read or push over SSH, from the fixture: the flavours' rules for keys (REST and
//! smart HTTP have theirs in `cloud/` and `dc/`, which know nothing of keys).

use std::collections::BTreeMap;

use crate::fixture::{
    CloudAccess, DcKeyPermission, DcPermission, DcProject, DcRepository, DcUser, Fixture,
};

use super::keys::Grant;

/// Why Cloud refuses a git command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloudRefusal {
    NoSuchRepository,
    AccessDenied,
    /// A push with an access key: they are read-only.
    DeployKeyReadOnly,
}

/// Cloud: may the holder of a key with `grants` read (or, with `push`, write) `ws/slug`?
/// User keys get the user's explicit access (a public repository is readable by any key);
/// access keys read their own repository.
pub(crate) fn cloud(
    f: &Fixture,
    grants: &[Grant],
    ws: &str,
    slug: &str,
    push: bool,
) -> Result<(), CloudRefusal> {
    let repo = f
        .cloud
        .workspaces
        .iter()
        .find(|w| w.slug == ws)
        .and_then(|w| w.repositories.iter().find(|r| r.slug == slug))
        .ok_or(CloudRefusal::NoSuchRepository)?;
    let mut explicit: Option<CloudAccess> = None;
    let mut access_key = false;
    for g in grants {
        match g {
            Grant::CloudUser(u) => explicit = explicit.max(repo.access.get(u).copied()),
            Grant::CloudRepo { workspace, slug: s } if workspace == ws && s == slug => {
                access_key = true;
            }
            _ => {}
        }
    }
    if push {
        return match explicit {
            Some(a) if a >= CloudAccess::Write => Ok(()),
            _ if access_key => Err(CloudRefusal::DeployKeyReadOnly),
            _ => Err(CloudRefusal::AccessDenied),
        };
    }
    if explicit.is_some() || access_key || !repo.is_private {
        Ok(())
    } else {
        Err(CloudRefusal::AccessDenied)
    }
}

/// Why Data Center refuses a git command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DcRefusal {
    /// No such repository, or no read access: the same answer.
    NotFound,
    /// A push without write permission (or to an archived repository).
    NotPermitted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    None,
    Read,
    Write,
}

fn level(p: DcPermission) -> Level {
    match p {
        DcPermission::ProjectRead | DcPermission::RepoRead => Level::Read,
        _ => Level::Write,
    }
}

fn key_level(p: DcKeyPermission) -> Level {
    match p {
        DcKeyPermission::Read => Level::Read,
        DcKeyPermission::ReadWrite => Level::Write,
    }
}

/// A user's permission in an access map (names compared case-insensitively, as `dc/access.rs`
/// does).
fn access_of(map: &BTreeMap<String, DcPermission>, user: &str) -> Level {
    map.iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(user))
        .map(|(_, p)| level(*p))
        .max()
        .unwrap_or(Level::None)
}

/// The fixture project and repository at `key/slug` (project key case-insensitive; `~user`
/// names a personal project, kept in the fixture as a project with that key).
pub(crate) fn dc_find<'a>(
    f: &'a Fixture,
    key: &str,
    slug: &str,
) -> Option<(&'a DcProject, &'a DcRepository)> {
    let p = f
        .datacenter
        .projects
        .iter()
        .find(|p| p.key.eq_ignore_ascii_case(key))?;
    p.repositories
        .iter()
        .find(|r| r.slug == slug)
        .map(|r| (p, r))
}

/// Data Center: may the holder of a key with `grants` read (or, with `push`, write) `key/slug`?
pub(crate) fn dc(
    f: &Fixture,
    grants: &[Grant],
    key: &str,
    slug: &str,
    push: bool,
) -> Result<(), DcRefusal> {
    let (p, r) = dc_find(f, key, slug).ok_or(DcRefusal::NotFound)?;
    let mut lvl = if p.public || r.public {
        Level::Read
    } else {
        Level::None
    };
    for g in grants {
        let l = match g {
            Grant::DcUser(u) => access_of(&r.access, u).max(access_of(&p.access, u)),
            Grant::DcProject {
                project,
                permission,
            } if project.eq_ignore_ascii_case(&p.key) => key_level(*permission),
            Grant::DcRepo {
                project,
                slug: s,
                permission,
            } if project.eq_ignore_ascii_case(&p.key) && *s == r.slug => key_level(*permission),
            _ => Level::None,
        };
        lvl = lvl.max(l);
    }
    if lvl < Level::Read {
        return Err(DcRefusal::NotFound);
    }
    if push && (lvl < Level::Write || r.archived) {
        return Err(DcRefusal::NotPermitted);
    }
    Ok(())
}

/// The Data Center user a key belongs to, for `whoami`.
pub(crate) fn dc_user<'a>(f: &'a Fixture, grants: &[Grant]) -> Option<&'a DcUser> {
    grants.iter().find_map(|g| match g {
        Grant::DcUser(name) => f.datacenter.users.iter().find(|u| u.name == *name),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
cloud:
  users: [{ username: alice, email: a@example.com }]
  workspaces:
    - slug: acme
      repositories:
        - { slug: app, access: { alice: write } }
        - { slug: lib, access: { alice: read } }
        - { slug: site, isPrivate: false }
datacenter:
  users: [{ name: Alice }]
  projects:
    - key: PROJ
      repositories:
        - { slug: app, access: { alice: REPO_WRITE } }
        - { slug: old, archived: true, access: { alice: REPO_ADMIN } }
"#;

    #[test]
    fn cloud_rules() {
        let f = Fixture::from_yaml(YAML).unwrap();
        let user = [Grant::CloudUser("alice".into())];
        let deploy = [Grant::CloudRepo {
            workspace: "acme".into(),
            slug: "app".into(),
        }];
        assert_eq!(cloud(&f, &user, "acme", "app", true), Ok(()));
        assert_eq!(
            cloud(&f, &user, "acme", "lib", true),
            Err(CloudRefusal::AccessDenied)
        );
        assert_eq!(cloud(&f, &deploy, "acme", "app", false), Ok(()));
        assert_eq!(
            cloud(&f, &deploy, "acme", "app", true),
            Err(CloudRefusal::DeployKeyReadOnly)
        );
        assert_eq!(
            cloud(&f, &deploy, "acme", "lib", false),
            Err(CloudRefusal::AccessDenied)
        );
        assert_eq!(cloud(&f, &deploy, "acme", "site", false), Ok(()));
        assert_eq!(
            cloud(&f, &user, "acme", "nope", false),
            Err(CloudRefusal::NoSuchRepository)
        );
    }

    #[test]
    fn dc_rules() {
        let f = Fixture::from_yaml(YAML).unwrap();
        let user = [Grant::DcUser("Alice".into())];
        assert_eq!(dc(&f, &user, "proj", "app", true), Ok(()));
        assert_eq!(
            dc(&f, &user, "PROJ", "old", true),
            Err(DcRefusal::NotPermitted)
        );
        let read = [Grant::DcProject {
            project: "PROJ".into(),
            permission: DcKeyPermission::Read,
        }];
        assert_eq!(dc(&f, &read, "PROJ", "app", false), Ok(()));
        assert_eq!(
            dc(&f, &read, "PROJ", "app", true),
            Err(DcRefusal::NotPermitted)
        );
        assert_eq!(dc(&f, &[], "PROJ", "app", false), Err(DcRefusal::NotFound));
        assert_eq!(
            dc(&f, &user, "PROJ", "missing", false),
            Err(DcRefusal::NotFound)
        );
    }
}
