//! The checks in the order they run, one step per module:
//!
//! 1. [`credentials`][]: CredentialsResolved, per connection (in `engine::run`, before sharing).
//! 2. [`network`][]: NetworkPathValid: the route, the address class, the destination policy.
//! 3. [`connect`][]: Reachable: the port, then TCP or the proxy's tunnel (which proves its path).
//! 4. [`tls`][]: TLSVerified: the trust store, the handshake, the certificate.
//! 5. [`authenticate`][]: Authenticated: the session, the token exchange ([`token`]) where the
//!    method has one, the identity probe.
//! 6. [`scopes`][]: ScopesSufficient.
//! 7. [`repositories`][]: RepositoryAccess, and the clone URLs Bitbucket advertises.
//! 8. [`git`][]: GitAccess over HTTPS; with transport SSH, [`ssh`][] instead: the SSH host's
//!    path and port, HostKeyVerified, the key (Authenticated), the advertisements (GitAccess,
//!    and RepositoryAccess when no REST step decided it). Without spec.auth, only [`ssh`][]'s
//!    steps run.
//!
//! then the report (`engine/report.rs`). Steps 2 to 8 are [`run`]. A step does the I/O and hands
//! what it saw to its check's module in `checks/`, which decides the verdict; it returns its
//! verdicts and what the next step needs ([`Step`]), or the failure that stops the run. Checks
//! not reached are NotChecked by one rule, in `engine/verdicts.rs`.

use super::Env;
use super::share::{ProbeInput, Probed, Rest};
use super::verdicts::Verdicts;
use crate::api::{CredentialInfo, GitInfo, ServerInfo};
use crate::bitbucket::{Api, RateLimit};
use crate::checks::CheckResult;
use crate::checks::Finding;
use crate::checks::spec::Origin;
use crate::transport::http::Session;
use crate::transport::tls::LeafInfo;
use crate::withhold::{Key, Kind, Withholding};

mod authenticate;
mod connect;
pub(super) mod credentials;
mod git;
mod network;
mod repositories;
mod scopes;
mod ssh;
mod tls;
mod token;

/// A step's outcome: what the next step needs and the verdicts it decided, or the verdict that
/// stops the run.
type Step<T> = Result<(T, Vec<CheckResult>), CheckResult>;

/// A verdict a step's check decided: a failure stops the run. An unverifiable check fails
/// nothing (`CheckResult::failure`), so the run goes on.
fn settle(r: CheckResult) -> Step<()> {
    if r.failure().is_some() {
        Err(r)
    } else {
        Ok(((), vec![r]))
    }
}

/// What the run found besides verdicts, for the report.
#[derive(Clone, Debug, Default)]
pub(super) struct Found {
    pub server: Option<ServerInfo>,
    pub certificate: Option<LeafInfo>,
    pub credential: Option<CredentialInfo>,
    pub git: Option<GitInfo>,
    pub requests: Vec<(String, u16)>,
    pub rate_limits: Vec<(String, RateLimit)>,
    /// A credential refused now or before, and not sent (status.withheld).
    pub withheld: Option<Withholding>,
}

impl Found {
    /// Every request `api` sent so far, for metrics.
    fn collect(&mut self, api: &Api<'_>) {
        let host = api.session.authority().to_string();
        self.requests
            .extend(api.statuses.iter().map(|s| (host.clone(), *s)));
        self.rate_limits
            .extend(api.rate_limits.iter().map(|r| (host.clone(), r.clone())));
    }
}

/// What every step reads, and what it adds to the report.
struct Run<'a> {
    env: &'a Env,
    input: &'a ProbeInput,
    found: Found,
}

impl Run<'_> {
    /// The lockout rule, one place for every credential: a refusal this process holds for `key`,
    /// or the connection's status recorded (a process that ran before, or another leader), is
    /// the verdict, unless the user asked for a fresh check (bbconn.dev/requested-at).
    fn withheld(&mut self, credential: Kind, key: &Key) -> Option<Finding> {
        let (env, t) = (self.env, self.input);
        if t.fresh {
            return None;
        }
        if let Some(p) = t.persisted.as_ref().filter(|p| p.credential == credential) {
            env.withheld.seed(*key, p.refusal.clone(), p.since);
        }
        let (refusal, since) = env.withheld.get(key)?;
        let notice = crate::withhold::notice(&refusal, since);
        self.found.withheld = Some(Withholding {
            credential,
            refusal,
            since,
        });
        Some(notice)
    }

    /// Bitbucket refused the credential now: it is withheld from here on, and the verdict says
    /// so already, so the next check does not rewrite the status to add it.
    fn refused(&mut self, credential: Kind, key: Key, refusal: Finding) -> Finding {
        let now = (self.env.clock)();
        self.env.withheld.put(key, refusal.clone(), now);
        let notice = crate::withhold::notice(&refusal, now);
        self.found.withheld = Some(Withholding {
            credential,
            refusal,
            since: now,
        });
        notice
    }
}

/// One origin a connection is opened to (the API's, a token endpoint's, a clone URL's): the
/// ports it may use, and where its name resolved.
struct Leg<'o> {
    origin: &'o Origin,
    allowed: Vec<u16>,
    addresses: Vec<String>,
}

impl<'o> Leg<'o> {
    /// The API origin, on the ports the profiles and the spec allow.
    fn api(input: &'o ProbeInput) -> Leg<'o> {
        let allowed = input
            .req
            .ports
            .clone()
            .unwrap_or_else(|| input.spec.allowed_ports());
        Leg::new(&input.api_origin, allowed)
    }

    fn new(origin: &'o Origin, allowed: Vec<u16>) -> Leg<'o> {
        Leg {
            origin,
            allowed,
            addresses: Vec::new(),
        }
    }
}

/// The Bitbucket-facing checks, network path to git.
pub(super) async fn run(env: &Env, input: &ProbeInput) -> Probed {
    let mut run = Run {
        env,
        input,
        found: Found::default(),
    };
    let mut v = Verdicts::started();
    let mut api = Leg::api(input);
    let _stopped: Result<(), Stopped> = async {
        let Some(cred) = &input.rest else {
            return match &input.ssh {
                Some(ssh) => ssh::run(&mut v, &mut run, ssh, None).await,
                None => Ok(()),
            };
        };
        let path = v.decide(network::path(&run, &mut api).await)?;
        let tcp = v.decide(connect::open(&run, &api, path).await)?;
        let secured = v.decide(tls::verify(&mut run, &api, tcp).await)?;
        let mut auth = v.decide(authenticate::check(&mut run, cred, &api, secured).await)?;
        let rest = v.decide(scopes::check(&mut run, &auth.identity, &mut auth.session).await)?;
        let clones = v.decide(repositories::check(&mut run, &auth.identity, rest).await)?;
        match &input.ssh {
            Some(ssh) => ssh::run(&mut v, &mut run, ssh, Some(&clones)).await,
            None => v.decide(
                git::check(&mut run, cred, &mut auth.session, &auth.identity, &clones).await,
            ),
        }
    }
    .await;
    let (results, durations) = v.into_parts();
    Probed {
        results,
        durations,
        found: run.found,
    }
}

/// The run stopped at a recorded failure.
struct Stopped;

impl Verdicts {
    /// Records a step's verdicts; its output, or [`Stopped`] at a failure.
    fn decide<T>(&mut self, step: Step<T>) -> Result<T, Stopped> {
        match step {
            Ok((next, decided)) => {
                decided.into_iter().for_each(|r| self.record(r));
                Ok(next)
            }
            Err(failed) => {
                self.record(failed);
                Err(Stopped)
            }
        }
    }
}

/// A session to another origin the run needs (a token endpoint, a clone URL's), through the same
/// network path, reachability and TLS steps; Err: the first verdict that failed there.
async fn open(
    run: &mut Run<'_>,
    origin: &Origin,
    allowed: Vec<u16>,
) -> Result<Session, CheckResult> {
    let mut leg = Leg::new(origin, allowed);
    let (path, _) = network::path(run, &mut leg).await?;
    let (tcp, _) = connect::open(run, &leg, path).await?;
    let (secured, _) = tls::verify(run, &leg, tcp).await?;
    authenticate::session(run.env, secured).await
}
