//! RepositoryAccess: every listed repository exists and the credential has the access required.

use super::{CheckResult, Finding};
use crate::api::Access;
use crate::catalogue::{Cause, Check, reason};

/// What the probes found for one repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    NotFound(String),
    /// Visible, with the highest access the probes established.
    Access(Access),
    /// Visible only partly: the credential lacks a scope to read it (Cloud 403).
    ScopeMissing(String),
}

/// Repositories are listed, but the method has no token to read them with (an application link
/// before a person grants access).
pub fn unverifiable() -> CheckResult {
    CheckResult::failed(
        Check::RepositoryAccess,
        Finding::new(
            Cause::RepositoriesUnverifiable,
            "an application link has no token until a person grants access, so repository access cannot be read",
        ),
    )
}

/// A listed repository's owner and slug, from OWNER/slug.
pub fn owner_and_slug(name: &str) -> Result<(&str, &str), Finding> {
    name.split_once('/').ok_or_else(|| {
        Finding::new(
            Cause::InvalidSpec,
            format!("repository {name:?} is not OWNER/slug"),
        )
    })
}

pub fn check(results: &[(String, Access, Observed)]) -> CheckResult {
    let check = Check::RepositoryAccess;
    if results.is_empty() {
        let mut r = CheckResult::passed(check, "no repositories are listed in the requirements");
        if let super::Verdict::Passed {
            reason: ref mut rs, ..
        } = r.verdict
        {
            *rs = reason::NOTHING_REQUIRED;
        }
        return r;
    }
    for (name, required, observed) in results {
        let finding = match observed {
            Observed::NotFound(msg) => Some(Finding::new(
                Cause::RepositoryNotFound,
                format!(
                    "repository {name} does not exist or is invisible to the credential: {msg}"
                ),
            )),
            Observed::ScopeMissing(msg) => Some(Finding::new(
                Cause::InsufficientRepositoryPermission,
                format!("repository {name} cannot be read with this credential's scopes: {msg}"),
            )),
            Observed::Access(have) if have < required => Some(Finding::new(
                Cause::InsufficientRepositoryPermission,
                format!("the credential has {have:?} access to {name}; {required:?} is required"),
            )),
            Observed::Access(_) => None,
        };
        if let Some(f) = finding {
            return CheckResult::failed(check, f);
        }
    }
    let names: Vec<String> = results
        .iter()
        .map(|(n, a, _)| format!("{n} ({a:?})"))
        .collect();
    CheckResult::passed(check, format!("access confirmed: {}", names.join(", ")))
}
