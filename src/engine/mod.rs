//! The checks for one connection, end to end: [`run`] resolves the credentials, runs the
//! Bitbucket-facing steps (`pipeline/`, shared among connections with the same inputs by
//! `share.rs`), and assembles the [`Report`].
//!
//! Each verdict is decided by its check's module in `checks/`; this module and its children do
//! the I/O between them. Nothing is kept between runs except the caches on [`Env`]: the operator
//! and `bbconn check` both call [`run`].

use crate::api::BitbucketConnectionSpec;
use crate::checks::{self, Lookup};
use crate::transport::NetConfig;
use std::sync::Arc;
use std::time::Duration;

mod pipeline;
mod report;
mod share;
mod trust;
mod verdicts;

pub use report::Report;
pub use share::Probed;

/// One connection to check, with what it references already fetched.
pub struct Target<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub spec: &'a BitbucketConnectionSpec,
    /// The Secret spec.auth.secretRef names; None without spec.auth.
    pub secret: Option<&'a Lookup>,
    /// Only when spec.tls.caBundleRef is set.
    pub ca_bundle: Option<&'a Lookup>,
    /// Do not reuse a shared result (a user asked for a re-check).
    pub fresh: bool,
    /// Only when spec.network.egressProxy.secretRef is set: the proxy's credentials.
    pub egress_proxy_secret: Option<&'a Lookup>,
    /// Transport SSH: the Secret spec.git.ssh.secretRef names.
    pub ssh_secret: Option<&'a Lookup>,
    /// Only when spec.git.ssh.knownHostsRef is set.
    pub known_hosts: Option<&'a Lookup>,
    /// A refusal the connection's status recorded, which the caller found still current (the
    /// same Secrets, generation and requested-at): withheld before anything is sent.
    pub withheld: Option<&'a crate::withhold::Withholding>,
}

/// The operator-wide environment.
pub struct Env {
    pub net: NetConfig,
    /// Shares Bitbucket-facing runs among connections with the same inputs (the operator's).
    pub memo: Option<crate::memo::Memo<Probed>>,
    /// How long a shared result that says "look again soon" (a transient or retryable failure)
    /// is served: less than the shortest retry backoff, so a retry sees a new run.
    pub share_retry: Duration,
    /// Verifiers by CA bundle: parsing roots is the costly part of TLS set-up.
    trust: trust::Cache,
    /// Credentials Bitbucket rejected, not to be sent again until they change.
    pub withheld: crate::withhold::Withheld,
    pub clock: fn() -> jiff::Timestamp,
}

impl Env {
    /// With probe sharing: identical runs are made once per connection interval; results that
    /// call for a retry are shared for at most `window` (and never more than 4 s).
    pub fn with_sharing(mut self, window: Duration) -> Env {
        self.memo = Some(crate::memo::Memo::new());
        self.share_retry = window.min(Duration::from_secs(4));
        self
    }

    pub fn new(net: NetConfig) -> Env {
        Env {
            net,
            memo: None,
            share_retry: Duration::from_secs(4),
            trust: trust::Cache::default(),
            withheld: crate::withhold::Withheld::default(),
            clock: jiff::Timestamp::now,
        }
    }
}

/// Runs every check for one connection: resolve credentials -> the Bitbucket-facing pipeline
/// (shared where another connection has the same inputs) -> report.
pub async fn run(env: &Arc<Env>, t: Target<'_>) -> Report {
    let (req, api_origin) = match checks::spec::requirements(t.spec) {
        Ok(v) => v,
        Err(f) => return Report::invalid(f),
    };
    let applies = checks::spec::applicable(t.spec);
    let mut verdicts = verdicts::Verdicts::started();
    let resolved = match pipeline::credentials::resolve(&t) {
        Ok(r) => r,
        Err(pipeline::credentials::Unresolved::Invalid(f)) => return Report::invalid(f),
        Err(pipeline::credentials::Unresolved::Failed(r)) => {
            verdicts.record(r);
            return Report::stopped(verdicts, &applies);
        }
    };
    verdicts.record(resolved.verdict.clone());
    let input = share::ProbeInput::new(&t, req, api_origin, &resolved);
    let secrets = report::Secrets::of(&resolved, &input);
    let (probed, fresh_until) = share::probe(env, input, t.fresh, t.spec.interval()).await;
    Report::assemble(verdicts, probed, fresh_until, &secrets, &applies)
}

/// Exposed for the benchmark and tests: how many requests a run sent.
pub fn request_count(report: &Report) -> usize {
    report.requests.len()
}
