//! What a run found, assembled from the credentials' verdict and the (possibly shared)
//! Bitbucket-facing run, with every form of the connection's secrets scrubbed out.

use super::pipeline::credentials::Resolved;
use super::share::{ProbeInput, Probed};
use super::verdicts::Verdicts;
use crate::api::{CredentialInfo, ServerInfo};
use crate::catalogue::Check;
use crate::checks::{CheckResult, Finding, Verdict};
use crate::credential::{Credential, GitCredential};
use crate::scrub::Scrubber;
use crate::transport::tls::LeafInfo;
use std::time::Duration;

/// Everything a run found.
#[derive(Clone, Debug)]
pub struct Report {
    /// One per check, in order.
    pub results: Vec<CheckResult>,
    /// The spec could not be checked at all.
    pub invalid: Option<Finding>,
    pub server: Option<ServerInfo>,
    pub certificate: Option<LeafInfo>,
    pub credential: Option<CredentialInfo>,
    /// Clone URLs and the git credential form (GitAccess).
    pub git: Option<crate::api::GitInfo>,
    /// (host, status) of every Bitbucket request, for metrics.
    pub requests: Vec<(String, u16)>,
    /// What Bitbucket said of the rate limit, per host.
    pub rate_limits: Vec<(String, crate::bitbucket::RateLimit)>,
    /// Time spent in each check that ran.
    pub durations: Vec<(Check, Duration)>,
    /// With probe sharing: when the shared Bitbucket answers this report rests on are older than
    /// the connection's interval (plus the key's jitter). Every connection of the key gets the
    /// same instant, so checking again then shares one new run.
    pub fresh_until: Option<std::time::Instant>,
    /// A credential Bitbucket refused, now or before, and not sent again.
    pub withheld: Option<crate::withhold::Withholding>,
}

/// The secret values a report must not carry: the credential, the consumer's git credential,
/// the egress proxy's password.
pub(super) struct Secrets {
    credential: Option<Credential>,
    git: Option<GitCredential>,
    proxy: Option<(String, String)>,
}

impl Secrets {
    pub(super) fn of(resolved: &Resolved, input: &ProbeInput) -> Secrets {
        Secrets {
            credential: resolved.credentials.as_ref().map(|c| c.credential.clone()),
            git: resolved.credentials.as_ref().and_then(|c| c.git.clone()),
            proxy: input.egress_pair(),
        }
    }
}

impl Report {
    fn empty() -> Report {
        Report {
            results: Vec::new(),
            invalid: None,
            server: None,
            certificate: None,
            credential: None,
            git: None,
            requests: Vec::new(),
            rate_limits: Vec::new(),
            durations: Vec::new(),
            fresh_until: None,
            withheld: None,
        }
    }

    /// The spec cannot be checked: every check is NotChecked, after itself.
    /// A report of these verdicts alone, with nothing else found (what a decision needs).
    pub fn of(results: Vec<CheckResult>) -> Report {
        Report {
            results,
            ..Report::empty()
        }
    }

    pub(super) fn invalid(f: Finding) -> Report {
        let mut report = Report::empty();
        report.invalid = Some(f);
        report.results = Check::ALL
            .iter()
            .map(|c| CheckResult {
                check: *c,
                verdict: Verdict::Skipped { after: *c },
                warnings: Vec::new(),
            })
            .collect();
        report
    }

    /// The run stopped before Bitbucket was contacted.
    pub(super) fn stopped(verdicts: Verdicts, applies: &[Check]) -> Report {
        let mut report = Report::empty();
        (report.results, report.durations) = verdicts.in_order(applies);
        report
    }

    pub(super) fn assemble(
        mut verdicts: Verdicts,
        probed: Probed,
        fresh_until: Option<std::time::Instant>,
        secrets: &Secrets,
        applies: &[Check],
    ) -> Report {
        let mut report = Report::empty();
        verdicts.extend(probed.results, probed.durations);
        (report.results, report.durations) = verdicts.in_order(applies);
        let found = probed.found;
        report.server = found.server;
        report.certificate = found.certificate;
        report.credential = found.credential;
        report.git = found.git;
        report.requests = found.requests;
        report.rate_limits = found.rate_limits;
        report.withheld = found.withheld;
        report.fresh_until = fresh_until;
        if let Some(c) = &secrets.credential {
            report.scrub(&Scrubber::from_credential(c));
        }
        if let Some(g) = &secrets.git {
            let secret = g.secret().expose();
            let pairs: Vec<(&str, &str)> = g.username().map(|u| (u, secret)).into_iter().collect();
            report.scrub(&Scrubber::new(&[secret], &pairs));
        }
        if let Some((u, p)) = &secrets.proxy {
            report.scrub(&Scrubber::new(&[p], &[(u, p)]));
        }
        report
    }

    pub fn result(&self, check: Check) -> Option<&CheckResult> {
        self.results.iter().find(|r| r.check == check)
    }
    /// The first failing finding, in check order (Ready's reason). A check Bitbucket gives no
    /// way to verify is not a failure: it is reported as a warning.
    pub fn first_failure(&self) -> Option<&Finding> {
        self.invalid
            .as_ref()
            .or_else(|| self.results.iter().find_map(CheckResult::failure))
    }
    /// When to look again, if Bitbucket said (429 Retry-After).
    pub fn retry_after(&self) -> Option<Duration> {
        self.first_failure().and_then(|f| f.retry_after)
    }

    /// Removes every form of the scrubber's secret values from everything a report carries
    /// into a status, an event, a metric label or `bbconn check`'s output.
    fn scrub(&mut self, s: &Scrubber) {
        let report = self;
        for r in &mut report.results {
            match &mut r.verdict {
                Verdict::Failed(f) => s.clean(&mut f.message),
                Verdict::Passed { message, .. } => s.clean(message),
                Verdict::Skipped { .. } => {}
            }
            for w in &mut r.warnings {
                s.clean(&mut w.message);
            }
        }
        if let Some(f) = report.invalid.as_mut() {
            s.clean(&mut f.message);
        }
        if let Some(server) = report.server.as_mut()
            && let Some(v) = server.version.as_mut()
        {
            s.clean(v);
        }
        if let Some(c) = report.credential.as_mut() {
            if let Some(k) = c.kind.as_mut() {
                s.clean(k);
            }
            for scope in &mut c.scopes {
                s.clean(scope);
            }
        }
        if let Some(cert) = report.certificate.as_mut() {
            s.clean(&mut cert.subject);
            s.clean(&mut cert.issuer);
        }
        if let Some(w) = report.withheld.as_mut() {
            s.clean(&mut w.refusal.message);
        }
    }
}
