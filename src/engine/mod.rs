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

/// One connection to check, with what it references already fetched. Debug prints no secret
/// (`Lookup` names keys only).
#[derive(Debug)]
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

#[cfg(test)]
mod tests {
    //! Secrets cannot be printed: every input, probe and report type, and the errors a check
    //! can raise, formatted with `{:?}` and `{}` around known secret values, show none of them.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::checks::{Lookup, Meta};
    use std::collections::BTreeMap;

    /// An encrypted OpenSSH key (passphrase "correct horse"), as Flux stores it.
    const KEY: &str = include_str!("../../sim/keys/clients/encrypted_ed25519");

    fn secrets() -> Vec<String> {
        let mut s: Vec<String> = ["pw-S3CRET-0001", "px-S3CRET-0002", "correct horse"]
            .map(String::from)
            .to_vec();
        // The key's body, line by line.
        s.extend(
            KEY.lines()
                .filter(|l| !l.starts_with("-----"))
                .map(String::from),
        );
        s
    }

    fn found(pairs: &[(&str, &str)]) -> Lookup {
        let data: BTreeMap<String, Vec<u8>> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        Lookup::Found(data, Meta::default())
    }

    fn assert_clean(what: &str, shown: &str) {
        for s in secrets() {
            assert!(!shown.contains(&s), "{what} shows {s:?}: {shown}");
            // Bytes printed as numbers ([112, 119, ...]) count too.
            let bytes = format!("{:?}", s.as_bytes());
            assert!(
                !shown.contains(bytes.trim_matches(['[', ']'])),
                "{what} shows {s:?} as bytes"
            );
        }
    }

    #[tokio::test]
    async fn no_input_probe_report_or_error_prints_a_secret() {
        let key = KEY;
        let spec: BitbucketConnectionSpec = serde_saphyr::from_str(
            "flavor: DataCenter\nurl: https://127.0.0.1:1\nauth: {method: Basic, secretRef: {name: pw}}\nnetwork: {egressProxy: {proxyUrl: 'http://127.0.0.1:1', secretRef: {name: px}}}\ngit: {transport: SSH, ssh: {url: 'ssh://git@127.0.0.1:1', secretRef: {name: key}}}\n",
        )
        .unwrap();
        let secret = found(&[("username", "alice"), ("password", "pw-S3CRET-0001")]);
        let proxy = found(&[("username", "p"), ("password", "px-S3CRET-0002")]);
        let ssh = found(&[
            ("identity", key),
            ("known_hosts", "127.0.0.1 ssh-ed25519 AAAA"),
            ("password", "correct horse"),
        ]);
        let t = Target {
            namespace: "ns",
            name: "c",
            spec: &spec,
            secret: Some(&secret),
            ca_bundle: None,
            fresh: false,
            egress_proxy_secret: Some(&proxy),
            ssh_secret: Some(&ssh),
            known_hosts: None,
            withheld: None,
        };
        assert_clean("Target", &format!("{t:?}"));
        let resolved = match pipeline::credentials::resolve(&t) {
            Ok(r) => r,
            Err(_) => panic!("the test's Secrets resolve"),
        };
        assert_clean("Resolved", &format!("{resolved:?}"));
        let (req, origin) = checks::spec::requirements(&spec).unwrap();
        let input = share::ProbeInput::new(&t, req, origin, &resolved);
        assert_clean("ProbeInput", &format!("{input:?}"));
        // The whole run, which fails at the (closed) egress proxy: the report and its texts.
        let net = NetConfig {
            policy: crate::transport::address::AddressPolicy::new(
                vec!["127.0.0.0/8=public".parse().unwrap()],
                vec![],
            ),
            ..NetConfig::default()
        };
        let env = Arc::new(Env::new(net));
        let report = run(&env, t).await;
        assert_clean("Report", &format!("{report:?}"));
        for r in &report.results {
            if let checks::Verdict::Failed(f) = &r.verdict {
                assert_clean("a finding", &format!("{} {f:?}", f.message));
            }
        }
        // Errors the SSH steps raise, and the key parser's.
        let e = crate::ssh::client::SshError::Handshake("x".into());
        assert_clean("SshError", &format!("{e} {e:?}"));
        let bad = found(&[("identity", key), ("known_hosts", "h ssh-ed25519 AAAA")]);
        let f = checks::credentials::ssh::check(&spec, "ns", &bad, None).unwrap_err();
        assert_clean("the key parser's finding", &format!("{} {f:?}", f.message));
        assert!(f.message.contains("passphrase"), "{}", f.message);
    }
}
