//! One connection, one pass:
//!
//! ```text
//! fetch Secret and CA bundle -> engine (shared among identical inputs) -> status (pure)
//!   -> write it by server-side apply, only if it changed -> Event on a Ready transition
//!   -> requeue: the interval with jitter, or a per-connection backoff on transient failures
//! ```

use super::refcache::Kind;
use crate::api::{
    BitbucketConnection, BitbucketConnectionStatus, CaBundleKind, Condition, SecretVersion,
};
use crate::checks::{Lookup, Meta};
use crate::engine::{self, Env, Report, Target};
use crate::status::{self, READY, RECONCILING, Readiness};
use crate::telemetry::Metrics;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};
use rand::RngExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;

/// Setting this annotation to a new value asks for a check at once (as Flux's
/// reconcile.fluxcd.io/requestedAt); status.lastHandledRequestedAt echoes it.
pub const REQUESTED_AT: &str = "bbconn.dev/requested-at";
pub const FIELD_MANAGER: &str = "bbconn";

#[derive(Debug, Error)]
pub enum ReconcileError {
    #[error("writing status failed: {0}")]
    Status(#[source] kube::Error),
    #[error("the object has no namespace")]
    NoNamespace,
    #[error("this replica no longer holds the leader Lease; nothing written")]
    NotLeader,
}

pub struct Ctx {
    pub client: Client,
    /// Referenced Secret and ConfigMap data, while unchanged.
    pub refs: Arc<super::refcache::RefCache>,
    pub env: Arc<Env>,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Consecutive transient failures per connection: kube has no per-key backoff.
    pub failures: Mutex<HashMap<(String, String), u32>>,
    /// How long a check of a new generation may run before Reconciling=True is written.
    pub reconciling_after: Duration,
    /// This replica's term as leader: asked before every write.
    pub term: Arc<super::leader::Term>,
}

impl Ctx {
    fn failures(&self, key: &(String, String)) -> u32 {
        self.failures
            .lock()
            .map(|m| m.get(key).copied().unwrap_or(0))
            .unwrap_or(0)
    }
    fn set_failures(&self, key: (String, String), n: u32) {
        if let Ok(mut m) = self.failures.lock() {
            if n == 0 {
                m.remove(&key);
            } else {
                m.insert(key, n);
            }
        }
    }
}

async fn lookup_secret(ctx: &Ctx, ns: &str, name: &str) -> Lookup {
    if let Some(hit) = ctx.refs.get(Kind::Secret, ns, name) {
        return hit;
    }
    let (rv, lookup) = match Api::<Secret>::namespaced(ctx.client.clone(), ns)
        .get_opt(name)
        .await
    {
        Ok(Some(s)) => {
            let mut meta = Meta::from_annotations(s.metadata.annotations.as_ref());
            meta.resource_version = s.resource_version();
            (
                s.resource_version(),
                Lookup::Found(
                    s.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0))
                        .collect(),
                    meta,
                ),
            )
        }
        Ok(None) => (None, Lookup::NotFound),
        Err(e) => (None, lookup_error(e)),
    };
    ctx.refs.put(Kind::Secret, ns, name, rv, &lookup);
    lookup
}

/// The resourceVersions of the Secrets a credential is read from (spec.auth's, the SSH key's).
fn secret_versions(
    spec: &crate::api::BitbucketConnectionSpec,
    auth: Option<&Lookup>,
    ssh: Option<&Lookup>,
) -> Vec<SecretVersion> {
    [(spec.auth_secret(), auth), (spec.ssh_secret(), ssh)]
        .into_iter()
        .filter_map(|(name, lookup)| match (name, lookup) {
            (Some(name), Some(Lookup::Found(_, meta))) => Some(SecretVersion {
                name: name.to_string(),
                resource_version: meta.resource_version.clone()?,
            }),
            _ => None,
        })
        .collect()
}

async fn lookup_configmap(ctx: &Ctx, ns: &str, name: &str) -> Lookup {
    if let Some(hit) = ctx.refs.get(Kind::ConfigMap, ns, name) {
        return hit;
    }
    let (rv, lookup) = match Api::<ConfigMap>::namespaced(ctx.client.clone(), ns)
        .get_opt(name)
        .await
    {
        Ok(Some(cm)) => {
            let rv = cm.resource_version();
            let mut data: BTreeMap<String, Vec<u8>> = cm
                .binary_data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            data.extend(
                cm.data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes())),
            );
            (rv, Lookup::Found(data, Meta::default()))
        }
        Ok(None) => (None, Lookup::NotFound),
        Err(e) => (None, lookup_error(e)),
    };
    ctx.refs.put(Kind::ConfigMap, ns, name, rv, &lookup);
    lookup
}

fn lookup_error(e: kube::Error) -> Lookup {
    match e {
        kube::Error::Api(s) if s.code == 403 => Lookup::Forbidden(s.message),
        kube::Error::Api(s) if s.code == 404 => Lookup::NotFound,
        other => Lookup::Failed(other.to_string()),
    }
}

fn jitter(d: Duration) -> Duration {
    // ±10%, so connections created together do not re-check together forever.
    let f: f64 = rand::rng().random_range(0.9..1.1);
    Duration::try_from_secs_f64(d.as_secs_f64() * f).unwrap_or(d)
}

fn ready_of(s: Option<&BitbucketConnectionStatus>) -> Option<&Condition> {
    s.and_then(|s| s.conditions.iter().find(|c| c.type_ == READY))
}

/// A connection as watched: checked if it could be read, reported once per change if not.
pub async fn reconcile(
    watched: Arc<super::Watched>,
    ctx: Arc<Ctx>,
) -> Result<Action, ReconcileError> {
    match &watched.0 {
        Ok(obj) => check(obj, ctx).await,
        Err(invalid) => {
            report_invalid(&ctx, &watched, invalid).await;
            Ok(Action::await_change())
        }
    }
}

/// An object that does not fit the schema is not checked: a Warning says why, and its next
/// change is looked at again.
async fn report_invalid(
    ctx: &Ctx,
    watched: &super::Watched,
    invalid: &kube::core::error_boundary::InvalidObject,
) {
    let meta = watched.meta();
    ctx.metrics.invalid_objects.inc();
    tracing::warn!(namespace = ?meta.namespace, name = ?meta.name, error = %invalid.error, "skipping a BitbucketConnection that cannot be read");
    let event = Event {
        type_: EventType::Warning,
        reason: "InvalidObject".into(),
        note: Some(truncate(
            &format!(
                "bbconn cannot read this object, so it is not checked: {}",
                invalid.error
            ),
            1000,
        )),
        action: "Read".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &watched.object_ref(&())).await {
        tracing::warn!(error = %e, "publishing an event failed");
    }
}

async fn check(obj: &BitbucketConnection, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    let ns = obj.namespace().ok_or(ReconcileError::NoNamespace)?;
    let name = obj.name_any();
    let key = (ns.clone(), name.clone());
    let spec = &obj.spec;
    let old = obj.status.as_ref();
    let generation = obj.metadata.generation;
    let requested = obj.annotations().get(REQUESTED_AT).cloned();
    let handled = old.and_then(|s| s.last_handled_requested_at.clone());
    let new_generation = old.and_then(|s| s.observed_generation) != generation;
    // A re-check the user asked for, or a changed spec, is checked afresh rather than served a
    // result shared within the window. A new object is not: a thousand connections created at
    // once on one credential still share one set of requests.
    let fresh = (requested.is_some() && requested != handled) || (old.is_some() && new_generation);

    let secret = match spec.auth_secret() {
        Some(n) => Some(lookup_secret(&ctx, &ns, n).await),
        None => None,
    };
    let ssh_secret = match spec.ssh_secret() {
        Some(n) => Some(lookup_secret(&ctx, &ns, n).await),
        None => None,
    };
    let known_hosts = match spec.known_hosts_ref() {
        None => None,
        Some(r) => Some(match r.kind {
            CaBundleKind::ConfigMap => lookup_configmap(&ctx, &ns, &r.name).await,
            CaBundleKind::Secret => lookup_secret(&ctx, &ns, &r.name).await,
        }),
    };
    let ca = match spec.tls.as_ref().and_then(|t| t.ca_bundle_ref.as_ref()) {
        None => None,
        Some(r) => Some(match r.kind {
            CaBundleKind::ConfigMap => lookup_configmap(&ctx, &ns, &r.name).await,
            CaBundleKind::Secret => lookup_secret(&ctx, &ns, &r.name).await,
        }),
    };
    let egress_proxy_secret = match spec.egress_proxy_secret() {
        Some(n) => Some(lookup_secret(&ctx, &ns, n).await),
        None => None,
    };
    // What a refusal's withholding rests on, and a refusal the status recorded that still
    // holds: read before anything is sent, so a restart or a new leader does not resend it.
    let secrets = secret_versions(spec, secret.as_ref(), ssh_secret.as_ref());
    let persisted = status::withholding(old, generation, requested.as_deref(), &secrets);
    let api: Api<BitbucketConnection> = Api::namespaced(ctx.client.clone(), &ns);
    let check = engine::run(
        &ctx.env,
        Target {
            namespace: &ns,
            name: &name,
            spec,
            secret: secret.as_ref(),
            ca_bundle: ca.as_ref(),
            fresh,
            egress_proxy_secret: egress_proxy_secret.as_ref(),
            ssh_secret: ssh_secret.as_ref(),
            known_hosts: known_hosts.as_ref(),
            withheld: persisted.as_ref(),
        },
    );
    let report: Report = if new_generation {
        // kstatus reads Reconciling=True as "in progress"; write it only if the check is slow,
        // so a quick check costs one status write, not two.
        tokio::pin!(check);
        tokio::select! {
            r = &mut check => r,
            _ = tokio::time::sleep(ctx.reconciling_after) => {
                if !ctx.term.may_write() {
                    return Err(ReconcileError::NotLeader);
                }
                write_reconciling(&api, &name, old, generation).await.map_err(ReconcileError::Status)?;
                ctx.metrics.status_writes.inc();
                check.await
            }
        }
    } else {
        check.await
    };
    for (c, d) in &report.durations {
        ctx.metrics.observe_check(*c, d.as_secs_f64());
    }
    for (host, status) in &report.requests {
        ctx.metrics.count_request(host, *status);
    }
    for (host, limit) in &report.rate_limits {
        ctx.metrics.observe_rate_limit(host, limit);
    }

    let decision = decide(Inputs {
        report: &report,
        old,
        failures: ctx.failures(&key),
        asked: new_generation || fresh,
        generation,
        requested,
        handled,
        namespace: &ns,
        spec,
        now: (ctx.env.clock)(),
        secrets: &secrets,
    });
    if let Some(new) = &decision.write {
        if !ctx.term.may_write() {
            return Err(ReconcileError::NotLeader);
        }
        let patch = serde_json::json!({
            "apiVersion": "bbconn.dev/v1alpha1",
            "kind": "BitbucketConnection",
            "status": new,
        });
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        if let Err(e) = api.patch_status(&name, &pp, &Patch::Apply(&patch)).await {
            ctx.metrics.status_write_errors.inc();
            return Err(ReconcileError::Status(e));
        }
        ctx.metrics.status_writes.inc();
        if let Some(event) = &decision.event
            && ctx.term.may_write()
            && let Err(e) = ctx.recorder.publish(event, &obj.object_ref(&())).await
        {
            tracing::warn!(error = %e, "publishing an event failed");
        }
    }
    ctx.set_failures(key, decision.failures);
    ctx.metrics.count_reconcile(decision.result);
    Ok(Action::requeue(decision.requeue))
}

/// What a check's report means for one connection, before anything is written.
pub struct Inputs<'a> {
    pub report: &'a Report,
    /// The status as the cache has it (None: never checked).
    pub old: Option<&'a BitbucketConnectionStatus>,
    /// Consecutive transient failures before this check.
    pub failures: u32,
    /// A new generation or a re-check the user asked for: report what is found, no blip rule.
    pub asked: bool,
    pub generation: Option<i64>,
    pub requested: Option<String>,
    pub handled: Option<String>,
    pub namespace: &'a str,
    pub spec: &'a crate::api::BitbucketConnectionSpec,
    pub now: jiff::Timestamp,
    /// The referenced Secrets' resourceVersions, which a refused credential's withholding
    /// rests on.
    pub secrets: &'a [SecretVersion],
}

/// The reconcile's decision: pure, so its rules (one blip, backoff, Stalled, transitions,
/// events) are tested with a fixed clock and no control plane (the tests below).
pub struct Decision {
    /// The status to apply, only when it differs from what is there.
    pub write: Option<BitbucketConnectionStatus>,
    /// Published after the write, on a Ready transition.
    pub event: Option<Event>,
    pub requeue: Duration,
    /// Consecutive transient failures after this check.
    pub failures: u32,
    /// The bbconn_reconcile_total result label.
    pub result: &'static str,
}

pub fn decide(i: Inputs<'_>) -> Decision {
    let old_ready = i.old.and_then(|o| o.condition_state(READY));
    let was_ready = old_ready.is_some_and(|(s, _)| s == "True");
    let interval = i.spec.interval();
    if is_blip(i.report, was_ready, i.failures, i.asked) {
        // One blip does not flip a Ready connection: look again soon before saying Unknown.
        return Decision {
            write: None,
            event: None,
            requeue: backoff(1, i.report, interval),
            failures: 1,
            result: "transient",
        };
    }
    let remedy_ctx = status::remedy_context(i.namespace, i.spec);
    let mut new = status::build(i.report, &remedy_ctx, i.generation, i.old, i.now);
    new.last_handled_requested_at = i.requested.or(i.handled);
    if let Some(w) = new.withheld.as_mut() {
        w.secrets = i.secrets.to_vec();
        w.requested_at = new.last_handled_requested_at.clone();
    }
    let (write, event) = if i.old.is_none_or(|o| status::differs(o, &new)) {
        let event = transition_event(old_ready, ready_of(Some(&new)), &new);
        (Some(new), event)
    } else {
        (None, None)
    };
    let (result, failures, requeue) = match status::readiness(i.report) {
        Readiness::Ready => ("ready", 0, next_check(i.report, interval)),
        // A change to the spec, Secret or CA bundle triggers a check at once; until then, the
        // interval.
        Readiness::NotReady { stalled: true } => ("stalled", 0, next_check(i.report, interval)),
        Readiness::NotReady { stalled: false } | Readiness::Unknown => {
            let n = i.failures.saturating_add(1);
            ("retrying", n, backoff(n, i.report, interval))
        }
    };
    Decision {
        write,
        event,
        requeue,
        failures,
        result,
    }
}

/// One blip does not flip a Ready connection: a transient failure, or a refused connection
/// (what a Bitbucket restart looks like), on a connection that was Ready is looked at again soon
/// before it is reported. Only a failure that persists changes the status. Not for a new
/// generation or a re-check the user asked for: those report what they find.
pub fn is_blip(report: &Report, was_ready: bool, failures: u32, asked: bool) -> bool {
    if !was_ready || failures > 0 || asked {
        return false;
    }
    let refused = report
        .first_failure()
        .is_some_and(|f| f.cause == crate::catalogue::Cause::ConnectionRefused);
    status::readiness(report) == Readiness::Unknown || refused
}

/// When to check a healthy or stalled connection again: when the shared Bitbucket answers it
/// rests on go stale, so every connection of that credential, server and requirements comes
/// back together and shares one new run (within 200 ms: the first to come starts it, the rest
/// join it in flight). Without sharing, the interval with jitter.
fn next_check(report: &Report, interval: Duration) -> Duration {
    match report.fresh_until {
        Some(until) => {
            let spread = Duration::from_millis(rand::rng().random_range(0..200));
            until
                .saturating_duration_since(std::time::Instant::now())
                .max(Duration::from_millis(500))
                .saturating_add(spread)
        }
        None => jitter(interval),
    }
}

/// 5 s doubling per consecutive failure, at most the interval; never sooner than Retry-After.
fn backoff(n: u32, report: &Report, interval: Duration) -> Duration {
    let exp = Duration::from_secs(5).saturating_mul(1u32 << n.saturating_sub(1).min(10));
    let d = exp.min(interval.max(Duration::from_secs(5)));
    jitter(d.max(report.retry_after().unwrap_or_default()))
}

async fn write_reconciling(
    api: &Api<BitbucketConnection>,
    name: &str,
    old: Option<&BitbucketConnectionStatus>,
    generation: Option<i64>,
) -> Result<(), kube::Error> {
    let condition = Condition {
        type_: RECONCILING.into(),
        status: "True".into(),
        reason: crate::catalogue::reason::CHECKING.into(),
        message: format!("checking generation {}", generation.unwrap_or_default()),
        observed_generation: generation,
        last_transition_time: status::rfc3339(jiff::Timestamp::now()),
    };
    // Append the one condition; the cache's copy of the rest is compacted and must not be
    // written back. The next full apply replaces the list and drops it.
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    let has_conditions = old.is_some_and(|s| s.condition_states().next().is_some());
    let already = old.is_some_and(|s| s.condition_state(RECONCILING).is_some());
    if already {
        return Ok(());
    }
    if has_conditions {
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "add", "path": "/status/conditions/-", "value": condition}
        ]))
        .map_err(kube::Error::SerdeError)?;
        api.patch_status(name, &pp, &Patch::Json::<()>(patch))
            .await
            .map(|_| ())
    } else {
        let patch = serde_json::json!({"status": {"conditions": [condition]}});
        api.patch_status(name, &pp, &Patch::Merge(&patch))
            .await
            .map(|_| ())
    }
}

/// Events on transitions only: Warning with cause and remedy; Normal on recovery.
fn transition_event(
    old: Option<(&str, &str)>,
    new: Option<&Condition>,
    status: &BitbucketConnectionStatus,
) -> Option<Event> {
    let new = new?;
    if old.is_some_and(|(s, r)| s == new.status && r == new.reason) {
        return None;
    }
    // Normal only on recovery: a connection that is Ready from its first check needs no event.
    if new.status == "True" && old.is_none_or(|(s, _)| s == "True") {
        return None;
    }
    Some(match new.status.as_str() {
        "True" => Event {
            type_: EventType::Normal,
            reason: "Ready".into(),
            note: Some(truncate(&new.message, 1000)),
            action: "Check".into(),
            secondary: None,
        },
        _ => {
            let remedy = status
                .problems
                .iter()
                .find(|p| p.cause == new.reason)
                .map(|p| format!(" Remedy: {}", p.remedy))
                .unwrap_or_default();
            Event {
                type_: EventType::Warning,
                reason: new.reason.clone(),
                note: Some(truncate(&format!("{}.{remedy}", new.message), 1000)),
                action: "Check".into(),
                secondary: None,
            }
        }
    })
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

pub fn error_policy(obj: Arc<super::Watched>, err: &ReconcileError, ctx: Arc<Ctx>) -> Action {
    let key = (obj.namespace().unwrap_or_default(), obj.name_any());
    let n = ctx.failures(&key).saturating_add(1);
    ctx.set_failures(key, n);
    ctx.metrics.count_reconcile("error");
    tracing::warn!(namespace = %obj.namespace().unwrap_or_default(), name = %obj.name_any(), error = %err, "reconcile failed");
    Action::requeue(jitter(
        Duration::from_secs(1).saturating_mul(1u32 << n.min(6)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{Cause, Check};
    use crate::checks::{CheckResult, Finding};

    fn report(failure: Option<(Check, Cause)>) -> Report {
        let results = Check::ALL
            .iter()
            .map(|c| match failure {
                Some((f, cause)) if f == *c => {
                    CheckResult::failed(*c, Finding::new(cause, "what the check saw"))
                }
                _ => CheckResult::passed(*c, "ok"),
            })
            .collect();
        Report::of(results)
    }

    /// The decision fixtures: a connection with a 10-minute interval, checked at a fixed clock.
    fn spec() -> crate::api::BitbucketConnectionSpec {
        serde_json::from_value(serde_json::json!({
            "flavor": "DataCenter", "url": "https://bitbucket.example.com", "interval": "10m",
            "auth": {"method": "AccessToken", "secretRef": {"name": "token"}}
        }))
        .unwrap()
    }

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    struct Fixture {
        spec: crate::api::BitbucketConnectionSpec,
        /// As the operator's cache holds it.
        status: Option<BitbucketConnectionStatus>,
        written: Option<BitbucketConnectionStatus>,
        failures: u32,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture {
                spec: spec(),
                status: None,
                written: None,
                failures: 0,
            }
        }

        /// One reconcile at `now` with `report`; what it writes becomes the cache's status.
        fn check(&mut self, report: &Report, now: &str, asked: bool) -> Decision {
            let v = decide(Inputs {
                report,
                old: self.status.as_ref(),
                failures: self.failures,
                asked,
                generation: Some(1),
                requested: None,
                handled: None,
                namespace: "team",
                spec: &self.spec,
                now: at(now),
                secrets: &[],
            });
            if let Some(w) = &v.write {
                self.status = Some(status::compact(w));
                self.written = Some(w.clone());
            }
            self.failures = v.failures;
            v
        }

        fn ready(&self) -> (String, String, String) {
            let c = ready_of(self.written.as_ref()).unwrap();
            (
                c.status.clone(),
                c.reason.clone(),
                c.last_transition_time.clone(),
            )
        }
    }

    fn within(d: Duration, secs: f64) -> bool {
        let s = d.as_secs_f64();
        s >= secs * 0.9 - 0.001 && s <= secs * 1.1 + 0.001
    }

    #[test]
    fn a_healthy_connection_is_written_once_and_checked_every_interval() {
        let mut f = Fixture::new();
        let v = f.check(&report(None), "2026-12-03T10:00:00Z", false);
        assert!(v.write.is_some(), "the first check writes its status");
        assert!(v.event.is_none(), "Ready from the first check: no event");
        assert_eq!((v.result, v.failures), ("ready", 0));
        assert!(within(v.requeue, 600.0), "{:?}", v.requeue);
        for minute in 10..40 {
            let v = f.check(&report(None), &format!("2026-12-03T10:{minute}:00Z"), false);
            assert!(
                v.write.is_none(),
                "steady state writes nothing (minute {minute})"
            );
        }
        assert_eq!(f.ready().2, "2026-12-03T10:00:00Z");
    }

    #[test]
    fn one_blip_is_looked_at_again_a_second_is_reported_and_backs_off() {
        let mut f = Fixture::new();
        f.check(&report(None), "2026-12-03T10:00:00Z", false);
        let refused = report(Some((Check::Reachable, Cause::ConnectionRefused)));
        let v = f.check(&refused, "2026-12-03T10:10:00Z", false);
        assert!(
            v.write.is_none() && v.event.is_none(),
            "one blip changes nothing"
        );
        assert_eq!((v.result, v.failures), ("transient", 1));
        assert!(
            within(v.requeue, 5.0),
            "looked at again soon: {:?}",
            v.requeue
        );
        assert_eq!(f.ready().0, "True");

        let v = f.check(&refused, "2026-12-03T10:10:05Z", false);
        let event = v.event.as_ref().expect("a Warning on the transition");
        assert_eq!(event.type_, EventType::Warning);
        assert_eq!(event.reason, "ConnectionRefused");
        assert!(event.note.as_deref().unwrap().contains("Remedy: "));
        assert_eq!((v.result, v.failures), ("retrying", 2));
        assert_eq!(
            f.ready(),
            (
                "False".into(),
                "ConnectionRefused".into(),
                "2026-12-03T10:10:05Z".into()
            )
        );
        // 5 s doubling per failure, at most the interval.
        let mut waits = Vec::new();
        for k in 0..10 {
            let v = f.check(&refused, &format!("2026-12-03T10:2{k}:00Z"), false);
            assert!(v.write.is_none(), "the same failure is not rewritten");
            waits.push(v.requeue.as_secs_f64());
        }
        for (k, w) in waits.iter().enumerate() {
            let expected = (5.0 * f64::from(1u32 << (k + 2))).min(600.0);
            assert!(
                within(Duration::from_secs_f64(*w), expected),
                "failure {}: {w} s, not ~{expected} s",
                k + 3
            );
        }
        assert_eq!(
            f.ready().2,
            "2026-12-03T10:10:05Z",
            "lastTransitionTime stays"
        );

        let v = f.check(&report(None), "2026-12-03T11:00:00Z", false);
        let event = v.event.as_ref().expect("a Normal event on recovery");
        assert_eq!(
            (event.type_, event.reason.as_str()),
            (EventType::Normal, "Ready")
        );
        assert_eq!((v.result, v.failures), ("ready", 0));
        assert_eq!(f.ready().2, "2026-12-03T11:00:00Z");
    }

    #[test]
    fn a_check_the_user_asked_for_reports_a_blip_at_once() {
        let mut f = Fixture::new();
        f.check(&report(None), "2026-12-03T10:00:00Z", false);
        let timeout = report(Some((Check::Reachable, Cause::ConnectionTimedOut)));
        let v = f.check(&timeout, "2026-12-03T10:01:00Z", true);
        assert!(v.write.is_some());
        assert_eq!(v.result, "retrying");
        assert_eq!(f.ready().0, "Unknown");
    }

    #[test]
    fn a_revoked_token_stalls_with_its_remedy_and_waits_for_a_change() {
        let mut f = Fixture::new();
        f.check(&report(None), "2026-12-03T10:00:00Z", false);
        let revoked = report(Some((Check::Authenticated, Cause::TokenRevoked)));
        let v = f.check(&revoked, "2026-12-03T10:10:00Z", false);
        assert!(v.write.is_some(), "no blip rule for a refused credential");
        let status = v.write.as_ref().unwrap();
        assert!(
            status
                .conditions
                .iter()
                .any(|c| c.type_ == "Stalled" && c.status == "True" && c.reason == "TokenRevoked"),
            "{:?}",
            status.conditions
        );
        assert_eq!(v.event.as_ref().unwrap().reason, "TokenRevoked");
        assert_eq!((v.result, v.failures), ("stalled", 0));
        assert!(
            within(v.requeue, 600.0),
            "stalled: the interval, not a backoff"
        );
        let v = f.check(&revoked, "2026-12-03T10:20:00Z", false);
        assert!(v.write.is_none() && v.event.is_none(), "no event per check");
    }

    #[test]
    fn retry_after_is_respected() {
        let mut f = Fixture::new();
        let mut limited = report(Some((Check::Authenticated, Cause::RateLimited)));
        for r in &mut limited.results {
            if let crate::checks::Verdict::Failed(fi) = &mut r.verdict {
                fi.retry_after = Some(Duration::from_secs(120));
            }
        }
        let v = f.check(&limited, "2026-12-03T10:00:00Z", false);
        assert!(v.requeue >= Duration::from_secs(108), "{:?}", v.requeue);
    }

    #[test]
    fn one_refused_connection_does_not_flip_a_ready_connection() {
        let refused = report(Some((Check::Reachable, Cause::ConnectionRefused)));
        assert!(
            is_blip(&refused, true, 0, false),
            "first refusal: look again"
        );
        assert!(
            !is_blip(&refused, true, 1, false),
            "a refusal that persists is reported"
        );
        assert!(
            !is_blip(&refused, false, 0, false),
            "not Ready before: nothing to protect"
        );
        assert!(
            !is_blip(&refused, true, 0, true),
            "a new generation reports what it finds"
        );
        let timeout = report(Some((Check::Reachable, Cause::ConnectionTimedOut)));
        assert!(is_blip(&timeout, true, 0, false));
        let revoked = report(Some((Check::Authenticated, Cause::TokenRevoked)));
        assert!(
            !is_blip(&revoked, true, 0, false),
            "a revoked token is no blip"
        );
        assert!(!is_blip(&report(None), true, 0, false));
    }

    #[test]
    fn healthy_connections_come_back_when_their_shared_answers_go_stale() {
        let mut r = report(None);
        let interval = Duration::from_secs(600);
        let j = next_check(&r, interval);
        assert!(j >= Duration::from_secs(540) && j <= Duration::from_secs(660));
        r.fresh_until = Some(std::time::Instant::now() + Duration::from_secs(30));
        let n = next_check(&r, interval);
        assert!(
            n > Duration::from_secs(29) && n < Duration::from_millis(30_300),
            "{n:?}"
        );
        r.fresh_until = Some(std::time::Instant::now());
        assert!(next_check(&r, interval) >= Duration::from_millis(500));
    }
}
