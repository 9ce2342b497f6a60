//! What a Bitbucket Cloud credential may see: its explicit access to a repository (what `role=`
//! filters on and git checks), its membership of a workspace, and which repositories are visible
//! to it at all.

use crate::fixture::{CloudAccess, CloudRepository, CloudTokenKind, Workspace};

use super::auth::Identity;

// `Identity` is auth.rs's (who the credential is); what it may see is decided here.
impl Identity<'_> {
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
    pub(super) fn explicit_access(
        &self,
        ws: &Workspace,
        repo: &CloudRepository,
    ) -> Option<CloudAccess> {
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

    pub(super) fn member_of(&self, ws: &Workspace) -> bool {
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

pub(super) fn visible(id: Option<&Identity>, ws: &Workspace, repo: &CloudRepository) -> bool {
    !repo.is_private || id.is_some_and(|i| i.explicit_access(ws, repo).is_some())
}
