//! Profiles: what each consuming system needs of a connection, from its own documentation
//! (the seed troubleshooting pages listed in README.md, one per profile). Merged with `spec.requirements`.

use crate::api::{
    Access, AuthMethod, BitbucketConnectionSpec, DcPermission, Flavor, GitAccessLevel, Profile,
};
use std::collections::BTreeSet;

/// The requirements a connection is checked against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effective {
    pub scopes: BTreeSet<String>,
    pub permissions: BTreeSet<DcPermission>,
    /// (name, access), in spec order.
    pub repositories: Vec<(String, Access)>,
    /// None: the spec's allowedPorts (default 443).
    pub ports: Option<Vec<u16>>,
    /// What git must allow on the listed repositories: spec.git.access and the profiles'.
    pub git: GitAccessLevel,
}

pub struct ProfileDef {
    pub profile: Profile,
    pub name: &'static str,
    pub flavor: Flavor,
    pub seed: &'static str,
    pub scopes: &'static [&'static str],
    pub permissions: &'static [DcPermission],
    /// Minimum access on every listed repository.
    pub repository_access: Access,
    /// Ports the consumer will use, where its page restricts them.
    pub ports: Option<&'static [u16]>,
    /// Methods the consumer can use.
    pub methods: &'static [AuthMethod],
    /// What the consumer does over git: every seed's consumer clones; Hackolade also pushes.
    pub git: GitAccessLevel,
}

pub static PROFILES: &[ProfileDef] = &[
    // Seed 000: token scope with the required permissions, repository admin or owner, HTTPS on 443.
    ProfileDef {
        profile: Profile::OciResourceManager,
        name: "oci-resource-manager",
        flavor: Flavor::DataCenter,
        seed: "000 (Oracle Cloud Resource Manager)",
        scopes: &[],
        permissions: &[DcPermission::ProjectRead, DcPermission::RepoAdmin],
        repository_access: Access::Admin,
        ports: Some(&[443]),
        methods: &[AuthMethod::AccessToken],
        git: GitAccessLevel::Read,
    },
    // Seed 001: the 17 API-token scopes OX Security lists.
    ProfileDef {
        profile: Profile::OxSecurity,
        name: "ox-security",
        flavor: Flavor::Cloud,
        seed: "001 (OX Security)",
        scopes: &[
            "read:account",
            "read:workspace:bitbucket",
            "read:project:bitbucket",
            "admin:project:bitbucket",
            "read:repository:bitbucket",
            "write:repository:bitbucket",
            "admin:repository:bitbucket",
            "read:pullrequest:bitbucket",
            "write:pullrequest:bitbucket",
            "read:issue:bitbucket",
            "write:issue:bitbucket",
            "read:snippet:bitbucket",
            "read:webhook:bitbucket",
            "write:webhook:bitbucket",
            "read:pipeline:bitbucket",
            "read:runner:bitbucket",
            "read:user:bitbucket",
        ],
        permissions: &[],
        repository_access: Access::Read,
        ports: None,
        methods: &[AuthMethod::ApiToken],
        git: GitAccessLevel::Read,
    },
    // Seed 002: a private OAuth consumer with Account Write, Repositories Admin, Pull requests
    // Write, Webhooks Read and write; admin on the team's repositories.
    ProfileDef {
        profile: Profile::TerraformEnterprise,
        name: "terraform-enterprise",
        flavor: Flavor::Cloud,
        seed: "002 (Terraform Enterprise)",
        scopes: &[
            "account:write",
            "repository:admin",
            "pullrequest:write",
            "webhook",
        ],
        permissions: &[],
        repository_access: Access::Admin,
        ports: None,
        methods: &[
            AuthMethod::OAuthClientCredentials,
            AuthMethod::OAuthApplicationLink,
        ],
        git: GitAccessLevel::Read,
    },
    // Seed 003: an incoming application link with Repositories - Admin.
    ProfileDef {
        profile: Profile::Codescan,
        name: "codescan",
        flavor: Flavor::DataCenter,
        seed: "003 (AutoRABIT CodeScan)",
        scopes: &[],
        permissions: &[DcPermission::RepoAdmin],
        repository_access: Access::Admin,
        ports: None,
        methods: &[AuthMethod::OAuthApplicationLink],
        git: GitAccessLevel::Read,
    },
    // Seed 004: a personal access token with at least repository write, not expired.
    ProfileDef {
        profile: Profile::Hackolade,
        name: "hackolade",
        flavor: Flavor::DataCenter,
        seed: "004 (Hackolade Studio)",
        scopes: &[],
        permissions: &[DcPermission::RepoWrite],
        repository_access: Access::Write,
        ports: None,
        methods: &[AuthMethod::AccessToken, AuthMethod::Basic],
        git: GitAccessLevel::Write,
    },
];

pub fn def(p: Profile) -> &'static ProfileDef {
    // PROFILES has one row per variant, in declaration order (tested below).
    &PROFILES[p as usize]
}

/// Whether every profile of the spec connects with `method` (one inferred from a consumer's
/// Secret). Err: which profile does not.
pub fn method_allowed(spec: &BitbucketConnectionSpec, method: AuthMethod) -> Result<(), String> {
    for p in &spec.profiles {
        let d = def(*p);
        if !d.methods.contains(&method) {
            return Err(format!(
                "profile {} connects with {:?}, but the {} Secret's credential was taken as {method:?} (seed {}); set spec.auth.method",
                d.name,
                d.methods,
                spec.auth
                    .as_ref()
                    .and_then(|a| a.secret_ref.format)
                    .map_or("referenced", |f| f.consumer()),
                d.seed
            ));
        }
    }
    Ok(())
}

/// Merges the profiles and the explicit requirements. Err: the spec asks for the impossible.
pub fn effective(spec: &BitbucketConnectionSpec) -> Result<Effective, String> {
    let mut e = Effective::default();
    let mut min_access = Access::Read;
    e.git = spec.git_access();
    for p in &spec.profiles {
        let d = def(*p);
        if d.flavor != spec.flavor {
            return Err(format!(
                "profile {} is for Bitbucket {:?}, but spec.flavor is {:?}",
                d.name, d.flavor, spec.flavor
            ));
        }
        // Without spec.auth.method (a consumer's Secret), the inferred one is judged by
        // `method_allowed` once the Secret is read.
        if let Some(m) = spec.auth.as_ref().and_then(|a| a.method)
            && !d.methods.contains(&m)
        {
            return Err(format!(
                "profile {} connects with {:?}, not {:?} (seed {})",
                d.name, d.methods, m, d.seed
            ));
        }
        e.scopes.extend(d.scopes.iter().map(|s| s.to_string()));
        e.permissions.extend(d.permissions.iter().copied());
        min_access = min_access.max(d.repository_access);
        e.git = e.git.max(d.git);
        if let Some(ports) = d.ports {
            let current = e.ports.take().unwrap_or_else(|| spec.allowed_ports());
            e.ports = Some(current.into_iter().filter(|p| ports.contains(p)).collect());
        }
    }
    if let Some(r) = &spec.requirements {
        e.scopes.extend(r.scopes.iter().cloned());
        e.permissions.extend(r.permissions.iter().copied());
        for repo in &r.repositories {
            let access = repo.access.unwrap_or(Access::Read).max(min_access);
            e.repositories.push((repo.name.clone(), access));
        }
    }
    if spec.flavor == Flavor::Cloud && !e.permissions.is_empty() {
        return Err("requirements.permissions are Data Center token permissions; Cloud uses requirements.scopes".into());
    }
    if spec.flavor == Flavor::DataCenter && !e.scopes.is_empty() {
        return Err(
            "requirements.scopes are Cloud token scopes; Data Center uses requirements.permissions"
                .into(),
        );
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_profile_in_order() {
        for p in [
            Profile::OciResourceManager,
            Profile::OxSecurity,
            Profile::TerraformEnterprise,
            Profile::Codescan,
            Profile::Hackolade,
        ] {
            assert_eq!(def(p).profile, p);
        }
        assert_eq!(def(Profile::OxSecurity).scopes.len(), 17);
    }
}
