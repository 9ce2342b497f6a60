//! ScopesSufficient: the credential holds every required scope (Cloud) or permission (Data Center).

use super::{CheckResult, Finding};
use crate::api::DcPermission;
use crate::catalogue::{Cause, Check, reason};
use std::collections::{BTreeMap, BTreeSet};

/// What is known of what the credential holds.
pub enum Held<'a> {
    /// Cloud scopes, from x-oauth-scopes or the token endpoint's answer.
    Scopes(&'a BTreeSet<String>),
    /// Data Center: the token's own permissions.
    Permissions(&'a BTreeSet<DcPermission>),
    /// Data Center: per permission, whether the credential holds it on anything (read-only probes).
    Probed(&'a BTreeMap<DcPermission, bool>),
    /// Bitbucket offers no side-effect-free way to learn it.
    Unknown(&'a str),
}

/// Scopes a legacy Cloud scope implies. Granular API-token scopes imply nothing ("a write scope
/// does not imply the read scope"); of the legacy ones, `X:write` implies `X`, pull requests imply
/// repository access, and `repository:admin` implies neither read nor write
/// (developer.atlassian.com/cloud/bitbucket/bitbucket-cloud-rest-api-scopes).
fn implied(scope: &str) -> Vec<&'static str> {
    match scope {
        "repository:write" => vec!["repository"],
        "pullrequest" | "project" => vec!["repository"],
        "pullrequest:write" => vec!["pullrequest", "repository", "repository:write"],
        "account:write" => vec!["account"],
        "snippet:write" => vec!["snippet"],
        "issue:write" => vec!["issue"],
        "pipeline:write" => vec!["pipeline"],
        _ => vec![],
    }
}

fn closure(scopes: impl IntoIterator<Item = impl AsRef<str>>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in scopes {
        let s = s.as_ref();
        out.insert(s.to_string());
        out.extend(implied(s).into_iter().map(str::to_string));
    }
    out
}

fn rank(p: DcPermission) -> (bool, u8) {
    match p {
        DcPermission::RepoRead => (false, 0),
        DcPermission::RepoWrite => (false, 1),
        DcPermission::RepoAdmin => (false, 2),
        DcPermission::ProjectRead => (true, 0),
        DcPermission::ProjectWrite => (true, 1),
        DcPermission::ProjectAdmin => (true, 2),
    }
}

/// PROJECT_X covers REPO_X and below; each ladder covers its lower rungs
/// (confluence.atlassian.com/bitbucketserver, HTTP access tokens: permissions).
pub fn implies(held: DcPermission, required: DcPermission) -> bool {
    let (hp, hl) = rank(held);
    let (rp, rl) = rank(required);
    hl >= rl && (hp || !rp)
}

pub fn check(
    scopes: &BTreeSet<String>,
    permissions: &BTreeSet<DcPermission>,
    held: Held<'_>,
) -> CheckResult {
    let check = Check::ScopesSufficient;
    let perms =
        |p: &BTreeSet<DcPermission>| p.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ");
    let nothing_required = scopes.is_empty() && permissions.is_empty();
    match held {
        Held::Unknown(_) if nothing_required => nothing(),
        Held::Unknown(why) => CheckResult::failed(
            check,
            Finding::new(
                Cause::ScopesUnverifiable,
                format!("cannot verify {}: {why}", {
                    let mut all: Vec<String> = scopes.iter().cloned().collect();
                    all.extend(permissions.iter().map(|p| p.as_str().to_string()));
                    all.join(", ")
                }),
            ),
        ),
        Held::Scopes(granted) => {
            let have = closure(granted);
            let missing: Vec<&String> = scopes.iter().filter(|s| !have.contains(*s)).collect();
            if !missing.is_empty() {
                return CheckResult::failed(
                    check,
                    Finding::new(
                        Cause::InsufficientScopes,
                        format!(
                            "missing scopes: {} (granted: {})",
                            join(&missing),
                            join(&granted.iter().collect::<Vec<_>>())
                        ),
                    ),
                );
            }
            if nothing_required {
                return nothing();
            }
            let needed = closure(scopes);
            let excess: Vec<&String> = granted.iter().filter(|g| !needed.contains(*g)).collect();
            let warnings = if excess.is_empty() {
                vec![]
            } else {
                vec![Finding::new(
                    Cause::ExcessScopes,
                    format!("scopes beyond the requirements: {}", join(&excess)),
                )]
            };
            CheckResult::passed(
                check,
                format!(
                    "holds every required scope ({})",
                    join(&scopes.iter().collect::<Vec<_>>())
                ),
            )
            .with_warnings(warnings)
        }
        Held::Permissions(held) => {
            let missing: BTreeSet<DcPermission> = permissions
                .iter()
                .copied()
                .filter(|r| !held.iter().any(|h| implies(*h, *r)))
                .collect();
            if !missing.is_empty() {
                return CheckResult::failed(
                    check,
                    Finding::new(
                        Cause::InsufficientScopes,
                        format!(
                            "missing permissions: {} (the token has: {})",
                            perms(&missing),
                            perms(held)
                        ),
                    ),
                );
            }
            if nothing_required {
                return nothing();
            }
            let excess: BTreeSet<DcPermission> = held
                .iter()
                .copied()
                .filter(|h| !permissions.iter().any(|r| implies(*r, *h)))
                .collect();
            let warnings = if excess.is_empty() {
                vec![]
            } else {
                vec![Finding::new(
                    Cause::ExcessScopes,
                    format!("permissions beyond the requirements: {}", perms(&excess)),
                )]
            };
            CheckResult::passed(check, format!("the token holds {}", perms(permissions)))
                .with_warnings(warnings)
        }
        Held::Probed(probed) => {
            let missing: BTreeSet<DcPermission> = permissions
                .iter()
                .copied()
                .filter(|p| !probed.get(p).copied().unwrap_or(false))
                .collect();
            if !missing.is_empty() {
                return CheckResult::failed(
                    check,
                    Finding::new(
                        Cause::InsufficientScopes,
                        format!(
                            "missing permissions: {} (the credential holds them on no project or repository)",
                            perms(&missing)
                        ),
                    ),
                );
            }
            if nothing_required {
                return nothing();
            }
            CheckResult::passed(
                check,
                format!("the credential holds {}", perms(permissions)),
            )
        }
    }
}

fn nothing() -> CheckResult {
    let mut r = CheckResult::passed(
        Check::ScopesSufficient,
        "no scopes or permissions are required",
    );
    if let super::Verdict::Passed {
        reason: ref mut rs, ..
    } = r.verdict
    {
        *rs = reason::NOTHING_REQUIRED;
    }
    r
}

fn join(v: &[&String]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn granular_write_does_not_imply_read() {
        let r = check(
            &set(&["read:repository:bitbucket"]),
            &BTreeSet::new(),
            Held::Scopes(&set(&["write:repository:bitbucket"])),
        );
        assert!(
            matches!(r.verdict, super::super::Verdict::Failed(ref f) if f.cause == Cause::InsufficientScopes && f.message.contains("read:repository:bitbucket"))
        );
    }

    #[test]
    fn legacy_write_implies_read_but_admin_does_not() {
        assert!(
            check(
                &set(&["repository"]),
                &BTreeSet::new(),
                Held::Scopes(&set(&["repository:write"]))
            )
            .is_passed()
        );
        assert!(
            !check(
                &set(&["repository"]),
                &BTreeSet::new(),
                Held::Scopes(&set(&["repository:admin"]))
            )
            .is_passed()
        );
    }

    #[test]
    fn excess_is_a_warning() {
        let r = check(
            &set(&["repository"]),
            &BTreeSet::new(),
            Held::Scopes(&set(&["repository", "webhook"])),
        );
        assert!(r.is_passed());
        assert_eq!(r.warnings[0].cause, Cause::ExcessScopes);
    }

    #[test]
    fn project_permissions_cover_repositories() {
        use DcPermission::*;
        assert!(implies(ProjectAdmin, RepoAdmin));
        assert!(implies(RepoAdmin, RepoRead));
        assert!(!implies(RepoAdmin, ProjectRead));
        assert!(!implies(RepoWrite, RepoAdmin));
    }
}
