//! Argo CD's repositories -> the connections that check them, with the credential Argo CD
//! itself would pick: a repository Secret's own, else the credential template
//! (`repo-creds` / `repo-write-creds`) with the longest normalised URL prefix. Applications'
//! repoURLs that no repository Secret covers are checked with their template, one connection
//! per distinct (URL, template), following every Application that uses it.

use super::OPT_OUT;
use super::desired::{Credential, Desired, Owner, Reach, Source, object_name, short_digest, spec};
use super::url::{
    BitbucketRepo, DataCenterHost, argocd_normalize, classify, go_no_proxy, longest_prefix,
};
use crate::api::{
    CaBundleKind, CaBundleRef, EgressProxySecretRef, GitAccessLevel, GitTransport, SecretFormat,
};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::DynamicObject;
use std::collections::{BTreeMap, BTreeSet};

pub const SECRET_TYPE: &str = "argocd.argoproj.io/secret-type";
/// The Secrets discovery reads: repositories and credential templates, read and write.
pub const SECRET_SELECTOR: &str =
    "argocd.argoproj.io/secret-type in (repository,repository-write,repo-creds,repo-write-creds)";

/// Keys that are credentials of a repository Secret of its own (secretToRepository): with any
/// of them, no template applies.
const CREDENTIAL_KEYS: &[&str] = &[
    "username",
    "password",
    "bearerToken",
    "sshPrivateKey",
    "tlsClientCertData",
    "tlsClientCertKey",
    "githubAppPrivateKey",
    "gcpServiceAccountKey",
    "useAzureWorkloadIdentity",
];

/// Argo CD's `IsInsecure` (util/db/repository_secrets.go): any of these true skips the
/// certificate check over HTTPS and the host key check over SSH.
pub const INSECURE_KEYS: &[&str] = &["insecure", "insecureIgnoreHostKey", "insecureOCIForceHttp"];

/// The keys whose values discovery keeps (none is a credential).
pub const KEPT_KEYS: &[&str] = &[
    "url",
    "type",
    "noProxy",
    "insecure",
    "insecureIgnoreHostKey",
    "insecureOCIForceHttp",
];

/// Go's strconv.ParseBool true, on the value as stored (Argo CD does not trim it; a value it
/// cannot parse makes the repository unreadable to Argo CD, and is not insecure here).
fn go_true(v: &[u8]) -> bool {
    matches!(v, b"1" | b"t" | b"T" | b"TRUE" | b"true" | b"True")
}

/// What discovery keeps of an Argo CD Secret: never a credential's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoSecret {
    pub name: String,
    pub uid: String,
    pub kind: SecretKind,
    pub url: String,
    /// Argo CD's `type`: git, helm or oci (empty is git).
    pub git: bool,
    pub has_credentials: bool,
    /// Argo CD checks neither the certificate nor the host key ([`INSECURE_KEYS`]).
    pub insecure: bool,
    /// It names a proxy (`proxy`; its value is not kept: the URL may hold a password).
    pub proxy: bool,
    /// `noProxy`: the hosts Argo CD reaches without that proxy.
    pub no_proxy: Option<String>,
    pub opted_out: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    Repository,
    RepositoryWrite,
    Template,
    WriteTemplate,
}

impl RepoSecret {
    pub fn from_secret(s: &Secret) -> Option<RepoSecret> {
        let kind = match s.labels().get(SECRET_TYPE)?.as_str() {
            "repository" => SecretKind::Repository,
            "repository-write" => SecretKind::RepositoryWrite,
            "repo-creds" => SecretKind::Template,
            "repo-write-creds" => SecretKind::WriteTemplate,
            _ => return None,
        };
        let text = |k: &str| {
            s.data
                .as_ref()
                .and_then(|d| d.get(k))
                .map(|b| String::from_utf8_lossy(&b.0).trim().to_string())
                .or_else(|| s.string_data.as_ref().and_then(|d| d.get(k)).cloned())
                .filter(|v| !v.is_empty())
        };
        let has = |k: &str| text(k).is_some();
        Some(RepoSecret {
            name: s.name_any(),
            uid: s.uid().unwrap_or_default(),
            kind,
            url: text("url")?,
            git: text("type").is_none_or(|t| t == "git"),
            has_credentials: CREDENTIAL_KEYS.iter().any(|k| has(k)),
            proxy: has("proxy"),
            no_proxy: text("noProxy"),
            insecure: INSECURE_KEYS.iter().any(|k| {
                let data = s
                    .data
                    .as_ref()
                    .and_then(|d| d.get(*k))
                    .map(|b| b.0.as_slice());
                let string = s.string_data.as_ref().and_then(|d| d.get(*k));
                data.or(string.map(|v| v.as_bytes())).is_some_and(go_true)
            }),
            opted_out: opted_out(s.annotations()),
        })
    }

    fn owner(&self) -> Owner {
        Owner {
            api_version: "v1".into(),
            kind: "Secret".into(),
            name: self.name.clone(),
            uid: self.uid.clone(),
        }
    }
}

/// What discovery keeps of an Application: its name, project and repoURLs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct App {
    pub name: String,
    pub uid: String,
    pub repo_urls: Vec<String>,
    pub opted_out: bool,
}

impl App {
    pub fn from_object(o: &DynamicObject) -> App {
        let spec = o.data.get("spec");
        let mut repo_urls: Vec<String> = Vec::new();
        let mut push = |v: Option<&serde_json::Value>| {
            if let Some(u) = v.and_then(|v| v.get("repoURL")).and_then(|u| u.as_str()) {
                repo_urls.push(u.to_string());
            }
        };
        push(spec.and_then(|s| s.get("source")));
        for s in spec
            .and_then(|s| s.get("sources"))
            .and_then(|s| s.as_array())
            .into_iter()
            .flatten()
        {
            push(Some(s));
        }
        App {
            name: o.name_any(),
            uid: o.uid().unwrap_or_default(),
            repo_urls,
            opted_out: opted_out(o.annotations()),
        }
    }
}

pub fn opted_out(annotations: &BTreeMap<String, String>) -> bool {
    annotations.get(OPT_OUT).is_some_and(|v| v == "false")
}

/// The template Argo CD would use for `url`, among those of `kind`.
fn template<'a>(url: &str, secrets: &'a [RepoSecret], kind: SecretKind) -> Option<&'a RepoSecret> {
    let templates: Vec<&RepoSecret> = secrets.iter().filter(|s| s.kind == kind).collect();
    let i = longest_prefix(url, templates.iter().map(|t| t.url.as_str()))?;
    let t = templates.get(i).copied()?;
    (t.has_credentials && !t.opted_out).then_some(t)
}

/// Argo CD keeps the CA certificates it trusts per server in this ConfigMap of its namespace,
/// one key per host name.
pub const TLS_CERTS: &str = "argocd-tls-certs-cm";

/// The CA bundle Argo CD trusts for `repo`'s host, where `argocd-tls-certs-cm` has one.
fn ca_for(repo: &BitbucketRepo, tls_hosts: &BTreeSet<String>) -> Option<CaBundleRef> {
    tls_hosts.contains(&repo.host).then(|| CaBundleRef {
        kind: CaBundleKind::ConfigMap,
        name: TLS_CERTS.into(),
        key: Some(repo.host.clone()),
    })
}

/// The Secret whose `proxy` Argo CD uses for `repo`: the repository Secret's own, else its
/// template's (Argo CD copies proxy and noProxy from the template when the repository has none),
/// unless `noProxy` names the host.
fn proxy_for(
    repo: &BitbucketRepo,
    s: &RepoSecret,
    template: Option<&RepoSecret>,
) -> Option<EgressProxySecretRef> {
    let holder = match (s.proxy, template) {
        (true, _) => s,
        (false, Some(t)) if t.proxy => t,
        _ => return None,
    };
    let no_proxy = s
        .no_proxy
        .as_ref()
        .or(template.and_then(|t| t.no_proxy.as_ref()));
    // Over SSH Argo CD uses the proxy whatever noProxy says (util/git/creds.go).
    let https = repo.transport == GitTransport::Https;
    let bypassed = https && no_proxy.is_some_and(|n| go_no_proxy(n, &repo.host, repo.https_port()));
    (!bypassed).then(|| EgressProxySecretRef {
        name: holder.name.clone(),
        format: Some(SecretFormat::ArgoCd),
    })
}

/// The connections for one Argo CD namespace; `tls_hosts` are the keys of its
/// `argocd-tls-certs-cm`.
pub fn desired(
    namespace: &str,
    secrets: &[RepoSecret],
    apps: &[App],
    hosts: &[DataCenterHost],
    tls_hosts: &BTreeSet<String>,
) -> Vec<Desired> {
    let mut out = Vec::new();
    // Repository Secrets: their own credential, else their template's.
    for s in secrets {
        let (template_kind, access) = match s.kind {
            SecretKind::Repository => (SecretKind::Template, GitAccessLevel::Read),
            SecretKind::RepositoryWrite => (SecretKind::WriteTemplate, GitAccessLevel::Write),
            SecretKind::Template | SecretKind::WriteTemplate => continue,
        };
        if s.opted_out || !s.git {
            continue;
        }
        let Some(repo) = classify(&s.url, hosts) else {
            continue;
        };
        let template = match s.has_credentials {
            true => None,
            false => match template(&s.url, secrets, template_kind) {
                Some(t) => Some(t),
                // Anonymous: nothing of the consumer's to check.
                None => continue,
            },
        };
        let cred = Credential {
            secret: template.map_or(&s.name, |t| &t.name).clone(),
            format: SecretFormat::ArgoCd,
        };
        let reach = Reach {
            ca: ca_for(&repo, tls_hosts),
            insecure: s.insecure,
            proxy: proxy_for(&repo, s, template),
        };
        out.push(Desired {
            source: Source::ArgoCd,
            namespace: namespace.to_string(),
            name: object_name("argocd", &[&s.name]),
            owners: vec![s.owner()],
            spec: spec(&repo, &cred, access, reach),
        });
    }
    // Applications' repoURLs no repository Secret covers (opted out or not: a Secret that opts
    // out still says how Argo CD reaches that URL).
    let covered: BTreeSet<String> = secrets
        .iter()
        .filter(|s| s.kind == SecretKind::Repository)
        .map(|s| argocd_normalize(&s.url))
        .collect();
    // (normalised URL, template) -> (the URL as first written, its Applications).
    let mut groups: BTreeMap<(String, String), (String, Vec<&App>)> = BTreeMap::new();
    let mut sorted: Vec<&App> = apps.iter().filter(|a| !a.opted_out).collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for app in sorted {
        for url in &app.repo_urls {
            let norm = argocd_normalize(url);
            if covered.contains(&norm) || classify(url, hosts).is_none() {
                continue;
            }
            let Some(t) = template(url, secrets, SecretKind::Template) else {
                continue;
            };
            let entry = groups
                .entry((norm, t.name.clone()))
                .or_insert_with(|| (url.clone(), Vec::new()));
            if !entry.1.iter().any(|a| a.uid == app.uid) {
                entry.1.push(app);
            }
        }
    }
    for ((norm, secret), (url, apps)) in groups {
        let Some(repo) = classify(&url, hosts) else {
            continue;
        };
        let template = secrets.iter().find(|t| t.name == secret);
        let reach = Reach {
            ca: ca_for(&repo, tls_hosts),
            insecure: false,
            proxy: template.and_then(|t| proxy_for(&repo, t, None)),
        };
        // Lower case: the name must not change with the way the remaining Applications write
        // the URL (Argo CD compares them lower-cased too).
        let lower = repo.name.to_ascii_lowercase();
        let (ws, slug) = lower.split_once('/').unwrap_or((&lower, ""));
        let cred = Credential {
            secret: secret.clone(),
            format: SecretFormat::ArgoCd,
        };
        out.push(Desired {
            source: Source::ArgoCd,
            namespace: namespace.to_string(),
            // Named after the repository; the digest tells two credentials for it apart.
            name: object_name(
                "argocd",
                &[ws, slug, &short_digest(&format!("{norm}\n{secret}"))],
            ),
            owners: apps
                .iter()
                .map(|a| Owner {
                    api_version: "argoproj.io/v1alpha1".into(),
                    kind: "Application".into(),
                    name: a.name.clone(),
                    uid: a.uid.clone(),
                })
                .collect(),
            // A repoURL no repository Secret covers: Argo CD's repository has no insecure flag.
            spec: spec(&repo, &cred, GitAccessLevel::Read, reach),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Flavor, GitTransport};

    fn secret(name: &str, kind: SecretKind, url: &str, creds: bool) -> RepoSecret {
        RepoSecret {
            name: name.into(),
            uid: format!("uid-{name}"),
            kind,
            url: url.into(),
            git: true,
            has_credentials: creds,
            insecure: false,
            proxy: false,
            no_proxy: None,
            opted_out: false,
        }
    }
    fn app(name: &str, urls: &[&str]) -> App {
        App {
            name: name.into(),
            uid: format!("uid-{name}"),
            repo_urls: urls.iter().map(|u| u.to_string()).collect(),
            opted_out: false,
        }
    }
    fn dc() -> Vec<DataCenterHost> {
        vec!["bitbucket.example.com".parse().unwrap()]
    }

    #[test]
    fn a_repository_secret_is_checked_with_its_own_credential() {
        let secrets = [
            secret(
                "dc-repo",
                SecretKind::Repository,
                "https://bitbucket.example.com/scm/OPS/infra.git",
                true,
            ),
            secret(
                "cloud-ssh",
                SecretKind::RepositoryWrite,
                "git@bitbucket.org:acme/app.git",
                true,
            ),
            secret("gh", SecretKind::Repository, "https://github.com/a/b", true),
        ];
        let d = desired("argocd", &secrets, &[], &dc(), &BTreeSet::new());
        assert_eq!(d.len(), 2, "{d:#?}");
        assert_eq!(d[0].name, "argocd-dc-repo");
        assert_eq!(d[0].spec.flavor, Flavor::DataCenter);
        assert_eq!(
            d[0].spec.url.as_deref(),
            Some("https://bitbucket.example.com")
        );
        assert_eq!(d[0].spec.auth_secret(), Some("dc-repo"));
        assert_eq!(d[0].spec.tls, None);
        // Where argocd-tls-certs-cm holds the server's CA, the connection trusts it too.
        let tls = BTreeSet::from(["bitbucket.example.com".to_string()]);
        let with_ca = desired("argocd", &secrets, &[], &dc(), &tls);
        let ca = with_ca[0]
            .spec
            .tls
            .as_ref()
            .unwrap()
            .ca_bundle_ref
            .as_ref()
            .unwrap();
        assert_eq!(
            (ca.name.as_str(), ca.key.as_deref()),
            ("argocd-tls-certs-cm", Some("bitbucket.example.com"))
        );
        assert_eq!(with_ca[1].spec.tls, None, "no TLS over SSH");
        assert_eq!(d[0].owners[0].kind, "Secret");
        assert_eq!(d[1].spec.git_transport(), GitTransport::Ssh);
        assert_eq!(d[1].spec.git_access(), GitAccessLevel::Write);
        assert_eq!(d[1].spec.ssh_secret(), Some("cloud-ssh"));
        assert_eq!(
            d[1].spec.known_hosts_ref().map(|r| r.name.as_str()),
            Some("argocd-ssh-known-hosts-cm")
        );
    }

    #[test]
    fn a_secret_without_credentials_uses_the_longest_matching_template() {
        let secrets = [
            secret(
                "url-only",
                SecretKind::Repository,
                "https://bitbucket.org/acme/app",
                false,
            ),
            secret("all", SecretKind::Template, "https://bitbucket.org", true),
            secret(
                "acme",
                SecretKind::Template,
                "https://bitbucket.org/acme",
                true,
            ),
            secret(
                "write",
                SecretKind::WriteTemplate,
                "https://bitbucket.org/acme/app",
                true,
            ),
        ];
        let d = desired("argocd", &secrets, &[], &[], &BTreeSet::new());
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].spec.auth_secret(), Some("acme"));
        assert_eq!(d[0].spec.git_access(), GitAccessLevel::Read);
    }

    #[test]
    fn applications_share_one_connection_per_url_and_template() {
        let secrets = [
            secret(
                "covered",
                SecretKind::Repository,
                "https://bitbucket.org/acme/infra.git",
                true,
            ),
            secret(
                "acme",
                SecretKind::Template,
                "https://bitbucket.org/acme",
                true,
            ),
        ];
        let apps = [
            app("b", &["https://bitbucket.org/acme/app.git"]),
            app("a", &["https://bitbucket.org/ACME/app"]),
            // Covered by a repository Secret: that Secret's connection checks it.
            app("c", &["https://bitbucket.org/acme/infra"]),
            // No template covers it, or not Bitbucket.
            app(
                "d",
                &[
                    "https://bitbucket.org/other/x.git",
                    "https://github.com/a/b",
                ],
            ),
        ];
        let d = desired("argocd", &secrets, &apps, &[], &BTreeSet::new());
        assert_eq!(d.len(), 2, "{d:#?}");
        let generated = &d[1];
        assert!(
            generated.name.starts_with("argocd-acme-app-"),
            "{}",
            generated.name
        );
        let owners: Vec<&str> = generated.owners.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(owners, ["a", "b"]);
        assert_eq!(generated.spec.auth_secret(), Some("acme"));
        let repos = &generated.spec.requirements.as_ref().unwrap().repositories;
        assert_eq!(repos[0].name, "ACME/app");
        // "a" gone, "b" (which writes the URL in lower case) keeps the same connection.
        let rest = desired("argocd", &secrets, &apps[1..], &[], &BTreeSet::new());
        assert_eq!(rest[1].name, generated.name);
    }

    #[test]
    fn a_secret_is_read_without_keeping_its_credentials() {
        let mut s: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "r", "namespace": "argocd",
                         "labels": {"argocd.argoproj.io/secret-type": "repository-write"}},
            "data": {"url": "aHR0cHM6Ly9iaXRidWNrZXQub3JnL2EvYg==", "password": "c2VjcmV0", "username": ""},
        }))
        .unwrap();
        crate::operator::discovery::strip_credentials(&mut s);
        let kept = serde_json::to_string(&s).unwrap();
        assert!(!kept.contains("c2VjcmV0"), "{kept}");
        let r = RepoSecret::from_secret(&s).unwrap();
        assert_eq!(r.url, "https://bitbucket.org/a/b");
        assert_eq!(r.kind, SecretKind::RepositoryWrite);
        assert!(r.has_credentials && r.git);
        let mut url_only = s.clone();
        if let Some(d) = url_only.data.as_mut() {
            d.remove("password");
        }
        assert!(!RepoSecret::from_secret(&url_only).unwrap().has_credentials);
    }

    #[test]
    fn an_insecure_repository_is_checked_as_argo_cd_connects_to_it() {
        // As Argo CD reads it: any of the three keys, Go's ParseBool, the value untrimmed.
        let read = |key: &str, value: &str| {
            let s: Secret = serde_json::from_value(serde_json::json!({
                "metadata": {"name": "r", "namespace": "argocd",
                             "labels": {"argocd.argoproj.io/secret-type": "repository"}},
                "stringData": {"url": "https://bitbucket.org/a/b", key: value},
            }))
            .unwrap();
            RepoSecret::from_secret(&s).unwrap().insecure
        };
        assert!(read("insecure", "true") && read("insecure", "1") && read("insecure", "True"));
        assert!(read("insecureIgnoreHostKey", "t") && read("insecureOCIForceHttp", "TRUE"));
        assert!(
            !read("insecure", "false") && !read("insecure", "yes") && !read("insecure", "true\n")
        );
        // The flag survives what discovery keeps of a Secret.
        let mut s: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "r", "namespace": "argocd",
                         "labels": {"argocd.argoproj.io/secret-type": "repository"}},
            "data": {"url": "aHR0cHM6Ly9iaXRidWNrZXQub3JnL2EvYg==", "password": "c2VjcmV0", "insecure": "dHJ1ZQ=="},
        }))
        .unwrap();
        crate::operator::discovery::strip_credentials(&mut s);
        assert!(RepoSecret::from_secret(&s).unwrap().insecure);

        let mut https = secret(
            "https",
            SecretKind::Repository,
            "https://bitbucket.example.com/scm/OPS/infra.git",
            true,
        );
        https.insecure = true;
        let mut ssh = secret(
            "ssh",
            SecretKind::Repository,
            "git@bitbucket.org:acme/app.git",
            true,
        );
        ssh.insecure = true;
        let d = desired("argocd", &[https, ssh], &[], &dc(), &BTreeSet::new());
        let tls = d[0].spec.tls.as_ref().unwrap();
        assert_eq!(tls.insecure_skip_verify, Some(true));
        assert_eq!(d[0].spec.git_ssh(), None);
        assert_eq!(d[1].spec.tls, None, "no TLS over SSH");
        let git_ssh = d[1].spec.git_ssh().unwrap();
        assert_eq!(git_ssh.insecure_ignore_host_key, Some(true));
    }

    #[test]
    fn argo_cds_proxy_is_the_repositorys_else_its_templates_unless_no_proxy_names_the_host() {
        let mut own = secret(
            "own",
            SecretKind::Repository,
            "https://bitbucket.org/acme/a",
            true,
        );
        own.proxy = true;
        let bare = secret(
            "bare",
            SecretKind::Repository,
            "https://bitbucket.org/acme/b",
            false,
        );
        let mut bypassed = secret(
            "bypassed",
            SecretKind::Repository,
            "https://bitbucket.org/acme/c",
            true,
        );
        bypassed.proxy = true;
        bypassed.no_proxy = Some("10.0.0.0/8, bitbucket.org".into());
        let mut t = secret(
            "t",
            SecretKind::Template,
            "https://bitbucket.org/acme",
            true,
        );
        t.proxy = true;
        let apps = [app("x", &["https://bitbucket.org/acme/d"])];
        let d = desired(
            "argocd",
            &[own, bare, bypassed, t],
            &apps,
            &[],
            &BTreeSet::new(),
        );
        let proxy = |i: usize| {
            d[i].spec
                .egress_proxy()
                .and_then(|e| e.secret_ref.as_ref())
                .map(|r| (r.name.clone(), r.format))
        };
        let argo = Some(SecretFormat::ArgoCd);
        assert_eq!(proxy(0), Some(("own".into(), argo)));
        assert_eq!(
            proxy(1),
            Some(("t".into(), argo)),
            "the template's, as Argo CD copies it"
        );
        assert_eq!(proxy(2), None, "noProxy names the host");
        assert_eq!(
            proxy(3),
            Some(("t".into(), argo)),
            "an Application's, through its template"
        );
        // The proxy's value is not kept (its URL may hold a password); noProxy's is.
        let mut s: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "r", "namespace": "argocd",
                         "labels": {"argocd.argoproj.io/secret-type": "repository"}},
            "stringData": {"url": "https://bitbucket.org/a/b", "proxy": "http://u:hunter2@proxy:3128", "noProxy": "localhost"},
        }))
        .unwrap();
        s.data = s.string_data.take().map(|d| {
            d.into_iter()
                .map(|(k, v)| (k, k8s_openapi::ByteString(v.into_bytes())))
                .collect()
        });
        crate::operator::discovery::strip_credentials(&mut s);
        assert!(!serde_json::to_string(&s).unwrap().contains("hunter2"));
        let r = RepoSecret::from_secret(&s).unwrap();
        assert!(r.proxy);
        assert_eq!(r.no_proxy.as_deref(), Some("localhost"));
    }

    #[test]
    fn opted_out_and_non_git_sources_are_left_alone() {
        let mut off = secret(
            "off",
            SecretKind::Repository,
            "https://bitbucket.org/a/b",
            true,
        );
        off.opted_out = true;
        let mut helm = secret(
            "helm",
            SecretKind::Repository,
            "https://bitbucket.org/a/c",
            true,
        );
        helm.git = false;
        let mut app_off = app("x", &["https://bitbucket.org/acme/app"]);
        app_off.opted_out = true;
        let t = secret("t", SecretKind::Template, "https://bitbucket.org", true);
        let d = desired("argocd", &[off, helm, t], &[app_off], &[], &BTreeSet::new());
        assert!(d.is_empty(), "{d:#?}");
    }
}
