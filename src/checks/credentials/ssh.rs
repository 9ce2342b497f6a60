//! CredentialsResolved for transport SSH: the consumer's private key and known_hosts, read as
//! the consumer reads them. bbconn's layout and Flux's: `identity` (an OpenSSH or PEM private
//! key), `known_hosts`, optional `password` (the key's passphrase). Argo CD's repository
//! Secret: `sshPrivateKey`, and `url` (where Argo CD connects); its host keys live in
//! `argocd-ssh-known-hosts-cm`, named by spec.git.ssh.knownHostsRef. Messages name keys,
//! never values.

use super::{Finding, Lookup, data_of, value};
use crate::api::{BitbucketConnectionSpec, SecretFormat};
use crate::catalogue::Cause;
use russh::keys::PrivateKey;
use std::fmt;
use std::sync::Arc;

/// The consumer's SSH credential. Debug prints the key's fingerprint, never the key.
#[derive(Clone)]
pub struct SshCredential {
    pub key: Arc<PrivateKey>,
    /// known_hosts as the consumer has it (host keys are public).
    pub known_hosts: String,
    /// Where an Argo CD Secret says Argo CD connects (its url), overriding spec.git.ssh.url.
    pub url: Option<String>,
}

impl SshCredential {
    /// `SHA256:…` of the public key: what status and messages name.
    pub fn fingerprint(&self) -> String {
        self.key
            .public_key()
            .fingerprint(russh::keys::HashAlg::Sha256)
            .to_string()
    }
}

impl fmt::Debug for SshCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshCredential")
            .field("key", &self.fingerprint())
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl PartialEq for SshCredential {
    fn eq(&self, other: &Self) -> bool {
        self.key.key_data() == other.key.key_data()
            && self.known_hosts == other.known_hosts
            && self.url == other.url
    }
}

/// The key under which each layout keeps what.
struct Layout {
    consumer: &'static str,
    key: &'static str,
    known_hosts: Option<&'static str>,
    passphrase: Option<&'static str>,
}

fn layout(format: Option<SecretFormat>) -> Layout {
    match format {
        Some(SecretFormat::ArgoCd) => Layout {
            consumer: "the Argo CD Secret",
            key: "sshPrivateKey",
            known_hosts: None,
            passphrase: None,
        },
        Some(SecretFormat::Flux) => Layout {
            consumer: "the Flux Secret",
            key: "identity",
            known_hosts: Some("known_hosts"),
            passphrase: Some("password"),
        },
        None => Layout {
            consumer: "Secret",
            key: "identity",
            known_hosts: Some("known_hosts"),
            passphrase: Some("password"),
        },
    }
}

/// The consumer's key and known_hosts: `secret` is spec.git.ssh.secretRef's Secret,
/// `known_hosts_ref` the object spec.git.ssh.knownHostsRef names (fetched by the caller).
pub fn check(
    spec: &BitbucketConnectionSpec,
    namespace: &str,
    secret: &Lookup,
    known_hosts_ref: Option<&Lookup>,
) -> Result<SshCredential, Finding> {
    let ssh = spec.git_ssh();
    let Some(sref) = ssh.and_then(|s| s.secret_ref.as_ref()) else {
        return Err(Finding::new(
            Cause::InvalidSpec,
            "spec.git.transport SSH needs spec.git.ssh.secretRef",
        ));
    };
    let secret_name = format!("{namespace}/{}", sref.name);
    let l = layout(sref.format);
    let who = format!("{} {secret_name}", l.consumer);
    let data = data_of(&secret_name, secret)?;
    // Private keys are multi-line: read them as text, not as single-line credentials.
    let pem = text(data, &secret_name, l.key)?.ok_or_else(|| {
        Finding::new(
            Cause::SecretKeyMissing,
            format!("{who} has no private key under key {:?}", l.key),
        )
    })?;
    let passphrase = match l.passphrase {
        Some(k) => value(data, &secret_name, k)?,
        None => None,
    };
    let key = parse_key(&pem, passphrase.as_ref().map(|p| p.expose()), &who, l.key)?;
    // A consumer that checks no host key (insecureIgnoreHostKey) needs no known_hosts.
    let skip = ssh
        .and_then(|s| s.insecure_ignore_host_key)
        .unwrap_or(false);
    let from_ref = match known_hosts_from_ref(spec, namespace, known_hosts_ref) {
        Err(_) if skip => None,
        r => r?,
    };
    let in_secret = match l.known_hosts {
        Some(k) => text(data, &secret_name, k)?,
        None => None,
    };
    let known_hosts = match (in_secret, from_ref) {
        (Some(a), Some(b)) => format!("{a}\n{b}"),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) if skip => String::new(),
        (None, None) => {
            let hint = match l.known_hosts {
                Some(k) => format!("under key {k:?}, or name a ConfigMap with spec.git.ssh.knownHostsRef"),
                None => "set spec.git.ssh.knownHostsRef to the ConfigMap Argo CD reads (argocd-ssh-known-hosts-cm, key ssh_known_hosts)".into(),
            };
            return Err(Finding::new(
                Cause::SecretKeyMissing,
                format!(
                    "{who} has no known_hosts: the consumer refuses every host key without it; add the host keys {hint}"
                ),
            ));
        }
    };
    let url = match sref.format {
        Some(SecretFormat::ArgoCd) => text(data, &secret_name, "url")?,
        _ => None,
    };
    Ok(SshCredential {
        key: Arc::new(key),
        known_hosts,
        url,
    })
}

/// known_hosts from the object spec.git.ssh.knownHostsRef names, where it names one.
fn known_hosts_from_ref(
    spec: &BitbucketConnectionSpec,
    namespace: &str,
    lookup: Option<&Lookup>,
) -> Result<Option<String>, Finding> {
    let ssh = spec.git_ssh();
    Ok(
        match (ssh.and_then(|s| s.known_hosts_ref.as_ref()), lookup) {
            (Some(r), Some(lookup)) => {
                let what = format!("{:?} {namespace}/{}", r.kind, r.name);
                let key = r.key.as_deref().unwrap_or("ssh_known_hosts");
                let data = match lookup {
                    Lookup::Found(d, _) => d,
                    Lookup::NotFound => {
                        return Err(Finding::new(
                            Cause::SecretNotFound,
                            format!("{what} (spec.git.ssh.knownHostsRef) does not exist"),
                        ));
                    }
                    other => data_of(&what, other)?,
                };
                Some(text(data, &what, key)?.ok_or_else(|| {
                    Finding::new(
                        Cause::SecretKeyMissing,
                        format!(
                            "{what} (spec.git.ssh.knownHostsRef) has no value under key {key:?}"
                        ),
                    )
                })?)
            }
            _ => None,
        },
    )
}

/// Multi-line text under `key`: None when absent or empty; not UTF-8 or oversized is
/// CredentialMalformed.
fn text(
    data: &std::collections::BTreeMap<String, Vec<u8>>,
    secret_name: &str,
    key: &str,
) -> Result<Option<String>, Finding> {
    let Some(raw) = data.get(key).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if raw.len() > 1 << 20 {
        return Err(Finding::new(
            Cause::CredentialMalformed,
            format!("the value under key {key:?} of {secret_name} is over 1 MiB"),
        ));
    }
    let t = std::str::from_utf8(raw).map_err(|_| {
        Finding::new(
            Cause::CredentialMalformed,
            format!("the value under key {key:?} of {secret_name} is not UTF-8 text"),
        )
    })?;
    Ok(Some(t.to_string()).filter(|t| !t.trim().is_empty()))
}

/// The private key, as OpenSSH, PEM (PKCS#1, PKCS#8, SEC1) or PuTTY; encrypted ones with the
/// passphrase. The parser's own error is not quoted: it could echo key material.
fn parse_key(
    pem: &str,
    passphrase: Option<&str>,
    who: &str,
    key: &str,
) -> Result<PrivateKey, Finding> {
    let malformed = |why: &str| {
        Finding::new(
            Cause::CredentialMalformed,
            format!("the private key under key {key:?} of {who} {why}"),
        )
    };
    let encrypted = pem.contains("ENCRYPTED")
        || russh::keys::ssh_key::PrivateKey::from_openssh(pem.trim())
            .map(|k| k.is_encrypted())
            .unwrap_or(false);
    match russh::keys::decode_secret_key(pem.trim(), passphrase) {
        Ok(k) => Ok(k),
        Err(_) if encrypted && passphrase.is_none() => Err(malformed(
            "is encrypted and no passphrase is given: add it under key password (Flux reads it there), or store the key unencrypted",
        )),
        Err(_) if encrypted => Err(malformed(
            "is encrypted, and the passphrase under key password does not open it",
        )),
        Err(_) if !pem.contains("-----BEGIN") => Err(malformed(
            "is not a private key: expected an OpenSSH (-----BEGIN OPENSSH PRIVATE KEY-----) or PEM key; a public key (.pub) or a PuTTY file under the wrong key?",
        )),
        Err(_) => Err(malformed(
            "cannot be read: a key type or format bbconn (and the consumer) cannot use, or a damaged key",
        )),
    }
}

/// CredentialsResolved's message when the SSH credential passes: names the key by fingerprint.
pub fn describe(spec: &BitbucketConnectionSpec, namespace: &str, c: &SshCredential) -> String {
    let name = spec
        .git_ssh()
        .and_then(|s| s.secret_ref.as_ref())
        .map(|r| r.name.as_str())
        .unwrap_or_default();
    let hosts = match c.known_hosts.trim().is_empty() {
        true => "no known_hosts (the consumer checks no host key)",
        false => "known_hosts",
    };
    format!(
        "Secret {namespace}/{name} holds a {} private key ({}) and {hosts}",
        c.key.algorithm(),
        c.fingerprint()
    )
}
