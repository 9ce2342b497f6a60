//! A generated connection as discovery wants it: where it lives, what it follows, and its spec,
//! built the same way for every consumer from the consumer's URL and Secret.

use super::url::BitbucketRepo;
use crate::api::{
    Auth, BitbucketConnectionSpec, CaBundleKind, CaBundleRef, EgressProxy, EgressProxySecretRef,
    Exposure, Git, GitAccessLevel, GitSsh, GitTransport, KnownHostsRef, Network, Port,
    RepositoryRequirement, Requirements, SecretFormat, SecretRef, SshSecretRef, Tls,
};
use std::hash::Hasher;

/// Which consumer a connection was discovered from: the value of [`DISCOVERED_FROM`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    ArgoCd,
    Flux,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::ArgoCd => "argocd",
            Source::Flux => "flux",
        }
    }
}

/// The object a generated connection follows (its ownerReference).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
}

/// The credential a consumer uses, as a connection names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Credential {
    pub secret: String,
    pub format: SecretFormat,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub source: Source,
    pub namespace: String,
    pub name: String,
    /// The first is the controller and the one `bbconn.dev/source` names.
    pub owners: Vec<Owner>,
    pub spec: BitbucketConnectionSpec,
}

/// Argo CD keeps host keys apart from its Secrets, in this ConfigMap of its namespace.
pub const ARGOCD_KNOWN_HOSTS: &str = "argocd-ssh-known-hosts-cm";

/// How the consumer reaches and trusts the server, beyond its URL and credential.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reach {
    /// Where the consumer keeps the CA bundle it trusts for this server, if anywhere.
    pub ca: Option<CaBundleRef>,
    /// The consumer checks neither the certificate nor the host key.
    pub insecure: bool,
    /// The consumer's own proxy Secret, where it names one for this server.
    pub proxy: Option<EgressProxySecretRef>,
}

/// The spec that checks `repo` as the consumer uses it with `cred`, reached as `reach` says.
pub fn spec(
    repo: &BitbucketRepo,
    cred: &Credential,
    access: GitAccessLevel,
    reach: Reach,
) -> BitbucketConnectionSpec {
    let Reach {
        ca,
        insecure,
        proxy,
    } = reach;
    let requirements = Some(Box::new(Requirements {
        repositories: vec![RepositoryRequirement {
            name: repo.name.clone(),
            access: None,
        }],
        ..Requirements::default()
    }));
    let access = (access == GitAccessLevel::Write).then_some(GitAccessLevel::Write);
    let (auth, git) = match repo.transport {
        GitTransport::Https => (
            Some(Auth {
                method: None,
                secret_ref: SecretRef {
                    name: cred.secret.clone(),
                    keys: None,
                    format: Some(cred.format),
                },
                token_url: None,
            }),
            access.map(|a| Git {
                access: Some(a),
                ..Git::default()
            }),
        ),
        GitTransport::Ssh => (
            None,
            Some(Git {
                access,
                username: None,
                transport: Some(GitTransport::Ssh),
                ssh: Some(Box::new(GitSsh {
                    url: repo.ssh_origin.clone(),
                    secret_ref: Some(SshSecretRef {
                        name: cred.secret.clone(),
                        format: Some(cred.format),
                    }),
                    known_hosts_ref: (cred.format == SecretFormat::ArgoCd).then(|| KnownHostsRef {
                        kind: CaBundleKind::ConfigMap,
                        name: ARGOCD_KNOWN_HOSTS.into(),
                        key: None,
                    }),
                    insecure_ignore_host_key: insecure.then_some(true),
                })),
            }),
        ),
    };
    BitbucketConnectionSpec {
        flavor: repo.flavor,
        url: repo.rest_base.clone(),
        auth,
        profiles: Vec::new(),
        requirements,
        tls: tls(repo, ca, insecure),
        network: network(repo, proxy),
        git,
        interval: None,
        expiry_warning: None,
    }
}

/// What the consumer trusts over HTTPS. Over SSH there is no TLS to verify (REST, where it
/// runs, uses the public roots).
fn tls(repo: &BitbucketRepo, ca: Option<CaBundleRef>, insecure: bool) -> Option<Box<Tls>> {
    let https = repo.transport == GitTransport::Https;
    let tls = Tls {
        ca_bundle_ref: ca.filter(|_| https),
        insecure_skip_verify: (insecure && https).then_some(true),
        ..Tls::default()
    };
    (tls != Tls::default()).then(|| Box::new(tls))
}

/// The consumer runs in the cluster and connects directly, whatever the server's address class
/// (exposure Internal: a Data Center on 10.0.0.5 is not PublicServerPrivateAddress), on the port
/// its URL names (a connection written by hand allows only 443 unless it says otherwise: a Data
/// Center on 8443 is not PortNotAllowed for a consumer that works there).
/// Through the consumer's own proxy, where it has one.
fn network(repo: &BitbucketRepo, proxy: Option<EgressProxySecretRef>) -> Option<Box<Network>> {
    let port = repo
        .rest_base
        .as_deref()
        .and_then(|b| b.parse::<http::Uri>().ok())
        .and_then(|u| u.port_u16())
        .filter(|p| *p != 443);
    Some(Box::new(Network {
        exposure: Some(Exposure::Internal),
        allowed_ports: port.map(|p| vec![Port(u32::from(p))]),
        egress_proxy: proxy.map(|r| EgressProxy {
            proxy_url: None,
            secret_ref: Some(r),
        }),
        ..Network::default()
    }))
}

/// A valid object name from `prefix` and `parts`: lower case, other characters as `-`, and
/// cut with a digest of the whole where it would be too long (names stay readable in
/// `kubectl get`, and distinct).
pub fn object_name(prefix: &str, parts: &[&str]) -> String {
    const MAX: usize = 63;
    let mut raw = prefix.to_string();
    for p in parts {
        raw.push('-');
        raw.push_str(p);
    }
    let mut name: String = raw
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '.') => c,
            _ => '-',
        })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    let name = name.trim_matches(['-', '.']).to_string();
    if name.len() <= MAX && name == raw {
        return name;
    }
    // Altered or too long: a digest of the original keeps two sources from sharing a name.
    let digest = short_digest(&raw);
    let keep = MAX - digest.len() - 1;
    let head: String = name.chars().take(keep).collect();
    format!("{}-{digest}", head.trim_end_matches(['-', '.']))
}

/// Six hex digits of a stable digest (FNV-1a: the same in every process and version).
pub fn short_digest(s: &str) -> String {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    h.write(s.as_bytes());
    format!("{:06x}", h.finish() & 0xff_ffff)
}

struct Fnv(u64);
impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_readable_valid_and_distinct() {
        assert_eq!(object_name("flux", &["podinfo"]), "flux-podinfo");
        let a = object_name("argocd", &["Acme", "app"]);
        let b = object_name("argocd", &["acme", "app"]);
        assert!(a.starts_with("argocd-acme-app-"), "{a}");
        assert_ne!(a, b);
        let long = object_name("flux", &[&"x".repeat(300)]);
        assert!(long.len() <= 63, "{long}");
        let tilde = object_name("argocd", &["~alice", "dots"]);
        assert!(tilde.starts_with("argocd-alice-dots-"), "{tilde}");
    }

    #[test]
    fn the_consumers_network_and_port_are_allowed() {
        let repo = |base: Option<&str>| BitbucketRepo {
            flavor: crate::api::Flavor::DataCenter,
            transport: GitTransport::Https,
            rest_base: base.map(String::from),
            ssh_origin: None,
            name: "PROJ/app".into(),
            host: "bitbucket.example.com".into(),
        };
        let ports = |base| network(&repo(base), None).and_then(|n| n.allowed_ports);
        let exposure = network(&repo(None), None).and_then(|n| n.exposure);
        assert_eq!(
            exposure,
            Some(Exposure::Internal),
            "the consumer is in the cluster"
        );
        assert_eq!(
            ports(Some("https://bitbucket.example.com:8443")),
            Some(vec![Port(8443)])
        );
        assert_eq!(ports(Some("https://bitbucket.example.com")), None);
        assert_eq!(
            ports(Some("https://bitbucket.example.com:443/bitbucket")),
            None
        );
        assert_eq!(ports(None), None);
    }

    #[test]
    fn digests_are_stable() {
        // Fixed: a name must not change between versions of bbconn.
        assert_eq!(short_digest("argocd-Acme-app"), "65edea");
        assert_eq!(short_digest("").len(), 6);
    }
}
