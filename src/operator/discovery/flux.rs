//! Flux's GitRepositories -> the connections that check them, with the Secret Flux reads
//! (`spec.secretRef`, keys as fluxcd/pkg reads them) over the transport its URL names; Write
//! where an ImageUpdateAutomation pushes through it.

use super::argocd::opted_out;
use super::desired::{Credential, Desired, Owner, Reach, Source, object_name, spec};
use super::url::{DataCenterHost, classify};
use crate::api::{
    CaBundleKind, CaBundleRef, EgressProxySecretRef, GitAccessLevel, GitTransport, SecretFormat,
};
use kube::ResourceExt;
use kube::api::DynamicObject;
use std::collections::BTreeSet;

/// The spec fields discovery reads of a GitRepository (the rest is not kept in memory).
pub const SPEC_FIELDS: &[&str] = &["url", "secretRef", "proxySecretRef", "provider"];

/// What discovery keeps of a GitRepository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitRepo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub api_version: String,
    pub url: String,
    pub secret: Option<String>,
    /// spec.proxySecretRef: the proxy Flux uses for every git operation of this repository.
    pub proxy_secret: Option<String>,
    /// spec.provider: absent or `generic` for Bitbucket (azure, github, aws are other hosts').
    pub generic: bool,
    pub opted_out: bool,
    /// The key of its Secret that holds the CA Flux trusts over HTTPS (`ca.crt`, or the older
    /// `caFile`), where it has one: filled by the caller, which reads the Secret.
    pub ca_key: Option<String>,
}

impl GitRepo {
    /// Whether its Secret matters beyond its name: over HTTPS, it may hold a CA.
    pub fn reads_ca(&self, hosts: &[DataCenterHost]) -> bool {
        self.secret.is_some()
            && classify(&self.url, hosts).is_some_and(|r| r.transport == GitTransport::Https)
    }

    pub fn from_object(o: &DynamicObject) -> Option<GitRepo> {
        let spec = o.data.get("spec")?;
        let s = |k: &str| spec.get(k).and_then(|v| v.as_str());
        Some(GitRepo {
            namespace: o.namespace()?,
            name: o.name_any(),
            uid: o.uid().unwrap_or_default(),
            api_version: o
                .types
                .as_ref()
                .map(|t| t.api_version.clone())
                .unwrap_or_else(|| "source.toolkit.fluxcd.io/v1".into()),
            url: s("url")?.to_string(),
            secret: name_of(spec.get("secretRef")),
            proxy_secret: name_of(spec.get("proxySecretRef")),
            generic: s("provider").is_none_or(|p| p == "generic"),
            opted_out: opted_out(o.annotations()),
            ca_key: None,
        })
    }
}

/// A local object reference's name, where it has one.
fn name_of(r: Option<&serde_json::Value>) -> Option<String> {
    let name = r?.get("name")?.as_str()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// The GitRepositories an ImageUpdateAutomation pushes through: (namespace, name) of its
/// `spec.sourceRef` (kind GitRepository; its namespace defaults to the automation's).
pub fn pushed_through(o: &DynamicObject) -> Option<(String, String)> {
    let r = o.data.get("spec")?.get("sourceRef")?;
    let kind = r
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or("GitRepository");
    if kind != "GitRepository" {
        return None;
    }
    let name = r.get("name")?.as_str()?.to_string();
    let ns = r
        .get("namespace")
        .and_then(|n| n.as_str())
        .map(String::from)
        .or_else(|| o.namespace())?;
    Some((ns, name))
}

pub fn desired(
    repos: &[GitRepo],
    pushed: &BTreeSet<(String, String)>,
    hosts: &[DataCenterHost],
) -> Vec<Desired> {
    repos
        .iter()
        .filter(|r| !r.opted_out && r.generic)
        .filter_map(|r| {
            // Flux's URLs are http(s):// or ssh:// only.
            if !r.url.contains("://") {
                return None;
            }
            let repo = classify(&r.url, hosts)?;
            // Without a Secret Flux clones anonymously: nothing of the consumer's to check.
            let secret = r.secret.clone()?;
            let access = if pushed.contains(&(r.namespace.clone(), r.name.clone())) {
                GitAccessLevel::Write
            } else {
                GitAccessLevel::Read
            };
            let ca = r.ca_key.as_ref().map(|key| CaBundleRef {
                kind: CaBundleKind::Secret,
                name: secret.clone(),
                key: Some(key.clone()),
            });
            let cred = Credential {
                secret,
                format: SecretFormat::Flux,
            };
            Some(Desired {
                source: Source::Flux,
                namespace: r.namespace.clone(),
                name: object_name("flux", &[&r.name]),
                owners: vec![Owner {
                    api_version: r.api_version.clone(),
                    kind: "GitRepository".into(),
                    name: r.name.clone(),
                    uid: r.uid.clone(),
                }],
                // Flux's GitRepository has no way to skip verification.
                spec: spec(
                    &repo,
                    &cred,
                    access,
                    Reach {
                        ca,
                        insecure: false,
                        proxy: r.proxy_secret.clone().map(|name| EgressProxySecretRef {
                            name,
                            format: Some(SecretFormat::Flux),
                        }),
                    },
                ),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Flavor, GitTransport};

    fn repo(name: &str, url: &str, secret: Option<&str>) -> GitRepo {
        GitRepo {
            namespace: "flux-system".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            api_version: "source.toolkit.fluxcd.io/v1".into(),
            url: url.into(),
            secret: secret.map(String::from),
            proxy_secret: None,
            generic: true,
            opted_out: false,
            ca_key: None,
        }
    }

    #[test]
    fn a_proxy_secret_ref_is_the_connections_egress_proxy() {
        let o: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "app", "namespace": "flux-system", "uid": "u"},
            "spec": {"url": "https://bitbucket.org/acme/app.git", "secretRef": {"name": "token"},
                     "proxySecretRef": {"name": "corp-proxy"}},
        }))
        .unwrap();
        let r = GitRepo::from_object(&o).unwrap();
        assert_eq!(r.proxy_secret.as_deref(), Some("corp-proxy"));
        let d = desired(&[r], &BTreeSet::new(), &[]);
        let egress = d[0].spec.egress_proxy().unwrap();
        assert_eq!(egress.proxy_url, None);
        let secret_ref = egress.secret_ref.as_ref().unwrap();
        assert_eq!(
            (secret_ref.name.as_str(), secret_ref.format),
            ("corp-proxy", Some(SecretFormat::Flux))
        );
        // Without one, the operator-wide proxy applies, as the controller's HTTPS_PROXY does.
        let plain = repo("p", "https://bitbucket.org/acme/app.git", Some("token"));
        assert_eq!(
            desired(&[plain], &BTreeSet::new(), &[])[0]
                .spec
                .egress_proxy(),
            None
        );
    }

    #[test]
    fn ssh_and_https_repositories_become_connections_as_flux_uses_them() {
        let hosts = vec!["bitbucket.example.com".parse().unwrap()];
        let repos = [
            repo(
                "infra",
                "ssh://git@bitbucket.example.com:7999/ops/infra",
                Some("flux-system"),
            ),
            repo("app", "https://bitbucket.org/acme/app.git", Some("token")),
            repo("public", "https://bitbucket.org/acme/public.git", None),
            repo("gh", "ssh://git@github.com/a/b", Some("k")),
        ];
        let pushed = BTreeSet::from([("flux-system".to_string(), "app".to_string())]);
        let d = desired(&repos, &pushed, &hosts);
        assert_eq!(d.len(), 2, "{d:#?}");
        assert_eq!(d[0].name, "flux-infra");
        assert_eq!(d[0].spec.flavor, Flavor::DataCenter);
        assert_eq!(d[0].spec.git_transport(), GitTransport::Ssh);
        let ssh = d[0].spec.git_ssh().unwrap();
        assert_eq!(
            ssh.url.as_deref(),
            Some("ssh://git@bitbucket.example.com:7999")
        );
        assert_eq!(
            ssh.secret_ref.as_ref().unwrap().format,
            Some(SecretFormat::Flux)
        );
        assert_eq!(ssh.known_hosts_ref, None);
        assert_eq!(
            d[0].spec.url.as_deref(),
            Some("https://bitbucket.example.com")
        );
        assert_eq!(d[0].spec.git_access(), GitAccessLevel::Read);
        assert_eq!(d[1].spec.auth_secret(), Some("token"));
        assert_eq!(d[1].spec.tls, None);
        assert_eq!(d[1].spec.git_access(), GitAccessLevel::Write);
        assert_eq!(d[1].owners[0].kind, "GitRepository");
    }

    #[test]
    fn an_image_update_automation_pushes_through_its_source() {
        let iua: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1beta2",
            "kind": "ImageUpdateAutomation",
            "metadata": {"name": "bump", "namespace": "apps"},
            "spec": {"sourceRef": {"kind": "GitRepository", "name": "infra"}},
        }))
        .unwrap();
        assert_eq!(pushed_through(&iua), Some(("apps".into(), "infra".into())));
        let elsewhere: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1beta2",
            "kind": "ImageUpdateAutomation",
            "metadata": {"name": "bump", "namespace": "apps"},
            "spec": {"sourceRef": {"kind": "GitRepository", "name": "infra", "namespace": "flux-system"}},
        }))
        .unwrap();
        assert_eq!(
            pushed_through(&elsewhere),
            Some(("flux-system".into(), "infra".into()))
        );
        let bucket: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1beta2",
            "kind": "ImageUpdateAutomation",
            "metadata": {"name": "bump", "namespace": "apps"},
            "spec": {"sourceRef": {"kind": "Bucket", "name": "b"}},
        }))
        .unwrap();
        assert_eq!(pushed_through(&bucket), None);
    }

    #[test]
    fn a_git_repository_reads_as_flux_reads_it() {
        let o: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "infra", "namespace": "flux-system", "uid": "u",
                         "annotations": {"bbconn.dev/discover": "false"}},
            "spec": {"url": "ssh://git@ssh.bitbucket.org/acme/app", "secretRef": {"name": "k"},
                     "provider": "generic", "interval": "1m"},
        }))
        .unwrap();
        let r = GitRepo::from_object(&o).unwrap();
        assert_eq!(r.secret.as_deref(), Some("k"));
        assert!(r.generic && r.opted_out);
        assert_eq!(r.api_version, "source.toolkit.fluxcd.io/v1");
    }

    #[test]
    fn a_ca_in_the_secret_is_trusted_over_https_only() {
        let hosts = vec!["bitbucket.example.com".parse().unwrap()];
        let mut https = repo(
            "app",
            "https://bitbucket.example.com/scm/OPS/app.git",
            Some("s"),
        );
        let mut ssh = repo(
            "ssh",
            "ssh://git@bitbucket.example.com:7999/ops/app",
            Some("s"),
        );
        assert!(https.reads_ca(&hosts) && !ssh.reads_ca(&hosts));
        https.ca_key = Some("ca.crt".into());
        ssh.ca_key = Some("ca.crt".into());
        let d = desired(&[https, ssh], &BTreeSet::new(), &hosts);
        let ca = d[0]
            .spec
            .tls
            .as_ref()
            .unwrap()
            .ca_bundle_ref
            .as_ref()
            .unwrap();
        assert_eq!(
            (ca.kind, ca.name.as_str(), ca.key.as_deref()),
            (CaBundleKind::Secret, "s", Some("ca.crt"))
        );
        assert_eq!(d[1].spec.tls, None);
    }

    #[test]
    fn opted_out_and_other_providers_are_left_alone() {
        let mut off = repo("off", "https://bitbucket.org/a/b", Some("s"));
        off.opted_out = true;
        let mut azure = repo("az", "https://bitbucket.org/a/b", Some("s"));
        azure.generic = false;
        assert!(desired(&[off, azure], &BTreeSet::new(), &[]).is_empty());
    }
}
