//! The checks, end to end, for one connection:
//!
//! ```text
//! requirements (profiles + spec) -> credentials (Secret) -> resolve -> network path
//!   -> reachable (URL, TCP or CONNECT tunnel) -> TLS -> authenticated -> scopes -> repositories
//! ```
//!
//! then git (GitAccess, in `engine/git.rs`).
//!
//! Each step's verdict is decided by its module in `checks/`; this file does the I/O between them
//! and stops at the first failure, marking the rest NotChecked. It holds no state between runs:
//! the operator and `bbconn check` both call [`run`].

use crate::api::{
    Access, AuthMethod, BitbucketConnectionSpec, CaBundleKind, CredentialInfo, DcPermission,
    Flavor, ServerInfo,
};
use crate::bitbucket::{Api, Identity, cloud, datacenter, oauth};
use crate::catalogue::{Cause, Check};
use crate::checks::network_path::{Resolution, Route};
use crate::checks::repositories::Observed;
use crate::checks::{self, CheckResult, Finding, Lookup, Verdict};
use crate::credential::{Credential, GitCredential, SecretString, bearer};
use crate::profiles::{self, Effective};
use crate::transport::http::Session;
use crate::transport::tls::{self as tlsx, HandshakeError, LeafInfo, Trust};
use crate::transport::{NetConfig, ProxyError, connect_via_proxy, connect_via_proxy_as};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod git;

/// One connection to check, with what it references already fetched.
pub struct Target<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub spec: &'a BitbucketConnectionSpec,
    pub secret: &'a Lookup,
    /// Only when spec.tls.caBundleRef is set.
    pub ca_bundle: Option<&'a Lookup>,
    /// Do not reuse a shared result (a user asked for a re-check).
    pub fresh: bool,
    /// Only when spec.network.egressProxy.secretRef is set: the proxy's credentials.
    pub egress_proxy_secret: Option<&'a Lookup>,
}

/// What the Bitbucket-facing checks need, owned, so one run can be shared by every connection
/// with the same inputs (see [`crate::memo`]).
struct ProbeInput {
    spec: BitbucketConnectionSpec,
    req: Effective,
    api_origin: Origin,
    credential: Credential,
    /// spec.auth.method, or what CredentialsResolved inferred from a consumer's Secret.
    method: AuthMethod,
    /// With spec.auth.secretRef.format: exactly what the consumer sends to git.
    git_credential: Option<GitCredential>,
    /// The CA bundle's bytes, or why it could not be had (reported under TLSVerified).
    ca: Result<Vec<u8>, Finding>,
    /// The Secret's bbconn.dev/expires-at, where set.
    declared_expiry: Option<jiff::Timestamp>,
    /// Send the credential even if Bitbucket rejected it before (a user asked for a re-check).
    fresh: bool,
    /// Basic credentials for spec.network.egressProxy, or why they could not be had (reported
    /// under NetworkPathValid when the proxy is used).
    egress_auth: Result<Option<(SecretString, SecretString)>, Finding>,
}

/// The results of the Bitbucket-facing checks (every check after CredentialsResolved).
#[derive(Clone, Debug)]
pub struct Probed {
    results: Vec<CheckResult>,
    server: Option<ServerInfo>,
    certificate: Option<LeafInfo>,
    credential: Option<CredentialInfo>,
    git: Option<crate::api::GitInfo>,
    requests: Vec<(String, u16)>,
    rate_limits: Vec<(String, crate::bitbucket::RateLimit)>,
    durations: Vec<(Check, Duration)>,
}

impl ProbeInput {
    /// Everything the checks' outcome depends on; secret values enter only as a digest.
    fn key(&self) -> crate::memo::Key {
        use sha2::{Digest, Sha256};
        let mut spec = self.spec.clone();
        spec.interval = None;
        spec.auth.secret_ref.name.clear();
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&spec).unwrap_or_default());
        for v in self.credential.key_material() {
            h.update((v.len() as u64).to_le_bytes());
            h.update(v.as_bytes());
        }
        h.update(format!("{:?}", self.method).as_bytes());
        if let Some(g) = &self.git_credential {
            // The user name git is sent decides GitAccess's verdict as much as the secret.
            for v in [g.username().unwrap_or("<bearer>"), g.secret().expose()] {
                h.update((v.len() as u64).to_le_bytes());
                h.update(v.as_bytes());
            }
        }
        match &self.ca {
            Ok(b) => h.update(b),
            Err(f) => h.update(f.message.as_bytes()),
        }
        if let Some(t) = self.declared_expiry {
            h.update(t.as_second().to_le_bytes());
        }
        match &self.egress_auth {
            Ok(Some((u, p))) => {
                for v in [u.expose(), p.expose()] {
                    h.update((v.len() as u64).to_le_bytes());
                    h.update(v.as_bytes());
                }
            }
            Ok(None) => {}
            Err(f) => h.update(f.message.as_bytes()),
        }
        h.finalize().into()
    }

    /// The credential in the form git is sent it (the Authorization header), and where.
    fn git_credential_key(&self, authorization: &http::HeaderValue) -> crate::withhold::Key {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"git");
        h.update(self.credential_key());
        h.update(authorization.as_bytes());
        h.finalize().into()
    }

    /// The credential as Bitbucket sees it: the secret values and where they are sent. Shared
    /// by every connection that sends the same credential to the same server, so they share the
    /// rule that a rejected credential is not sent again.
    fn credential_key(&self) -> crate::withhold::Key {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [
            self.spec.base_url(),
            self.spec.auth.token_url.as_deref().unwrap_or_default(),
            &format!("{:?}/{:?}", self.spec.flavor, self.method),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        for v in self.credential.key_material() {
            h.update((v.len() as u64).to_le_bytes());
            h.update(v.as_bytes());
        }
        h.finalize().into()
    }
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
    trust: Mutex<HashMap<u64, Trust>>,
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
            trust: Mutex::new(HashMap::new()),
            withheld: crate::withhold::Withheld::default(),
            clock: jiff::Timestamp::now,
        }
    }

    fn trust(&self, bundle: &[u8], public_roots: bool) -> Result<Trust, Finding> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (bundle, public_roots).hash(&mut h);
        let key = h.finish();
        if let Ok(cache) = self.trust.lock()
            && let Some(t) = cache.get(&key)
        {
            return Ok(t.clone());
        }
        let certs = if bundle.is_empty() {
            Vec::new()
        } else {
            tlsx::parse_pem_certs(bundle)
                .map_err(|e| Finding::new(Cause::CaBundleInvalid, e.to_string()))?
        };
        let trust = if certs.is_empty() && public_roots {
            Trust::public()
        } else {
            Trust::new(&certs, public_roots)
        }
        .map_err(|e| Finding::new(Cause::CaBundleInvalid, e.to_string()))?;
        if let Ok(mut cache) = self.trust.lock() {
            // Bounded: distinct bundles are few; a pathological stream of them just rebuilds.
            if cache.len() > 256 {
                cache.clear();
            }
            cache.insert(key, trust.clone());
        }
        Ok(trust)
    }
}

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
        }
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
    fn scrub(&mut self, s: &crate::scrub::Scrubber) {
        let report = self;
        for r in &mut report.results {
            match &mut r.verdict {
                crate::checks::Verdict::Failed(f) => s.clean(&mut f.message),
                crate::checks::Verdict::Passed { message, .. } => s.clean(message),
                crate::checks::Verdict::Skipped { .. } => {}
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
    }
}

/// Collects verdicts in order; once one fails, the rest are NotChecked.
struct Progress {
    results: Vec<CheckResult>,
    durations: Vec<(Check, Duration)>,
    started: std::time::Instant,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            results: Vec::new(),
            durations: Vec::new(),
            started: std::time::Instant::now(),
        }
    }
    fn record(&mut self, r: CheckResult) -> bool {
        let ok = !matches!(r.verdict, Verdict::Skipped { .. }) && r.failure().is_none();
        let now = std::time::Instant::now();
        self.durations.push((r.check, now - self.started));
        self.started = now;
        self.results.push(r);
        ok
    }
    fn fail(&mut self, check: Check, f: Finding) {
        self.record(CheckResult::failed(check, f));
    }
    fn finish(mut self) -> (Vec<CheckResult>, Vec<(Check, Duration)>) {
        let failed = self
            .results
            .iter()
            .find(|r| r.failure().is_some())
            .map(|r| r.check);
        let mut out = Vec::with_capacity(Check::ALL.len());
        for c in Check::ALL {
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

/// The parts of a URL the checks need.
#[derive(Clone)]
struct Origin {
    url: url::Url,
    host: String,
}

fn origin(raw: &str, what: &str) -> Result<Origin, Finding> {
    let url = url::Url::parse(raw).map_err(|e| {
        Finding::new(
            Cause::InvalidSpec,
            format!("{what} {raw:?} is not a URL: {e}"),
        )
    })?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Finding::new(Cause::InvalidSpec, format!("{what} {raw:?} has no host")))?
        .to_string();
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Finding::new(
            Cause::InvalidSpec,
            format!("{what} {raw:?} is not http(s)"),
        ));
    }
    Ok(Origin { url, host })
}

/// Runs every check for one connection.
pub async fn run(env: &Arc<Env>, t: Target<'_>) -> Report {
    let mut report = Report::empty();
    let spec = t.spec;
    let prepared = profiles::effective(spec)
        .map_err(|m| Finding::new(Cause::InvalidSpec, m))
        .and_then(|req| origin(spec.base_url(), "spec.url").map(|o| (req, o)));
    let (req, api_origin) = match prepared {
        Ok(v) => v,
        Err(f) => {
            report.invalid = Some(f);
            report.results = Check::ALL
                .iter()
                .map(|c| CheckResult {
                    check: *c,
                    verdict: Verdict::Skipped { after: *c },
                    warnings: Vec::new(),
                })
                .collect();
            return report;
        }
    };
    let mut p = Progress::new();
    let secret_name = format!("{}/{}", t.namespace, spec.auth.secret_ref.name);
    let resolved = match checks::credentials::check(spec, &secret_name, t.secret) {
        Ok(c) => c,
        Err(f) => {
            p.fail(Check::CredentialsResolved, f);
            (report.results, report.durations) = p.finish();
            return report;
        }
    };
    let declared_expiry = match checks::credentials::declared_expiry(&secret_name, t.secret) {
        Ok(d) => d,
        Err(f) => {
            p.fail(Check::CredentialsResolved, f);
            (report.results, report.durations) = p.finish();
            return report;
        }
    };
    // A profile names the methods its consumer uses; an inferred method is judged here.
    if resolved.inferred
        && let Err(m) = profiles::method_allowed(spec, resolved.method)
    {
        report.invalid = Some(Finding::new(Cause::InvalidSpec, m));
        report.results = Check::ALL
            .iter()
            .map(|c| CheckResult {
                check: *c,
                verdict: Verdict::Skipped { after: *c },
                warnings: Vec::new(),
            })
            .collect();
        return report;
    }
    p.record(CheckResult::passed(
        Check::CredentialsResolved,
        resolved.describe(spec, &secret_name),
    ));
    let credential = resolved.credential;
    let egress_auth = match spec.egress_proxy_secret() {
        None => Ok(None),
        Some(name) => checks::network_path::proxy_credentials(
            &format!("{}/{name}", t.namespace),
            t.egress_proxy_secret,
        )
        .map(|(u, p)| Some((SecretString::new(u), SecretString::new(p)))),
    };
    let proxy_pair = egress_auth
        .as_ref()
        .ok()
        .and_then(|a| a.as_ref())
        .map(|(u, p)| (u.expose().to_string(), p.expose().to_string()));
    let input = ProbeInput {
        egress_auth,
        ca: ca_bundle(&t),
        spec: spec.clone(),
        req,
        api_origin,
        credential: credential.clone(),
        method: resolved.method,
        git_credential: resolved.git.clone(),
        declared_expiry,
        fresh: t.fresh,
    };
    let probed = match &env.memo {
        Some(memo) => {
            let owned_env = env.clone();
            let key = input.key();
            let interval = spec.interval();
            let retry = env.share_retry.min(interval);
            let got = memo
                .get(
                    key,
                    t.fresh,
                    move |p: &Probed| if p.retryable() { retry } else { interval },
                    async move { probe(&owned_env, &input).await },
                )
                .await;
            let mut probed = (*got.value).clone();
            if !got.ran {
                // Another connection's run: its requests were counted there.
                probed.requests.clear();
                probed.rate_limits.clear();
            }
            // Up to 10% later, by key: keys spread out, a key's connections stay together.
            let jittered = Duration::try_from_secs_f64(
                interval.as_secs_f64() * (1.0 + f64::from(key[0]) / 2550.0),
            )
            .unwrap_or(interval);
            report.fresh_until = got.at.checked_add(jittered);
            probed
        }
        None => probe(env, &input).await,
    };
    let (credentials_result, credentials_duration) = (p.results.remove(0), p.durations.remove(0));
    report.results = std::iter::once(credentials_result)
        .chain(probed.results)
        .collect();
    report.durations = std::iter::once(credentials_duration)
        .chain(probed.durations)
        .collect();
    report.server = probed.server;
    report.certificate = probed.certificate;
    report.credential = probed.credential;
    report.git = probed.git;
    report.requests = probed.requests;
    report.rate_limits = probed.rate_limits;
    report.scrub(&crate::scrub::Scrubber::from_credential(&credential));
    if let Some(g) = &resolved.git {
        let secret = g.secret().expose();
        let pairs: Vec<(&str, &str)> = g.username().map(|u| (u, secret)).into_iter().collect();
        report.scrub(&crate::scrub::Scrubber::new(&[secret], &pairs));
    }
    if let Some((u, p)) = proxy_pair {
        report.scrub(&crate::scrub::Scrubber::new(&[&p], &[(&u, &p)]));
    }
    report
}

impl Probed {
    /// Whether the result calls for a retry soon (a transient or retryable failure).
    fn retryable(&self) -> bool {
        self.results
            .iter()
            .filter_map(CheckResult::failure)
            .any(|f| {
                matches!(
                    f.cause.effect(),
                    crate::catalogue::Effect::Transient
                        | crate::catalogue::Effect::Fail { stalls: false }
                )
            })
    }
}

/// Runs the checks after CredentialsResolved.
async fn probe(env: &Env, input: &ProbeInput) -> Probed {
    let mut p = Progress::new();
    let mut report = Report::empty();
    let _ = run_checks(env, input, &mut p, &mut report).await;
    // Pretend CredentialsResolved passed so finish() orders and fills the rest; then drop it.
    p.results.insert(
        0,
        CheckResult::passed(Check::CredentialsResolved, String::new()),
    );
    let (mut results, durations) = p.finish();
    results.remove(0);
    Probed {
        results,
        server: report.server,
        certificate: report.certificate,
        credential: report.credential,
        git: report.git,
        requests: report.requests,
        rate_limits: report.rate_limits,
        durations,
    }
}

/// The CA bundle's bytes from its lookup.
fn ca_bundle(t: &Target<'_>) -> Result<Vec<u8>, Finding> {
    let Some(r) = t
        .spec
        .tls
        .as_ref()
        .and_then(|tls| tls.ca_bundle_ref.as_ref())
    else {
        return Ok(Vec::new());
    };
    let key = r.key.clone().unwrap_or_else(|| "ca.crt".into());
    let what = format!(
        "{} {}/{}",
        match r.kind {
            CaBundleKind::ConfigMap => "ConfigMap",
            CaBundleKind::Secret => "Secret",
        },
        t.namespace,
        r.name
    );
    match t.ca_bundle {
        Some(Lookup::Found(data, _)) => data.get(&key).cloned().ok_or_else(|| {
            Finding::new(
                Cause::CaBundleNotFound,
                format!("{what} has no key {key:?}"),
            )
        }),
        Some(Lookup::Forbidden(d)) => Err(Finding::new(
            Cause::CaBundleNotFound,
            format!("bbconn may not read {what}: {d}"),
        )),
        Some(Lookup::Failed(d)) => Err(Finding::new(
            Cause::ServerError,
            format!("reading {what} failed: {d}"),
        )),
        Some(Lookup::NotFound) | None => Err(Finding::new(
            Cause::CaBundleNotFound,
            format!("{what} does not exist"),
        )),
    }
}

/// A check that has already been recorded as failed.
struct Stop;

async fn run_checks(
    env: &Env,
    t: &ProbeInput,
    p: &mut Progress,
    report: &mut Report,
) -> Result<(), Stop> {
    let spec = &t.spec;
    let req = &t.req;
    let api_origin = &t.api_origin;
    let credential = &t.credential;
    let allowed = req.ports.clone().unwrap_or_else(|| spec.allowed_ports());
    let mut server = ServerInfo {
        flavor: Some(spec.flavor),
        ..ServerInfo::default()
    };
    let (mut session, leaf) = open(env, t, api_origin, &allowed, p, &mut server, report).await?;
    server.port = api_origin.url.port_or_known_default();
    report.server = Some(server);
    report.certificate = leaf;

    // Authenticated
    let base_path = api_origin.url.path().trim_end_matches('/').to_string();
    let mut identity = Identity::default();
    let mut warnings = Vec::new();
    let credential_key = t.credential_key();
    if !t.fresh
        && let Some((refused, since)) = env.withheld.get(&credential_key)
    {
        p.fail(
            Check::Authenticated,
            crate::withhold::notice(&refused, since),
        );
        let mut info = credential_info(t.method, &identity, t.declared_expiry);
        info.withheld_since = Some(since.to_string());
        report.credential = Some(info);
        return Err(Stop);
    }
    let auth_result: Result<(), Finding> = async {
        match (spec.flavor, credential) {
            (_, Credential::AppPassword { .. }) => Err(checks::authenticated::app_password()),
            (
                Flavor::Cloud,
                Credential::OAuthClient {
                    client_id,
                    client_secret,
                },
            ) => {
                let token_url = spec
                    .auth
                    .token_url
                    .as_deref()
                    .unwrap_or(crate::api::CLOUD_TOKEN_URL);
                let tok_origin = origin(token_url, "spec.auth.tokenUrl")?;
                let answer = token_exchange(
                    env,
                    t,
                    &tok_origin,
                    &mut session,
                    api_origin,
                    p,
                    report,
                    Exchange::ClientCredentials {
                        id: client_id,
                        secret: client_secret,
                    },
                )
                .await?;
                checks::authenticated::client_credentials(&answer)?;
                if let oauth::TokenAnswer::Token {
                    access_token,
                    scopes,
                } = answer
                {
                    identity.authorization = Some(bearer(access_token.expose()));
                    identity.scopes = scopes;
                }
                cloud_identity(&mut session, &base_path, t.method, &mut identity, report).await?;
                identity.kind = identity.kind.take().or(Some("oauth2".into()));
                Ok(())
            }
            (
                _,
                Credential::OAuthAppLink {
                    client_id,
                    client_secret,
                    redirect_url,
                },
            ) => {
                let default_dc = format!(
                    "{}/rest/oauth2/latest/token",
                    spec.base_url().trim_end_matches('/')
                );
                let token_url = spec.auth.token_url.clone().unwrap_or(match spec.flavor {
                    Flavor::Cloud => crate::api::CLOUD_TOKEN_URL.to_string(),
                    Flavor::DataCenter => default_dc,
                });
                let tok_origin = origin(&token_url, "spec.auth.tokenUrl")?;
                let answer = token_exchange(
                    env,
                    t,
                    &tok_origin,
                    &mut session,
                    api_origin,
                    p,
                    report,
                    Exchange::AppLink {
                        id: client_id,
                        secret: client_secret,
                        redirect: redirect_url,
                    },
                )
                .await?;
                checks::authenticated::application_link(&answer)?;
                identity.kind = Some("application_link".into());
                Ok(())
            }
            (Flavor::Cloud, c) => {
                identity.authorization = c.authorization();
                cloud_identity(&mut session, &base_path, t.method, &mut identity, report).await
            }
            (Flavor::DataCenter, c) => {
                identity.authorization = c.authorization();
                let mut api = Api::new(&mut session, &base_path, identity.authorization.clone());
                let result = async {
                    let who = datacenter::whoami(&mut api).await?;
                    if let datacenter::WhoAmI::Accepted { version, .. }
                    | datacenter::WhoAmI::Anonymous { version } = &who
                    {
                        identity.server_version = version.clone();
                    }
                    let declared_expired = t.declared_expiry.is_some_and(|at| at <= (env.clock)());
                    checks::authenticated::datacenter(
                        t.method,
                        &base_path,
                        &who,
                        declared_expired,
                    )?;
                    if let datacenter::WhoAmI::Accepted { user, .. } = who {
                        identity.user = Some(user);
                    }
                    if let (Credential::AccessToken { token_id, .. }, Some(user)) =
                        (c, identity.user.clone())
                    {
                        identity.kind = Some("http_access_token".into());
                        if let Some(meta) =
                            datacenter::token_metadata(&mut api, &user, token_id.as_deref()).await?
                        {
                            identity.kind = Some("personal_access_token".into());
                            identity.permissions = Some(meta.permissions);
                            identity.expires_at = meta.expires_at;
                        }
                    } else {
                        identity.kind = Some("password".into());
                    }
                    Ok::<(), Finding>(())
                }
                .await;
                collect(report, &api);
                result
            }
        }
    }
    .await;
    if let Some(s) = report.server.as_mut() {
        s.version = identity.server_version.clone();
    }
    report.credential = Some(credential_info(t.method, &identity, t.declared_expiry));
    if let Err(f) = auth_result {
        if f.cause.withholds_credential() {
            env.withheld.put(credential_key, f.clone(), (env.clock)());
        }
        if !f.replaced {
            p.fail(Check::Authenticated, f);
        }
        return Err(Stop);
    }
    env.withheld.release(&credential_key);
    let now = (env.clock)();
    match checks::authenticated::expiry(
        identity.expires_at.or(t.declared_expiry),
        now,
        spec.expiry_warning(),
    ) {
        Err(f) => {
            p.fail(Check::Authenticated, f);
            return Err(Stop);
        }
        Ok(w) => warnings.extend(w),
    }
    if t.method == AuthMethod::Basic {
        warnings.push(Finding::new(
            Cause::BasicAuthDiscouraged,
            if t.git_credential.is_some() {
                "the consumer's Secret holds a user name and password, sent as Basic: if the password is the user's, this integration can do everything the user can, so use an HTTP access token; if it is a personal HTTP access token, set spec.auth.method: AccessToken so bbconn reads its permissions and expiry"
            } else {
                "a user name and password gives this integration everything the user can do; use an HTTP access token"
            },
        ));
    }
    let who = identity
        .user
        .clone()
        .or(identity.kind.clone())
        .unwrap_or_else(|| "the client".into());
    p.record(
        CheckResult::passed(
            Check::Authenticated,
            format!("Bitbucket accepts the credential ({who})"),
        )
        .with_warnings(warnings),
    );

    // ScopesSufficient
    let mut api = Api::new(&mut session, &base_path, identity.authorization.clone());
    let scopes = scopes_result(spec, req, &identity, &mut api).await;
    collect(report, &api);
    if !p.record(scopes) {
        return Err(Stop);
    }

    // RepositoryAccess
    let mut clones = BTreeMap::new();
    let repos = repositories_result(spec, req, &identity, &mut api, &mut clones).await;
    collect(report, &api);
    if !p.record(repos) {
        return Err(Stop);
    }

    // GitAccess
    git::step(env, t, &mut session, &identity, &clones, p, report).await;
    Ok(())
}

/// Cloud's identity probe with the credential in `identity.authorization`: who, what kind, and
/// the granted scopes (scopes already learned from a token endpoint are kept: they are its answer).
async fn cloud_identity(
    session: &mut Session,
    base_path: &str,
    method: AuthMethod,
    identity: &mut Identity,
    report: &mut Report,
) -> Result<(), Finding> {
    let mut api = Api::new(session, base_path, identity.authorization.clone());
    let who = cloud::whoami(&mut api).await;
    collect(report, &api);
    let who = who?;
    checks::authenticated::cloud(method, base_path, &who)?;
    match who {
        cloud::UserAnswer::Accepted { user, kind, scopes } => {
            identity.user = user;
            identity.kind = kind;
            identity.scopes = identity.scopes.take().or(scopes);
        }
        cloud::UserAnswer::ScopeMissing { granted, required } => {
            // Bitbucket's own list of what the credential holds now wins over a token
            // endpoint's answer.
            identity.scopes = Some(granted);
            identity.probe_needs = required;
        }
        _ => {}
    }
    Ok(())
}

async fn scopes_result(
    spec: &BitbucketConnectionSpec,
    req: &Effective,
    identity: &Identity,
    api: &mut Api<'_>,
) -> CheckResult {
    use checks::scopes::{Held, check};
    let none_required = req.scopes.is_empty() && req.permissions.is_empty();
    if identity.authorization.is_none() {
        return check(
            &req.scopes,
            &req.permissions,
            Held::Unknown(
                "Bitbucket shows an application link's permissions only to the person who grants access",
            ),
        );
    }
    match spec.flavor {
        Flavor::Cloud => match &identity.scopes {
            Some(s) => {
                // What bbconn's own identity probe needs counts too: Bitbucket refused it.
                let mut required = req.scopes.clone();
                required.extend(identity.probe_needs.iter().cloned());
                check(&required, &req.permissions, Held::Scopes(s))
            }
            None => check(
                &req.scopes,
                &req.permissions,
                Held::Unknown("Bitbucket did not reveal this credential's scopes"),
            ),
        },
        Flavor::DataCenter => match &identity.permissions {
            Some(p) => check(&req.scopes, &req.permissions, Held::Permissions(p)),
            None if none_required => check(
                &req.scopes,
                &req.permissions,
                Held::Probed(&BTreeMap::new()),
            ),
            None => {
                let mut probed = BTreeMap::new();
                for perm in &req.permissions {
                    match datacenter::holds_anywhere(api, *perm).await {
                        Ok(b) => {
                            probed.insert(*perm, b);
                        }
                        Err(f) => return CheckResult::failed(Check::ScopesSufficient, f),
                    }
                }
                check(&req.scopes, &req.permissions, Held::Probed(&probed))
            }
        },
    }
}

async fn repositories_result(
    spec: &BitbucketConnectionSpec,
    req: &Effective,
    identity: &Identity,
    api: &mut Api<'_>,
    clones: &mut BTreeMap<String, Option<String>>,
) -> CheckResult {
    if !req.repositories.is_empty() && identity.authorization.is_none() {
        return CheckResult::failed(
            Check::RepositoryAccess,
            Finding::new(
                Cause::RepositoriesUnverifiable,
                "an application link has no token until a person grants access, so repository access cannot be read",
            ),
        );
    }
    let mut results = Vec::new();
    for (name, required) in &req.repositories {
        let Some((owner, slug)) = name.split_once('/') else {
            return CheckResult::failed(
                Check::RepositoryAccess,
                Finding::new(
                    Cause::InvalidSpec,
                    format!("repository {name:?} is not OWNER/slug"),
                ),
            );
        };
        let observed = match spec.flavor {
            Flavor::Cloud => cloud_access(api, owner, slug, *required, clones, name).await,
            Flavor::DataCenter => dc_access(api, owner, slug, *required, clones, name).await,
        };
        match observed {
            Ok(o) => results.push((name.clone(), *required, o)),
            Err(f) => return CheckResult::failed(Check::RepositoryAccess, f),
        }
    }
    checks::repositories::check(&results)
}

async fn cloud_access(
    api: &mut Api<'_>,
    ws: &str,
    slug: &str,
    required: Access,
    clones: &mut BTreeMap<String, Option<String>>,
    name: &str,
) -> Result<Observed, Finding> {
    match cloud::repository(api, ws, slug).await? {
        cloud::RepoAnswer::NotFound(m) => return Ok(Observed::NotFound(m)),
        cloud::RepoAnswer::ScopeMissing(m) => return Ok(Observed::ScopeMissing(m)),
        cloud::RepoAnswer::Visible { clone } => {
            clones.insert(name.to_string(), clone);
        }
    }
    // Ask only as high as needed, then one rung lower to say what the credential has instead.
    if required >= Access::Write {
        if cloud::has_role(api, ws, slug, "admin").await? {
            return Ok(Observed::Access(Access::Admin));
        }
        if cloud::has_role(api, ws, slug, "contributor").await? {
            return Ok(Observed::Access(Access::Write));
        }
    }
    Ok(Observed::Access(Access::Read))
}

async fn dc_access(
    api: &mut Api<'_>,
    project: &str,
    slug: &str,
    required: Access,
    clones: &mut BTreeMap<String, Option<String>>,
    listed: &str,
) -> Result<Observed, Finding> {
    let name = match datacenter::repository(api, project, slug).await? {
        datacenter::RepoAnswer::NotFound(m) => return Ok(Observed::NotFound(m)),
        datacenter::RepoAnswer::Visible { name, clone } => {
            clones.insert(listed.to_string(), clone);
            name
        }
    };
    if required == Access::Admin
        && datacenter::repo_permission(api, project, &name, slug, DcPermission::RepoAdmin).await?
    {
        return Ok(Observed::Access(Access::Admin));
    }
    if required >= Access::Write
        && datacenter::repo_permission(api, project, &name, slug, DcPermission::RepoWrite).await?
    {
        return Ok(Observed::Access(Access::Write));
    }
    Ok(Observed::Access(Access::Read))
}

fn collect(report: &mut Report, api: &Api<'_>) {
    let host = api.session.authority().to_string();
    report
        .requests
        .extend(api.statuses.iter().map(|s| (host.clone(), *s)));
    report
        .rate_limits
        .extend(api.rate_limits.iter().map(|r| (host.clone(), r.clone())));
}

fn credential_info(
    method: AuthMethod,
    identity: &Identity,
    declared: Option<jiff::Timestamp>,
) -> CredentialInfo {
    let (expires_at, source) = match (identity.expires_at, declared) {
        (Some(t), _) => (Some(t), crate::api::ExpirySource::Bitbucket),
        (None, Some(t)) => (Some(t), crate::api::ExpirySource::Declared),
        (None, None) => (None, crate::api::ExpirySource::Unknown),
    };
    CredentialInfo {
        expiry_source: Some(source),
        withheld_since: None,
        method: format!("{method:?}"),
        kind: identity.kind.clone(),
        scopes: identity.scopes.iter().flatten().cloned().collect(),
        permissions: identity
            .permissions
            .iter()
            .flatten()
            .map(|p| p.as_str().to_string())
            .collect(),
        expires_at: expires_at.map(|t| t.to_string()),
    }
}

/// A token-endpoint exchange.
enum Exchange<'c> {
    ClientCredentials {
        id: &'c SecretString,
        secret: &'c SecretString,
    },
    AppLink {
        id: &'c SecretString,
        secret: &'c SecretString,
        redirect: &'c SecretString,
    },
}

async fn exchange(
    api: &mut Api<'_>,
    path: &str,
    ex: &Exchange<'_>,
) -> Result<oauth::TokenAnswer, Finding> {
    match ex {
        Exchange::ClientCredentials { id, secret } => {
            oauth::client_credentials(api, path, id, secret).await
        }
        Exchange::AppLink {
            id,
            secret,
            redirect,
        } => oauth::probe_code_exchange(api, path, id, secret, redirect).await,
    }
}

/// Runs a token-endpoint exchange on the API's own session when the endpoint shares its origin,
/// otherwise over a new connection that passes the same network, reachability and TLS checks
/// (a failure there is reported under that check, naming the token endpoint).
#[allow(clippy::too_many_arguments)]
async fn token_exchange(
    env: &Env,
    t: &ProbeInput,
    tok: &Origin,
    api_session: &mut Session,
    api_origin: &Origin,
    p: &mut Progress,
    report: &mut Report,
    ex: Exchange<'_>,
) -> Result<oauth::TokenAnswer, Finding> {
    let same = tok.url.scheme() == api_origin.url.scheme()
        && tok.host.eq_ignore_ascii_case(&api_origin.host)
        && tok.url.port_or_known_default() == api_origin.url.port_or_known_default();
    let path = tok.url.path().to_string();
    if same {
        let mut api = Api::new(api_session, "", None);
        let r = exchange(&mut api, &path, &ex).await;
        collect(report, &api);
        return r;
    }
    let allowed = t.spec.allowed_ports();
    let mut sink = ServerInfo::default();
    let mut sub = Progress::new();
    match open(env, t, tok, &allowed, &mut sub, &mut sink, report).await {
        Ok((mut s, _)) => {
            let mut api = Api::new(&mut s, "", None);
            let r = exchange(&mut api, &path, &ex).await;
            collect(report, &api);
            r
        }
        Err(Stop) => {
            // Replace the API origin's verdict for the check that failed on the token endpoint.
            if let Some(mut failed) = sub
                .results
                .into_iter()
                .find(|r| matches!(r.verdict, Verdict::Failed(_)))
            {
                if let Verdict::Failed(ref mut f) = failed.verdict {
                    f.message = format!("token endpoint {}: {}", tok.url, f.message);
                }
                if let Some(slot) = p.results.iter_mut().find(|r| r.check == failed.check) {
                    *slot = failed;
                    return Err(Finding::new(Cause::ServerError, String::new()).mark_replaced());
                }
                return Err(match failed.verdict {
                    Verdict::Failed(f) => f,
                    _ => Finding::new(
                        Cause::ServerError,
                        format!("the token endpoint {} could not be reached", tok.url),
                    ),
                });
            }
            Err(Finding::new(
                Cause::ServerError,
                format!("the token endpoint {} could not be reached", tok.url),
            ))
        }
    }
}

/// Network path, reachability and TLS for one origin, recording each verdict; on success an
/// HTTP session and the leaf certificate.
async fn open(
    env: &Env,
    t: &ProbeInput,
    o: &Origin,
    allowed: &[u16],
    p: &mut Progress,
    server: &mut ServerInfo,
    report: &mut Report,
) -> Result<(Session, Option<LeafInfo>), Stop> {
    let spec = &t.spec;
    let port = o.url.port_or_known_default().unwrap_or(443);
    let proxy = match spec.proxy_url().map(url::Url::parse) {
        Some(Ok(u)) => Some(u),
        Some(Err(e)) => {
            p.fail(
                Check::NetworkPathValid,
                Finding::new(
                    Cause::PrivateEndpointUnreachable,
                    format!("spec.network.privateEndpoint.proxyUrl is not a URL: {e}"),
                ),
            );
            return Err(Stop);
        }
        None => None,
    };
    // The egress proxy serves Public servers only: a Private one keeps its private endpoint.
    let egress = match (spec.exposure(), spec.egress_proxy()) {
        (crate::api::Exposure::Private, _) => None,
        (_, Some(e)) => match url::Url::parse(&e.proxy_url) {
            Ok(u) => Some(u),
            Err(err) => {
                p.fail(
                    Check::NetworkPathValid,
                    Finding::new(
                        Cause::EgressProxyUnreachable,
                        format!("spec.network.egressProxy.proxyUrl is not a URL: {err}"),
                    ),
                );
                return Err(Stop);
            }
        },
        (_, None) => env
            .net
            .egress_proxy
            .clone()
            .filter(|_| !env.net.no_proxy.matches(&o.host)),
    };
    let resolved = env.net.resolve(&o.host, port).await;
    let addrs: Vec<SocketAddr> = resolved.as_ref().map(|a| a.clone()).unwrap_or_default();
    server.addresses = addrs.iter().map(|a| a.ip().to_string()).collect();
    let resolution = match &resolved {
        Ok(a) => Resolution::Addresses(a),
        Err(_) => Resolution::Failed,
    };
    let route = match checks::network_path::check(
        &o.host,
        spec.exposure(),
        proxy.as_ref(),
        egress.as_ref(),
        resolution,
        &env.net.policy,
    ) {
        Ok(r) => r,
        Err(Some(f)) => {
            p.fail(Check::NetworkPathValid, f);
            return Err(Stop);
        }
        Err(None) => {
            // DNS failed and there is no private endpoint to ask: Reachable's verdict.
            let f = match &resolved {
                Err(e) => checks::reachable::dns_failure(e),
                Ok(_) => Finding::new(
                    Cause::DnsResolutionFailed,
                    format!("{} does not resolve", o.host),
                ),
            };
            p.results.push(CheckResult {
                check: Check::NetworkPathValid,
                verdict: Verdict::Skipped {
                    after: Check::Reachable,
                },
                warnings: Vec::new(),
            });
            p.fail(Check::Reachable, f);
            return Err(Stop);
        }
    };
    let port = match checks::reachable::check_url(&o.url, allowed) {
        Ok(port) => port,
        Err(f) => {
            match route {
                Route::Direct(_) => {
                    p.record(CheckResult::passed(
                        Check::NetworkPathValid,
                        path_message(&o.host, &route),
                    ));
                }
                Route::Proxy(_) | Route::Egress(_) => p.results.push(CheckResult {
                    check: Check::NetworkPathValid,
                    verdict: Verdict::Skipped {
                        after: Check::Reachable,
                    },
                    warnings: Vec::new(),
                }),
            }
            p.fail(Check::Reachable, f);
            return Err(Stop);
        }
    };
    let tcp = match &route {
        Route::Direct(addrs) => {
            p.record(CheckResult::passed(
                Check::NetworkPathValid,
                path_message(&o.host, &route),
            ));
            match env.net.connect(addrs).await {
                Ok(s) => s,
                Err(e) => {
                    p.fail(Check::Reachable, checks::reachable::connect_failure(&e));
                    return Err(Stop);
                }
            }
        }
        Route::Proxy(proxy) => {
            let (dial_host, dial_port) = (o.host.clone(), port);
            match connect_via_proxy(&env.net, proxy, &dial_host, dial_port).await {
                Ok(s) => {
                    p.record(CheckResult::passed(
                        Check::NetworkPathValid,
                        path_message(&o.host, &route),
                    ));
                    s
                }
                Err(e) => {
                    let cause = match e {
                        ProxyError::Denied { .. } => Cause::DestinationNotAllowed,
                        _ => Cause::PrivateEndpointUnreachable,
                    };
                    p.fail(Check::NetworkPathValid, Finding::new(cause, e.to_string()));
                    return Err(Stop);
                }
            }
        }
        Route::Egress(proxy) => {
            let authorization = match egress_authorization(t, proxy) {
                Ok(a) => a,
                Err(f) => {
                    p.fail(Check::NetworkPathValid, f);
                    return Err(Stop);
                }
            };
            let tunnel = connect_via_proxy_as(
                &env.net,
                proxy,
                "the egress proxy",
                authorization.as_ref().map(|a| a.expose()),
                &o.host,
                port,
            )
            .await;
            match tunnel {
                Ok(s) => {
                    p.record(CheckResult::passed(
                        Check::NetworkPathValid,
                        path_message(&o.host, &route),
                    ));
                    s
                }
                Err(e) => {
                    let cause = match (&e, e.status()) {
                        (ProxyError::Denied { .. }, _) => Cause::DestinationNotAllowed,
                        (_, Some(407)) => Cause::EgressProxyAuthRequired,
                        _ => Cause::EgressProxyUnreachable,
                    };
                    let mut message = e.to_string();
                    if cause == Cause::EgressProxyAuthRequired {
                        message.push_str(if authorization.is_some() {
                            " (it refused the credentials from spec.network.egressProxy.secretRef)"
                        } else {
                            " (no proxy credentials are configured)"
                        });
                    }
                    p.fail(Check::NetworkPathValid, Finding::new(cause, message));
                    return Err(Stop);
                }
            }
        }
    };
    p.record(CheckResult::passed(
        Check::Reachable,
        format!("{}:{port} accepts connections", o.host),
    ));

    // TLS
    let tls_spec = spec.tls.clone().unwrap_or_default();
    let bundle = t.ca.clone();
    let trust = match bundle.and_then(|b| env.trust(&b, tls_spec.use_public_roots.unwrap_or(true)))
    {
        Ok(t) => t,
        Err(f) => {
            p.fail(Check::TlsVerified, f);
            return Err(Stop);
        }
    };
    let hs = tlsx::handshake(tcp, &o.host, &trust, env.net.connect_timeout).await;
    let rejection = match &hs.outcome {
        Err(HandshakeError::Rejected(r)) => Some(r.clone()),
        _ => None,
    };
    let (result, leaf) = checks::tls::check(checks::tls::Inputs {
        host: &o.host,
        chain: &hs.chain,
        rejection: rejection.as_ref(),
        pin: tls_spec.pinned_sha256.as_deref(),
        now: (env.clock)(),
        warn_within: spec.expiry_warning(),
    });
    if report.certificate.is_none() {
        report.certificate = leaf.clone();
    }
    let stream = match hs.outcome {
        Err(HandshakeError::TimedOut) => {
            p.fail(
                Check::TlsVerified,
                Finding::new(
                    Cause::ConnectionTimedOut,
                    format!("the TLS handshake with {} timed out", o.host),
                ),
            );
            return Err(Stop);
        }
        Err(HandshakeError::Failed(d)) => {
            p.fail(
                Check::TlsVerified,
                Finding::new(
                    Cause::UnexpectedResponse,
                    format!("the TLS handshake with {} failed: {d}", o.host),
                ),
            );
            return Err(Stop);
        }
        Err(HandshakeError::Rejected(_)) => {
            p.record(result);
            return Err(Stop);
        }
        Ok(s) => s,
    };
    if !p.record(result) {
        return Err(Stop);
    }
    let authority = if port == 443 {
        o.host.clone()
    } else {
        format!("{}:{port}", o.host)
    };
    match Session::open(stream, authority, env.net.request_timeout, env.net.max_body).await {
        Ok(s) => Ok((s, leaf)),
        Err(e) => {
            p.fail(
                Check::Authenticated,
                Finding::new(Cause::ServerError, e.to_string()),
            );
            Err(Stop)
        }
    }
}

/// The `Proxy-Authorization` value for the egress proxy: Basic from the spec's Secret, else
/// from credentials in the proxy URL (as curl takes them from HTTPS_PROXY).
fn egress_authorization(t: &ProbeInput, proxy: &url::Url) -> Result<Option<SecretString>, Finding> {
    use base64::Engine as _;
    let basic = |u: &str, p: &str| {
        SecretString::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        ))
    };
    if t.spec.egress_proxy().is_some() {
        return match &t.egress_auth {
            Ok(Some((u, p))) => Ok(Some(basic(u.expose(), p.expose()))),
            Ok(None) => Ok(None),
            Err(f) => Err(f.clone()),
        };
    }
    if proxy.username().is_empty() {
        return Ok(None);
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Ok(Some(basic(
        &decode(proxy.username()),
        &decode(proxy.password().unwrap_or_default()),
    )))
}

fn path_message(host: &str, route: &Route) -> String {
    match route {
        Route::Direct(a) => format!(
            "{host} resolves to {}",
            a.iter()
                .map(|a| a.ip().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Route::Proxy(p) => format!(
            "{host} is reached through the private endpoint {}",
            crate::transport::shown(p)
        ),
        Route::Egress(p) => format!(
            "{host} is reached through the egress proxy {}",
            crate::transport::shown(p)
        ),
    }
}

/// Exposed for the benchmark and tests: how many requests a run sent.
pub fn request_count(report: &Report) -> usize {
    report.requests.len()
}
