//! Step 1, CredentialsResolved: the Secret's credential, the method it is sent by, and the
//! expiry the Secret declares. Per connection, before the shared steps: the credential is part
//! of their key. Decided by `checks/credentials.rs`.

use crate::catalogue::Check;
use crate::checks::{self, CheckResult, Finding};
use crate::engine::Target;

/// What the later steps need of the Secret, and the verdict.
pub(in crate::engine) struct Resolved {
    pub credentials: checks::credentials::Resolved,
    pub declared_expiry: Option<jiff::Timestamp>,
    pub verdict: CheckResult,
}

pub(in crate::engine) enum Unresolved {
    /// CredentialsResolved failed.
    Failed(CheckResult),
    /// The spec cannot be checked (an inferred method its profiles do not allow).
    Invalid(Finding),
}

pub(in crate::engine) fn resolve(t: &Target<'_>) -> Result<Resolved, Unresolved> {
    let spec = t.spec;
    let failed = |f| Unresolved::Failed(CheckResult::failed(Check::CredentialsResolved, f));
    let secret_name = format!("{}/{}", t.namespace, spec.auth.secret_ref.name);
    let credentials = checks::credentials::check(spec, &secret_name, t.secret).map_err(failed)?;
    let declared_expiry =
        checks::credentials::declared_expiry(&secret_name, t.secret).map_err(failed)?;
    checks::credentials::inferred_method_allowed(spec, &credentials)
        .map_err(Unresolved::Invalid)?;
    let verdict = CheckResult::passed(
        Check::CredentialsResolved,
        credentials.describe(spec, &secret_name),
    );
    Ok(Resolved {
        credentials,
        declared_expiry,
        verdict,
    })
}
