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
