//! Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does: the
//! holder renews the Lease; another replica takes it only when it has not been renewed for its
//! duration. Writes carry the resourceVersion they read, so two replicas cannot both win.
//!
//! Safety, stricter than client-go:
//! - a renew call has a deadline (client-go's renewDeadline), shorter than the Lease duration:
//!   a leader cut off from the API server stops writing before another replica may take over;
//! - the holder watches its Lease, so a deleted or stolen Lease ends its term at once;
//! - a replica that saw a live holder does not take a deleted Lease until that holder's last
//!   renewal would have expired, so the old holder has stopped before anyone else holds it;
//! - every status write asks [`Term::may_write`] first.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use kube::{Client, Error};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Clone, Debug)]
pub struct LeaderConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// The Deployment that owns the Lease (`--lease-owner`), if any.
    pub owner: Option<String>,
    pub lease_duration: Duration,
    /// How long after the start of its last successful renew the holder may still act; shorter
    /// than `lease_duration`, so the holder stops before the Lease can expire for others.
    pub renew_deadline: Duration,
    pub renew_every: Duration,
    pub retry_every: Duration,
}

impl LeaderConfig {
    /// client-go's proportions (15 s / 10 s / 2 s) from the Lease duration.
    pub fn timings(lease_duration: Duration) -> (Duration, Duration, Duration) {
        let d = lease_duration.max(Duration::from_secs(2));
        (
            d.mul_f64(2.0 / 3.0),
            d / 4,
            (d / 6).max(Duration::from_millis(200)),
        )
    }
}

/// One term as leader: writes are allowed until `valid_until`, which each renewal extends.
#[derive(Debug)]
pub struct Term {
    valid_until: Mutex<Option<Instant>>,
}

impl Term {
    fn new(until: Instant) -> Term {
        Term {
            valid_until: Mutex::new(Some(until)),
        }
    }

    /// A term that does not end (leader election off).
    pub fn unbounded() -> Term {
        Term::new(Instant::now() + Duration::from_secs(10 * 365 * 24 * 3600))
    }

    /// Whether this replica may write now.
    pub fn may_write(&self) -> bool {
        self.valid_until
            .lock()
            .ok()
            .and_then(|v| *v)
            .is_some_and(|until| Instant::now() < until)
    }

    fn until(&self) -> Option<Instant> {
        self.valid_until.lock().ok().and_then(|v| *v)
    }

    fn extend(&self, until: Instant) {
        if let Ok(mut v) = self.valid_until.lock()
            && v.is_some()
        {
            *v = Some(until);
        }
    }

    fn end(&self) {
        if let Ok(mut v) = self.valid_until.lock() {
            *v = None;
        }
    }
}

/// The last Lease record seen held by someone, and when it was seen (local clock).
#[derive(Clone, Debug)]
struct Observed {
    holder: String,
    /// The Lease's renewTime as read, so `at` is when this renewal was first seen.
    renew: String,
    at: Instant,
}

pub struct Elector {
    api: Api<Lease>,
    deployments: Api<Deployment>,
    cfg: LeaderConfig,
    observed: Mutex<Option<Observed>>,
    /// The owner reference, once the Deployment has been read.
    owner: Mutex<Option<OwnerReference>>,
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

impl Elector {
    pub fn new(client: Client, cfg: LeaderConfig) -> Elector {
        Elector {
            api: Api::namespaced(client.clone(), &cfg.namespace),
            deployments: Api::namespaced(client, &cfg.namespace),
            cfg,
            observed: Mutex::new(None),
            owner: Mutex::new(None),
        }
    }

    /// Waits until this replica holds the Lease; the term it starts.
    pub async fn acquire(&self) -> std::sync::Arc<Term> {
        loop {
            let started = Instant::now();
            match tokio::time::timeout(self.cfg.renew_deadline, self.try_acquire_or_renew(false))
                .await
            {
                Ok(Ok(true)) => {
                    return std::sync::Arc::new(Term::new(started + self.cfg.renew_deadline));
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, lease = %self.cfg.name, "leader election: cannot read or write the Lease")
                }
                Err(_) => {
                    tracing::warn!(lease = %self.cfg.name, "leader election: the API server did not answer in time")
                }
            }
            tokio::time::sleep(self.cfg.retry_every).await;
        }
    }

    /// Renews until the term ends: the Lease is taken, deleted, or cannot be renewed before the
    /// renew deadline. Ends `term` (no more writes) before returning.
    pub async fn hold(&self, term: &Term) {
        let lease = watcher(
            self.api.clone(),
            watcher::Config::default().fields(&format!("metadata.name={}", self.cfg.name)),
        );
        let mut lease = std::pin::pin!(lease);
        let mut next_renew = Instant::now() + self.cfg.renew_every;
        let why = loop {
            let Some(until) = term.until() else {
                break "ended";
            };
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break "the Lease could not be renewed before the renew deadline",
                _ = tokio::time::sleep_until(next_renew) => {
                    let started = Instant::now();
                    let left = until.saturating_duration_since(started);
                    match tokio::time::timeout(left, self.try_acquire_or_renew(true)).await {
                        Ok(Ok(true)) => {
                            term.extend(started + self.cfg.renew_deadline);
                            next_renew = started + self.cfg.renew_every;
                        }
                        Ok(Ok(false)) => break "another replica holds the Lease",
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "leader election: renewing the Lease failed");
                            next_renew = Instant::now() + self.cfg.retry_every;
                        }
                        Err(_) => break "the Lease could not be renewed before the renew deadline",
                    }
                }
                ev = lease.next() => match ev {
                    Some(Ok(watcher::Event::Delete(_))) => break "the Lease was deleted",
                    Some(Ok(watcher::Event::Apply(l) | watcher::Event::InitApply(l)))
                        if !self.mine(&l) =>
                    {
                        break "another identity took the Lease";
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "leader election: watching the Lease");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    None => {}
                },
            }
        };
        term.end();
        tracing::warn!(lease = %self.cfg.name, reason = why, "stepping down: no more writes until the Lease is held again");
        // Whoever holds it next must see that this replica stopped: do not take the Lease back
        // before one Lease duration has passed.
        if let Ok(mut o) = self.observed.lock() {
            *o = Some(Observed {
                holder: String::new(),
                renew: String::new(),
                at: Instant::now(),
            });
        }
    }

    /// The owner reference to the `--lease-owner` Deployment, read once. None without the flag,
    /// or while the Deployment cannot be read (the Lease is then written without it, and the
    /// next write tries again): leader election must not wait on it.
    async fn owner(&self) -> Option<OwnerReference> {
        let name = self.cfg.owner.as_deref()?;
        if let Some(o) = self.owner.lock().ok().and_then(|o| o.clone()) {
            return Some(o);
        }
        let d = match self.deployments.get(name).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, deployment = name, "leader election: cannot read the Lease's owner");
                return None;
            }
        };
        let owner = OwnerReference {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: name.to_string(),
            uid: d.metadata.uid?,
            ..OwnerReference::default()
        };
        if let Ok(mut o) = self.owner.lock() {
            *o = Some(owner.clone());
        }
        Some(owner)
    }

    fn mine(&self, lease: &Lease) -> bool {
        lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(self.cfg.identity.as_str())
    }

    /// Gives the Lease up at shutdown, so the next replica need not wait for it to expire.
    pub async fn release(&self) {
        let release = async {
            if let Ok(Some(mut lease)) = self.api.get_opt(&self.cfg.name).await {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                if spec.holder_identity.as_deref() == Some(self.cfg.identity.as_str()) {
                    spec.holder_identity = None;
                    spec.renew_time = None;
                    spec.acquire_time = None;
                    let _ = self
                        .api
                        .replace(&self.cfg.name, &PostParams::default(), &lease)
                        .await;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), release).await;
    }

    /// Whether a missing Lease may be created now: not while a holder seen recently (or this
    /// replica's own last term) might still be acting.
    fn may_create(&self) -> bool {
        self.observed
            .lock()
            .ok()
            .and_then(|o| o.clone())
            .is_none_or(|o| {
                o.holder == self.cfg.identity || o.at.elapsed() > self.cfg.lease_duration
            })
    }

    fn observe(&self, holder: &str, renew: Option<&MicroTime>) {
        let renew = renew.map(|t| t.0.to_string()).unwrap_or_default();
        if let Ok(mut o) = self.observed.lock() {
            if o.as_ref()
                .is_some_and(|o| o.holder == holder && o.renew == renew)
            {
                return;
            }
            *o = Some(Observed {
                holder: holder.to_string(),
                renew,
                at: Instant::now(),
            });
        }
    }

    /// `renewing`: this replica holds the Lease; a missing one means its term is over (someone
    /// deleted it), not that it may create a new one at once.
    async fn try_acquire_or_renew(&self, renewing: bool) -> Result<bool, Error> {
        let duration = i32::try_from(self.cfg.lease_duration.as_secs()).unwrap_or(15);
        let Some(mut lease) = self.api.get_opt(&self.cfg.name).await? else {
            if renewing || !self.may_create() {
                return Ok(false);
            }
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.name.clone()),
                    namespace: Some(self.cfg.namespace.clone()),
                    owner_references: self.owner().await.map(|o| vec![o]),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.cfg.identity.clone()),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(now()),
                    renew_time: Some(now()),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let mine = spec.holder_identity.as_deref() == Some(self.cfg.identity.as_str());
        let held = spec
            .holder_identity
            .as_deref()
            .is_some_and(|h| !h.is_empty());
        let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
            (Some(MicroTime(t)), Some(d)) => {
                jiff::Timestamp::now().duration_since(*t)
                    > jiff::SignedDuration::from_secs(i64::from(d))
            }
            _ => true,
        };
        if !mine && held && !expired {
            if let Some(h) = spec.holder_identity.as_deref() {
                self.observe(h, spec.renew_time.as_ref());
            }
            return Ok(false);
        }
        if !mine && self.stepped_down_recently() {
            // Expired or released, but this replica only just stepped down: let another take it.
            return Ok(false);
        }
        if !mine {
            spec.holder_identity = Some(self.cfg.identity.clone());
            spec.acquire_time = Some(now());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.renew_time = Some(now());
        spec.lease_duration_seconds = Some(duration);
        // A Lease written before the owner was known (or by an older version) gains it here.
        if let Some(owner) = self.owner().await {
            let refs = lease.metadata.owner_references.get_or_insert_with(Vec::new);
            if !refs.iter().any(|r| r.uid == owner.uid) {
                refs.push(owner);
            }
        }
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                self.observe(&self.cfg.identity, None);
                Ok(true)
            }
            // Someone else wrote it since we read it: they won this round.
            Err(Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn stepped_down_recently(&self) -> bool {
        self.observed
            .lock()
            .ok()
            .and_then(|o| o.clone())
            .is_some_and(|o| o.holder.is_empty() && o.at.elapsed() <= self.cfg.lease_duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_renew_deadline_ends_before_the_lease_can_expire() {
        for secs in [2, 4, 15, 60] {
            let d = Duration::from_secs(secs);
            let (deadline, renew, retry) = LeaderConfig::timings(d);
            assert!(
                deadline < d && renew < deadline && retry < deadline,
                "{secs}"
            );
        }
    }

    #[tokio::test]
    async fn a_term_allows_writes_only_until_its_deadline() {
        let ms = Duration::from_millis;
        let t = Term::new(Instant::now() + ms(80));
        assert!(t.may_write());
        tokio::time::sleep(ms(40)).await;
        t.extend(Instant::now() + ms(80));
        tokio::time::sleep(ms(50)).await;
        assert!(t.may_write(), "extended by the renewal");
        tokio::time::sleep(ms(50)).await;
        assert!(!t.may_write(), "past the deadline");
        let t = Term::new(Instant::now() + Duration::from_secs(10));
        t.end();
        t.extend(Instant::now() + Duration::from_secs(10));
        assert!(!t.may_write(), "an ended term is not revived");
        assert!(Term::unbounded().may_write());
    }
}
