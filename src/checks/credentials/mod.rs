//! CredentialsResolved: the Secret exists, is readable, and holds well-formed values under the
//! keys the auth method reads (`ssh.rs`: the consumer's SSH key and known_hosts). Pure: the
//! caller fetches the Secret.

mod consumer;
pub mod ssh;

use super::{Finding, Lookup};
use crate::api::{AuthMethod, BitbucketConnectionSpec};
use crate::catalogue::Cause;
use crate::credential::{Credential, GitCredential, SecretString};
use std::collections::BTreeMap;

/// The largest credential value bbconn sends. Bitbucket's tokens are under 200 bytes; servers
/// refuse request headers over 8-16 KiB (431), which would read as a server problem.
pub const MAX_VALUE_BYTES: usize = 16 << 10;

/// What CredentialsResolved found: the credential the REST checks send, the method they send
/// it by (spec.auth.method, or inferred from a consumer's Secret), and, for a consumer's Secret,
/// exactly what that consumer sends to git.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub credential: Credential,
    pub method: AuthMethod,
    /// The method was inferred from the Secret (spec.auth.method is absent).
    pub inferred: bool,
    /// Set with spec.auth.secretRef.format: what the consumer sends to git.
    pub git: Option<GitCredential>,
}

impl Resolved {
    /// CredentialsResolved's message when it passes. Names keys and user names, never values.
    pub fn describe(&self, spec: &BitbucketConnectionSpec, secret_name: &str) -> String {
        let how = if self.inferred {
            "taken as method"
        } else {
            "method"
        };
        match (
            spec.auth.as_ref().and_then(|a| a.secret_ref.format),
            &self.git,
        ) {
            (Some(format), Some(git)) => {
                let sent = match git {
                    GitCredential::Basic { username, .. } => {
                        format!("username {username} and password (Basic)")
                    }
                    GitCredential::Bearer { .. } => "bearerToken (Authorization: Bearer)".into(),
                };
                format!(
                    "the {} Secret {secret_name} holds {sent}: git is checked with exactly what {} sends; the REST API with the same secret, {how} {:?}",
                    format.consumer(),
                    format.consumer(),
                    self.method
                )
            }
            _ => format!(
                "Secret {secret_name} holds the keys method {:?} reads",
                self.method
            ),
        }
    }
}

/// A value read from the Secret: None when absent or empty; unusable values are
/// CredentialMalformed, naming the key.
fn value(
    data: &BTreeMap<String, Vec<u8>>,
    secret_name: &str,
    key: &str,
) -> Result<Option<SecretString>, Finding> {
    let raw = match data.get(key) {
        Some(v) if !v.is_empty() => v,
        _ => return Ok(None),
    };
    if raw.len() > MAX_VALUE_BYTES {
        return Err(Finding::new(
            Cause::CredentialMalformed,
            format!(
                "the value under key {key:?} of Secret {secret_name} is {} KiB; no credential is larger than {} KiB, so this is not one (a file or a certificate chain under the wrong key?)",
                raw.len() >> 10,
                MAX_VALUE_BYTES >> 10
            ),
        ));
    }
    let text = std::str::from_utf8(raw).map_err(|_| {
        Finding::new(
            Cause::CredentialMalformed,
            format!("the value under key {key:?} of Secret {secret_name} is not UTF-8 text"),
        )
    })?;
    if text.trim() != text {
        return Err(Finding::new(
            Cause::CredentialMalformed,
            format!(
                "the value under key {key:?} of Secret {secret_name} has leading or trailing whitespace (often a newline from echo)"
            ),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(Finding::new(
            Cause::CredentialMalformed,
            format!(
                "the value under key {key:?} of Secret {secret_name} contains control characters"
            ),
        ));
    }
    Ok(Some(SecretString::new(text.to_string())))
}

fn optional(data: &BTreeMap<String, Vec<u8>>, key: &str) -> Option<String> {
    data.get(key)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The Secret's data, or the cause that it cannot be had.
fn data_of<'a>(
    secret_name: &str,
    secret: &'a Lookup,
) -> Result<&'a BTreeMap<String, Vec<u8>>, Finding> {
    match secret {
        Lookup::Found(data, _) => Ok(data),
        Lookup::NotFound => Err(Finding::new(
            Cause::SecretNotFound,
            format!("Secret {secret_name} does not exist"),
        )),
        Lookup::Forbidden(detail) => Err(Finding::new(
            Cause::SecretForbidden,
            format!("bbconn may not read Secret {secret_name}: {detail}"),
        )),
        Lookup::Failed(detail) => Err(Finding::new(
            Cause::ServerError,
            format!("reading Secret {secret_name} failed: {detail}"),
        )),
    }
}

/// Resolves the credential from the Secret's data. Messages name keys, never values.
pub fn check(
    spec: &BitbucketConnectionSpec,
    secret_name: &str,
    secret: &Lookup,
) -> Result<Resolved, Finding> {
    let data = data_of(secret_name, secret)?;
    // The engine resolves a REST credential only where spec.auth is set.
    let Some(auth) = spec.auth.as_ref() else {
        return Err(Finding::new(
            Cause::InvalidSpec,
            "spec.auth is required unless spec.git.transport is SSH",
        ));
    };
    if let Some(format) = auth.secret_ref.format {
        return consumer::resolve(spec, auth, format, secret_name, data);
    }
    // The CRD requires spec.auth.method without a format.
    let Some(method) = auth.method else {
        return Err(Finding::new(
            Cause::InvalidSpec,
            "spec.auth.method is required unless spec.auth.secretRef.format is set",
        ));
    };
    let keys = auth.secret_ref.keys.clone().unwrap_or_default();
    let get = |logical: &str, custom: &Option<String>| -> Result<SecretString, Finding> {
        let key = custom.as_deref().unwrap_or(logical);
        value(data, secret_name, key)?.ok_or_else(|| {
            Finding::new(
                Cause::SecretKeyMissing,
                format!(
                    "Secret {secret_name} has no value under key {key:?}, which method {method:?} reads"
                ),
            )
        })
    };
    let credential = match method {
        AuthMethod::AccessToken => Credential::AccessToken {
            token: get("token", &keys.token)?,
            token_id: optional(data, "tokenId"),
        },
        AuthMethod::ApiToken => {
            let email = get("username", &keys.username)?;
            if !email.expose().contains('@') {
                return Err(Finding::new(
                    Cause::CredentialMalformed,
                    format!(
                        "the username of Secret {secret_name} must be the Atlassian account email: API tokens authenticate as email:token"
                    ),
                ));
            }
            Credential::ApiToken {
                email,
                token: get("token", &keys.token)?,
            }
        }
        AuthMethod::Basic => Credential::Basic {
            username: get("username", &keys.username)?,
            password: get("password", &keys.password)?,
        },
        AuthMethod::AppPassword => Credential::AppPassword {
            username: get("username", &keys.username)?,
            password: get("password", &keys.password)?,
        },
        AuthMethod::OAuthClientCredentials => Credential::OAuthClient {
            client_id: get("clientId", &keys.client_id)?,
            client_secret: get("clientSecret", &keys.client_secret)?,
        },
        AuthMethod::OAuthApplicationLink => {
            let redirect_url = get("redirectUrl", &keys.redirect_url)?;
            if url::Url::parse(redirect_url.expose()).is_err() {
                return Err(Finding::new(
                    Cause::CredentialMalformed,
                    format!("the redirectUrl of Secret {secret_name} is not an absolute URL"),
                ));
            }
            Credential::OAuthAppLink {
                client_id: get("clientId", &keys.client_id)?,
                client_secret: get("clientSecret", &keys.client_secret)?,
                redirect_url,
            }
        }
    };
    Ok(Resolved {
        credential,
        method,
        inferred: false,
        git: None,
    })
}

/// A method inferred from a consumer's Secret must be one the spec's profiles name (their
/// consumers use only those); an explicit spec.auth.method was judged with the profiles.
pub fn inferred_method_allowed(
    spec: &BitbucketConnectionSpec,
    resolved: &Resolved,
) -> Result<(), Finding> {
    if !resolved.inferred {
        return Ok(());
    }
    crate::profiles::method_allowed(spec, resolved.method)
        .map_err(|m| Finding::new(Cause::InvalidSpec, m))
}

/// The expiry the Secret declares in its bbconn.dev/expires-at annotation (RFC 3339), for
/// credentials whose expiry Bitbucket does not reveal. A value that is not a timestamp is
/// CredentialMalformed, naming the annotation.
pub fn declared_expiry(
    secret_name: &str,
    secret: &Lookup,
) -> Result<Option<jiff::Timestamp>, Finding> {
    let Lookup::Found(_, meta) = secret else {
        return Ok(None);
    };
    let Some(raw) = meta.expires_at.as_deref() else {
        return Ok(None);
    };
    raw.trim().parse::<jiff::Timestamp>().map(Some).map_err(|_| {
        Finding::new(
            Cause::CredentialMalformed,
            format!(
                "the annotation {} of Secret {secret_name} is {:?}, not an RFC 3339 time such as 2027-01-31T00:00:00Z",
                super::EXPIRES_AT,
                crate::bitbucket::excerpt(raw, 40)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Meta;
    use crate::checks::git_access::API_TOKEN_USER;

    fn spec(flavor: &str, format: &str, method: Option<&str>) -> BitbucketConnectionSpec {
        let method = method.map(|m| format!("method: {m}, ")).unwrap_or_default();
        serde_saphyr::from_str(&format!(
            "flavor: {flavor}\nurl: https://bitbucket.example.com\nauth: {{{method}secretRef: {{name: s, format: {format}}}}}\n"
        ))
        .unwrap()
    }

    fn secret(pairs: &[(&str, &str)]) -> Lookup {
        Lookup::Found(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
            Meta::default(),
        )
    }

    fn resolve(s: &BitbucketConnectionSpec, pairs: &[(&str, &str)]) -> Result<Resolved, Finding> {
        check(s, "ns/s", &secret(pairs))
    }

    #[test]
    fn the_method_is_inferred_from_the_consumers_secret() {
        let cases = [
            (
                "DataCenter",
                &[("bearerToken", "tok-0001")][..],
                AuthMethod::AccessToken,
            ),
            (
                "DataCenter",
                &[("username", "alice"), ("password", "pw-0001")][..],
                AuthMethod::Basic,
            ),
            (
                "Cloud",
                &[("username", "x-token-auth"), ("password", "tok-0001")][..],
                AuthMethod::AccessToken,
            ),
            (
                "Cloud",
                &[("username", "alice@example.com"), ("password", "tok-0001")][..],
                AuthMethod::ApiToken,
            ),
            (
                "Cloud",
                &[
                    ("username", "alice"),
                    ("password", "tok-0001"),
                    ("email", "alice@example.com"),
                ][..],
                AuthMethod::ApiToken,
            ),
        ];
        for format in ["ArgoCD", "Flux"] {
            for (flavor, pairs, method) in cases {
                let r = resolve(&spec(flavor, format, None), pairs).unwrap();
                assert_eq!(
                    (r.method, r.inferred),
                    (method, true),
                    "{format} {flavor} {pairs:?}"
                );
            }
        }
        // The API token's REST credential is the email, git's the Secret's own user name.
        let r = resolve(
            &spec("Cloud", "Flux", None),
            &[
                ("username", "alice"),
                ("password", "tok-0001"),
                ("email", "alice@example.com"),
            ],
        )
        .unwrap();
        assert!(
            matches!(&r.credential, Credential::ApiToken { email, .. } if email.expose() == "alice@example.com")
        );
        assert_eq!(
            r.git.as_ref().and_then(GitCredential::username),
            Some("alice")
        );
        // An explicit method wins: a personal token as the password, sent to REST as Bearer.
        let r = resolve(
            &spec("DataCenter", "ArgoCD", Some("AccessToken")),
            &[("username", "alice"), ("password", "tok-0001")],
        )
        .unwrap();
        assert!(!r.inferred);
        assert!(
            matches!(&r.credential, Credential::AccessToken { token, .. } if token.expose() == "tok-0001")
        );
    }

    #[test]
    fn argo_cd_prefers_the_bearer_token_unless_basic_is_forced() {
        let s = spec("DataCenter", "ArgoCD", None);
        let both = [
            ("username", "alice"),
            ("password", "pw-0001"),
            ("bearerToken", "tok-0001"),
        ];
        let r = resolve(&s, &both).unwrap();
        assert!(matches!(r.git, Some(GitCredential::Bearer { .. })));
        let mut forced = both.to_vec();
        forced.push(("forceHttpBasicAuth", "true"));
        let r = resolve(&s, &forced).unwrap();
        assert!(
            matches!(r.git, Some(GitCredential::Basic { ref username, .. }) if username == "alice")
        );
        // Flux refuses both at once.
        let f = resolve(&spec("DataCenter", "Flux", None), &both).unwrap_err();
        assert_eq!(f.cause, Cause::CredentialMalformed);
    }

    #[test]
    fn missing_keys_are_named_as_the_consumer_names_them() {
        let f = resolve(
            &spec("DataCenter", "ArgoCD", None),
            &[("url", "https://x"), ("username", "a")],
        )
        .unwrap_err();
        assert_eq!(f.cause, Cause::SecretKeyMissing);
        assert!(
            f.message
                .contains("Argo CD Secret ns/s has no password or bearerToken"),
            "{}",
            f.message
        );
        let f = resolve(
            &spec("Cloud", "Flux", None),
            &[("username", API_TOKEN_USER), ("password", "tok-0001")],
        )
        .unwrap_err();
        assert!(f.message.contains("has no key email"), "{}", f.message);
        let f = resolve(
            &spec("DataCenter", "Flux", Some("Basic")),
            &[("bearerToken", "tok-0001")],
        )
        .unwrap_err();
        assert!(
            f.message
                .contains("method Basic reads username and password"),
            "{}",
            f.message
        );
        // Values are validated as in bbconn's own layout; messages name keys, never values.
        let f = resolve(
            &spec("DataCenter", "Flux", None),
            &[("bearerToken", "tok-0001\n")],
        )
        .unwrap_err();
        assert_eq!(f.cause, Cause::CredentialMalformed);
        assert!(f.message.contains("bearerToken") && !f.message.contains("tok-0001"));
    }
}
