//! From a [`Report`] to the resource's status: conditions, problems, server, certificate,
//! credential. Pure, with the clock passed in, so the same report always gives the same status and
//! `lastTransitionTime` moves only when a condition's status, reason or message changes.

use crate::api::{BitbucketConnectionStatus, Condition, KeptCondition, Problem};
use crate::catalogue::{Effect, RemedyContext, reason};
use crate::checks::{Finding, Verdict};
use crate::engine::Report;

pub use crate::catalogue::condition::{READY, RECONCILING, STALLED};

/// How Ready reads from a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady { stalled: bool },
    Unknown,
}

pub fn readiness(report: &Report) -> Readiness {
    match report.first_failure() {
        None => Readiness::Ready,
        Some(f) => match f.cause.effect() {
            Effect::Transient => Readiness::Unknown,
            Effect::Unverifiable | Effect::Warn => Readiness::Ready,
            Effect::Fail { stalls } => Readiness::NotReady { stalled: stalls },
        },
    }
}

fn condition(type_: &str, status: &str, reason: &str, message: String) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        observed_generation: None,
        last_transition_time: String::new(),
    }
}

/// The conditions for a report, in docs/design/contract.md's order, without timestamps.
pub fn conditions(report: &Report) -> Vec<Condition> {
    let mut out = Vec::new();
    let first = report.first_failure();
    let ready = match (readiness(report), first) {
        (Readiness::Ready, _) => {
            let warnings: usize = report
                .results
                .iter()
                .map(|r| r.warnings.len())
                .sum::<usize>()
                + report
                    .results
                    .iter()
                    .filter(|r| matches!(r.verdict, Verdict::Failed(_)) && r.failure().is_none())
                    .count();
            let message = if warnings == 0 {
                "every check passed".to_string()
            } else {
                format!("every check passed, with {warnings} warning(s): see status.problems")
            };
            condition(READY, "True", reason::ALL_PASSED, message)
        }
        (Readiness::Unknown, Some(f)) => {
            condition(READY, "Unknown", f.cause.as_str(), f.message.clone())
        }
        (_, Some(f)) => condition(READY, "False", f.cause.as_str(), f.message.clone()),
        (_, None) => condition(READY, "Unknown", reason::CHECKING, String::new()),
    };
    out.push(ready);
    for r in &report.results {
        let c = match &r.verdict {
            Verdict::Passed { reason, message } => {
                let reason = r.warnings.first().map_or(*reason, |w| w.cause.as_str());
                condition(r.check.as_str(), "True", reason, message.clone())
            }
            Verdict::Failed(f) => {
                let status = match f.cause.effect() {
                    Effect::Fail { .. } => "False",
                    Effect::Transient | Effect::Unverifiable => "Unknown",
                    Effect::Warn => "True",
                };
                condition(
                    r.check.as_str(),
                    status,
                    f.cause.as_str(),
                    f.message.clone(),
                )
            }
            Verdict::Skipped { after } => {
                let message = match &report.invalid {
                    Some(f) => format!("not checked: the spec is invalid: {}", f.message),
                    None => format!("not checked: {after} did not pass"),
                };
                condition(r.check.as_str(), "Unknown", reason::NOT_CHECKED, message)
            }
        };
        out.push(c);
    }
    if let (Readiness::NotReady { stalled: true }, Some(f)) = (readiness(report), first) {
        out.push(condition(
            STALLED,
            "True",
            f.cause.as_str(),
            format!(
                "retrying will not help until the spec, the Secret or the server changes: {}",
                f.message
            ),
        ));
    }
    out
}

/// One entry per failing or warning check, in check order.
pub fn problems(report: &Report, ctx: &RemedyContext) -> Vec<Problem> {
    let problem = |check: &str, f: &Finding| Problem {
        check: check.to_string(),
        cause: f.cause.as_str().to_string(),
        severity: f.cause.severity().as_str().to_string(),
        message: f.message.clone(),
        remedy: f.cause.remedy(ctx),
    };
    let mut out = Vec::new();
    if let Some(f) = &report.invalid {
        out.push(problem(READY, f));
    }
    for r in &report.results {
        if let Verdict::Failed(f) = &r.verdict {
            out.push(problem(r.check.as_str(), f));
        }
        for w in &r.warnings {
            out.push(problem(r.check.as_str(), w));
        }
    }
    out
}

/// The status for a report. `old` supplies lastTransitionTime for unchanged conditions.
pub fn build(
    report: &Report,
    ctx: &RemedyContext,
    generation: Option<i64>,
    old: Option<&BitbucketConnectionStatus>,
    now: jiff::Timestamp,
) -> BitbucketConnectionStatus {
    let now_s = rfc3339(now);
    let old_conditions = old.map(|o| o.conditions.as_slice()).unwrap_or_default();
    let kept = old.and_then(|o| o.kept.as_deref()).unwrap_or_default();
    let conditions = conditions(report)
        .into_iter()
        .map(|mut c| {
            c.observed_generation = generation;
            let same = |t: &str, s: &str, r: &str| t == c.type_ && s == c.status && r == c.reason;
            let full = old_conditions
                .iter()
                .find(|o| same(&o.type_, &o.status, &o.reason) && o.message == c.message)
                .map(|o| o.last_transition_time.clone());
            let cached = || {
                let digest = message_digest(&c.message);
                kept.iter()
                    .find(|o| {
                        same(o.type_.as_str(), o.status.as_str(), o.reason.as_str())
                            && o.message_digest == digest
                    })
                    .and_then(|o| jiff::Timestamp::from_second(o.last_transition).ok())
                    .map(rfc3339)
            };
            c.last_transition_time = full.or_else(cached).unwrap_or_else(|| now_s.clone());
            c
        })
        .collect();
    BitbucketConnectionStatus {
        observed_generation: generation,
        last_checked_time: Some(now_s),
        last_handled_requested_at: old.and_then(|o| o.last_handled_requested_at.clone()),
        conditions,
        problems: problems(report, ctx),
        // Boxed: the cache holds 10,000s of statuses, most without some of these.
        server: report.server.clone().map(Box::new),
        certificate: report
            .certificate
            .as_ref()
            .map(|c| Box::new(crate::checks::tls::certificate_info(c))),
        credential: report.credential.clone().map(Box::new),
        git: report.git.clone().map(Box::new),
        // What the refusal rests on (Secrets, generation, requested-at) is the caller's to add:
        // only the operator reads them from the cluster.
        withheld: report.withheld.as_ref().map(|w| {
            Box::new(crate::api::WithheldCredential {
                credential: w.credential,
                cause: w.refusal.cause.as_str().to_string(),
                message: w.refusal.message.clone(),
                since: rfc3339(w.since),
                secrets: Vec::new(),
                generation,
                requested_at: None,
            })
        }),
        digest: None,
        kept: None,
    }
}

/// A refusal a status recorded, if what it rests on is unchanged: the same resourceVersion of
/// every Secret it names, the same generation and the same handled requested-at.
pub fn withholding(
    status: Option<&BitbucketConnectionStatus>,
    generation: Option<i64>,
    requested_at: Option<&str>,
    current: &[crate::api::SecretVersion],
) -> Option<crate::withhold::Withholding> {
    let w = status?.withheld.as_deref()?;
    let unchanged = w.generation == generation
        && w.requested_at.as_deref() == requested_at
        && !w.secrets.is_empty()
        && w.secrets.iter().all(|s| current.contains(s));
    if !unchanged {
        return None;
    }
    Some(crate::withhold::Withholding {
        credential: w.credential,
        refusal: crate::finding::Finding::new(
            crate::catalogue::Cause::parse(&w.cause)?,
            w.message.clone(),
        ),
        since: w.since.parse().ok()?,
    })
}

/// The values a remedy's placeholders take for a connection.
pub fn remedy_context(
    namespace: &str,
    spec: &crate::api::BitbucketConnectionSpec,
) -> RemedyContext {
    let url = url::Url::parse(spec.base_url()).ok();
    let mut host = url
        .as_ref()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let mut port = url
        .as_ref()
        .and_then(|u| u.port_or_known_default())
        .map(|p| p.to_string())
        .unwrap_or_default();
    // Checked over SSH alone: every remedy speaks of the SSH host.
    if spec.auth.is_none()
        && let Some(ssh) = spec.git_ssh()
    {
        let cloud = format!(
            "ssh://git@{}",
            crate::checks::git_access::ssh::CLOUD_SSH_HOST
        );
        let raw = ssh.url.clone().unwrap_or(cloud);
        if let Ok(u) = crate::checks::git_access::ssh::SshUrl::parse(&raw) {
            host = u.host;
            port = u.port.to_string();
        }
    }
    RemedyContext {
        secret: format!("{namespace}/{}", spec.credential_secret()),
        host,
        port,
        proxy: spec
            .proxy_url()
            .or(spec.egress_proxy().and_then(|e| e.proxy_url.as_deref()))
            .unwrap_or_default()
            .to_string(),
    }
}

/// Seconds precision, as metav1.Time serializes.
pub fn rfc3339(t: jiff::Timestamp) -> String {
    let secs = t.as_second();
    jiff::Timestamp::from_second(secs).unwrap_or(t).to_string()
}

/// Whether a new status differs from the old one in anything but the check timestamp: the
/// operator writes only then. `old` may be compacted (the operator's cache).
pub fn differs(old: &BitbucketConnectionStatus, new: &BitbucketConnectionStatus) -> bool {
    match &old.digest {
        Some(d) => *d != digest(new),
        None => {
            let strip = |s: &BitbucketConnectionStatus| {
                let mut s = s.clone();
                s.last_checked_time = None;
                s
            };
            strip(old) != strip(new)
        }
    }
}

/// A digest of everything in a status but the check time.
pub fn digest(s: &BitbucketConnectionStatus) -> u64 {
    let mut s = s.clone();
    s.last_checked_time = None;
    s.digest = None;
    digest64(&serde_json::to_vec(&s).unwrap_or_default())
}

fn digest64(bytes: &[u8]) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_be_bytes(first)
}

fn message_digest(m: &str) -> u64 {
    digest64(m.as_bytes())
}

/// A condition as the cache keeps it; `None` when that would lose something (a name bbconn does
/// not write, a transition time not in whole seconds), and the condition is kept whole.
fn kept(c: &Condition) -> Option<KeptCondition> {
    use crate::catalogue::Name;
    let t: jiff::Timestamp = c.last_transition_time.parse().ok()?;
    (rfc3339(t) == c.last_transition_time).then_some(())?;
    Some(KeptCondition {
        message_digest: message_digest(&c.message),
        last_transition: t.as_second(),
        type_: Name::of(&c.type_)?,
        status: Name::of(&c.status)?,
        reason: Name::of(&c.reason)?,
    })
}

/// The status as the operator keeps it in memory for 10,000s of connections: what reconciling and
/// the metrics read (condition types, statuses, reasons, transition times, expiries), with each
/// message and the whole status reduced to digests, so the cache holds no copy of the text.
pub fn compact(s: &BitbucketConnectionStatus) -> BitbucketConnectionStatus {
    let kept: Option<Box<[KeptCondition]>> = s.conditions.iter().map(kept).collect();
    BitbucketConnectionStatus {
        observed_generation: s.observed_generation,
        last_checked_time: None,
        last_handled_requested_at: s.last_handled_requested_at.clone(),
        conditions: if kept.is_some() {
            Vec::new()
        } else {
            s.conditions.clone()
        },
        kept,
        problems: Vec::new(),
        server: None,
        certificate: s.certificate.as_ref().map(|c| {
            Box::new(crate::api::CertificateInfo {
                not_after: c.not_after.clone(),
                ..Default::default()
            })
        }),
        credential: s.credential.as_ref().map(|c| {
            Box::new(crate::api::CredentialInfo {
                expires_at: c.expires_at.clone(),
                withheld_since: c.withheld_since.clone(),
                ..Default::default()
            })
        }),
        git: None,
        // Kept whole: a process reads it before it sends a credential, and few have one.
        withheld: s.withheld.clone(),
        digest: Some(digest(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> BitbucketConnectionStatus {
        BitbucketConnectionStatus {
            observed_generation: Some(2),
            last_checked_time: Some("2026-11-22T10:00:00Z".into()),
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: "False".into(),
                reason: "TokenRevoked".into(),
                message: "Bitbucket answered 401".into(),
                observed_generation: Some(2),
                last_transition_time: "2026-11-22T09:00:00Z".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn an_unverifiable_check_does_not_hide_a_later_failure() {
        use crate::catalogue::{Cause, Check};
        use crate::checks::{CheckResult, Finding};
        let mut results: Vec<CheckResult> = Check::ALL[..5]
            .iter()
            .map(|c| CheckResult::passed(*c, "ok"))
            .collect();
        results.push(CheckResult::failed(
            Check::ScopesSufficient,
            Finding::new(Cause::ScopesUnverifiable, "no scope header"),
        ));
        results.push(CheckResult::failed(
            Check::RepositoryAccess,
            Finding::new(Cause::RepositoryNotFound, "no such repository"),
        ));
        let report = Report::of(results);
        assert_eq!(readiness(&report), Readiness::NotReady { stalled: true });
        let ready = conditions(&report)
            .into_iter()
            .find(|c| c.type_ == READY)
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "RepositoryNotFound")
        );
        let scopes = conditions(&report)
            .into_iter()
            .find(|c| c.type_ == "ScopesSufficient")
            .unwrap();
        assert_eq!(scopes.status, "Unknown");
    }

    #[test]
    fn a_compacted_status_compares_like_the_full_one() {
        let full = status();
        let small = compact(&full);
        let mut later = full.clone();
        later.last_checked_time = Some("2026-11-22T11:00:00Z".into());
        assert!(!differs(&small, &later), "only the check time changed");
        let mut changed = later.clone();
        changed.conditions[0].message = "Bitbucket answered 403".into();
        assert!(differs(&small, &changed));
        assert!(
            small.conditions.is_empty(),
            "the cache holds no condition text"
        );
        assert_eq!(
            small.condition_states().collect::<Vec<_>>(),
            full.condition_states().collect::<Vec<_>>()
        );
        assert_eq!(small.kept.as_deref().map(<[_]>::len), Some(1));
        assert!(
            std::mem::size_of::<KeptCondition>() <= 24,
            "a cached condition is a few bytes"
        );
    }

    #[test]
    fn a_status_someone_else_wrote_is_kept_whole() {
        for odd in [
            |c: &mut Condition| c.reason = "SomethingElse".into(),
            |c: &mut Condition| c.last_transition_time = "2026-11-22T09:00:00.5Z".into(),
            |c: &mut Condition| c.last_transition_time = "yesterday".into(),
        ] {
            let mut full = status();
            odd(&mut full.conditions[0]);
            let small = compact(&full);
            assert_eq!(small.conditions, full.conditions);
            assert!(small.kept.is_none());
            assert_eq!(
                small.condition_states().collect::<Vec<_>>(),
                full.condition_states().collect::<Vec<_>>()
            );
            let mut later = full.clone();
            later.last_checked_time = Some("2026-11-22T11:00:00Z".into());
            assert!(!differs(&small, &later));
        }
    }

    #[test]
    fn a_cached_status_keeps_transition_times_as_the_full_one_does() {
        use crate::catalogue::Check;
        use crate::checks::CheckResult;
        let report = |msg: &str| {
            Report::of(
                Check::ALL
                    .iter()
                    .map(|c| match c {
                        Check::CredentialsResolved => CheckResult::passed(*c, msg),
                        _ => CheckResult::passed(*c, "ok"),
                    })
                    .collect(),
            )
        };
        let ltt = |s: &BitbucketConnectionStatus, t: &str| {
            s.conditions
                .iter()
                .find(|c| c.type_ == t)
                .map(|c| c.last_transition_time.clone())
                .unwrap()
        };
        let ctx = RemedyContext::default();
        let t0: jiff::Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        let t1: jiff::Timestamp = "2026-12-03T11:00:00Z".parse().unwrap();
        let first = build(&report("resolved"), &ctx, Some(1), None, t0);
        for old in [first.clone(), compact(&first)] {
            let same = build(&report("resolved"), &ctx, Some(1), Some(&old), t1);
            assert!(
                same.conditions
                    .iter()
                    .all(|c| c.last_transition_time == "2026-12-03T10:00:00Z")
            );
            assert!(!differs(&old, &same));
            let moved = build(&report("resolved again"), &ctx, Some(1), Some(&old), t1);
            assert_eq!(ltt(&moved, "CredentialsResolved"), "2026-12-03T11:00:00Z");
            assert_eq!(ltt(&moved, "Reachable"), "2026-12-03T10:00:00Z");
        }
    }

    #[test]
    fn a_recorded_refusal_holds_only_while_what_it_rests_on_is_unchanged() {
        use crate::api::{SecretVersion, WithheldCredential};
        let v = |rv: &str| SecretVersion {
            name: "pw".into(),
            resource_version: rv.into(),
        };
        let mut s = status();
        s.withheld = Some(Box::new(WithheldCredential {
            credential: crate::withhold::Kind::Rest,
            cause: "CredentialsRejected".into(),
            message: "Bitbucket answered 401".into(),
            since: "2026-12-01T10:00:00Z".into(),
            secrets: vec![v("5")],
            generation: Some(2),
            requested_at: None,
        }));
        let w = withholding(Some(&s), Some(2), None, &[v("5")]).unwrap();
        assert_eq!(
            w.refusal.cause,
            crate::catalogue::Cause::CredentialsRejected
        );
        assert_eq!(w.since.to_string(), "2026-12-01T10:00:00Z");
        assert!(
            withholding(Some(&s), Some(2), None, &[v("6")]).is_none(),
            "rotated"
        );
        assert!(
            withholding(Some(&s), Some(3), None, &[v("5")]).is_none(),
            "new spec"
        );
        assert!(
            withholding(Some(&s), Some(2), Some("now"), &[v("5")]).is_none(),
            "re-check asked"
        );
        assert!(
            withholding(Some(&s), Some(2), None, &[]).is_none(),
            "Secret gone"
        );
        assert_eq!(compact(&s).withheld, s.withheld, "the cache keeps it whole");
    }
}
