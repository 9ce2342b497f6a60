//! The verdicts of one run in the order they were reached, with the time each took, and the one
//! rule for every check not reached: NotChecked, after the first check that failed.

use crate::catalogue::Check;
use crate::checks::{CheckResult, Verdict};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(super) struct Verdicts {
    results: Vec<CheckResult>,
    durations: Vec<(Check, Duration)>,
    since: Instant,
}

impl Verdicts {
    pub(super) fn started() -> Verdicts {
        Verdicts {
            results: Vec::new(),
            durations: Vec::new(),
            since: Instant::now(),
        }
    }

    /// Records a verdict and the time since the previous one. A check is decided once per run,
    /// over every origin it covers: when a later origin the run needs (the token endpoint) fails
    /// a check the API origin passed, that failure is the check's verdict, in its place (the
    /// time was already counted).
    pub(super) fn record(&mut self, r: CheckResult) {
        if let Some(slot) = self.results.iter_mut().find(|s| s.check == r.check) {
            *slot = r;
            return;
        }
        let now = Instant::now();
        self.durations.push((r.check, now - self.since));
        self.since = now;
        self.results.push(r);
    }

    /// Verdicts decided elsewhere (a shared run), with their durations.
    pub(super) fn extend(&mut self, results: Vec<CheckResult>, durations: Vec<(Check, Duration)>) {
        self.results.extend(results);
        self.durations.extend(durations);
    }

    /// What a shared run keeps: the verdicts reached, unfilled.
    pub(super) fn into_parts(self) -> (Vec<CheckResult>, Vec<(Check, Duration)>) {
        (self.results, self.durations)
    }

    /// One per check that applies (`checks::spec::applicable`), in check order; a check not
    /// reached is NotChecked after the first that failed (a run stops only at a failure, so
    /// one exists whenever a check is missing).
    pub(super) fn in_order(
        mut self,
        applies: &[Check],
    ) -> (Vec<CheckResult>, Vec<(Check, Duration)>) {
        self.results.retain(|r| applies.contains(&r.check));
        let failed = Check::ALL.into_iter().find(|c| {
            self.results
                .iter()
                .any(|r| r.check == *c && r.failure().is_some())
        });
        let mut out = Vec::with_capacity(Check::ALL.len());
        for c in Check::ALL.into_iter().filter(|c| applies.contains(c)) {
            match self.results.iter().position(|r| r.check == c) {
                Some(i) => out.push(self.results.swap_remove(i)),
                None => out.push(CheckResult {
                    check: c,
                    verdict: Verdict::Skipped {
                        after: failed.unwrap_or(Check::CredentialsResolved),
                    },
                    warnings: Vec::new(),
                }),
            }
        }
        (out, self.durations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Cause;
    use crate::checks::Finding;

    #[test]
    fn a_later_origin_failure_is_the_check_verdict_and_the_rest_are_not_checked() {
        let mut v = Verdicts::started();
        for c in [
            Check::CredentialsResolved,
            Check::NetworkPathValid,
            Check::Reachable,
        ] {
            v.record(CheckResult::passed(c, "ok"));
        }
        v.record(CheckResult::passed(Check::TlsVerified, "ok"));
        let f = Finding::new(Cause::CertificateUntrusted, "token endpoint: untrusted");
        v.record(CheckResult::failed(Check::TlsVerified, f.clone()));
        let (results, durations) = v.in_order(&Check::ALL);
        assert_eq!(
            durations.len(),
            4,
            "the superseding verdict adds no duration"
        );
        assert_eq!(results.len(), Check::ALL.len());
        assert_eq!(results[3].verdict, Verdict::Failed(f));
        for r in &results[4..] {
            assert_eq!(
                r.verdict,
                Verdict::Skipped {
                    after: Check::TlsVerified
                }
            );
        }
    }

    #[test]
    fn a_check_not_reached_is_not_checked_after_the_first_failure() {
        let mut v = Verdicts::started();
        v.record(CheckResult::passed(Check::CredentialsResolved, "ok"));
        let f = Finding::new(Cause::DnsResolutionFailed, "no such host");
        v.record(CheckResult::failed(Check::Reachable, f));
        let (results, _) = v.in_order(&Check::ALL);
        // NetworkPathValid was left to Reachable (a name that does not resolve).
        assert_eq!(
            results[1].verdict,
            Verdict::Skipped {
                after: Check::Reachable
            }
        );
    }
}
