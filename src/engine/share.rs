//! The Bitbucket-facing run's inputs, owned, and its sharing: every connection with the same
//! inputs (the same key) gets one run's results (see `src/memo.rs`).

use super::pipeline::{self, Found, credentials::Resolved};
use super::{Env, Target};
use crate::api::{AuthMethod, BitbucketConnectionSpec};
use crate::catalogue::Check;
use crate::checks::credentials::ssh::SshCredential;
use crate::checks::spec::Origin;
use crate::checks::{self, CheckResult, Finding};
use crate::credential::{Credential, GitCredential, SecretString};
use crate::profiles::Effective;
use std::sync::Arc;
use std::time::Duration;

/// What the Bitbucket-facing checks need, owned, so one run can be shared by every connection
/// with the same inputs. Debug prints no secret: its credentials are secret types.
#[derive(Debug)]
pub(super) struct ProbeInput {
    pub spec: BitbucketConnectionSpec,
    pub req: Effective,
    pub api_origin: Origin,
    /// The REST credential: None for a connection checked over SSH alone (no spec.auth).
    pub rest: Option<Rest>,
    /// Transport SSH: the consumer's key and known_hosts.
    pub ssh: Option<SshCredential>,
    /// The CA bundle's bytes, or why it could not be had (reported under TLSVerified).
    pub ca: Result<Vec<u8>, Finding>,
    /// The Secret's bbconn.dev/expires-at, where set.
    pub declared_expiry: Option<jiff::Timestamp>,
    /// Send the credential even if Bitbucket rejected it before (a user asked for a re-check).
    pub fresh: bool,
    /// A refusal the connection's status recorded, still current (not part of the key: the
    /// credential itself is).
    pub persisted: Option<crate::withhold::Withholding>,
    /// Basic credentials for spec.network.egressProxy, or why they could not be had (reported
    /// under NetworkPathValid when the proxy is used).
    pub egress_auth: Result<Option<(SecretString, SecretString)>, Finding>,
    /// The egress proxy the consumer's Secret names (secretRef with a format), without user
    /// information.
    pub egress_url: Option<String>,
}

/// The credential the REST checks (and git over HTTPS) send.
#[derive(Clone, Debug)]
pub(super) struct Rest {
    pub credential: Credential,
    /// spec.auth.method, or what CredentialsResolved inferred from a consumer's Secret.
    pub method: AuthMethod,
    /// With spec.auth.secretRef.format: exactly what the consumer sends to git.
    pub git_credential: Option<GitCredential>,
}

/// The results of the Bitbucket-facing checks (every check after CredentialsResolved), as
/// reached: the checks not reached are filled in when the report is assembled.
#[derive(Clone, Debug)]
pub struct Probed {
    pub(super) results: Vec<CheckResult>,
    pub(super) durations: Vec<(Check, Duration)>,
    pub(super) found: Found,
}

impl ProbeInput {
    pub(super) fn new(
        t: &Target<'_>,
        req: Effective,
        api_origin: Origin,
        resolved: &Resolved,
    ) -> ProbeInput {
        let spec = t.spec;
        let proxy = spec.egress_proxy_secret().map(|name| {
            let name = format!("{}/{name}", t.namespace);
            let format = spec.egress_proxy_format();
            checks::network_path::proxy_secret(&name, t.egress_proxy_secret, format)
        });
        let (egress_url, egress_auth) = match proxy {
            None => (None, Ok(None)),
            Some(Err(f)) => (None, Err(f)),
            Some(Ok(p)) => (p.url, Ok(p.auth)),
        };
        ProbeInput {
            egress_auth,
            egress_url,
            ca: checks::tls::ca_bundle(spec, t.namespace, t.ca_bundle),
            spec: spec.clone(),
            req,
            api_origin,
            rest: resolved.credentials.as_ref().map(|c| Rest {
                credential: c.credential.clone(),
                method: c.method,
                git_credential: c.git.clone(),
            }),
            ssh: resolved.ssh.clone(),
            declared_expiry: resolved.declared_expiry,
            fresh: t.fresh,
            persisted: t.withheld.cloned(),
        }
    }

    /// The egress proxy's user name and password, where the spec's Secret gave them.
    pub(super) fn egress_pair(&self) -> Option<(String, String)> {
        self.egress_auth
            .as_ref()
            .ok()
            .and_then(|a| a.as_ref())
            .map(|(u, p)| (u.expose().to_string(), p.expose().to_string()))
    }

    /// Everything the checks' outcome depends on; secret values enter only as a digest.
    fn key(&self) -> crate::memo::Key {
        use sha2::{Digest, Sha256};
        let mut spec = self.spec.clone();
        spec.interval = None;
        if let Some(a) = spec.auth.as_mut() {
            a.secret_ref.name.clear();
        }
        if let Some(s) = spec.git.as_mut().and_then(|g| g.ssh.as_mut()) {
            // The key and host keys enter below, by value: which objects held them does not count.
            s.secret_ref = None;
            s.known_hosts_ref = None;
        }
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&spec).unwrap_or_default());
        if let Some(ssh) = &self.ssh {
            h.update(b"ssh");
            h.update(ssh.key.public_key().to_bytes().unwrap_or_default());
            for v in [
                ssh.known_hosts.as_str(),
                ssh.url.as_deref().unwrap_or_default(),
            ] {
                h.update((v.len() as u64).to_le_bytes());
                h.update(v.as_bytes());
            }
        }
        let Some(rest) = &self.rest else {
            return self.key_rest(h);
        };
        for v in rest.credential.key_material() {
            h.update((v.len() as u64).to_le_bytes());
            h.update(v.as_bytes());
        }
        h.update(format!("{:?}", rest.method).as_bytes());
        if let Some(g) = &rest.git_credential {
            // The user name git is sent decides GitAccess's verdict as much as the secret.
            for v in [g.username().unwrap_or("<bearer>"), g.secret().expose()] {
                h.update((v.len() as u64).to_le_bytes());
                h.update(v.as_bytes());
            }
        }
        self.key_rest(h)
    }

    /// The inputs every run shares: CA bundle, declared expiry, proxy credentials.
    fn key_rest(&self, mut h: sha2::Sha256) -> crate::memo::Key {
        use sha2::Digest;
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
        if let Some(u) = &self.egress_url {
            h.update(b"egress-url");
            h.update((u.len() as u64).to_le_bytes());
            h.update(u.as_bytes());
        }
        h.finalize().into()
    }

    /// The credential in the form git is sent it (the Authorization header), and where.
    pub(super) fn git_credential_key(
        &self,
        rest: &Rest,
        authorization: &http::HeaderValue,
    ) -> crate::withhold::Key {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"git");
        h.update(self.credential_key(rest));
        h.update(authorization.as_bytes());
        h.finalize().into()
    }

    /// The consumer's SSH key as the server sees it: the public key, the user and where.
    pub(super) fn ssh_key(&self, user: &str, host: &str, port: u16) -> crate::withhold::Key {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"ssh");
        for part in [user, &host.to_ascii_lowercase(), &port.to_string()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        if let Some(s) = &self.ssh {
            h.update(s.key.public_key().to_bytes().unwrap_or_default());
        }
        h.finalize().into()
    }

    /// The credential as Bitbucket sees it: the secret values and where they are sent. Shared
    /// by every connection that sends the same credential to the same server, so they share the
    /// rule that a rejected credential is not sent again.
    pub(super) fn credential_key(&self, rest: &Rest) -> crate::withhold::Key {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [
            self.spec.base_url(),
            self.spec
                .auth
                .as_ref()
                .and_then(|a| a.token_url.as_deref())
                .unwrap_or_default(),
            &format!("{:?}/{:?}", self.spec.flavor, rest.method),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        for v in rest.credential.key_material() {
            h.update((v.len() as u64).to_le_bytes());
            h.update(v.as_bytes());
        }
        h.finalize().into()
    }
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

/// The pipeline's results for `input`: this run's, or with sharing, those of the run for the
/// same key (and when they go stale).
pub(super) async fn probe(
    env: &Arc<Env>,
    input: ProbeInput,
    fresh: bool,
    interval: Duration,
) -> (Probed, Option<std::time::Instant>) {
    let Some(memo) = &env.memo else {
        return (pipeline::run(env, &input).await, None);
    };
    let owned_env = env.clone();
    let key = input.key();
    let retry = env.share_retry.min(interval);
    let got = memo
        .get(
            key,
            fresh,
            move |p: &Probed| if p.retryable() { retry } else { interval },
            async move { pipeline::run(&owned_env, &input).await },
        )
        .await;
    let mut probed = (*got.value).clone();
    if !got.ran {
        // Another connection's run: its requests were counted there.
        probed.found.requests.clear();
        probed.found.rate_limits.clear();
    }
    // Up to 10% later, by key: keys spread out, a key's connections stay together.
    let jittered =
        Duration::try_from_secs_f64(interval.as_secs_f64() * (1.0 + f64::from(key[0]) / 2550.0))
            .unwrap_or(interval);
    (probed, got.at.checked_add(jittered))
}
