//! Step 1, CredentialsResolved: the Secret's credential, the method it is sent by, and the
//! expiry the Secret declares; with transport SSH, the consumer's key and known_hosts. Per
//! connection, before the shared steps: the credentials are part of their key. Decided by
//! `checks/credentials/`.

use crate::catalogue::Check;
use crate::checks::credentials::ssh::SshCredential;
use crate::checks::{self, CheckResult, Finding, Lookup};
use crate::engine::Target;

/// What the later steps need of the Secrets, and the verdict.
#[derive(Debug)]
pub(in crate::engine) struct Resolved {
    /// The REST credential; None without spec.auth (a connection checked over SSH alone).
    pub credentials: Option<checks::credentials::Resolved>,
    pub ssh: Option<SshCredential>,
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
    let mut said = Vec::new();
    let (mut credentials, mut declared_expiry) = (None, None);
    if let Some(auth) = &spec.auth {
        let secret_name = format!("{}/{}", t.namespace, auth.secret_ref.name);
        let secret = t.secret.unwrap_or(&Lookup::NotFound);
        let c = checks::credentials::check(spec, &secret_name, secret).map_err(failed)?;
        declared_expiry =
            checks::credentials::declared_expiry(&secret_name, secret).map_err(failed)?;
        checks::credentials::inferred_method_allowed(spec, &c).map_err(Unresolved::Invalid)?;
        said.push(c.describe(spec, &secret_name));
        credentials = Some(c);
    }
    let ssh = match spec.git_ssh() {
        Some(_) => {
            let secret = t.ssh_secret.unwrap_or(&Lookup::NotFound);
            let c = checks::credentials::ssh::check(spec, t.namespace, secret, t.known_hosts)
                .map_err(failed)?;
            said.push(checks::credentials::ssh::describe(spec, t.namespace, &c));
            Some(c)
        }
        None => None,
    };
    let verdict = CheckResult::passed(Check::CredentialsResolved, said.join("; "));
    Ok(Resolved {
        credentials,
        ssh,
        declared_expiry,
        verdict,
    })
}
